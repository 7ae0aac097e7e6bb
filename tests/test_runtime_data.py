"""Preflight scan and input pipeline on real image folders."""

import contextlib
import json
import re
import shutil
import zlib
from collections.abc import Iterable
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from kerastl.runtime import (
    check_pixel_range,
    find_images,
    load_image_folders,
    save_labels,
    scan_image_folder,
)
from kerastl.runtime.cache import available_memory, choose_cache
from kerastl.runtime.data_checks import check_num_classes
from kerastl.runtime.epochs import training_epoch
from kerastl.runtime.errors import DataError
from kerastl.runtime.folders import check_test_folder
from kerastl.runtime.image_lists import LabelledImages
from kerastl.runtime.image_sets import image_files
from kerastl.runtime.images import image_problem
from tests.conftest import data_settings
from tests.digits import write_digits


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return write_digits(tmp_path / "data", per_class=5, classes=3)


def test_scan_counts_classes_in_keras_order(folder: Path) -> None:
    scan = scan_image_folder(folder)
    assert scan.class_names == ["0", "1", "2"]
    assert scan.counts == {"0": 5, "1": 5, "2": 5} and scan.total == 15


def test_images_in_sub_folders_of_a_class_are_counted_and_said_once(
    folder: Path, capsys: pytest.CaptureFixture
) -> None:
    for name in sorted((folder / "1").iterdir())[:3]:
        (folder / "1" / "old").mkdir(exist_ok=True)
        name.rename(folder / "1" / "old" / name.name)
    (folder / "2" / "a" / "b").mkdir(parents=True)
    next((folder / "2").glob("*.png")).rename(folder / "2" / "a" / "b" / "x.png")
    scan = scan_image_folder(folder)
    assert scan.counts == {"0": 5, "1": 5, "2": 5}
    assert capsys.readouterr().out == (
        f"Scan of the data folder {folder}: 15 images (15 .png)\n"
        f"Note: 4 images in {folder} lie in sub-folders of a class folder and "
        "count in that class: 1/old (3), 2/a/b (1).\n"
    )
    scan_image_folder(folder, notes=False)
    assert capsys.readouterr().out == ""


def test_scan_refuses_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        scan_image_folder(tmp_path / "nothing")


def test_scan_refuses_a_single_class(folder: Path) -> None:
    shutil.rmtree(folder / "1")
    shutil.rmtree(folder / "2")
    with pytest.raises(DataError, match="1 class folder"):
        scan_image_folder(folder)


def test_scan_refuses_an_empty_class(folder: Path) -> None:
    (folder / "empty").mkdir()
    with pytest.raises(DataError, match="empty has no images"):
        scan_image_folder(folder)


def test_scan_names_empty_classes_and_corrupt_files_at_once(folder: Path) -> None:
    for name in ("empty", "none"):
        (folder / name).mkdir()
    (folder / "1" / "bad.png").write_text("not a png")
    with pytest.raises(DataError) as error:
        scan_image_folder(folder)
    assert str(error.value) == (
        f"class folders {folder / 'empty'}, {folder / 'none'} have no images "
        "(.bmp, .gif, .jpeg, .jpg, .png, .webp); and "
        f"{folder / '1' / 'bad.png'} is not a readable image (it is not a BMP, "
        "GIF, JPEG, PNG or WebP file); remove or replace it"
    )


def test_scan_names_a_corrupt_file(folder: Path) -> None:
    broken = folder / "1" / "broken.jpg"
    broken.write_bytes(b"this is not a jpeg")
    with pytest.raises(DataError, match="broken.jpg is not a readable image"):
        scan_image_folder(folder)


def test_scan_names_every_corrupt_file_in_one_line(folder: Path) -> None:
    broken = [folder / "1" / "broken.jpg", folder / "2" / "broken.png"]
    for path in broken:
        path.write_bytes(b"this is not an image")
    with pytest.raises(DataError) as error:
        scan_image_folder(folder)
    message = str(error.value)
    assert message.startswith("2 files are not readable images: ")
    assert all(str(path) in message for path in broken) and "\n" not in message
    assert message.endswith("; remove or replace them")
    for index in range(6):  # eight in all: five named, then a count
        (folder / "0" / f"bad{index}.png").write_bytes(b"nor is this")
    with pytest.raises(DataError, match=r"^8 files .*; and 3 more; remove or replace"):
        scan_image_folder(folder)


