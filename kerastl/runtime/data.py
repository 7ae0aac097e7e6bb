"""Image folders: a preflight scan, then a tf.data input pipeline.

A data folder holds one sub-folder per class, as `image_dataset_from_directory`
expects. The scan catches what would otherwise crash training mid-epoch (an
unreadable file, an empty class, fewer than two classes, validation classes that
differ). The pipeline caches decoded images (as uint8) before augmenting them,
so the augmentation is drawn afresh each epoch (from the seed and the epoch:
see `epochs`), and fills that cache before it returns: in memory when it fits, else on disk, so that the size of the data
set does not decide whether training fits in memory.
"""

import contextlib
import hashlib
import io
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
from .images import IMAGE_EXTENSIONS, check_images, list_images
from .tta import flips_left_to_right

IMBALANCE_RATIO = 5  # largest class over smallest, above which the scan warns
CLASS_WEIGHTS = ("none", "auto")  # auto: `class_weights` of the training images


@dataclass(frozen=True)
class FolderScan:
    """What the preflight scan found in a data folder.

    Attributes:
        class_names: Sub-folder names, in the order Keras numbers them.
        counts: Number of images in each class.
    """

    class_names: list[str]
    counts: dict[str, int]

    @property
    def total(self) -> int:
        """Number of images in all classes."""
        return sum(self.counts.values())


@dataclass(frozen=True)
class ImageFiles:
    """The image files of a dataset, as the report and the feature cache name them.

    Attributes:
        paths: The files, in the order Keras lists them.
        class_counts: Images per class.
        fingerprint: SHA-256 of the sorted names (relative to the folder) and
            sizes of the files: another file, name or size changes it; new
            bytes of the same size in a file of the same name do not.
    """

    paths: list[str]
    class_counts: dict[str, int]
    fingerprint: str


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


def scan_image_folder(
    data_dir: str | os.PathLike, what: str = "data folder", *, notes: bool = True
) -> FolderScan:
    """Checks a folder of class sub-folders before training.

    Args:
        data_dir: The folder.
        what: What it is, for the messages ("data folder", "validation folder").
        notes: Whether to print `nested_images_line` (once per folder: a
            folder scanned again says nothing).

    Raises:
        DataError: If the folder is missing, has fewer than two classes, has an
            empty class, or holds a file that is not an image; the message
            names the folder or file.
    """
    root = os.fspath(data_dir)
    if not files.is_dir(root):
        raise DataError(f"{what} {root} does not exist")
    class_names = [
        name
        for name in files.list_dir(root)
        if not name.startswith(".") and files.is_dir(files.join(root, name))
    ]
    if len(class_names) < 2:
        raise DataError(
            f"{root} has {len(class_names)} class folder(s); a classifier needs at least two"
        )
    counts, images = {}, []
    for name in class_names:
        in_class = list_images(files.join(root, name))
        if not in_class:
            raise DataError(
                f"class folder {files.join(root, name)} has no images ({', '.join(IMAGE_EXTENSIONS)})"
            )
        counts[name] = len(in_class)
        images += in_class
    nested = nested_images_line(root, images) if notes else None
    if nested:
        print(nested)
    check_images(images)  # every class at once: one run names every bad file
    return FolderScan(class_names, counts)


