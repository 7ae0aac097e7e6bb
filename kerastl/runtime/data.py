"""The images of a run: checked, split, then tf.data pipelines (`load_image_folders`).

The images come from class folders (`folders`) or label tables (`tables`),
checked and split the same way before anything loads (`sources`). Each set's
pipeline (`input_pipeline`) caches decoded images (as uint8) before augmenting
them, so the augmentation is drawn afresh each epoch (from the seed and the
epoch: see `epochs`), and fills that cache before it returns: in memory when it
fits, else on disk, so that the size of the data set does not decide whether
training fits in memory.
"""

import os
from collections.abc import Sequence
from dataclasses import dataclass

import keras
import tensorflow as tf

from .cache import CACHE_CHOICES
from .class_balance import CLASS_WEIGHTS, imbalance_warning
from .data_checks import check_pixel_range
from .epochs import augment_batch
from .errors import DataError
from .image_lists import LabelledImages
from .image_sets import (
    ImageFiles,
    image_dataset,
    image_files,
)
from .input_pipeline import cache_for_subsets, pipeline
from .sources import data_sources
from .tta import flips_left_to_right


@dataclass(frozen=True)
class ImageFolders:
    """The training and validation images (`load_image_folders`).

    Attributes:
        train: Training batches of `(images, one-hot labels)`, shuffled (and
            augmented, mixed) anew for the epoch `epochs.training_epoch()`
            holds.
        validation: Validation batches, in file order.
        class_names: The classes, in the order of the labels.
        train_files: The training images' files.
        validation_files: The validation images' files.
        train_in_order: The training images in file order, neither shuffled
            nor augmented (the feature cache runs the base over them once).
        augmented: Whether the training images are augmented each epoch.
        flipped: Whether that augmentation flips them left to right at random
            (`--tta auto` then averages with mirror images).
        mixed: Whether MixUp or CutMix mixes the training batches.
        multi_label: Whether each image has a set of labels (multi-hot rows,
            from a table's `labels` column) rather than one class.
        test_images: A table's test images, read at the end
            (`load_test_set`), or None.
    """

    train: tf.data.Dataset
    validation: tf.data.Dataset
    class_names: list[str]
    train_files: ImageFiles
    validation_files: ImageFiles
    train_in_order: tf.data.Dataset
    augmented: bool = False
    flipped: bool = False
    mixed: bool = False
    multi_label: bool = False
    test_images: LabelledImages | None = None


