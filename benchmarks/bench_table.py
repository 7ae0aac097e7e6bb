"""Label table time: reading a 10,000-row CSV and checking it against the files.

Run: .venv/bin/python benchmarks/bench_table.py [--rows 10000] [--repeats 3]

It hard-links copies of the scikit-learn digits up to `--rows` PNGs in ten
class folders (as bench_scan.py does), writes a table naming each with its
class (`label`) and another naming each with two classes (`labels`), then
times, best of `--repeats`: `load_tables` (reading the CSV, and the checks
against the files: missing, unnamed, duplicated, classes), `check_images`
(each file's structure, as the folder scan reads it) and `data_sources` (all
of it with the stratified split, exact or iterative: everything before the
first image decodes).
"""

import argparse
import csv
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from benchmarks.bench_scan import link_copies
    from kerastl.runtime.images import check_images
    from kerastl.runtime.sources import data_sources
    from kerastl.runtime.table_sets import load_tables
    from tests.digits import write_digits

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        data = link_copies(
            write_digits(root / "source", per_class=200), root / "data", args.rows
        )
        images = sorted(data.rglob("*.png"))
        single = write_table(root / "single.csv", "label", images, data, labels=1)
        multi = write_table(root / "multi.csv", "labels", images, data, labels=2)
        for name, table in (("label", single), ("labels", multi)):
            tables = best(lambda t=table: load_tables(str(data), str(t)), args.repeats)
            print(f"{args.rows} rows ({name}): read and checked in {tables:.2f} s")
        paths = [str(path) for path in images]
        structure = best(lambda: check_images(paths), args.repeats)
        print(f"their files' structure (check_images): {structure:.2f} s")
        for name, table in (("label", single), ("labels", multi)):
            whole = best(
                lambda t=table: data_sources(str(data), labels=str(t)), args.repeats
            )
            print(f"all of it, split (data_sources, {name}): {whole:.2f} s")


def write_table(
    path: Path, column: str, images: list[Path], root: Path, *, labels: int
) -> Path:
    """A table of `images` (relative to `root`): the class folder, and with
    `labels=2` also the next digit."""
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["image", column])
        for image in images:
            digit = int(image.parent.name)
            names = [str(digit), str((digit + 1) % 10)][:labels]
            writer.writerow([image.relative_to(root).as_posix(), " ".join(names)])
    return path


def best(run: Callable[[], object], repeats: int) -> float:
    """The shortest of `repeats` timed runs, in seconds (the first warms the
    page cache)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


if __name__ == "__main__":
    main()
