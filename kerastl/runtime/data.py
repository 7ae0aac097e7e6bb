"""Image folders: a preflight scan, then a tf.data input pipeline.

A data folder holds one sub-folder per class, as `image_dataset_from_directory`
expects. The scan catches what would otherwise crash training mid-epoch (an
unreadable file, an empty class, fewer than two classes, validation classes that
differ). The pipeline caches decoded images (as uint8) before augmenting them,
so the augmentation is drawn afresh each epoch, and fills that cache before it
returns: in memory when it fits, else on disk, so that the size of the data
set does not decide whether training fits in memory.
"""

import contextlib
import hashlib
import io
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
CACHE_CHOICES = ("auto", "memory", "disk", "none")
# "auto" caches in memory what fits a quarter of the available memory.
MEMORY_SHARE = 4
_CACHE_FORMAT = "uint8-v1"  # in the disk cache's fingerprint: a new format, new files
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
    cache: str = "auto",
    cache_dir: str | os.PathLike | None = None,
    memory_budget: int | None = None,
) -> tuple[tf.data.Dataset, tf.data.Dataset, list[str]]:
    """Scans the folders, then builds the training and validation pipelines.

    Without `val_dir`, Keras splits `data_dir` once with `seed` (`subset="both"`),
    so no image is in both sets. Images are raw RGB pixels in [0, 255] (float32);
    the first augmented batch is checked (`check_pixel_range`).

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
        cache: "auto" (memory if the decoded images fit `memory_budget`, else
            disk in `cache_dir`, else none), "memory", "disk" or "none".
        cache_dir: Folder of the disk cache; the script's own (`_disk_cache`
            deletes outdated cache files in it).
        memory_budget: Bytes the memory cache may take; by default a quarter of
            the available memory (`available_memory`).

    Returns:
        `(train_dataset, validation_dataset, class_names)`.

    Raises:
        DataError: If the folders or settings cannot be used; the message names
            the folder, file or setting.
    """
    if cache not in CACHE_CHOICES:
        raise DataError(
            f"cache must be one of {', '.join(CACHE_CHOICES)}, not {cache!r}"
        )
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
    check_pixel_range(_augment(train.take(batch_size).batch(batch_size), augmentation))
    images = sum(len(dataset.file_paths) for dataset in subsets.values())
    kind, reason = choose_cache(
        cache,
        images * image_size * image_size * 3,
        cache_dir=cache_dir,
        memory_budget=memory_budget,
        available=available_memory(),
    )
    prefixes: dict[str, str | None] = dict.fromkeys(subsets)
    where = ""
    if kind == "disk" and cache_dir is not None:
        states = set()
        for name, dataset in subsets.items():
            prefixes[name], state = _disk_cache(
                Path(cache_dir), name, dataset.file_paths, class_names, image_size
            )
            states.add(state)
        where = f" in {cache_dir}" + (
            ", reusing an earlier run's" if states == {"reused"} else ""
        )
        if "replaced" in states:
            where += ", replacing a cache of other images"
    print(f"Cache: {kind}{where} ({reason})")
    train = _pipeline(
        train,
        batch_size,
        kind,
        prefixes["training"],
        augmentation=augmentation,
        shuffle_seed=seed,
    )
    val = _pipeline(val, batch_size, kind, prefixes["validation"])
    return train, val, class_names


def choose_cache(
    cache: str,
    size: int,
    *,
    cache_dir: str | os.PathLike | None,
    memory_budget: int | None,
    available: int | None,
) -> tuple[str, str]:
    """Where to cache `size` bytes of decoded images, and why.

    "auto" keeps the images in memory when they fit the budget (by default a
    quarter of the `available` memory: training needs the rest, and a disk
    cache is read back through the system's file cache while memory is free),
    else on disk in `cache_dir`, else decodes them again each epoch.

    Returns:
        `("memory" | "disk" | "none", reason)`, the reason for the printed line.

    Raises:
        DataError: If "disk" has no `cache_dir`, or "memory" cannot fit.
    """
    takes = f"decoded images take about {_bytes(size)}"
    known = f"{_bytes(available)} available" if available is not None else None
    if cache == "none":
        return "none", f"as asked; {takes}, decoded again each epoch"
    if cache == "disk":
        if cache_dir is None:
            raise DataError("cache 'disk' needs a cache folder (cache_dir)")
        return "disk", f"as asked; {takes}"
    if cache == "memory":
        if available is not None and size > available:
            raise DataError(
                f"cache 'memory': {takes}, more than the {known}; "
                "use cache 'auto' or 'disk'"
            )
        return "memory", f"as asked; {takes}" + (f" of {known}" if known else "")
    if memory_budget is not None:
        budget, limit = memory_budget, f"the memory budget of {_bytes(memory_budget)}"
    elif available is not None:
        budget, limit = available // MEMORY_SHARE, f"a quarter of the {known}"
    else:
        budget, limit = -1, "a budget: the available memory is unknown"
    if size <= budget:
        return "memory", f"{takes} of {known or limit}"
    if cache_dir is None:
        return "none", f"{takes}; more than {limit}, and there is no cache folder"
    return "disk", f"{takes}; more than {limit}"