def load_image_folders(
    data_dir: str | os.PathLike,
    *,
    image_size: int,
    batch_size: int,
    val_dir: str | os.PathLike | None = None,
    validation_split: float = 0.2,
    seed: int = 1337,
    augmentation: keras.layers.Layer | None = None,
    mixing: Sequence[keras.layers.Layer] = (),
    cache: str = "auto",
    cache_dir: str | os.PathLike | None = None,
    memory_budget: int | None = None,
    class_weight: str = "none",
    labels: str | None = None,
    val_labels: str | None = None,
    test_labels: str | None = None,
    label_delimiter: str | None = None,
) -> ImageFolders:
    """Scans the folders or reads the label tables, then builds the training
    and validation pipelines.

    Without `val_dir`, `val_labels` or a table's `split` column, the images
    are split once with `seed`, stratified by class (`stratified_split`), so
    no image is in both sets. Images are raw RGB pixels in [0, 255] (float32),
    upright (`upright.load_image`); the first augmented batch is checked
    (`check_pixel_range`). Labels are one-hot (float32), as
    `keras.losses.CategoricalCrossentropy` and the mixing layers take them;
    multi-hot (float32) from a table's `labels` column.

    Decoded images are cached as uint8, before the augmentation, and the cache is
    filled here, once. Prints one line: the cache chosen, and why.

    Args:
        data_dir: Training folder, one sub-folder per class; with `labels`,
            the folder the table's relative image paths start from.
        image_size: Images are resized to `image_size` x `image_size`.
        batch_size: Images per batch.
        val_dir: Optional validation folder with the same class sub-folders.
        validation_split: Share of the images held out when no set is given.
        seed: Seed of the split and of the shuffling.
        augmentation: Optional layer applied to training batches, each epoch.
        mixing: Layers that mix training batches and their labels after the
            augmentation (`keras.layers.MixUp`, `CutMix`): one per batch, in
            turn (`mix_batch`).
        cache: "auto" (memory if the decoded images fit `memory_budget`, else
            disk in `cache_dir`, else none), "memory", "disk" or "none".
        cache_dir: Folder of the disk cache; the script's own (`disk_cache_prefix`
            deletes outdated cache files in it).
        memory_budget: Bytes the memory cache may take; by default a quarter of
            the available memory (`available_memory`).
        class_weight: `"auto"` if the classes will be weighed
            (`class_weights`): the scan's imbalance line then says so.
        labels: A CSV table of the images and their labels (`tables`), in
            place of class folders.
        val_labels: A table of the validation images.
        test_labels: A table of the test images (`ImageFolders.test_images`).
        label_delimiter: What separates the classes in a `labels` cell
            (default: spaces).

    Returns:
        The datasets, their classes and files, and how they train.

    Raises:
        DataError: If the folders, tables or settings cannot be used; the
            message names the folder, file, row or setting.
    """
    if cache not in CACHE_CHOICES:
        raise DataError(
            f"cache must be one of {', '.join(CACHE_CHOICES)}, not {cache!r}"
        )
    if class_weight not in CLASS_WEIGHTS:
        raise DataError(
            f"class weight must be one of {', '.join(CLASS_WEIGHTS)}, not {class_weight!r}"
        )
    sources = data_sources(
        data_dir,
        val_dir=val_dir,
        labels=labels,
        val_labels=val_labels,
        test_labels=test_labels,
        label_delimiter=label_delimiter,
        validation_split=validation_split,
        seed=seed,
    )
    class_names = sources.class_names
    subsets = {"training": sources.train, "validation": sources.validation}
    listed = {
        name: image_files(images, class_names) for name, images in subsets.items()
    }
    counts = listed["training"].class_counts
    if sources.split:  # the whole folder's counts, as before the split
        counts = {
            n: c + listed["validation"].class_counts[n] for n, c in counts.items()
        }
    warning = imbalance_warning(counts, weighted=class_weight == "auto")
    if warning:
        print(warning)
    datasets = {
        name: image_dataset(images, image_size) for name, images in subsets.items()
    }
    kind, prefixes = cache_for_subsets(
        subsets, cache, cache_dir, memory_budget, class_names, image_size
    )
    train_batches, train_in_order = pipeline(
        datasets["training"],
        sources.train.paths,
        batch_size,
        kind,
        prefixes["training"],
        augmentation=augmentation,
        mixing=mixing,
        shuffle_seed=seed,
        num_classes=len(class_names),
    )
    val_batches, _ = pipeline(
        datasets["validation"],
        sources.validation.paths,
        batch_size,
        kind,
        prefixes["validation"],
        num_classes=len(class_names),
    )
    # Check one augmented batch, once the cache is whole (a peek then is harmless).
    sample = train_in_order.take(1)
    if augmentation is not None:
        sample = sample.map(
            lambda images, labels: (
                augment_batch(augmentation, images, tf.constant([seed, 0], tf.int64)),
                labels,
            )
        )
    check_pixel_range(sample)
    return ImageFolders(
        train=train_batches,
        validation=val_batches,
        class_names=class_names,
        train_files=listed["training"],
        validation_files=listed["validation"],
        train_in_order=train_in_order,
        augmented=augmentation is not None,
        flipped=flips_left_to_right(augmentation),
        mixed=bool(mixing),
        multi_label=sources.train.multi_label,
        test_images=sources.test,
    )
