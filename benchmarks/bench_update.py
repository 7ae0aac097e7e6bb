"""How fast is `kerastl update`, and how many edits merge? Prints the figures.

Run: .venv/bin/python benchmarks/bench_update.py

* `kerastl update train.py` as a whole process (interpreter start, imports,
  render, merge, black, writes) on the default fine-tune script carrying the
  seven edits of tests/data/update/switch_backbone.txt: median and best of
  several runs, each from the same edited script and base; the same with
  `--backbone ConvNeXtTiny`;
* the share of the user's edits in the cases of tests/data/update/ that end up
  in the updated script outside any conflict.
"""

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RUNS = 7


def kerastl(*args: str, cwd: Path) -> float:
    """Runs `python -m kerastl ARGS` in `cwd`; returns its wall time in seconds."""
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "kerastl", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


def main() -> None:
    sys.path.insert(0, str(REPO))
    from kerastl.script_base import base_path
    from tests.update_cases import CASES, apply_edits, play, read_case, surviving

    folder = Path(tempfile.mkdtemp(prefix="kerastl-bench-update-"))
    try:
        kerastl("new", "--mode", "fine-tune", "-o", "train.py", cwd=folder)
        script = folder / "train.py"
        edits = read_case(CASES / "switch_backbone.txt")
        edited = apply_edits(script.read_text(), edits.edits, "script", edits)
        base = base_path(script).read_text()
        print(f"python {sys.version.split()[0]}, median and best of {RUNS} runs")
        for args in ([], ["--backbone", "ConvNeXtTiny"]):
            times = []
            for _ in range(RUNS + 1):  # the first warms the file cache
                script.write_text(edited)
                base_path(script).write_text(base)
                times.append(kerastl("update", "train.py", *args, cwd=folder))
            label = " ".join(["kerastl update train.py", *args])
            print(
                f"{label:<48} median {statistics.median(times[1:]) * 1000:5.0f} ms"
                f"   best {min(times[1:]) * 1000:5.0f} ms"
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    merged = total = 0
    for path in sorted(CASES.glob("*.txt")):
        case = read_case(path)
        with tempfile.TemporaryDirectory() as work:
            survived = surviving(case, play(case, Path(work)))
        merged, total = merged + sum(survived), total + len(survived)
        print(f"  {path.stem:<28} {sum(survived)} of {len(survived)} edits merged")
    print(f"edits merged cleanly: {merged} of {total} ({merged / total:.0%})")


if __name__ == "__main__":
    main()
