"""`kerastl predict`'s images: found below the paths, checked, decoded in batches."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kerastl.errors import KerastlError
from kerastl.predict_output import skip
from kerastl.predict_request import PredictUsageError


class NoReadableImageError(KerastlError):
    """None of the images asked for can be read: there is nothing to predict."""


def image_files(paths: list[Path]) -> list[Path]:
    """The image files at or below `paths`, unchecked."""
    from kerastl.runtime.errors import DataError
    from kerastl.runtime.predict import image_paths

    files: list[Path] = []
    for path in paths:
        try:
            files += [Path(found) for found in image_paths(path)]
        except DataError as error:
            raise PredictUsageError("paths", str(error)) from None
    return files


def readable_images(files: list[Path]) -> list[Path]:
    """The files that look like readable images; each other one is named.

    Raises:
        NoReadableImageError: If there is none.
    """
    from kerastl.runtime.images import image_problem

    readable = []
    for path in files:
        problem = image_problem(path)
        if problem is None:
            readable.append(path)
        else:
            skip(path, problem)
    if not readable:
        which = "the image" if len(files) == 1 else f"none of the {len(files)} images"
        raise NoReadableImageError(f"{which} can be read; nothing to predict")
    return readable


def batches(
    paths: list[Path], image_size: int, batch_size: int
) -> Iterator[tuple[list[Path], Any]]:
    """`(paths, images)` batches; an image TensorFlow cannot decode is left out."""
    import tensorflow as tf

    from kerastl.runtime.predict import load_image

    dataset = tf.data.Dataset.from_tensor_slices([str(path) for path in paths])
    dataset = dataset.map(
        lambda path: (path, load_image(path, image_size)),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    dataset = dataset.ignore_errors().batch(batch_size).prefetch(tf.data.AUTOTUNE)
    for names, images in dataset.as_numpy_iterator():
        yield [Path(name.decode()) for name in names], images
