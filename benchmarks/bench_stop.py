"""A run stopped by SIGTERM mid-epoch, then resumed: how fast, and how exactly.

Run: .venv/bin/python benchmarks/bench_stop.py

It writes the 1,797 scikit-learn digits as 64-pixel PNGs and generates a
fine-tune script (EfficientNetV2B0, random weights: one long head epoch, then
one fine-tuning epoch). For each of `--augment` and `--no-augment` it runs the
script once uninterrupted, then again in another folder, sends SIGTERM when 70%
of the head phase's time has passed (`STOP_AT`), and reruns the same command.
It prints:

* how long after SIGTERM the process ended, and its exit status;
* the wall time of the resumed run against the uninterrupted one;
* the largest difference between the two `history.csv` files, over every
  figure of every epoch (0 means identical).
"""

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# When SIGTERM comes, as a share of the head phase's time in the uninterrupted
# run: its first batch alone traces the model for 10-15 s on a CPU.
STOP_AT = 0.7
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="EfficientNetV2B0")
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()

    from tests.digits import write_digits

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        data = write_digits(root / "digits", per_class=200, size=args.size)
        script = root / "train.py"
        subprocess.run(
            [sys.executable, "-m", "kerastl", "new", "--mode", "fine-tune"]
            + ["--backbone", args.backbone, "--image-size", str(args.size)]
            + ["--weights", "none", "--data-dir", str(data), "-o", str(script)],
            check=True,
            capture_output=True,
        )
        options = ["--epochs", "1", "--fine-tune-epochs", "1", "--unfreeze", "2"]
        for augment in ("--augment", "--no-augment"):
            command = [sys.executable, str(script), *options, augment]
            whole = root / f"whole{augment}"
            started = time.monotonic()
            run(command + ["--output-dir", str(whole)])
            uninterrupted = time.monotonic() - started
            head_epoch = epoch_seconds(whole)
            stopped = root / f"stopped{augment}"
            latency, status, said = stop_midway(
                command + ["--output-dir", str(stopped)], head_epoch * STOP_AT
            )
            started = time.monotonic()
            run(command + ["--output-dir", str(stopped)])
            resumed = time.monotonic() - started
            difference = largest_difference(whole, stopped)
            print(
                f"{augment}: SIGTERM {STOP_AT:.0%} into the head phase ({head_epoch:.0f} s), "
                f"ended {latency:.2f} s later, exit status {status} ({said!r}); resumed run "
                f"{resumed:.1f} s against {uninterrupted:.1f} s uninterrupted; "
                f"largest history difference {difference:g}",
                flush=True,
            )


def run(command: list[str]) -> None:
    subprocess.run(command, check=True, capture_output=True, text=True)


def epoch_seconds(output: Path) -> float:
    """The head epoch's time, from the run's `run.json` wall time per phase."""
    card = json.loads((output / "run.json").read_text())
    return float(card["phase_seconds"]["head"])


def stop_midway(command: list[str], after: float) -> tuple[float, int, str]:
    """Starts `command`, sends SIGTERM `after` seconds into the head epoch.

    Returns:
        The seconds from SIGTERM to the end of the process, its exit status
        and the line it printed last.
    """
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},  # each line as it is printed
    )
    for line in process.stdout:
        if line.startswith("trainable: "):  # the head phase starts training
            break
    time.sleep(after)
    if process.poll() is not None:
        raise RuntimeError("the run ended before SIGTERM: give it a longer epoch")
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    rest = process.stdout.read().strip().splitlines()
    status = process.wait()
    return time.monotonic() - sent, status, rest[-1] if rest else ""


def largest_difference(first: Path, second: Path) -> float:
    rows = [read_rows(first / "history.csv"), read_rows(second / "history.csv")]
    if len(rows[0]) != len(rows[1]):
        return float("inf")
    largest = 0.0
    for one, other in zip(*rows):
        for key, value in one.items():
            if key != "phase":
                largest = max(largest, abs(float(value) - float(other[key])))
    return largest


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


if __name__ == "__main__":
    main()
