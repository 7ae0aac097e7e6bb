"""Test-time augmentation: each image and its mirror image, predictions averaged.

The training images of a generated script are flipped left to right at random
(`RandomFlip("horizontal")`, on unless `--no-augment`), so the model has
learned both sides of each image; averaging the two predictions evens out its
errors (fastai's and timm's default TTA adds more crops; a flip alone costs one
extra prediction per image). A model that never saw a mirror image gains
nothing from one, so `--tta auto`, the default, averages only when the
training images were flipped.
"""

from collections.abc import Callable
from typing import Any

import numpy as np

#: The values of `--tta`: auto follows the training's augmentation.
TTA_CHOICES = ("auto", "on", "off")


def tta_decision(choice: str | bool, flipped_in_training: bool) -> tuple[bool, str]:
    """Whether to evaluate with TTA, and why, in words for the report.

    Args:
        choice: `--tta`: "auto", "on" or "off" (or a bool: on or off).
        flipped_in_training: Whether the training images were flipped at
            random (augmented).

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
        return False, "--tta auto: the training never flipped the images (--no-augment)"
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
