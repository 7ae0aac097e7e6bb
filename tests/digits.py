"""Writes small image folders of handwritten digits, from scikit-learn's bundled data."""

from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits


def write_digits(
    folder: Path, *, per_class: int, size: int = 32, classes: int = 10
) -> Path:
    """Writes `per_class` PNGs of each digit below `folder/<digit>/`, `size` pixels wide.

    The images are the first of each digit in scikit-learn's data set, so the
    same call always writes the same pixels.
    """
    digits = load_digits()
    for label in range(classes):
        target = folder / str(label)
        target.mkdir(parents=True, exist_ok=True)
        for index in np.flatnonzero(digits.target == label)[:per_class]:
            pixels = (digits.images[index] * (255 / 16)).round().astype(np.uint8)
            image = Image.fromarray(pixels, mode="L").resize(
                (size, size), Image.BILINEAR
            )
            image.save(target / f"{label}_{index:04d}.png", optimize=True)
    return folder
