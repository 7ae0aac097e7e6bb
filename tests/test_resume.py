"""A fine-tuning run killed (SIGKILL) at any point resumes where it stopped.

Each test starts the script, kills it at one moment, runs the same command
again, and checks the epochs and the final files (slow: about a minute each).
"""

import csv
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import REPO, run_script, script_env

pytestmark = pytest.mark.slow
HEAD_EPOCHS = 3
TUNE_EPOCHS = 3
EXPECTED = [(epoch, "head") for epoch in range(1, HEAD_EPOCHS + 1)] + [
    (epoch, "unfreeze-3")
    for epoch in range(HEAD_EPOCHS + 1, HEAD_EPOCHS + TUNE_EPOCHS + 1)
]


def history(output: Path) -> list[tuple[int, str]]:
    path = output / "history.csv"
    if not path.exists():
        return []
    with open(path, newline="") as file:
        return [(int(row["epoch"]), row["phase"]) for row in csv.DictReader(file)]


def state(output: Path) -> dict:
    path = output / "resume" / "state.json"
    return (
        json.loads(path.read_text())
        if path.exists()
        else {"completed": [], "checkpoint": None}
    )


def completed_phases(output: Path) -> list[str]:
    return [entry["phase"] for entry in state(output)["completed"]]


def checkpoint_epoch(output: Path) -> int:
    checkpoint = state(output)["checkpoint"]
    return checkpoint["epoch"] if checkpoint else 0


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("resume")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "kerastl",
            "new",
            "--backbone",
            "MobileNetV3Small",
            "--image-size",
            "32",
            "-o",
            "train.py",
        ],
        cwd=folder,
        check=True,
        capture_output=True,
        env=script_env(PYTHONPATH=str(REPO)),
    )
    return folder / "train.py"


def arguments(digits_dir: Path, output: Path) -> list[str]:
    return [
        "--data-dir",
        str(digits_dir),
        "--weights",
        "none",
        "--epochs",
        str(HEAD_EPOCHS),
        "--fine-tune-epochs",
        str(TUNE_EPOCHS),
        "--output-dir",
        str(output),
    ]


def kill_when(script: Path, args: list[str], moment: Callable[[], bool]) -> None:
    """Runs the script and SIGKILLs it as soon as `moment()` is true."""
    process = subprocess.Popen(
        [sys.executable, str(script), *args],
        cwd=script.parent,
        env=script_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    try:
        while not moment():
            assert process.poll() is None, "the run ended before the moment to kill it"
            assert time.monotonic() < deadline, "the moment to kill never came"
            time.sleep(0.02)
        process.send_signal(signal.SIGSTOP)  # freeze it at that moment, then kill it
        process.kill()
    finally:
        process.kill()
        process.wait()


def resume_and_check(script: Path, args: list[str], output: Path) -> str:
    result = run_script(script, *args)
    assert result.returncode == 0, result.stderr[-3000:]
    assert history(output) == EXPECTED
    assert completed_phases(output) == ["head", "unfreeze-3"]
    for name in ("model.keras", "labels.json", "best.keras"):
        assert (output / name).is_file()
    assert not list((output / "resume").glob("backup-*"))
    return result.stdout


def test_killed_during_the_head_phase(
    script: Path, digits_dir: Path, tmp_path: Path
) -> None:
    output = tmp_path / "run"
    args = arguments(digits_dir, output)
    kill_when(script, args, lambda: len(history(output)) >= 1)
    assert completed_phases(output) == [] and 1 <= len(history(output)) < HEAD_EPOCHS
    saved = checkpoint_epoch(output)  # the kill may land before epoch 1's checkpoint
    stdout = resume_and_check(script, args, output)
    assert f"Phase 'head', epochs {saved + 1} to {HEAD_EPOCHS}:" in stdout


def test_killed_between_phases(script: Path, digits_dir: Path, tmp_path: Path) -> None:
    output = tmp_path / "run"
    args = arguments(digits_dir, output)
    kill_when(script, args, lambda: completed_phases(output) == ["head"])
    assert history(output) == EXPECTED[:HEAD_EPOCHS]
    stdout = resume_and_check(script, args, output)
    assert "Phase 'head' finished in an earlier run." in stdout
    assert f"Phase 'unfreeze-3', epochs {HEAD_EPOCHS + 1} to" in stdout


def test_killed_during_fine_tuning(
    script: Path, digits_dir: Path, tmp_path: Path
) -> None:
    output = tmp_path / "run"
    args = arguments(digits_dir, output)
    kill_when(
        script, args, lambda: any(phase != "head" for _, phase in history(output))
    )
    assert completed_phases(output) == ["head"]
    stdout = resume_and_check(script, args, output)
    assert "Phase 'head' finished in an earlier run." in stdout


def test_a_finished_run_is_not_trained_again(
    script: Path, digits_dir: Path, tmp_path: Path
) -> None:
    output = tmp_path / "run"
    args = arguments(digits_dir, output)
    first = run_script(script, *args)
    assert first.returncode == 0, first.stderr[-3000:]
    assert not list((output / "resume").glob("*.weights.h5"))  # model.keras replaces it
    again = run_script(script, *args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "finished: nothing to train" in again.stdout
    assert "Phase 'unfreeze-3' finished in an earlier run." in again.stdout
    assert final_figures(again.stdout) == final_figures(first.stdout)  # same weights
    assert history(output) == EXPECTED
    assert again.stderr.count("Warning") == 0, again.stderr


def final_figures(stdout: str) -> str:
    return next(line for line in stdout.splitlines() if line.startswith("model.keras"))
