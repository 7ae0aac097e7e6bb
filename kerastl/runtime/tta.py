"""Test-time augmentation: each image and its mirror image, predictions averaged.

The training images of a generated script are flipped left to right at random
(`RandomFlip("horizontal")` in its `augmentation()`, on unless `--no-augment`),
so the model has learned both sides of each image; averaging the two
predictions evens out its errors (fastai's and timm's default TTA adds more
crops; a flip alone costs one extra prediction per image). A model that never
saw a mirror image gains nothing from one (a mirrored digit is another
symbol), so `--tta auto`, the default, averages only when the training's
augmentation holds a horizontal `RandomFlip`: delete that layer from the
script's `augmentation()` and TTA goes with it.
"""

from collections.abc import Callable
from typing import Any

import numpy as np

#: The values of `--tta`: auto follows the training's augmentation.
TTA_CHOICES = ("auto", "on", "off")


def flips_left_to_right(augmentation: Any) -> bool:
    """Whether `augmentation` (a layer, a `Sequential` of them, or None)
    holds a `RandomFlip` that flips images left to right."""
    if augmentation is None:
        return False
    layers = getattr(augmentation, "layers", None)  # a Sequential or a Model
    if layers is not None:
        return any(flips_left_to_right(layer) for layer in layers)
    mode = getattr(augmentation, "mode", "")
    return type(augmentation).__name__ == "RandomFlip" and "horizontal" in mode


def tta_decision(choice: str | bool, flipped_in_training: bool) -> tuple[bool, str]:
    """Whether to evaluate with TTA, and why, in words for the report.

    Args:
        choice: `--tta`: "auto", "on" or "off" (or a bool: on or off).
        flipped_in_training: Whether the training images were flipped left
            to right at random (`flips_left_to_right`).

    Raises:
        ValueError: If `choice` is none of `TTA_CHOICES`.
    """
    if isinstance(choice, bool):
        choice = "on" if choice else "off"
    if choice not in TTA_CHOICES:
        raise ValueError(f"--tta is one of {', '.join(TTA_CHOICES)}, not {choice!r}")
    if choice == "auto":
        if flipped_in_training:
            return True, "--tta auto: the training images were flipped"
        return False, "--tta auto: the training never flipped the images"
    if choice == "on" and not flipped_in_training:
        return True, "--tta on, though the training never flipped the images"
    return choice == "on", f"--tta {choice}"


def mirror(images: Any) -> np.ndarray:
    """A batch of images `(n, height, width, channels)`, flipped left to right."""
    return np.asarray(images)[:, :, ::-1, :]


def averaged(plain: np.ndarray, mirrored: np.ndarray) -> np.ndarray:
    """The TTA prediction: the mean of an image's and its mirror image's."""
    return (np.asarray(plain) + np.asarray(mirrored)) / 2


def with_tta(predict: Callable[[Any], Any]) -> Callable[[Any], np.ndarray]:
    """`predict` of a batch, averaged with `predict` of its mirror images."""
    return lambda images: averaged(predict(images), predict(mirror(images)))