def nested_images_line(root: str, images: list[str]) -> str | None:
    """One line when images lie in sub-folders of class folders, which Keras
    counts in the class: how many, in which folders (the first 3, then a count)."""
    folders: dict[str, int] = {}
    for path in images:
        parts = files.relative(path, root).split("/")
        if len(parts) > 2:
            folder = "/".join(parts[:-1])
            folders[folder] = folders.get(folder, 0) + 1
    if not folders:
        return None
    named = ", ".join(f"{name} ({count})" for name, count in list(folders.items())[:3])
    more = f" and {len(folders) - 3} more" if len(folders) > 3 else ""
    return (
        f"Note: {sum(folders.values())} images in {root} lie in sub-folders of a "
        f"class folder and count in that class: {named}{more}."
    )


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
) -> ImageFolders:
    """Scans the folders, then builds the training and validation pipelines.

    Without `val_dir`, Keras splits `data_dir` once with `seed` (`subset="both"`),
    so no image is in both sets. Images are raw RGB pixels in [0, 255] (float32);
    the first augmented batch is checked (`check_pixel_range`). Labels are
    one-hot (float32), as `keras.losses.CategoricalCrossentropy` and the mixing
    layers take them.

    Decoded images are cached as uint8, before the augmentation, and the cache is
    filled here, once. Prints one line: the cache chosen, and why.

    Args:
        data_dir: Training folder, one sub-folder per class.
        image_size: Images are resized to `image_size` x `image_size`.
        batch_size: Images per batch.
        val_dir: Optional validation folder with the same class sub-folders.
        validation_split: Share of `data_dir` held out when there is no `val_dir`.
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

    Returns:
        The datasets, their classes and files, and how they train.

    Raises:
        DataError: If the folders or settings cannot be used; the message names
            the folder, file or setting.
    """
    if cache not in CACHE_CHOICES:
        raise DataError(
            f"cache must be one of {', '.join(CACHE_CHOICES)}, not {cache!r}"
        )
    if class_weight not in CLASS_WEIGHTS:
        raise DataError(
            f"class weight must be one of {', '.join(CLASS_WEIGHTS)}, not {class_weight!r}"
        )
    scan = scan_image_folder(data_dir)
    warning = imbalance_warning(scan.counts, weighted=class_weight == "auto")
    if warning:
        print(warning)
    options = {
        "image_size": (image_size, image_size),
        "batch_size": None,
        "seed": seed,
        "verbose": False,
    }
    if val_dir is not None:
        check_classes(
            scan_image_folder(val_dir, "validation folder"),
            scan.class_names,
            f"validation folder {val_dir}",
        )
        train = keras.utils.image_dataset_from_directory(data_dir, **options)
        val = keras.utils.image_dataset_from_directory(
            val_dir, class_names=scan.class_names, shuffle=False, **options
        )
    else:
        if not 0 < validation_split < 1:
            raise DataError(
                f"validation split must be between 0 and 1, not {validation_split}"
            )
        # Keras prints the split sizes whatever `verbose` says; the cache line is ours.
        with contextlib.redirect_stdout(io.StringIO()):
            train, val = keras.utils.image_dataset_from_directory(
                data_dir, validation_split=validation_split, subset="both", **options
            )
    class_names = list(train.class_names)
    subsets = {"training": train, "validation": val}
    for name, dataset in subsets.items():
        if int(dataset.cardinality()) == 0:
            raise DataError(
                f"the {name} set is empty; add images or change the validation split"
            )
    # Check one augmented batch, read around the cache so that it stays whole.
    sample = train.take(batch_size).batch(batch_size)
    if augmentation is not None:
        sample = sample.map(
            lambda images, labels: (
                augment_batch(augmentation, images, tf.constant([seed, 0], tf.int64)),
                labels,
            )
        )
    check_pixel_range(sample)
    images = sum(len(dataset.file_paths) for dataset in subsets.values())
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
        for name, dataset in subsets.items():
            prefixes[name], state = disk_cache_prefix(
                folder, name, dataset.file_paths, class_names, image_size
            )
            states.add(state)
        where = f" {where}" + (
            ", reusing an earlier run's" if states == {"reused"} else ""
        )
        if "replaced" in states:
            where += ", replacing a cache of other images"
    print(f"Cache: {kind}{where} ({reason})")
    train_batches, train_in_order = _pipeline(
        train,
        batch_size,
        kind,
        prefixes["training"],
        augmentation=augmentation,
        mixing=mixing,
        shuffle_seed=seed,
        num_classes=len(class_names),
    )
    val_batches, _ = _pipeline(
        val, batch_size, kind, prefixes["validation"], num_classes=len(class_names)
    )
    return ImageFolders(
        train=train_batches,
        validation=val_batches,
        class_names=class_names,
        train_files=image_files(subsets["training"].file_paths, data_dir),
        validation_files=image_files(
            subsets["validation"].file_paths, val_dir or data_dir
        ),
        train_in_order=train_in_order,
        augmented=augmentation is not None,
        flipped=flips_left_to_right(augmentation),
        mixed=bool(mixing),
    )


def check_classes(scan: FolderScan, class_names: list[str], what: str) -> None:
    """Raises DataError unless the folder of `scan` has the classes `class_names`.

    The message names the classes missing from the folder and those it adds.
    """
    if scan.class_names == class_names:
        return
    missing = [name for name in class_names if name not in scan.class_names]
    extra = [name for name in scan.class_names if name not in class_names]
    raise DataError(
        f"the {what} has other classes than the training data: "
        f"missing {', '.join(missing) or 'none'}; extra {', '.join(extra) or 'none'}"
    )


def check_test_folder(
    test_dir: str | os.PathLike, class_names: list[str], *, notes: bool = True
) -> None:
    """Checks a test folder (its images and classes) before anything trains."""
    check_classes(
        scan_image_folder(test_dir, "test folder", notes=notes),
        class_names,
        f"test folder {test_dir}",
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
    check_test_folder(test_dir, class_names, notes=False)  # said before training
    with contextlib.redirect_stdout(io.StringIO()):
        dataset = keras.utils.image_dataset_from_directory(
            test_dir,
            class_names=class_names,
            image_size=(image_size, image_size),
            batch_size=batch_size,
            shuffle=False,
            verbose=False,
        )
    to_model = partial(_to_model_input, num_classes=len(class_names))
    return ImageSet(dataset.map(to_model), image_files(dataset.file_paths, test_dir))


def image_files(file_paths: list[str], root: str | os.PathLike) -> ImageFiles:
    """The files under `root` that Keras listed for a dataset (its `file_paths`),
    their images per class and their fingerprint (names and sizes)."""
    counts: dict[str, int] = {}
    listed = []
    sizes = files.sizes_and_times(list(file_paths))
    for path, (size, _) in zip(file_paths, sizes):
        relative = files.relative(path, root)
        class_name = relative.split("/")[0]
        counts[class_name] = counts.get(class_name, 0) + 1
        listed.append((relative, size))
    return ImageFiles(
        paths=list(file_paths),
        class_counts=dict(sorted(counts.items())),
        fingerprint=hashlib.sha256(json.dumps(sorted(listed)).encode()).hexdigest(),
    )


# Images shuffled at once, at most: the order of a larger set is only approximate.
SHUFFLE_BUFFER = 2048


def _pipeline(
    dataset: tf.data.Dataset,
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
    with one-hot labels.

    Returns:
        The batches (shuffled by epoch with `shuffle_seed`), and the same
        images in file order, neither shuffled nor augmented.
    """
    to_model = partial(_to_model_input, num_classes=num_classes)
    size = int(dataset.cardinality())
    file_paths = dataset.file_paths
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
    """float32 pixels and one-hot labels (already so after mixing)."""
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
                tf.io.decode_image(
                    tf.io.read_file(path), channels=3, expand_animations=False
                )
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
    then mixed with its labels (one-hot then)."""
    images = tf.cast(images, tf.float32)
    if augmentation is not None:
        images = augment_batch(augmentation, images, key)
    if mixing:
        images, labels = mix_batch(mixing, images, tf.one_hot(labels, num_classes), key)
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