def available_memory() -> int | None:
    """Bytes of memory available to this process, or None where unknown.

    Linux's MemAvailable (which counts the file cache the system can drop),
    capped by a cgroup v2 memory limit (a container's); elsewhere the free
    pages `os.sysconf` reports.
    """
    available = None
    try:
        with open("/proc/meminfo") as file:
            for line in file:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = Path("/sys/fs/cgroup/memory.current").read_text().strip()
        if limit != "max":
            left = max(int(limit) - int(used), 0)
            available = left if available is None else min(available, left)
    except (OSError, ValueError):
        pass
    if available is None:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, AttributeError):
            pass
    return available


def _bytes(size: int) -> str:
    """`size` in bytes, for people: "18 MB", "9.6 GB"."""
    value = float(size)
    for unit in ("bytes", "kB", "MB", "GB"):
        if value < 999.5:
            break
        value /= 1000
    else:
        unit = "TB"
    return (
        f"{value:.1f} {unit}"
        if value < 9.95 and unit != "bytes"
        else f"{value:.0f} {unit}"
    )


def _disk_cache(
    cache_dir: Path,
    subset: str,
    file_paths: list[str],
    class_names: list[str],
    image_size: int,
) -> tuple[str, str]:
    """The file prefix of a subset's disk cache, and "reused", "new" or "replaced".

    The prefix ends in a fingerprint of what the cache holds (each file's path,
    size and modification time, the classes, the image size), so a cache of
    other images is never read. Files of this subset under another fingerprint
    are deleted, as are the leftovers of a run killed while filling the cache
    (its lockfile would stop TensorFlow): `cache_dir` is the script's own folder.
    """
    entries = []
    for file_path in sorted(file_paths):
        stat = os.stat(file_path)
        entries.append((file_path, stat.st_size, stat.st_mtime_ns))
    digest = hashlib.sha256(
        json.dumps([_CACHE_FORMAT, image_size, class_names, entries]).encode()
    ).hexdigest()[:16]
    prefix = cache_dir / f"{subset}-{digest}"
    whole = Path(f"{prefix}.index").is_file()
    cache_dir.mkdir(parents=True, exist_ok=True)
    replaced = False
    for path in cache_dir.iterdir():
        if not re.fullmatch(rf"{subset}-[0-9a-f]{{16}}[._].*", path.name):
            continue
        if whole and path.name.startswith(f"{prefix.name}."):
            continue
        replaced = replaced or not path.name.startswith(prefix.name)
        path.unlink()
    return str(prefix), "reused" if whole else "replaced" if replaced else "new"


def _pipeline(
    dataset: tf.data.Dataset,
    batch_size: int,
    cache: str,
    prefix: str | None,
    *,
    augmentation: keras.layers.Layer | None = None,
    shuffle_seed: int | None = None,
) -> tf.data.Dataset:
    """Caches uint8 images (`cache`: memory, disk at `prefix`, none), then batches.

    Batches leave as float32, so the model still gets raw pixels in [0, 255].
    """
    size = int(dataset.cardinality())
    file_paths = dataset.file_paths
    dataset = dataset.map(_to_uint8, num_parallel_calls=tf.data.AUTOTUNE)
    if cache != "none":
        dataset = dataset.cache(prefix or "")
        _fill_cache(dataset, size, prefix, file_paths)
    if shuffle_seed is not None:
        dataset = dataset.shuffle(
            min(size, 2048), seed=shuffle_seed, reshuffle_each_iteration=True
        )
    dataset = dataset.batch(batch_size).map(_to_float)
    return _augment(dataset, augmentation).prefetch(tf.data.AUTOTUNE)


def _to_uint8(image: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Resized pixels, rounded to uint8: a quarter of the float32 memory."""
    return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8), label


def _to_float(images: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
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