def test_a_test_folder_with_other_classes_names_them(
    folder: Path, tmp_path: Path
) -> None:
    test = write_digits(tmp_path / "test", per_class=1, classes=3)
    check_test_folder(test, ["0", "1", "2"])
    shutil.rmtree(test / "2")
    shutil.copytree(test / "1", test / "cat")
    with pytest.raises(DataError) as error:
        check_test_folder(test, ["0", "1", "2"])
    assert str(error.value) == (
        f"the test folder {test} has other classes than the training data: "
        "missing 2; extra cat"
    )


def test_scan_names_a_png_cut_in_half(folder: Path) -> None:
    image = min((folder / "2").iterdir())
    data = image.read_bytes()
    image.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError) as error:
        scan_image_folder(folder)
    message = str(error.value)
    assert message.startswith(f"{image} is not a readable image (the file is cut short")
    assert "\n" not in message


def test_scan_names_a_jpeg_cut_short(folder: Path) -> None:
    source = min((folder / "0").iterdir())
    image = folder / "0" / "photo.jpg"
    Image.open(source).convert("RGB").save(image, quality=90)
    scan_image_folder(folder)  # whole, it passes
    image.write_bytes(image.read_bytes()[:-2])  # without its end marker
    with pytest.raises(
        DataError, match=r"photo\.jpg is not a readable image \(the file"
    ):
        scan_image_folder(folder)


def test_scan_names_a_png_with_a_damaged_chunk(folder: Path) -> None:
    image = min((folder / "1").iterdir())
    data = bytearray(image.read_bytes())
    data[60] ^= 0xFF  # inside the image data: its checksum no longer matches
    image.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"chunk is damaged\); remove or replace it"):
        scan_image_folder(folder)


def test_scan_agrees_with_tensorflow_on_cut_files(tmp_path: Path) -> None:
    """Cuts of a PNG, JPEG, GIF and BMP: refused exactly when TensorFlow refuses them."""
    pixels = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    for kind in ("PNG", "JPEG", "GIF", "BMP"):
        whole = tmp_path / f"whole.{kind.lower()}"
        Image.fromarray(pixels).save(whole, kind)
        data = whole.read_bytes()
        for cut in [
            *range(1, len(data) - 24, 5),
            *range(len(data) - 24, len(data) + 1),
        ]:
            path = tmp_path / f"cut.{kind.lower()}"
            path.write_bytes(data[:cut])
            try:
                tf.io.decode_image(data[:cut], channels=3, expand_animations=False)
                decodes = True
            except tf.errors.InvalidArgumentError:
                decodes = False
            assert (image_problem(path) is None) == decodes, (kind, cut, len(data))


def test_an_image_the_scan_passes_but_tensorflow_refuses_is_named(
    folder: Path,
) -> None:
    """Whole chunks with right checksums, but image data that is not zlib."""
    image = min((folder / "1").iterdir())
    data = image.read_bytes()

    def chunk(kind: bytes, body: bytes) -> bytes:
        checksum = zlib.crc32(kind + body).to_bytes(4, "big")
        return len(body).to_bytes(4, "big") + kind + body + checksum

    image.write_bytes(
        data[:33] + chunk(b"IDAT", b"not zlib data") + chunk(b"IEND", b"")
    )
    scan_image_folder(folder)
    with pytest.raises(DataError, match=f"{image.name} is not a readable image"):
        load_image_folders(folder, image_size=32, batch_size=4, validation_split=0.5)


def test_as_is_prediction_names_a_cut_image(folder: Path) -> None:
    image = sorted((folder / "0").iterdir())[1]
    image.write_bytes(image.read_bytes()[:40])
    with pytest.raises(DataError, match=f"{image.name} is not a readable image"):
        find_images(folder / "0")
    with pytest.raises(DataError, match="is not a readable image"):
        find_images(image)


def test_validation_classes_must_match(folder: Path, tmp_path: Path) -> None:
    val = write_digits(tmp_path / "val", per_class=2, classes=4)
    with pytest.raises(
        DataError, match=r"other classes than the training data: missing none; extra 3$"
    ):
        load_image_folders(folder, image_size=32, batch_size=4, val_dir=val)


