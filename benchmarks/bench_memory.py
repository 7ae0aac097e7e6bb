"""Peak memory of the input pipeline for a small and a large data set.

Run: .venv/bin/python benchmarks/bench_memory.py [--counts 2000 50000] [--size 224]

It writes the scikit-learn digits as 64-pixel PNGs once and hard-links copies
of them up to each count (a temporary folder, deleted at the end). For each
count a fresh child process calls `runtime.load_image_folders` with the
generated scripts' defaults (`cache="auto"`, `cache_dir` in the temporary
folder, a 0.2 validation split, batches of 32, no augmentation and no model)
and iterates one epoch of both subsets; it reports its peak resident memory
(`ru_maxrss`). The goal: the largest count within 1.5x the smallest's.

At 224 pixels 2,000 images take 0.3 GB decoded, which "auto" keeps in memory,
and 50,000 take 7.5 GB, more than a quarter of the available memory of a
24 GB machine, which "auto" caches on disk: the ratio compares the two, as the
defaults choose them. A disk cache is read back through the system's file
cache, which is not part of a process's resident memory.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[2000, 50_000])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument(
        "--child", nargs=2, metavar=("DATA", "CACHE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), Path(args.child[1]), args.size)
        return

    from benchmarks.bench_scan import link_copies
    from tests.digits import write_digits

    peaks = {}
    with tempfile.TemporaryDirectory() as folder:
        source = write_digits(Path(folder) / "source", per_class=200, size=64)
        for count in args.counts:
            data = link_copies(source, Path(folder) / f"data-{count}", count)
            start = time.perf_counter()
            result = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--size",
                    str(args.size),
                    "--child",
                    str(data),
                    str(Path(folder) / f"cache-{count}"),
                ],
                capture_output=True,
                text=True,
                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
                check=False,
            )
            wall = time.perf_counter() - start
            if result.returncode:
                sys.exit(f"child for {count} images failed:\n{result.stderr[-3000:]}")
            lines = result.stdout.splitlines()
            figures = json.loads(lines[-1])
            peaks[count] = figures["peak_mb"]
            print(
                f"{count:>6} images at {args.size} px: peak RSS {figures['peak_mb']:,.0f} MB "
                f"(after imports {figures['import_mb']:,.0f} MB); load {figures['load_s']:.0f} s, "
                f"epoch {figures['epoch_s']:.0f} s, wall {wall:.0f} s; {lines[0]}"
            )
    low, high = min(args.counts), max(args.counts)
    ratio = peaks[high] / peaks[low]
    print(f"ratio of peak RSS, {high} / {low} images: {ratio:.2f} (goal: at most 1.5)")


def child(data: Path, cache_dir: Path, size: int) -> None:
    """Loads and iterates one epoch; prints the cache line, then the figures as JSON."""
    from kerastl.runtime import load_image_folders

    import_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    images = load_image_folders(
        data, image_size=size, batch_size=32, cache="auto", cache_dir=cache_dir
    )
    train, val = images.train, images.validation
    load = time.perf_counter() - start
    start = time.perf_counter()
    count = sum(
        int(labels.shape[0]) for dataset in (train, val) for _, labels in dataset
    )
    epoch = time.perf_counter() - start
    assert count == len(list(data.rglob("*.png"))), count
    figures = {
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "import_mb": import_mb,
        "load_s": load,
        "epoch_s": epoch,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
