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


FLOOR = ["-c", "import black, jinja2, click"]  # what generation cannot avoid


def wall_time(args: list[str], python_args: list[str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, *(python_args or ["-m", "kerastl", *args])],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


def generation_ratio() -> None:
    """`kerastl new` against a bare import of its libraries, runs interleaved."""
    new = ["new", "--mode", "fine-tune", "--stdout"]
    wall_time(new), wall_time([], FLOOR)  # warm the file cache
    pairs = [(wall_time(new), wall_time([], FLOOR)) for _ in range(RUNS)]
    generate = statistics.median(pair[0] for pair in pairs) * 1000
    floor = statistics.median(pair[1] for pair in pairs) * 1000
    print(
        f"kerastl new --mode fine-tune --stdout: median {generate:.0f} ms; "
        f"python -c 'import black, jinja2, click': median {floor:.0f} ms; "
        f"ratio {generate / floor:.2f}"
    )


def median_ms(args: list[str]) -> tuple[float, float]:
    wall_time(args)  # warm the file cache
    times = [wall_time(args) for _ in range(RUNS)]
    return statistics.median(times) * 1000, min(times) * 1000


def main() -> None:
    sys.path.insert(0, str(REPO))
    print(f"python {sys.version.split()[0]}, median and best of {RUNS} runs")
    generation_ratio()
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
