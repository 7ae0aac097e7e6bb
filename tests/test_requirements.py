"""The runtime's start: the Keras and TensorFlow floors, checked before either
loads, and Ctrl-C while TensorFlow loads, each one line."""

import os
import signal
import subprocess
import sys
import time
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from kerastl.runtime import requirements
from kerastl.runtime_copy import COPY_NAME, runtime_files

from .conftest import REPO

pytestmark = pytest.mark.lowest  # also on the lowest versions pyproject.toml allows

# Imports the runtime as a script does, with `importlib.metadata` saying that
# `sys.argv[1]` has version `sys.argv[2]`; says whether Keras or TensorFlow loaded.
OLD_VERSION_START = """
import atexit, importlib, sys
from importlib import metadata

real_version = metadata.version
runtime, package, version = sys.argv[1:]
metadata.version = lambda name: version if name == package else real_version(name)
atexit.register(
    lambda: print("loaded:", sorted({"keras", "tensorflow"} & set(sys.modules)))
)
importlib.import_module(runtime)
"""


def start_env() -> dict[str, str]:
    """A script's environment as a user has it: TensorFlow's log level unset."""
    env = dict(os.environ)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    env["PYTHONPATH"] = str(REPO)
    return env


def test_pyproject_declares_the_runtime_floors() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    floors = {
        name: version
        for name, _, version in (
            requirement.partition(">=") for requirement in project["dependencies"]
        )
    }
    for package, floor in requirements.FLOORS.items():
        assert floors[package] == floor


def test_installed_versions_meet_the_floors() -> None:
    assert requirements.unmet_requirement() is None


@pytest.mark.parametrize(
    ("version", "expected"),
    [("3.15.0rc1", (3, 15, 0)), ("2.16.1", (2, 16, 1)), ("3.15", (3, 15))],
)
def test_release_reads_the_leading_numbers(version: str, expected: tuple) -> None:
    assert requirements.release(version) == expected


def test_an_old_or_missing_package_is_named_with_its_fix(monkeypatch) -> None:
    installed = {"keras": "3.8.0", "tf-nightly": "2.22.0.dev20261201"}

    def version(name: str) -> str:
        if name not in installed:
            raise metadata.PackageNotFoundError(name)
        return installed[name]

    monkeypatch.setattr(requirements.metadata, "version", version)
    assert requirements.unmet_requirement() == (
        "kerastl needs keras>=3.15 (found 3.8.0): pip install -U 'keras>=3.15'"
    )
    installed["keras"] = "3.15.0"
    assert requirements.unmet_requirement() is None  # tf-nightly provides TensorFlow
    del installed["tf-nightly"]
    assert requirements.unmet_requirement() == (
        "kerastl needs tensorflow>=2.16.1 (not installed): "
        "pip install 'tensorflow>=2.16.1'"
    )


@pytest.mark.parametrize(
    ("package", "version"), [("keras", "3.8.0"), ("tensorflow", "2.15.1")]
)
@pytest.mark.parametrize("standalone", [False, True])
def test_a_script_on_too_old_a_package_says_so_before_loading_it(
    package: str, version: str, standalone: bool, tmp_path: Path
) -> None:
    env = start_env()
    runtime = "kerastl.runtime"
    if standalone:  # the copy beside a script, without kerastl on the path
        for name, data in runtime_files().items():
            (tmp_path / COPY_NAME / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / COPY_NAME / name).write_bytes(data)
        env["PYTHONPATH"], runtime = str(tmp_path), COPY_NAME
    started = subprocess.run(
        [sys.executable, "-c", OLD_VERSION_START, runtime, package, version],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
        timeout=120,
    )
    floor = requirements.FLOORS[package]
    assert started.returncode == 1
    assert started.stderr == (
        f"kerastl needs {package}>={floor} (found {version}): "
        f"pip install -U '{package}>={floor}'\n"
    )
    assert started.stdout == "loaded: []\n"


def test_ctrl_c_while_tensorflow_loads_says_one_line() -> None:
    """Without the runtime's care: a traceback and TensorFlow's hidden lines."""
    starting = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "print('importing', flush=True); from kerastl import runtime; print('done')",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=start_env(),
    )
    assert starting.stdout is not None
    assert starting.stdout.readline() == "importing\n"
    time.sleep(1)  # inside the import: TensorFlow takes seconds to load
    starting.send_signal(signal.SIGINT)
    stdout, stderr = starting.communicate(timeout=120)
    assert stdout == ""  # stopped inside the import
    assert stderr == "\nStopped by SIGINT (Ctrl-C).\n"
    assert starting.returncode == 128 + signal.SIGINT
