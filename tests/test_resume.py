"""A fine-tuning run stopped at any point resumes where it stopped, exactly.

The script is stopped (SIGKILL, SIGTERM, Ctrl-C) at one moment after another
and run again each time with the same command; its history and final weights
are those of an uninterrupted run (slow: minutes).
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


@pytest.fixture(scope="module")
def uninterrupted(
    script: Path, digits_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """The run trained once without a kill: its folder and its output."""
    output = tmp_path_factory.mktemp("uninterrupted") / "run"
    result = run_script(script, *arguments(digits_dir, output))
    assert result.returncode == 0, result.stderr[-3000:]
    return output, result


def rows(output: Path) -> list[dict[str, str]]:
    with open(output / "history.csv", newline="") as file:
        return list(csv.DictReader(file))


def assert_same_run(output: Path, reference: Path) -> None:
    """The same history, figure for figure, and the same final weights."""
    import keras
    import numpy as np

    assert rows(output) == rows(reference)
    final, expected = (
        keras.saving.load_model(folder / "model.keras", compile=False)
        for folder in (output, reference)
    )
    for actual, wanted in zip(final.get_weights(), expected.get_weights(), strict=True):
        np.testing.assert_array_equal(actual, wanted)


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


def stop_when(
    script: Path,
    args: list[str],
    moment: Callable[[], bool],
    number: int = signal.SIGKILL,
) -> tuple[int, str]:
    """Runs the script and sends it `number` as soon as `moment()` is true.

    SIGKILL lands at that very moment (the script is frozen first); the others
    let the script stop by itself, within 60 seconds.

    Returns:
        The exit status and the output of the script.
    """
    log = script.parent / "stopped.log"
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
                assert process.poll() is None, "the run ended before the signal"
                assert time.monotonic() < deadline, "the moment to stop never came"
                time.sleep(0.02)
            if number == signal.SIGKILL:  # freeze it at that moment
                process.send_signal(signal.SIGSTOP)
            process.send_signal(number)
            status = process.wait(timeout=60)
        finally:
            process.kill()
            process.wait()
    return status, log.read_text()


def assert_stopped(status: int, output: str, name: str, code: int) -> None:
    """A stop by SIGTERM or SIGINT: its exit status and its one line, last."""
    assert status == code, output[-3000:]
    last = output.strip().splitlines()[-1]
    assert last.startswith(f"Stopped by {name} after "), output[-3000:]
    assert last.endswith("; run the same command to go on from there.")
    assert "Traceback" not in output


def test_killed_at_each_moment_the_run_resumes_where_it_stopped(
    script: Path, digits_dir: Path, tmp_path: Path, uninterrupted
) -> None:
    """One run stopped four times: killed in the head phase, SIGTERM at the end
    of it, killed between the phases, Ctrl-C while fine-tuning; each rerun of
    the same command goes on from where the last stopped, and the last one ends
    the run exactly as an uninterrupted run ends (augmentation on)."""
    output = tmp_path / "run"
    args = arguments(digits_dir, output)
    # 1. SIGKILL during the head phase: the kill may land before epoch 1's checkpoint.
    stop_when(script, args, lambda: len(history(output)) >= 1)
    assert completed_phases(output) == [] and 1 <= len(history(output)) < HEAD_EPOCHS
    saved = checkpoint_epoch(output)
    # 2. SIGTERM in the last epoch of the head phase (or at its end).
    status, stdout = stop_when(
        script,
        args,
        lambda: len(history(output)) >= HEAD_EPOCHS - 1,
        signal.SIGTERM,
    )
    assert f"Phase 'head', epochs {saved + 1} to {HEAD_EPOCHS}" in stdout
    assert_stopped(status, stdout, "SIGTERM", 143)
    # 3. SIGKILL between the phases: the head phase is complete, fine-tuning not begun.
    stop_when(script, args, lambda: completed_phases(output) == ["head"])
    assert history(output) == EXPECTED[:HEAD_EPOCHS]
    # 4. Ctrl-C while fine-tuning.
    status, stdout = stop_when(
        script,
        args,
        lambda: any(phase != "head" for _, phase in history(output)),
        signal.SIGINT,
    )
    assert "Phase 'head' finished in an earlier run." in stdout
    assert f"Phase 'unfreeze-3', epochs {HEAD_EPOCHS + 1} to" in stdout
    assert_stopped(status, stdout, "SIGINT (Ctrl-C)", 130)
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
    assert_same_run(output, uninterrupted[0])


def test_a_finished_run_is_not_trained_again(
    script: Path, digits_dir: Path, uninterrupted
) -> None:
    output, first = uninterrupted
    assert not list((output / "resume").glob("*.weights.h5"))  # model.keras replaces it
    again = run_script(script, *arguments(digits_dir, output))
    assert again.returncode == 0, again.stderr[-3000:]
    assert "finished: nothing to train" in again.stdout
    assert "Phase 'unfreeze-3' finished in an earlier run." in again.stdout
    assert final_figures(again.stdout) == final_figures(first.stdout)  # same weights
    assert history(output) == EXPECTED
    assert again.stderr.count("Warning") == 0, again.stderr


def final_figures(stdout: str) -> str:
    return next(line for line in stdout.splitlines() if line.startswith("model.keras"))
