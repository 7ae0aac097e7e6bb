"""Writes small image folders of handwritten digits, from scikit-learn's bundled data."""

from collections.abc import Iterable
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits


def digit_images(
    label: int, *, start: int = 0, count: int | None = None, size: int = 32
) -> list[tuple[int, np.ndarray]]:
    """Images of one digit from scikit-learn's data set, in the data set's order.

    Args:
        label: The digit, 0 to 9.
        start: How many of the digit's images to skip.
        count: How many to return (None: all the rest).
        size: Width and height in pixels: the 8x8 originals are scaled up bilinearly.

    Returns:
        Pairs of the image's index in the data set and its grey pixels, a
        `size` x `size` uint8 array from 0 (background) to 255.
    """
    digits = _digits()
    indices = np.flatnonzero(digits.target == label)[start:]
    if count is not None:
        indices = indices[:count]
    return [(int(index), _upscale(digits.images[index], size)) for index in indices]


@cache
def turned_digits(
    digits: Iterable[int], turns: int, *, start: int, count: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """RGB 0-255 images of `digits`, each also turned by 90 degrees `turns - 1`
    times, and their classes: `digit + len(digits) * turn` (a base made by
    examples/*/make_base.py learns the turns as classes of their own).
    """
    digits = list(digits)
    images, labels = [], []
    for label in digits:
        for _, pixels in digit_images(label, start=start, count=count):
            rgb = np.repeat(pixels[..., None], 3, axis=-1)
            for turn in range(turns):
                images.append(np.rot90(rgb, turn))
                labels.append(label + len(digits) * turn)
    return np.array(images, dtype="float32"), np.array(labels)


def _digits():
    return load_digits()


def _upscale(image: np.ndarray, size: int) -> np.ndarray:
    pixels = (image * (255 / 16)).round().astype(np.uint8)
    upscaled = Image.fromarray(pixels, mode="L").resize((size, size), Image.BILINEAR)
    return np.asarray(upscaled)


def write_digits(
    folder: Path,
    *,
    per_class: int,
    size: int = 32,
    classes: int = 10,
    labels: Iterable[int] | None = None,
    start: int = 0,
) -> Path:
    """Writes `per_class` PNGs of each digit below `folder/<digit>/`, `size` pixels wide.

    The images are the first of each digit in scikit-learn's data set after the
    first `start`, so the same call always writes the same pixels, and calls
    with `start` ranges that do not overlap write different images.
    `labels` chooses the digits (default: 0 to `classes` - 1).
    """
    for label in range(classes) if labels is None else labels:
        target = folder / str(label)
        target.mkdir(parents=True, exist_ok=True)
        for index, pixels in digit_images(
            label, start=start, count=per_class, size=size
        ):
            image = Image.fromarray(pixels, mode="L")
            image.save(target / f"{label}_{index:04d}.png", optimize=True)
    return folder


def digits_on_canvas(
    count: int,
    *,
    labels: tuple[int, ...] = (0, 1, 3, 7),
    canvas: int = 64,
    sizes: tuple[int, int] = (16, 24),
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Digits pasted at random places on larger canvases of noise: where the
    answer is, is known.

    Each canvas is grey noise (0 to 96); one digit of `labels`, scaled to a
    random width from `sizes[0]` to `sizes[1]` pixels, is pasted at a random
    place (its bright strokes over the noise). The digits are drawn at random
    from scikit-learn's images of each digit.

    Returns:
        The RGB canvases `(count, canvas, canvas, 3)` uint8, their classes
        (positions in `labels`) and the digits' boxes `(top, left, size)`.
    """
    rng = np.random.default_rng(seed)
    digits = _digits()
    images = rng.integers(0, 97, (count, canvas, canvas), dtype=np.uint8)
    classes = rng.integers(0, len(labels), count)
    boxes = np.zeros((count, 3), dtype=np.int64)
    for image, label, box in zip(images, classes, boxes):
        size = int(rng.integers(sizes[0], sizes[1] + 1))
        top, left = rng.integers(0, canvas - size + 1, 2)
        index = rng.choice(np.flatnonzero(digits.target == labels[label]))
        digit = _upscale(digits.images[index], size)
        patch = image[top : top + size, left : left + size]
        np.maximum(patch, digit, out=patch)
        box[:] = top, left, size
    return np.repeat(images[..., None], 3, axis=-1), classes, boxes


def write_digit_pairs(
    folder: Path,
    *,
    count: int,
    size: int = 32,
    classes: int = 10,
    seed: int = 0,
    start: int = 0,
    splits: dict[str, int] | None = None,
) -> list[tuple[str, tuple[int, int], str]]:
    """Writes `count` PNGs of two different digits side by side, `size` x
    `2 * size` pixels, and `folder/labels.csv` naming both digits of each.

    The pairs are drawn from `seed`; each digit's images are taken in the data
    set's order after the first `start`, cycling, so the same call always
    writes the same pixels. The CSV has the columns `image` (the file's name)
    and `labels` (the two digits, separated by a space, in increasing order),
    and with `splits` a `split` column: the last images go to the splits it
    counts (`{"val": 40, "test": 20}`), in its order, the others to `train`.

    Returns:
        Each file's name, its two digits in increasing order, and its split
        ("" without `splits`).
    """
    folder.mkdir(parents=True, exist_ok=True)
    random = np.random.default_rng(seed)
    pools = {
        digit: digit_images(digit, start=start, size=size) for digit in range(classes)
    }
    used = dict.fromkeys(range(classes), 0)
    names = [""] * count
    if splits:
        names = ["train"] * (count - sum(splits.values()))
        names += [name for name, number in splits.items() for _ in range(number)]
    rows = []
    for number, split in zip(range(count), names):
        left, right = (int(digit) for digit in random.choice(classes, 2, replace=False))
        halves = []
        for digit in (left, right):
            pool = pools[digit]
            halves.append(pool[used[digit] % len(pool)][1])
            used[digit] += 1
        name = f"pair_{number:04d}_{left}{right}.png"
        Image.fromarray(np.hstack(halves), mode="L").save(folder / name, optimize=True)
        rows.append((name, (min(left, right), max(left, right)), split))
    header = "image,labels,split" if splits else "image,labels"
    lines = [header] + [
        f"{name},{a} {b}" + (f",{split}" if splits else "")
        for name, (a, b), split in rows
    ]
    (folder / "labels.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return rows
