"""Image folders: a preflight scan, then a tf.data input pipeline.

A data folder holds one sub-folder per class, as `image_dataset_from_directory`
expects. The scan catches what would otherwise crash training mid-epoch (an
unreadable file, an empty class, fewer than two classes, validation classes that
differ). The pipeline caches decoded images before augmenting them, so the
augmentation is drawn afresh each epoch, and fills that cache before it returns.
"""

import json
import mmap
import os
import re
import struct
import zlib
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


def image_problem(path: Path) -> str | None:
    """Why TensorFlow's decoder would reject the image file `path`, or None.

    Walks the file's structure without decoding pixels: PNG chunks to IEND, with
    the checksums of the chunks libpng checks; JPEG segments to the end marker
    (only the headers and the tail are read when it ends with one); GIF blocks;
    the BMP size TensorFlow expects. This catches files cut short by an
    interrupted download or copy, which TensorFlow rejects mid-training.
    """
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        head = file.read(8)
        file.seek(0)
        if not head.startswith(_SIGNATURES[1]) or size < 1 << 20:
            return _structure_problem(head, file.read())
        with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            return _jpeg_problem(mapped)  # reads the pages it touches


def _structure_problem(head: bytes, data: bytes) -> str | None:
    if not data:
        return "the file is empty"
    if head.startswith(_SIGNATURES[0]):
        return _png_problem(data)
    if head.startswith(_SIGNATURES[1]):
        return _jpeg_problem(data)
    if head.startswith(_SIGNATURES[2:4]):
        return _gif_problem(data)
    if head.startswith(_SIGNATURES[4]):
        return _bmp_problem(data)
    return "it is not a BMP, GIF, JPEG or PNG file"


_CUT_SHORT = "the file is cut short"
# A JPEG marker after entropy-coded data: 0xFF, then not a stuffed 0x00, a
# restart marker (0xD0-0xD7) or a fill byte.
_JPEG_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def _png_problem(data: bytes) -> str | None:
    position = 8
    while position + 12 <= len(data):
        (length,) = struct.unpack_from(">I", data, position)
        kind = data[position + 4 : position + 8]
        end = position + 12 + length
        if end > len(data):
            return f"{_CUT_SHORT} (in a PNG {kind.decode('latin-1')} chunk)"
        if kind[:1].isupper():  # a critical chunk: libpng refuses a bad checksum
            (checksum,) = struct.unpack_from(">I", data, end - 4)
            if zlib.crc32(data[position + 4 : end - 4]) != checksum:
                return f"its PNG {kind.decode('latin-1')} chunk is damaged"
        if kind == b"IEND":
            return None
        position = end
    return f"{_CUT_SHORT} (the PNG has no IEND chunk)"


def _jpeg_problem(data: bytes | mmap.mmap) -> str | None:
    position = 2
    while True:
        if position + 2 > len(data):
            return f"{_CUT_SHORT} (the JPEG has no end marker)"
        if data[position] != 0xFF:  # stray bytes, which libjpeg skips
            found = _JPEG_MARKER.search(data, position)
            if found is None:
                return f"{_CUT_SHORT} (the JPEG has no end marker)"
            position = found.start()
        marker = data[position + 1]
        if marker == 0xD9:
            return None
        if marker == 0xFF or 0xD0 <= marker <= 0xD8 or marker == 0x01:
            position += 1 if marker == 0xFF else 2
            continue
        if position + 4 > len(data):
            return f"{_CUT_SHORT} (in a JPEG segment)"
        (length,) = struct.unpack_from(">H", data, position + 2)
        position += 2 + length
        if position > len(data):
            return f"{_CUT_SHORT} (in a JPEG segment)"
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            if data[-2:] == b"\xff\xd9":
                return None  # no marker inside the data looks like the end marker
            found = _JPEG_MARKER.search(data, position)
            if found is None:
                return f"{_CUT_SHORT} (the JPEG has no end marker)"
            position = found.start()


def _gif_problem(data: bytes) -> str | None:
    position = 13
    if len(data) < position:
        return _CUT_SHORT
    if data[10] & 0x80:  # global color table
        position += 3 << ((data[10] & 7) + 1)
    images = 0
    while position < len(data):
        block = data[position]
        if block == 0x3B:  # trailer
            return None
        if block == 0x21:  # extension: label, then sub-blocks
            position += 2
        elif block == 0x2C:  # image: descriptor, color table, LZW code size
            if position + 10 > len(data):
                return _CUT_SHORT
            flags = data[position + 9]
            position += 10 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0) + 1
            images += 1
        else:
            return "its GIF data is damaged"
        while position < len(data) and data[position]:  # sub-blocks, to a 0 size
            position += 1 + data[position]
        if position >= len(data):
            return _CUT_SHORT
        position += 1
    return None if images else _CUT_SHORT  # giflib reads a GIF without a trailer


def _bmp_problem(data: bytes) -> str | None:
    if len(data) < 30:
        return _CUT_SHORT
    offset, _, width, height, _, bits = struct.unpack_from("<IIiiHH", data, 10)
    if bits not in (8, 24, 32):
        return f"it is a {bits}-bit BMP; TensorFlow reads 8, 24 and 32 bits"
    expected = offset + (bits * abs(width) + 31) // 32 * 4 * abs(height)
    if len(data) != expected:
        return f"its BMP size is {len(data)} bytes, not the {expected} its header gives"
    return None


def list_images(folder: Path) -> list[Path]:
    """Image files below `folder` (any depth), by extension, sorted."""
    return sorted(
        path
        for path in Path(folder).rglob("*")
        if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file()
    )


def check_images(paths: list[Path]) -> None:
    """Raises DataError naming the first of `paths` that TensorFlow could not decode.

    See `image_problem`: it reads each file's structure, not its pixels.
    """
    for path in paths:
        problem = image_problem(path)
        if problem is not None:
            raise DataError(
                f"{path} is not a readable image ({problem}); remove or replace it"
            )


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
