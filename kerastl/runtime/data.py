"""Image folders: a preflight scan, then a tf.data input pipeline.

A data folder holds one sub-folder per class, as `image_dataset_from_directory`
expects. The scan catches what would otherwise crash training mid-epoch (an
unreadable file, an empty class, fewer than two classes, validation classes that
differ). The pipeline caches decoded images before augmenting them, so the
augmentation is drawn afresh each epoch, and fills that cache before it returns.
"""

import json
import os
from dataclasses import dataclass
from pathlib import Path

import keras
import tensorflow as tf

from kerastl.runtime.errors import DataError

IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM")


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


def is_image_file(path: Path) -> bool:
    """Whether `path` starts like a BMP, GIF, JPEG or PNG file."""
    with open(path, "rb") as file:
        head = file.read(8)
    return head.startswith(_SIGNATURES)


def list_images(folder: Path) -> list[Path]:
    """Image files below `folder` (any depth), by extension, sorted."""
    return sorted(
        path
        for path in Path(folder).rglob("*")
        if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file()
    )


def check_images(paths: list[Path]) -> None:
    """Raises DataError naming the first of `paths` that is not a readable image."""
    for path in paths:
        if not is_image_file(path):
            raise DataError(f"{path} is not a readable image; remove or replace it")


def scan_image_folder(data_dir: str | os.PathLike) -> FolderScan:
    """Checks a folder of class sub-folders before training.

    Raises:
        DataError: If the folder is missing, has fewer than two classes, has an
            empty class, or holds a file that is not an image; the message
            names the folder or file.
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist")
    class_names = sorted(
        entry.name
        for entry in root.iterdir()
        if entry.is_dir() and not entry.name.startswith(".")
    )
    if len(class_names) < 2:
        raise DataError(
            f"{root} has {len(class_names)} class folder(s); a classifier needs at least two"
        )
    counts = {}
    for name in class_names:
        images = list_images(root / name)
        if not images:
            raise DataError(
                f"class folder {root / name} has no images ({', '.join(IMAGE_EXTENSIONS)})"
            )
        check_images(images)
        counts[name] = len(images)
    return FolderScan(class_names, counts)


def load_image_folders(
    data_dir: str | os.PathLike,
    *,
    image_size: int,
    batch_size: int,
    val_dir: str | os.PathLike | None = None,
    validation_split: float = 0.2,
    seed: int = 1337,
    augmentation: keras.layers.Layer | None = None,
    cache: bool | str | os.PathLike = True,
) -> tuple[tf.data.Dataset, tf.data.Dataset, list[str]]:
    """Scans the folders, then builds the training and validation pipelines.

    Without `val_dir`, Keras splits `data_dir` once with `seed` (`subset="both"`),
    so no image is in both sets. Images are raw RGB pixels in [0, 255]; the
    first augmented batch is checked (`check_pixel_range`).

    Args:
        data_dir: Training folder, one sub-folder per class.
        image_size: Images are resized to `image_size` x `image_size`.
        batch_size: Images per batch.
        val_dir: Optional validation folder with the same class sub-folders.
        validation_split: Share of `data_dir` held out when there is no `val_dir`.
        seed: Seed of the split and of the shuffling.
        augmentation: Optional layer applied to training batches, each epoch.
        cache: True to cache decoded images in memory, a path prefix to cache
            them on disk (in `PREFIX-training*` and `PREFIX-validation*`),
            False not to cache. The cache is filled here, once.

    Returns:
        `(train_dataset, validation_dataset, class_names)`.
    """
    scan = scan_image_folder(data_dir)
    options = {
        "image_size": (image_size, image_size),
        "batch_size": None,
        "seed": seed,
        "verbose": False,
    }
    if val_dir is not None:
        val_scan = scan_image_folder(val_dir)
        if val_scan.class_names != scan.class_names:
            missing = sorted(set(scan.class_names) - set(val_scan.class_names))
            extra = sorted(set(val_scan.class_names) - set(scan.class_names))
            raise DataError(
                f"validation classes differ from training classes: missing {missing}, extra {extra}"
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
        train, val = keras.utils.image_dataset_from_directory(
            data_dir, validation_split=validation_split, subset="both", **options
        )
    class_names = list(train.class_names)
    for name, dataset in (("training", train), ("validation", val)):
        if int(dataset.cardinality()) == 0:
            raise DataError(
                f"the {name} set is empty; add images or change the validation split"
            )
    # Check one augmented batch, read around the cache so that it stays whole.
    check_pixel_range(_augment(train.take(batch_size).batch(batch_size), augmentation))
    train = _pipeline(
        train,
        batch_size,
        _cache_for(cache, "training"),
        augmentation=augmentation,
        shuffle_seed=seed,
    )
    val = _pipeline(val, batch_size, _cache_for(cache, "validation"))
    return train, val, class_names


def _cache_for(cache: bool | str | os.PathLike, subset: str) -> bool | str:
    """Each subset caches to its own files: a shared prefix would mix them."""
    return cache if isinstance(cache, bool) else f"{os.fspath(cache)}-{subset}"


def _pipeline(
    dataset: tf.data.Dataset,
    batch_size: int,
    cache: bool | str,
    *,
    augmentation: keras.layers.Layer | None = None,
    shuffle_seed: int | None = None,
) -> tf.data.Dataset:
    size = int(dataset.cardinality())
    if cache:
        dataset = dataset.cache() if cache is True else dataset.cache(cache)
        _fill_cache(dataset, size, None if cache is True else cache)
    if shuffle_seed is not None:
        dataset = dataset.shuffle(
            min(size, 2048), seed=shuffle_seed, reshuffle_each_iteration=True
        )
    dataset = _augment(dataset.batch(batch_size), augmentation)
    return dataset.prefetch(tf.data.AUTOTUNE)


def _fill_cache(dataset: tf.data.Dataset, size: int, prefix: str | None) -> None:
    """Reads a freshly cached dataset once, to the end, so that its cache is whole.

    An iterator dropped part-way through a cache that is still filling (a peek
    with `next(iter(dataset))`) can leave the cache finished but short of a few
    images (TensorFlow 2.21 loses one in about a third of such peeks). A full
    cache is only read, never written, so a later peek is harmless.
    """
    filled = int(dataset.reduce(tf.constant(0, tf.int64), lambda count, _: count + 1))
    if size < 0 or filled == size:
        return
    if prefix is None:
        raise DataError(f"the in-memory cache holds {filled} of {size} images")
    raise DataError(
        f"the cache {prefix} holds {filled} images, not {size}; "
        "delete its files to rebuild it"
    )


def _augment(
    dataset: tf.data.Dataset, augmentation: keras.layers.Layer | None
) -> tf.data.Dataset:
    if augmentation is None:
        return dataset
    return dataset.map(
        lambda images, labels: (augmentation(images, training=True), labels),
        num_parallel_calls=tf.data.AUTOTUNE,
    )


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
            f"the script is set up for {expected} classes but the data has "
            f"{len(class_names)}: {', '.join(class_names)}"
        )
    return len(class_names)


def save_labels(output_dir: str | os.PathLike, class_names: list[str]) -> Path:
    """Writes `labels.json`: the class names, in the order of the model's outputs."""
    path = Path(output_dir) / "labels.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(class_names, indent=2) + "\n")
    return path
