"""Shared fixtures: the --update-golden switch, image folders, running scripts."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.digits import write_digits

REPO = Path(__file__).resolve().parent.parent


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help=(
            "rewrite each script in tests/golden/ and examples/ from its own header "
            "command, the sample digits, and (slow tests) kerastl/block_starts.json"
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
