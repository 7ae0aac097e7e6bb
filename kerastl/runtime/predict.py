"""Predicting ImageNet classes for image files (the as-is mode)."""

import csv
import os
from pathlib import Path

import numpy as np
import tensorflow as tf

from .errors import DataError
from .imagenet_classes import IMAGENET_CLASSES
from .images import IMAGE_EXTENSIONS, check_images, list_images


def find_images(path: str | os.PathLike) -> list[Path]:
    """The image at `path`, or the images below the folder `path`, checked.

    Raises:
        DataError: If there is no image, or a file is not a readable image.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} does not exist")
    paths = [path] if path.is_file() else list_images(path)
    if not paths:
        raise DataError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {path}")
    check_images(paths)
    return paths


def image_batches(
    paths: list[Path], image_size: int, batch_size: int
) -> tf.data.Dataset:
    """Batches of raw RGB pixels in [0, 255], resized like the training data."""

    def load(path):
        image = tf.io.decode_image(
            tf.io.read_file(path), channels=3, expand_animations=False
        )
        return tf.image.resize(image, (image_size, image_size))

    dataset = tf.data.Dataset.from_tensor_slices([str(path) for path in paths])
    return dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size)


def top_k(
    paths: list[Path], probabilities: np.ndarray, k: int
) -> list[dict[str, str | int | float]]:
    """The `k` most probable ImageNet classes of each image, as CSV rows."""
    rows = []
    for path, scores in zip(paths, probabilities):
        for rank, index in enumerate(np.argsort(scores)[::-1][:k], start=1):
            wordnet_id, name = IMAGENET_CLASSES[index]
            rows.append(
                {
                    "image": str(path),
                    "rank": rank,
                    "class_index": int(index),
                    "wordnet_id": wordnet_id,
                    "class_name": name,
                    "probability": round(float(scores[index]), 6),
                }
            )
    return rows


def write_predictions(path: str | os.PathLike, rows: list[dict]) -> Path:
    """Writes the prediction rows to a CSV file (`predictions.csv`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = [
        "image",
        "rank",
        "class_index",
        "wordnet_id",
        "class_name",
        "probability",
    ]
    with open(path, "w", newline="") as file:
        writer = csv.DictWriter(file, columns)
        writer.writeheader()
        writer.writerows(rows)
    return path
