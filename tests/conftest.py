"""Shared fixtures: the --update-golden switch, image folders, running scripts."""

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner

from kerastl.cli import cli
from tests.digits import write_digits

REPO = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    # A shell that starts pytest in the background (`pytest &` in a script)
    # makes it ignore Ctrl-C, and the scripts rightly keep an ignored signal
    # ignored; the tests that press Ctrl-C need it as a terminal gives it.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The modules with slow tests first, each in its own order: xdist hands
    out whole modules (`--dist loadscope`), so the long ones start early and
    the many quick ones even out the workers' ends."""
    slow = {item.module for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.module not in slow)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help=(
            "rewrite each script in examples/ from its own header command, each "
            "case in tests/golden/backbones/ and tests/data/update/, the sample "
            "digits, and (slow tests) kerastl/block_starts.json"
        ),
    )


@pytest.fixture(scope="session")
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture(scope="session")
def digits_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ten class folders of 32-pixel digit PNGs, 12 images each."""
    return write_digits(tmp_path_factory.mktemp("digits"), per_class=12)


def script_env(**extra: str) -> dict[str, str]:
    """Environment for running generated scripts: quiet TensorFlow, one thread pool."""
    env = dict(os.environ)
    env.update(
        {
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "PYTHONUNBUFFERED": "1",
            "KERAS_BACKEND": "tensorflow",
        }
    )
    env.update(extra)
    return env


def new_script(folder: Path, *options: str, name: str = "train.py") -> Path:
    """`kerastl new OPTIONS -o NAME`, run in `folder` and in this process (the
    generator imports no TensorFlow: no subprocess needed); returns the script."""
    with contextlib.chdir(folder):
        result = CliRunner().invoke(cli, ["new", *options, "-o", name])
    assert result.exit_code == 0, result.output
    return folder / name


def data_settings(**values: Any) -> SimpleNamespace:
    """The settings `runtime.load_training_data` reads, as a script's
    defaults give them, with `values` (output_dir and data_dir at least)."""
    defaults = {
        "labels": None,
        "val_labels": None,
        "test_labels": None,
        "label_delimiter": " ",
        "val_dir": None,
        "test_dir": None,
        "validation_split": 0.2,
        "image_size": 32,
        "batch_size": 8,
        "seed": 1,
        "cache": "memory",
        "class_weight": "none",
        "num_classes": None,
    }
    return SimpleNamespace(**(defaults | values))


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    """Runs `code` in a fresh interpreter at the repository's root (what it
    imports is then what a user's process would import)."""
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def run_script(
    script: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Runs a generated script with this interpreter and returns the finished process."""
    return subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        env=env or script_env(),
        timeout=timeout,
        cwd=script.parent,
        check=False,
    )


@pytest.fixture(scope="session")
def exported_run(tmp_path_factory: pytest.TempPathFactory, digits_dir: Path) -> Path:
    """A real finished run with every export, trained once for the whole session.

    A feature-extraction script for MobileNetV3Small at 32 pixels, one epoch
    from random weights on the digits, `--export saved-model tflite onnx openvino`.
    """
    folder = tmp_path_factory.mktemp("exported")
    script = new_script(
        folder,
        *("--mode", "feature-extraction", "--backbone", "MobileNetV3Small"),
        *("--image-size", "32"),
    )
    result = run_script(
        script,
        *("--data-dir", str(digits_dir), "--weights", "none", "--epochs", "1"),
        *("--output-dir", "run"),
        *("--export", "saved-model", "tflite", "onnx", "openvino"),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return folder / "run"


@pytest.fixture
def without_matplotlib(monkeypatch: pytest.MonkeyPatch) -> None:
    """matplotlib cannot be imported, and no figure was skipped yet (a new process)."""
    for name in list(sys.modules):
        if name == "matplotlib" or name.startswith("matplotlib."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    for plots in ("kerastl.common.plots", "kerastl.runtime.common.plots"):
        if plots in sys.modules:  # the generator's and the runtime's module
            monkeypatch.setattr(sys.modules[plots], "_missing_told", False)
