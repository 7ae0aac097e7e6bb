"""Checks of the data against the model: raw pixel range, number of classes."""

import keras
import tensorflow as tf

from .errors import DataError


def check_pixel_range(dataset: tf.data.Dataset) -> tuple[float, float]:
    """Checks that the first batch holds raw pixels in [0, 255].

    The model normalizes its inputs itself (step 4), so pixels scaled before
    they reach it would be normalized twice.

    Returns:
        The smallest and largest pixel value of the first batch.

    Raises:
        DataError: If the values are outside [0, 255] or look already scaled.
    """
    images = next(iter(dataset.take(1)))[0]
    low = float(keras.ops.min(images))
    high = float(keras.ops.max(images))
    if low < 0 or high > 255.5:
        raise DataError(
            f"pixels of the first batch span [{low:.3g}, {high:.3g}]; expected [0, 255]"
        )
    if high <= 1.0:
        raise DataError(
            f"pixels of the first batch span [{low:.3g}, {high:.3g}]: they look scaled "
            "already, but the model expects raw pixels in [0, 255]"
        )
    return low, high


def check_num_classes(expected: int | None, class_names: list[str]) -> int:
    """Returns the number of classes, checking it against the script's setting."""
    if expected is not None and expected != len(class_names):
        raise DataError(
            f"the script is set up for {expected} classes (--num-classes) but the "
            f"data has {len(class_names)}: {', '.join(class_names)}; give "
            "--num-classes none to take the data's"
        )
    return len(class_names)
