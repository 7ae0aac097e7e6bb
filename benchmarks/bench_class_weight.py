"""Macro-F1 with and without `--class-weight auto` on an imbalanced digits folder.

Run: .venv/bin/python benchmarks/bench_class_weight.py [--epochs 30]

It writes a training folder where digits 0-4 have 60 images each and 5-9 only
6 (`--majority`, `--minority`), and balanced validation and test folders of other images (10 of each digit),
generates a VGG16 feature-extraction script at 32 px, trains it twice with
random weights (ImageNet weights cannot be assumed here), with
`--class-weight none` and with `auto`, and prints the test macro-F1 of each
from its `metrics.json`.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits

REPO = Path(__file__).resolve().parent.parent


def write_folder(folder: Path, per_class: dict[int, range]) -> None:
    digits = load_digits()
    for label, positions in per_class.items():
        target = folder / str(label)
        target.mkdir(parents=True, exist_ok=True)
        indices = np.flatnonzero(digits.target == label)
        for index in indices[positions.start : positions.stop]:
            pixels = (digits.images[index] * (255 / 16)).round().astype(np.uint8)
            image = Image.fromarray(pixels, mode="L").resize((32, 32), Image.BILINEAR)
            image.save(target / f"{index:04d}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--majority", type=int, default=60, help="images of 0-4")
    parser.add_argument("--minority", type=int, default=6, help="images of 5-9")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary)
        counts = {d: args.majority if d < 5 else args.minority for d in range(10)}
        write_folder(root / "train", {d: range(n) for d, n in counts.items()})
        write_folder(root / "val", {d: range(150, 160) for d in range(10)})
        write_folder(root / "test", {d: range(160, 170) for d in range(10)})
        script = root / "train.py"
        subprocess.run(
            [sys.executable, "-m", "kerastl", "new", "--mode", "feature-extraction",
             "--backbone", "VGG16", "--image-size", "32", "--weights", "none",
             "-o", str(script)],
            check=True, cwd=REPO, capture_output=True,
        )  # fmt: skip
        scores = {}
        for choice in ("none", "auto"):
            out = root / f"out-{choice}"
            subprocess.run(
                [sys.executable, str(script), "--data-dir", str(root / "train"),
                 "--val-dir", str(root / "val"), "--test-dir", str(root / "test"),
                 "--class-weight", choice,
                 "--epochs", str(args.epochs), "--learning-rate", "0.01",
                 "--output-dir", str(out)],
                check=True, capture_output=True,
            )  # fmt: skip
            test = json.loads((out / "metrics.json").read_text())["test"]
            scores[choice] = test
            print(
                f"--class-weight {choice}: test macro-F1 {test['macro_f1']:.3f}, "
                f"accuracy {test['accuracy']:.3f}"
            )
        gain = scores["auto"]["macro_f1"] - scores["none"]["macro_f1"]
        print(f"macro-F1 gain of auto over none: {gain:+.3f}")


if __name__ == "__main__":
    main()
