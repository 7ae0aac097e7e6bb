"""Predicting the classes of image files: ImageNet's (the as-is mode) or a run's."""

import csv
import functools
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from . import files
from .common.ranking import over_thresholds, ranked
from .errors import DataError
from .images import IMAGE_EXTENSIONS, check_images, list_images
from .upright import load_image

# The columns of `predictions.csv`, one row per image and rank.
PREDICTION_COLUMNS = (
    "image",
    "rank",
    "class_index",
    "wordnet_id",
    "class_name",
    "probability",
)


@functools.cache
def imagenet_classes() -> list[tuple[str, str]]:
    """The 1000 ImageNet (ILSVRC-2012) classes in the order of the Keras
    classifiers' outputs (the sorted WordNet IDs): (WordNet ID, first lemma)
    each, from `imagenet_classes.json`, so that predictions have names
    without downloading Keras's class index."""
    path = Path(__file__).with_name("imagenet_classes.json")
    return [tuple(pair) for pair in json.loads(path.read_text(encoding="utf-8"))]


def image_paths(path: str | os.PathLike) -> list[str]:
    """The image at `path`, or the images below the folder `path`, unchecked.

    Raises:
        DataError: If `path` does not exist or is a folder without images.
    """
    path = os.fspath(path)
    if not files.exists(path):
        raise DataError(f"{path} does not exist")
    paths = list_images(path) if files.is_dir(path) else [path]
    if not paths:
        raise DataError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {path}")
    return paths


def find_images(path: str | os.PathLike) -> list[str]:
    """The image at `path`, or the images below the folder `path`, checked.

    Raises:
        DataError: If there is no image, or a file is not a readable image.
    """
    paths = image_paths(path)
    check_images(paths)
    return paths


def image_batches(
    paths: list[str], image_size: int, batch_size: int
) -> tf.data.Dataset:
    """Batches of raw RGB pixels in [0, 255], upright, resized like the training data."""
    dataset = tf.data.Dataset.from_tensor_slices([str(path) for path in paths])
    dataset = dataset.map(
        lambda path: load_image(path, image_size), num_parallel_calls=tf.data.AUTOTUNE
    )
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def top_k(
    paths: Sequence[str | os.PathLike],
    probabilities: np.ndarray,
    k: int,
    class_names: list[str] | None = None,
) -> list[dict[str, str | int | float]]:
    """The `k` most probable classes of each image, as CSV rows.

    The classes are ImageNet's, or `class_names` (without a WordNet id).
    """
    rows: list[dict[str, str | int | float]] = []
    for path, scores in zip(paths, probabilities):
        for rank, index in enumerate(ranked(scores, k), start=1):
            if class_names is None:
                wordnet_id, name = imagenet_classes()[index]
            else:
                wordnet_id, name = "", class_names[index]
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


def labels_over_thresholds(
    paths: Sequence[str | os.PathLike],
    probabilities: np.ndarray,
    thresholds: Sequence[float],
    class_names: list[str],
    k: int | None = None,
) -> list[dict[str, str | int | float]]:
    """A multi-label model's labels of each image, as CSV rows: every class
    whose probability is at least its threshold, the most probable first (at
    most `k`). An image without any has one row whose rank, class and
    probability are empty, so that every image is listed."""
    rows: list[dict[str, str | int | float]] = []
    for path, scores in zip(paths, probabilities):
        chosen = over_thresholds(scores, thresholds, k)
        rows += [
            {
                "image": str(path),
                "rank": rank,
                "class_index": int(index),
                "wordnet_id": "",
                "class_name": class_names[index],
                "probability": round(float(scores[index]), 6),
            }
            for rank, index in enumerate(chosen, start=1)
        ]
        if not chosen:
            empty: dict[str, str | int | float] = dict.fromkeys(PREDICTION_COLUMNS, "")
            rows.append(empty | {"image": str(path)})
    return rows


def write_predictions(path: str | os.PathLike, rows: list[dict]) -> str:
    """Writes the prediction rows to a CSV file (`predictions.csv`)."""
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, PREDICTION_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return files.write_text(path, text.getvalue())
