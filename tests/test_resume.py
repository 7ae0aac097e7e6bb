"""A fine-tuning run killed (SIGKILL) at any point resumes where it stopped.

The script is killed at one moment after another and run again each time with
the same command; the epochs and final files are checked (slow: minutes).
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


def kill_when(script: Path, args: list[str], moment: Callable[[], bool]) -> str:
    """Runs the script, SIGKILLs it as soon as `moment()` is true, returns its output."""
    log = script.parent / "killed.log"
    with open(log, "w") as output:
        process = subprocess.Popen(
            [sys.executable, str(script), *args],
            cwd=script.parent,
            env=script_env(),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 300
        try:
            while not moment():
                assert process.poll() is None, "the run ended before the kill"
                assert time.monotonic() < deadline, "the moment to kill never came"
                time.sleep(0.02)
            process.send_signal(
                signal.SIGSTOP
            )  # freeze it at that moment, then kill it
            process.kill()
        finally:
            process.kill()
            process.wait()
    return log.read_text()


def test_killed_at_each_moment_the_run_resumes_where_it_stopped(
    script: Path, digits_dir: Path, tmp_path: Path
) -> None:
    """One run killed three times: in the head phase, between the phases and
    while fine-tuning; each rerun of the same command goes on from the last
    saved epoch, and the last one ends the run."""
    output = tmp_path / "run"
    args = arguments(digits_dir, output)
    # 1. During the head phase: the kill may land before epoch 1's checkpoint.
    kill_when(script, args, lambda: len(history(output)) >= 1)
    assert completed_phases(output) == [] and 1 <= len(history(output)) < HEAD_EPOCHS
    saved = checkpoint_epoch(output)
    # 2. Between the phases: the head phase is complete, fine-tuning not begun.
    stdout = kill_when(script, args, lambda: completed_phases(output) == ["head"])
    assert f"Phase 'head', epochs {saved + 1} to {HEAD_EPOCHS}:" in stdout
    assert history(output) == EXPECTED[:HEAD_EPOCHS]
    # 3. While fine-tuning.
    stdout = kill_when(
        script, args, lambda: any(phase != "head" for _, phase in history(output))
    )
    assert "Phase 'head' finished in an earlier run." in stdout
    assert f"Phase 'unfreeze-3', epochs {HEAD_EPOCHS + 1} to" in stdout
    assert completed_phases(output) == ["head"]
    # The last rerun ends the run, with every epoch once.
    result = run_script(script, *args)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Phase 'head' finished in an earlier run." in result.stdout
    assert history(output) == EXPECTED
    assert completed_phases(output) == ["head", "unfreeze-3"]
    for name in ("model.keras", "labels.json", "best.keras"):
        assert (output / name).is_file()
    assert not list((output / "resume").glob("backup-*"))


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
