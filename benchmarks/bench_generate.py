"""How fast is generation? Prints the figures; run: .venv/bin/python benchmarks/bench_generate.py

* `kerastl new` as a whole process (interpreter start, imports, render, black),
  median of several runs, for each mode, and with --standalone writing the
  script and its copy of the runtime into a temporary folder;
* `kerastl list`, the lightest command;
* rendering all 120 backbone x mode scripts in one process.
"""

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RUNS = 9


def wall_time(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "kerastl", *args],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


def median_ms(args: list[str]) -> tuple[float, float]:
    wall_time(args)  # warm the file cache
    times = [wall_time(args) for _ in range(RUNS)]
    return statistics.median(times) * 1000, min(times) * 1000


def main() -> None:
    sys.path.insert(0, str(REPO))
    print(f"python {sys.version.split()[0]}, median and best of {RUNS} runs")
    folder = tempfile.TemporaryDirectory()
    standalone = str(Path(folder.name) / "train.py")
    cases = {
        "kerastl new --mode fine-tune --stdout": [
            "new",
            "--mode",
            "fine-tune",
            "--stdout",
        ],
        "kerastl new --mode feature-extraction --stdout": [
            "new",
            "--mode",
            "feature-extraction",
            "--stdout",
        ],
        "kerastl new --mode as-is --stdout": ["new", "--mode", "as-is", "--stdout"],
        "kerastl new --standalone -o DIR/train.py --force": [
            "new",
            "--standalone",
            "-o",
            standalone,
            "--force",
        ],
        "kerastl list": ["list"],
    }
    for label, args in cases.items():
        median, best = median_ms(args)
        print(f"{label:<50} median {median:6.0f} ms   best {best:6.0f} ms")
    folder.cleanup()

    from kerastl import backbones
    from kerastl.render import render
    from kerastl.spec import MODES, make_spec

    start = time.perf_counter()
    count = 0
    for name in backbones.BACKBONES:
        for mode in MODES:
            render(make_spec(mode=mode, backbone=name))
            count += 1
    elapsed = time.perf_counter() - start
    print(
        f"render all {count} scripts in one process: {elapsed:.2f} s "
        f"({elapsed / count * 1000:.1f} ms each)"
    )
    heavy = [module for module in ("tensorflow", "keras") if module in sys.modules]
    print(f"TensorFlow or Keras imported while generating: {heavy or 'no'}")


if __name__ == "__main__":
    main()
