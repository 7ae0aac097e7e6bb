"""Input-pipeline throughput: images per second per epoch, for each cache choice.

Run: .venv/bin/python benchmarks/bench_pipeline.py [--per-class 100] [--size 96]

It writes digit PNGs to a temporary folder, builds the training pipeline of the
generated scripts (`runtime.load_image_folders`, with the scripts' augmentation)
and iterates it for a few epochs, with the cache in memory, on disk and none.
With a cache, `load_image_folders` decodes every file once to fill it (its time
is printed as "load"), and each epoch only augments; the disk cache is read
back through the system's file cache.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()

    import keras

    from kerastl.runtime import load_image_folders
    from tests.digits import write_digits

    augmentation = keras.Sequential(
        [
            keras.layers.RandomFlip("horizontal"),
            keras.layers.RandomRotation(0.05),
            keras.layers.RandomZoom(0.1),
        ]
    )
    with tempfile.TemporaryDirectory() as folder:
        data = write_digits(Path(folder) / "digits", per_class=args.per_class)
        for cache in ("none", "memory", "disk"):
            start = time.perf_counter()
            train, _, _ = load_image_folders(
                data,
                image_size=args.size,
                batch_size=32,
                augmentation=augmentation,
                cache=cache,
                cache_dir=Path(folder) / "cache",
            )
            load = time.perf_counter() - start
            rates = []
            for _ in range(args.epochs):
                start = time.perf_counter()
                count = sum(int(images.shape[0]) for images, _ in train)
                rates.append(count / (time.perf_counter() - start))
            shown = "  ".join(f"{rate:7.0f}" for rate in rates)
            print(
                f"cache={cache:<6} {args.size}px, {count} images: "
                f"load {load:5.2f} s, images/s per epoch {shown}"
            )


if __name__ == "__main__":
    main()