def validation_pixel_sums(val: Iterable[tuple[np.ndarray, np.ndarray]]) -> list[float]:
    """The pixel sum of each validation image, sorted: the split, whatever the order."""
    return sorted(float(np.sum(image)) for images, _ in val for image in images)


def test_pipeline_gives_raw_pixels_batches_and_labels(folder: Path) -> None:
    loaded = load_image_folders(
        folder, image_size=40, batch_size=4, validation_split=0.4, seed=1
    )
    train, val, class_names = loaded.train, loaded.validation, loaded.class_names
    same_seed_val = load_image_folders(
        folder, image_size=40, batch_size=4, validation_split=0.4, seed=1
    ).validation
    assert validation_pixel_sums(val) == validation_pixel_sums(same_seed_val)
    assert class_names == ["0", "1", "2"]
    images, labels = next(iter(val))
    assert images.shape[1:] == (40, 40, 3) and images.dtype == "float32"
    # One-hot labels, as CategoricalCrossentropy and the mixing layers take them.
    assert labels.shape[1:] == (3,) and labels.dtype == "float32"
    np.testing.assert_array_equal(np.sum(labels, axis=1), 1.0)
    assert float(np.max(images)) > 1.0
    total = sum(int(batch[0].shape[0]) for batch in train) + sum(
        int(batch[0].shape[0]) for batch in val
    )
    assert total == 15
    assert len(train) == 3  # 9 training images in batches of 4
    assert (
        len(loaded.train_files.paths)
        == sum(loaded.train_files.class_counts.values())
        == 9
    )
    assert sum(loaded.validation_files.class_counts.values()) == 6
    assert not loaded.augmented and not loaded.mixed


def test_the_files_fingerprint_follows_names_and_sizes_not_bytes(
    tmp_path: Path,
) -> None:
    (tmp_path / "cat").mkdir()
    image = tmp_path / "cat" / "a.png"
    image.write_bytes(b"abc")

    def listed(paths: list[str]) -> LabelledImages:
        return LabelledImages(paths, np.zeros(len(paths), np.int32), str(tmp_path))

    def fingerprint() -> str:
        paths = [str(path) for path in sorted(tmp_path.glob("*/*"))]
        return image_files(listed(paths), ["cat"]).fingerprint

    first = fingerprint()
    assert image_files(listed([str(image)]), ["cat"]).class_counts == {"cat": 1}
    image.write_bytes(b"xyz")  # other bytes, the same size
    assert fingerprint() == first
    image.write_bytes(b"abcd")
    assert fingerprint() != first
    image.write_bytes(b"abc")
    image.rename(tmp_path / "cat" / "b.png")
    assert fingerprint() != first


def test_a_peek_at_a_batch_loses_no_image(tmp_path: Path) -> None:
    """Without a filled cache, about one peek in three lost an image (TF 2.21)."""
    folder = write_digits(tmp_path / "data", per_class=60, classes=3)
    for _ in range(20):
        val = load_image_folders(
            folder, image_size=32, batch_size=4, validation_split=0.4, seed=1
        ).validation
        next(iter(val))
        assert sum(int(labels.shape[0]) for _, labels in val) == 72


def contents(dataset: tf.data.Dataset) -> list[tuple[int, bytes]]:
    """Each (label, pixels) of a dataset, in order."""
    return [
        (int(np.argmax(label)), image.astype(np.uint8).tobytes())
        for images, labels in dataset.as_numpy_iterator()
        for image, label in zip(images, labels)
    ]


def cached_spec(dataset: tf.data.Dataset) -> tf.TensorSpec:
    """The image spec of the cache a pipeline reads from."""
    while type(dataset).__name__ != "CacheDataset":
        dataset = dataset._input_dataset
    return dataset.element_spec[0]


