"""A set of images as files (names, counts, fingerprint) and as decoded batches.

Test sets, a folder's or a table's, load here: in order and uncached.
"""

import os
from dataclasses import dataclass
from functools import partial

import tensorflow as tf

from .folders import check_test_folder
from .image_lists import LabelledImages, images_fingerprint
from .input_pipeline import to_model_input
from .splits import class_counts
from .upright import load_image


@dataclass(frozen=True)
class ImageFiles:
    """The image files of a dataset, as the report and the feature cache name them.

    Attributes:
        paths: The files, in the order of the set.
        class_counts: Images per class (with several labels per image: the
            images that have the class, its positives).
        fingerprint: SHA-256 of the sorted names (relative to the folder) and
            sizes of the files, and for a table their labels
            (`images_fingerprint`).
        table: The table of labels the set comes from, or None (folders).
        table_sha256: The SHA-256 of that table's bytes.
    """

    paths: list[str]
    class_counts: dict[str, int]
    fingerprint: str
    table: str | None = None
    table_sha256: str | None = None


@dataclass(frozen=True)
class ImageSet:
    """A folder's images, batched in file order, and the files they come from."""

    batches: tf.data.Dataset
    files: ImageFiles


def image_dataset(images: LabelledImages, image_size: int) -> tf.data.Dataset:
    """`(pixels, label)` pairs of `images`, in their order: raw RGB pixels in
    [0, 255] (float32), upright, resized; a class index or a multi-hot row."""
    dataset = tf.data.Dataset.from_tensor_slices((images.paths, images.labels))
    return dataset.map(
        lambda path, label: (load_image(path, image_size), label),
        num_parallel_calls=tf.data.AUTOTUNE,
    )


def load_test_folder(
    test_dir: str | os.PathLike,
    *,
    image_size: int,
    batch_size: int,
    class_names: list[str],
) -> ImageSet:
    """A test folder's images, in order and uncached: for one evaluation at the end.

    Raises:
        DataError: If the folder cannot be used or its classes differ.
    """
    scan = check_test_folder(test_dir, class_names, notes=False)  # said before
    images = scan.images(os.fspath(test_dir)).in_path_order()
    return load_test_set(
        images, image_size=image_size, batch_size=batch_size, class_names=class_names
    )


def load_test_set(
    images: LabelledImages, *, image_size: int, batch_size: int, class_names: list[str]
) -> ImageSet:
    """Test images (a folder's or a table's), in order and uncached."""
    to_model = partial(to_model_input, num_classes=len(class_names))
    batches = image_dataset(images, image_size).batch(batch_size).map(to_model)
    return ImageSet(batches, image_files(images, class_names))


def image_files(images: LabelledImages, class_names: list[str]) -> ImageFiles:
    """The files of a set, its images per class (with several labels per
    image: the images that have the class) and its fingerprint
    (`images_fingerprint`)."""
    return ImageFiles(
        paths=list(images.paths),
        class_counts=class_counts(images.labels, class_names),
        fingerprint=images_fingerprint(images, class_names),
        table=images.table,
        table_sha256=images.table_sha256,
    )
