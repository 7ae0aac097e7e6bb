"""Preflight scan time: `scan_image_folder` on a folder of small PNGs.

Run: .venv/bin/python benchmarks/bench_scan.py [--images 10000] [--size 48]

It writes the 1,797 scikit-learn digits as PNGs once, hard-links copies of
them up to `--images` files in ten class folders (a temporary folder, deleted
at the end), then times the scan, which reads each file's structure (PNG
chunks to IEND, with checksums). For comparison it times a full decode of
every file with `tf.io.decode_image`, the alternative the scan avoids. The
links share a few files, so both read from the page cache: the times are CPU
and system calls, not a cold disk.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument(
        "--no-decode", action="store_true", help="skip the decode timing"
    )
    args = parser.parse_args()

    import tensorflow as tf

    from kerastl.runtime import scan_image_folder
    from kerastl.runtime.images import list_images
    from tests.digits import write_digits

    with tempfile.TemporaryDirectory() as folder:
        data = link_copies(
            write_digits(Path(folder) / "source", per_class=200, size=args.size),
            Path(folder) / "data",
            args.images,
        )
        start = time.perf_counter()
        scan = scan_image_folder(data)
        scan_time = time.perf_counter() - start
        print(
            f"scan: {scan.total} images of {args.size} px in {scan_time:.2f} s "
            f"({scan_time / scan.total * 1e6:.0f} us per image)"
        )
        if not args.no_decode:
            start = time.perf_counter()
            for path in list_images(data):
                tf.io.decode_image(tf.io.read_file(str(path)), expand_animations=False)
            decode_time = time.perf_counter() - start
            print(
                f"full decode with tf.io.decode_image, for comparison: {decode_time:.2f} s"
            )


def link_copies(source: Path, target: Path, count: int) -> Path:
    """Fills `target/<class>/` with `count` hard links to the images of `source`."""
    images = sorted(source.rglob("*.png"))
    for index in range(count):
        image = images[index % len(images)]
        folder = target / image.parent.name
        folder.mkdir(parents=True, exist_ok=True)
        os.link(image, folder / f"{index:06d}.png")
    return target


if __name__ == "__main__":
    main()
