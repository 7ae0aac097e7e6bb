"""The images of a run: checked, split, then a tf.data input pipeline.

The images come from class folders (`folders`) or label tables (`tables`),
checked and split the same way before anything loads (`sources`). The pipeline caches decoded images (as uint8) before augmenting them,
so the augmentation is drawn afresh each epoch (from the seed and the epoch:
see `epochs`), and fills that cache before it returns: in memory when it fits, else on disk, so that the size of the data
set does not decide whether training fits in memory.
"""

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import keras
import tensorflow as tf

from . import files
from .cache import (
    CACHE_CHOICES,
    available_memory,
    cache_folder,
    choose_cache,
    disk_cache_prefix,
)
from .common.labels import LABELS_FILE, labels_data
from .epochs import augment_batch, epoch_batches, mix_batch
from .errors import DataError
from .folders import check_test_folder
from .image_lists import LabelledImages, images_fingerprint
from .sources import data_sources
from .splits import class_counts
from .tta import flips_left_to_right
from .upright import decode_upright, load_image

IMBALANCE_RATIO = 5  # largest class over smallest, above which the scan warns
CLASS_WEIGHTS = ("none", "auto")  # auto: `class_weights` of the training images


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
    kind, prefixes = _choose_cache(
        subsets, cache, cache_dir, memory_budget, class_names, image_size
    )
    train_batches, train_in_order = _pipeline(
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
    val_batches, _ = _pipeline(
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


def _choose_cache(
    subsets: dict[str, LabelledImages],
    cache: str,
    cache_dir: str | os.PathLike | None,
    memory_budget: int | None,
    class_names: list[str],
    image_size: int,
) -> tuple[str, dict[str, str | None]]:
    """The cache's kind and each subset's disk cache prefix; prints one line."""
    images = sum(len(subset.paths) for subset in subsets.values())
    size = images * image_size * image_size * 3
    kind, reason = choose_cache(
        cache,
        size,
        cache_dir=cache_dir,
        memory_budget=memory_budget,
        available=available_memory(),
    )
    prefixes: dict[str, str | None] = dict.fromkeys(subsets)
    where = ""
    if kind == "disk" and cache_dir is not None:
        folder, where = cache_folder(cache_dir, size)
        states = set()
        for name, subset in subsets.items():
            prefixes[name], state = disk_cache_prefix(
                folder,
                name,
                subset.paths,
                class_names,
                image_size,
                labels=subset.labels.tolist(),
            )
            states.add(state)
        where = f" {where}" + (
            ", reusing an earlier run's" if states == {"reused"} else ""
        )
        if "replaced" in states:
            where += ", replacing a cache of other images"
    print(f"Cache: {kind}{where} ({reason})")
    return kind, prefixes


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
    to_model = partial(_to_model_input, num_classes=len(class_names))
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


# Images shuffled at once, at most: the order of a larger set is only approximate.
SHUFFLE_BUFFER = 2048


def _pipeline(
    dataset: tf.data.Dataset,
    file_paths: list[str],
    batch_size: int,
    cache: str,
    prefix: str | None,
    *,
    num_classes: int,
    augmentation: keras.layers.Layer | None = None,
    mixing: Sequence[keras.layers.Layer] = (),
    shuffle_seed: int | None = None,
) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    """Caches uint8 images (`cache`: memory, disk at `prefix`, none), then batches.

    Batches leave as float32, so the model still gets raw pixels in [0, 255],
    with one-hot (or multi-hot) labels.

    Returns:
        The batches (shuffled by epoch with `shuffle_seed`), and the same
        images in file order, neither shuffled nor augmented.
    """
    to_model = partial(_to_model_input, num_classes=num_classes)
    size = len(file_paths)
    dataset = dataset.map(_to_uint8, num_parallel_calls=tf.data.AUTOTUNE)
    if cache != "none":
        dataset = dataset.cache(prefix or "")
        _fill_cache(dataset, size, prefix, file_paths)
    ordered = dataset.batch(batch_size).map(to_model).prefetch(tf.data.AUTOTUNE)
    if shuffle_seed is None:
        dataset = dataset.batch(batch_size)
    else:  # each epoch's order and augmentation follow from the seed and the epoch
        dataset = epoch_batches(
            dataset,  # shuffled as uint8: a quarter of the float32 memory
            batch_size=batch_size,
            seed=shuffle_seed,
            buffer_size=min(size, SHUFFLE_BUFFER),
            augment=(
                None
                if augmentation is None and not mixing
                else partial(
                    _augment, augmentation, tuple(mixing), num_classes=num_classes
                )
            ),
        )
    dataset = dataset.map(to_model).prefetch(tf.data.AUTOTUNE)
    # Multi-worker training shards batches, not files: the files are listed in
    # memory, so TensorFlow's default (files first) would only warn and fall back.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA
    )
    return dataset.with_options(options), ordered


def _to_uint8(image: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Resized pixels, rounded to uint8: a quarter of the float32 memory."""
    return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8), label


def _to_model_input(
    images: tf.Tensor, labels: tf.Tensor, *, num_classes: int
) -> tuple[tf.Tensor, tf.Tensor]:
    """float32 pixels and one-hot labels (multi-hot ones, and those already
    mixed, are rank 2 and pass as they are)."""
    if labels.shape.rank == 1:
        labels = tf.one_hot(labels, num_classes)
    return tf.cast(images, tf.float32), labels


def _fill_cache(
    dataset: tf.data.Dataset, size: int, prefix: str | None, file_paths: list[str]
) -> None:
    """Reads a freshly cached dataset once, to the end, so that its cache is whole.

    An image that passed the scan but that TensorFlow cannot decode is named
    here: only a failed fill decodes the `file_paths` one by one to find it.

    An iterator dropped part-way through a cache that is still filling (a peek
    with `next(iter(dataset))`) can leave the cache finished but short of a few
    images (TensorFlow 2.21 loses one in about a third of such peeks). A full
    cache is only read, never written, so a later peek is harmless.
    """
    try:
        filled = int(
            dataset.reduce(tf.constant(0, tf.int64), lambda count, _: count + 1)
        )
    except tf.errors.InvalidArgumentError:
        for path in file_paths:  # which image the scan passed but TensorFlow refused
            try:
                decode_upright(tf.io.read_file(path))
            except tf.errors.InvalidArgumentError:
                raise DataError(
                    f"{path} is not a readable image (TensorFlow cannot decode it); "
                    "remove or replace it"
                ) from None
        raise
    if size < 0 or filled == size:
        return
    if prefix is None:
        raise DataError(f"the in-memory cache holds {filled} of {size} images")
    raise DataError(
        f"the cache {prefix} holds {filled} images, not {size}; "
        "delete its files to rebuild it"
    )


def _augment(
    augmentation: keras.layers.Layer | None,
    mixing: tuple[keras.layers.Layer, ...],
    images: tf.Tensor,
    labels: tf.Tensor,
    key: tf.Tensor,
    *,
    num_classes: int,
) -> tuple[tf.Tensor, tf.Tensor]:
    """One batch of uint8 images, augmented as float32 with the stateless `key`,
    then mixed with its labels (one-hot then, or multi-hot as they are)."""
    images = tf.cast(images, tf.float32)
    if augmentation is not None:
        images = augment_batch(augmentation, images, key)
    if mixing:
        if labels.shape.rank == 1:
            labels = tf.one_hot(labels, num_classes)
        images, labels = mix_batch(mixing, images, labels, key)
    return images, labels


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


def save_labels(
    output_dir: str | os.PathLike,
    class_names: list[str],
    thresholds: list[float] | None = None,
) -> str:
    """Writes `labels.json`: the class names, in the order of the model's
    outputs, and a multi-label run's decision thresholds (`labels_data`)."""
    return files.write_text(
        files.join(output_dir, LABELS_FILE),
        json.dumps(labels_data(class_names, thresholds), indent=2) + "\n",
    )


def class_weights(counts: dict[str, int], class_names: list[str]) -> dict[int, float]:
    """Inverse-frequency weights, as `fit(class_weight=...)` takes them.

    A class's weight is `total / (number of classes * its count)`, so the
    weights average 1 over the images and each class weighs the same in all.

    Raises:
        DataError: If a class has no count or no images.
    """
    missing = [name for name in class_names if counts.get(name, 0) <= 0]
    if missing:
        raise DataError(f"cannot weight classes without images: {', '.join(missing)}")
    total = sum(counts[name] for name in class_names)
    return {
        index: total / (len(class_names) * counts[name])
        for index, name in enumerate(class_names)
    }


def imbalance_warning(counts: dict[str, int], *, weighted: bool = False) -> str | None:
    """One line when the largest class has over `IMBALANCE_RATIO` times the smallest.

    It suggests `--class-weight auto`, or with `weighted` says it is on.
    """
    if len(counts) < 2:
        return None
    largest = max(counts, key=lambda name: counts[name])
    smallest = min(counts, key=lambda name: counts[name])
    if counts[largest] <= IMBALANCE_RATIO * counts[smallest]:
        return None
    ratio = (
        f"{counts[largest] / counts[smallest]:.1f} times"
        if counts[smallest] > 0
        else "infinitely"
    )
    return (
        f"The classes are imbalanced: {largest!r} has {counts[largest]} images, "
        f"{ratio} as many as {smallest!r} ({counts[smallest]}); "
        + (
            "weighing them by --class-weight auto."
            if weighted
            else "consider --class-weight auto."
        )
    )