def test_choose_cache_by_size() -> None:
    gb = 10**9
    options = {"cache_dir": "runs/x/cache", "memory_budget": None, "available": 8 * gb}
    assert choose_cache("auto", 18 * 10**6, **options) == (
        "memory",
        "decoded images take about 18 MB of 8.0 GB available",
    )
    assert choose_cache("auto", 11 * gb, **options) == (
        "disk",
        "decoded images take about 11 GB; more than a quarter of the 8.0 GB available",
    )
    assert choose_cache("auto", 3 * gb, **{**options, "cache_dir": None})[0] == "none"
    assert choose_cache("auto", 100, **{**options, "memory_budget": 10})[0] == "disk"
    assert choose_cache("memory", 3 * gb, **options)[0] == "memory"
    with pytest.raises(DataError, match="more than the 8.0 GB available"):
        choose_cache("memory", 9 * gb, **options)
    with pytest.raises(DataError, match="needs a cache folder"):
        choose_cache("disk", 100, **{**options, "cache_dir": None})
    assert choose_cache("none", 100, **options)[0] == "none"
    assert choose_cache("auto", 100, **{**options, "available": None})[0] == "disk"


def test_available_memory_is_read() -> None:
    available = available_memory()
    assert available is not None and available > 10**8


def test_cache_choice_is_validated(folder: Path) -> None:
    with pytest.raises(DataError, match="one of auto, memory, disk, none, not 'ram'"):
        load_image_folders(folder, image_size=32, batch_size=4, cache="ram")


