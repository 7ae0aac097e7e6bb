"""Test-time augmentation: each image and its mirror image, predictions averaged.

The training images are flipped left to right at random (`RandomFlip
("horizontal")`), so the model has learned both sides of each image; averaging
the two predictions evens out its errors (fastai's and timm's default TTA
adds more crops; a flip alone costs one extra prediction per image).
"""

from collections.abc import Callable
from typing import Any

import numpy as np


def mirror(images: Any) -> np.ndarray:
    """A batch of images `(n, height, width, channels)`, flipped left to right."""
    return np.asarray(images)[:, :, ::-1, :]


def averaged(plain: np.ndarray, mirrored: np.ndarray) -> np.ndarray:
    """The TTA prediction: the mean of an image's and its mirror image's."""
    return (np.asarray(plain) + np.asarray(mirrored)) / 2


def with_tta(predict: Callable[[Any], Any]) -> Callable[[Any], np.ndarray]:
    """`predict` of a batch, averaged with `predict` of its mirror images."""
    return lambda images: averaged(predict(images), predict(mirror(images)))