def test_disk_and_no_cache_give_what_the_memory_cache_gives(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    options = {"image_size": 40, "batch_size": 4, "validation_split": 0.4, "seed": 1}
    results = {}
    for cache, budget in (("memory", None), ("auto", 1), ("none", None)):
        images = load_image_folders(
            folder,
            cache=cache,
            cache_dir=tmp_path / "cache",
            memory_budget=budget,
            **options,
        )
        train, val = images.train, images.validation
        scan, line = capsys.readouterr().out.splitlines()
        assert scan == f"Scan of the data folder {folder}: 15 images (15 .png)"
        results[line.split()[1]] = (sorted(contents(train)), contents(val))
        images, _ = next(iter(train))
        assert images.dtype == "float32"
    assert list(results) == ["memory", "disk", "none"]
    assert results["disk"] == results["memory"] == results["none"]
    labels = [label for label, _ in results["memory"][1]]
    assert len(labels) == 6 and len(set(labels)) > 1


def test_cache_holds_uint8(folder: Path, tmp_path: Path) -> None:
    for cache in ("memory", "disk"):
        images = load_image_folders(
            folder, image_size=32, batch_size=4, cache=cache, cache_dir=tmp_path
        )
        # The training batches' cache, read in file order (not shuffled).
        train, val = images.train_in_order, images.validation
        assert cached_spec(train).dtype == cached_spec(val).dtype == tf.uint8
    data = sum(path.stat().st_size for path in tmp_path.glob("*.data-*"))
    assert 15 * 32 * 32 * 3 <= data < 2 * 15 * 32 * 32 * 3  # a byte per value


def test_load_prints_one_line_on_the_cache(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    load_image_folders(folder, image_size=32, batch_size=4)
    assert re.fullmatch(
        rf"Scan of the data folder {folder}: 15 images \(15 .png\)\n"
        r"Cache: memory \(decoded images take about 46 kB of [\d.]+ [MGT]B available\)\n",
        capsys.readouterr().out,
    )


def test_disk_cache_is_reused_then_rebuilt_for_other_images(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache_dir = tmp_path / "cache"
    options = {"image_size": 32, "batch_size": 4, "validation_split": 0.4}

    def load() -> tuple[list[int], str, set[str]]:
        images = load_image_folders(
            folder, cache="disk", cache_dir=cache_dir, **options
        )
        train, val = images.train, images.validation
        sizes = [sum(int(labels.shape[0]) for _, labels in ds) for ds in (train, val)]
        names = {path.name.split(".")[0] for path in cache_dir.iterdir()}
        return sizes, capsys.readouterr().out.splitlines()[-1], names

    sizes, line, names = load()
    assert sizes == [9, 6] and line.startswith(f"Cache: disk in {cache_dir} (as asked")
    assert sorted(name.split("-")[0] for name in names) == ["training", "validation"]
    written = {path: path.stat().st_mtime_ns for path in cache_dir.iterdir()}
    sizes, line, _ = load()
    assert sizes == [9, 6] and ", reusing an earlier run's (" in line
    assert {path: path.stat().st_mtime_ns for path in cache_dir.iterdir()} == written
    for image in sorted((folder / "2").iterdir())[:3]:
        image.unlink()
    sizes, line, new_names = load()
    # 5, 5 and 2 images: 40% of each class (5 of 12 in all) validates.
    assert sizes == [7, 5] and ", replacing a cache of other images (" in line
    assert len(new_names) == 2 and not new_names & names


def test_disk_cache_survives_a_run_killed_while_filling(
    folder: Path, tmp_path: Path
) -> None:
    """A killed run leaves a lockfile, which TensorFlow takes for a running one."""
    options = {
        "image_size": 32,
        "batch_size": 4,
        "cache": "disk",
        "cache_dir": tmp_path,
    }
    load_image_folders(folder, **options)
    for index in tmp_path.glob("*.index"):
        prefix = str(index)[: -len(".index")]
        for path in tmp_path.glob(f"{Path(prefix).name}.*"):
            path.unlink()
        Path(f"{prefix}_0.lockfile").write_text("Created at: 1")
        Path(f"{prefix}_0.data-00000-of-00001.tempstate1").write_bytes(b"partial")
    images = load_image_folders(folder, **options)
    train, val = images.train, images.validation
    assert sum(int(labels.shape[0]) for ds in (train, val) for _, labels in ds) == 15
    assert not list(tmp_path.glob("*lockfile")) and not list(
        tmp_path.glob("*tempstate*")
    )


def test_augmentation_is_drawn_anew_each_epoch(folder: Path) -> None:
    """Cache before augmenting: two epochs see different images, and the same
    epoch drawn twice (a resumed run) the same ones."""
    rotate = keras.layers.RandomRotation(0.5, seed=3)
    train = load_image_folders(
        folder,
        image_size=32,
        batch_size=16,
        validation_split=0.2,
        seed=1,
        augmentation=rotate,
    ).train
    training_epoch().assign(0)
    first = np.concatenate([images for images, _ in train])
    training_epoch().assign(1)
    second = np.concatenate([images for images, _ in train])
    assert first.shape == second.shape
    assert not np.allclose(np.sort(first, axis=None), np.sort(second, axis=None))
    np.testing.assert_array_equal(second, np.concatenate([x for x, _ in train]))


def test_pixel_range_check_catches_scaled_images(folder: Path) -> None:
    scaled = keras.layers.Rescaling(1 / 255)
    with pytest.raises(DataError, match="look scaled already"):
        load_image_folders(folder, image_size=32, batch_size=4, augmentation=scaled)
    train = load_image_folders(folder, image_size=32, batch_size=4).train
    low, high = check_pixel_range(train)
    assert 0 <= low < high <= 255


def test_num_classes_must_match_the_data() -> None:
    assert check_num_classes(None, ["a", "b"]) == 2
    assert check_num_classes(2, ["a", "b"]) == 2
    with pytest.raises(
        DataError, match=r"3 classes \(--num-classes\) but the data has 2: a, b"
    ):
        check_num_classes(3, ["a", "b"])


def test_labels_file_lists_classes_in_output_order(tmp_path: Path) -> None:
    path = save_labels(tmp_path / "run", ["cat", "dog"])
    assert json.loads(Path(path).read_text()) == ["cat", "dog"]


def test_a_validation_folder_named_another_way_is_the_same_run(tmp_path: Path) -> None:
    """The run's identity holds the validation images, not how their folder was
    typed: a trailing slash, or a path from elsewhere, resumes the same run."""
    from kerastl.runtime import load_training_data

    train = write_digits(tmp_path / "train", per_class=3, classes=2)
    val = write_digits(tmp_path / "val", per_class=2, classes=2)

    def identity(val_dir: str) -> dict:
        settings = data_settings(
            output_dir=str(tmp_path / "run"), data_dir=str(train), val_dir=val_dir
        )
        return load_training_data(settings, tf.distribute.get_strategy()).identity

    first = identity(str(val))
    assert identity(str(val) + "/") == first
    with contextlib.chdir(tmp_path):
        assert identity("val") == first
    assert first["validation"].startswith("4 images, fingerprint ")
    min((val / "1").iterdir()).unlink()
    assert identity(str(val)) != first  # other images: another run
