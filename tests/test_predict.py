"""`kerastl predict` on a run folder holding a small real model and its exports."""

import csv
import json
import os
import stat
import sys
import zlib
from pathlib import Path

import click
import click._termui_impl
import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from kerastl.cli import main
from kerastl.runtime import export_model, save_labels
from tests.digits import write_digits

pytestmark = pytest.mark.slow  # predicts with a real trained model

CLASSES = [str(digit) for digit in range(10)]
SIZE = 16


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run's files: a small trained model, labels, metrics, exports."""
    folder = tmp_path_factory.mktemp("run")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)  # takes raw pixels, as the scripts do
    x = keras.layers.Conv2D(8, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(len(CLASSES), activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile("adam", "sparse_categorical_crossentropy")
    images, labels = digit_arrays(tmp_path_factory.mktemp("train"))
    model.fit(images, labels, epochs=3, verbose=0)
    model.save(folder / "model.keras")
    model.save(folder / "best.keras")
    save_labels(folder, CLASSES)
    (folder / "metrics.json").write_text(json.dumps({"model": "model.keras"}))
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(16)
    export_model(model, folder, ["saved-model", "tflite", "onnx", "openvino"], dataset)
    return folder


def digit_arrays(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    write_digits(folder, per_class=4, size=SIZE)
    paths = sorted(folder.rglob("*.png"))
    images = np.stack(
        [np.asarray(Image.open(path).convert("RGB"), "float32") for path in paths]
    )
    return images, np.array([int(path.parent.name) for path in paths])


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """70 digit images in class folders: more than two batches of 32."""
    return write_digits(tmp_path_factory.mktemp("images"), per_class=7, size=SIZE)


def kerastl(capsys, *args: str) -> tuple[int, str, str]:
    """Runs `kerastl ARGS` in this process: exit status, stdout, stderr."""
    with pytest.raises(SystemExit) as exit:
        main(list(args))
    out, err = capsys.readouterr()
    return exit.value.code, out, err


def expected_classes(model_path: Path, paths: list[Path]) -> list[str]:
    """The classes `model.predict` gives the images, loaded as a bare script would."""
    model = keras.saving.load_model(model_path, compile=False)
    batch = np.stack(
        [
            keras.utils.img_to_array(
                keras.utils.load_img(path, target_size=(SIZE,) * 2)
            )
            for path in paths
        ]
    )
    return [CLASSES[i] for i in model.predict(batch, verbose=0).argmax(axis=1)]


@pytest.mark.parametrize(
    "model",
    [
        None,
        "best.keras",
        "export/saved_model",
        "export/model.tflite",
        "export/model.onnx",
        "export/model.xml",
    ],
)
def test_predicts_what_the_model_predicts(run_dir, images, model, capsys) -> None:
    extra = [] if model is None else ["--model", model]
    code, out, err = kerastl(capsys, "predict", str(run_dir), str(images), *extra)
    assert code == 0, err
    shipped = json.loads((run_dir / "metrics.json").read_text())["model"]
    used = run_dir / (model or shipped)
    assert err.splitlines()[0] == "kerastl: predicting with " + str(used) + (
        " (the run's shipped model)" if model is None else ""
    )
    lines = out.splitlines()
    paths = sorted(images.rglob("*.png"))
    assert [line.split("  ")[0] for line in lines] == [str(path) for path in paths]
    classes = [line.split("  ")[1].split(" ")[0] for line in lines]
    assert classes == expected_classes(run_dir / "model.keras", paths)
    probabilities = [float(line.split(" ")[-1]) for line in lines]
    assert all(0 < probability <= 1 for probability in probabilities)


def test_the_csv_has_the_as_is_columns_and_top_k_rows(
    run_dir, images, tmp_path, capsys
) -> None:
    output = tmp_path / "predictions.csv"
    code, out, err = kerastl(
        capsys, "predict", str(run_dir), str(images / "3"), "--output", str(output)
    )
    assert code == 0, err
    with open(output, newline="") as file:
        rows = list(csv.DictReader(file))
    assert list(rows[0]) == [
        "image",
        "rank",
        "class_index",
        "wordnet_id",
        "class_name",
        "probability",
    ]
    assert len(rows) == 7 * 5  # five classes per image in the file by default
    assert [row["rank"] for row in rows[:5]] == ["1", "2", "3", "4", "5"]
    first = [row for row in rows if row["rank"] == "1"]
    *predictions, wrote = out.splitlines()
    assert [row["class_name"] for row in first] == [
        line.split("  ")[1].split(" ")[0] for line in predictions
    ]
    assert wrote == f"wrote {output}"
    scores = [float(row["probability"]) for row in rows[:5]]
    assert scores == sorted(scores, reverse=True)
    assert stat.S_IMODE(os.stat(output).st_mode) == 0o666 & ~current_umask()
    # --top-k sets both, and an existing file is kept without --force.
    code, out, err = kerastl(
        capsys, "predict", str(run_dir), str(images / "3"), "--output", str(output)
    )
    assert code == 2 and "exists; pass --force" in err.splitlines()[-1]
    code, out, _ = kerastl(
        capsys,
        "predict",
        str(run_dir),
        str(images / "3"),
        "--top-k",
        "2",
        "--output",
        str(output),
        "--force",
    )
    assert code == 0 and len(out.splitlines()[0].split(", ")) == 2
    with open(output, newline="") as file:
        assert len(list(csv.DictReader(file))) == 7 * 2


def current_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def test_the_sheet_shows_the_images(run_dir, images, tmp_path, capsys) -> None:
    sheet = tmp_path / "sheet.png"
    code, _, err = kerastl(
        capsys, "predict", str(run_dir), str(images / "1"), "--sheet", str(sheet)
    )
    assert code == 0, err
    with Image.open(sheet) as picture:  # 7 images: 3 columns, 3 rows
        assert picture.size == (780, 910)


def test_an_unreadable_image_is_named_and_skipped(
    run_dir, images, tmp_path, capsys
) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    good = sorted((images / "5").glob("*.png"))[:3]
    for path in good:
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "cut.png").write_bytes(good[0].read_bytes()[:60])
    (folder / "notes.jpg").write_text("not an image")
    code, out, err = kerastl(capsys, "predict", str(run_dir), str(folder))
    assert code == 1
    assert len(out.splitlines()) == 3
    skipped = [line for line in err.splitlines() if "skipped" in line]
    assert len(skipped) == 3
    assert skipped[0].startswith(
        f"kerastl: skipped {folder / 'cut.png'}: not a readable image "
        "(the file is cut short"
    )
    assert skipped[1] == (
        f"kerastl: skipped {folder / 'notes.jpg'}: not a readable image "
        "(it is not a BMP, GIF, JPEG, PNG or WebP file)"
    )
    assert skipped[2] == "kerastl: skipped 2 of 5 images"
    assert "\r" not in err  # no progress bar into a log


@pytest.mark.slow
def test_no_readable_image_is_a_one_line_error(run_dir, tmp_path, capsys) -> None:
    folder = tmp_path / "unreadable"
    folder.mkdir()
    (folder / "notes.jpg").write_text("not an image")
    (folder / "photo.webp").write_bytes(b"RIFF\x00\x00\x00\x00WEBPVP8 ")
    output = tmp_path / "predictions.csv"
    code, out, err = kerastl(
        capsys, "predict", str(run_dir), str(folder), "--output", str(output)
    )
    assert code == 1
    assert out == ""
    skipped = (
        f"kerastl: skipped {folder / 'notes.jpg'}: not a readable image "
        "(it is not a BMP, GIF, JPEG, PNG or WebP file)"
    )
    cut_webp = (
        f"kerastl: skipped {folder / 'photo.webp'}: not a readable image "
        "(the file is cut short: the WebP's RIFF chunk holds 0 bytes)"
    )
    assert err.splitlines() == [
        skipped,
        cut_webp,
        "kerastl: error: none of the 2 images can be read; nothing to predict",
    ]
    assert not output.exists()
    for path in folder.iterdir():  # only a HEIC file is left: not an image kind
        path.unlink()
    (folder / "photo.heic").write_bytes(b"\x00\x00\x00\x18ftypheic")
    code, out, err = kerastl(capsys, "predict", str(run_dir), str(folder))
    assert code == 2
    assert "Traceback" not in err
    assert err.splitlines()[-1].startswith("Error: Invalid value for 'PATH...': ")
    assert "no images (.bmp, .gif, .jpeg, .jpg, .png, .webp)" in err.splitlines()[-1]


def test_the_progress_bar_shows_only_on_a_terminal_with_lines_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from kerastl.predict_output import progress_bar

    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    with progress_bar(10) as bar:
        bar.update(4)
        assert bar.pos == 4
        assert not isinstance(bar, click._termui_impl.ProgressBar)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False)
    with progress_bar(10) as bar:
        assert isinstance(bar, click._termui_impl.ProgressBar)
        assert bar.file is sys.stderr and bar.length == 10


def test_an_image_only_tensorflow_refuses_is_skipped_in_its_batch(
    run_dir, images, tmp_path, capsys
) -> None:
    folder = tmp_path / "refused"
    folder.mkdir()
    good = sorted((images / "5").glob("*.png"))[:4]
    for path in good:
        (folder / path.name).write_bytes(path.read_bytes())
    # Well-formed chunks (the scan passes it) around pixel data zlib rejects.
    data = bytearray(good[0].read_bytes())
    start = data.index(b"IDAT") + 4
    length = int.from_bytes(data[start - 8 : start - 4], "big")
    data[start : start + length] = bytes([0xFF]) * length
    checksum = zlib.crc32(bytes(data[start - 4 : start + length]))
    data[start + length : start + length + 4] = checksum.to_bytes(4, "big")
    refused = folder / (good[0].stem + "b.png")  # second of five, mid-batch
    refused.write_bytes(bytes(data))
    code, out, err = kerastl(capsys, "predict", str(run_dir), str(folder))
    assert code == 1
    assert [line.split("  ")[0] for line in out.splitlines()] == [
        str(folder / path.name) for path in good
    ]
    assert f"kerastl: skipped {refused}: not a readable image (TensorFlow" in err


def test_bad_requests_are_usage_errors(run_dir, images, tmp_path, capsys) -> None:
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    save_labels(unfinished, CLASSES)
    other = tmp_path / "other.keras"
    inputs = keras.Input((SIZE, SIZE, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    keras.Model(inputs, keras.layers.Dense(3)(pooled)).save(other)
    (tmp_path / "empty").mkdir()
    cases = {
        (str(unfinished), str(images)): "it has no metrics.json",
        (str(run_dir), str(tmp_path / "none.png")): "none.png does not exist",
        (str(run_dir), str(tmp_path / "empty")): "no images",
        (str(run_dir), str(images), "--model", "labels.json"): "not a .keras file",
        (str(run_dir), str(images), "--model", "gone.keras"): "gone.keras does not",
        (str(run_dir), str(images), "--model", str(other)): "the run has 10 classes",
    }
    for args, fragment in cases.items():
        code, out, err = kerastl(capsys, "predict", *args)
        assert code == 2, (args, err)
        assert err.splitlines()[-1].startswith("Error: Invalid value for ")
        assert fragment in err.splitlines()[-1], (args, err)
        assert out == ""


def test_explain_writes_each_image_with_its_heatmap(
    run_dir, images, tmp_path, capsys
) -> None:
    folder, sheet = tmp_path / "heatmaps", tmp_path / "sheet.png"
    args = [str(run_dir), str(images / "4"), "--explain", str(folder)]
    code, out, err = kerastl(capsys, "predict", *args, "--sheet", str(sheet))
    assert code == 0, err
    assert f"wrote 7 heatmaps into {folder}" in out
    originals = sorted((images / "4").glob("*.png"))
    assert sorted(path.name for path in folder.iterdir()) == [
        path.name for path in originals
    ]
    for original in originals:
        with Image.open(original) as plain, Image.open(folder / original.name) as hot:
            assert hot.size == plain.size and hot.mode == "RGB"
            assert np.abs(np.asarray(hot, "int32") - plain.convert("RGB")).max() > 40
    assert sheet.is_file()
    code, _, err = kerastl(capsys, "predict", *args)  # nothing replaced unasked
    assert code == 2 and "exists; pass --force" in err.splitlines()[-1]
    code, _, err = kerastl(capsys, "predict", *args, "--force")
    assert code == 0, err


def test_explain_needs_the_keras_model_and_a_folder(
    run_dir, images, tmp_path, capsys
) -> None:
    folder = tmp_path / "heatmaps"
    (tmp_path / "file.png").write_bytes(b"")
    flat = tmp_path / "flat.keras"  # no feature map to explain
    inputs = keras.Input((SIZE, SIZE, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    keras.Model(inputs, keras.layers.Dense(len(CLASSES))(pooled)).save(flat)
    cases = {
        ("--model", str(flat), "--explain", str(folder)): "no feature map",
        ("--model", "export/model.tflite", "--explain", str(folder)): (
            "heatmaps need the Keras model (best.keras or model.keras); "
            f"{run_dir / 'export/model.tflite'} is an exported artifact"
        ),
        ("--explain", str(tmp_path / "file.png")): "is a file",
        ("--explain", str(tmp_path / "gone" / "here")): "gone does not exist",
    }
    for extra, fragment in cases.items():
        code, out, err = kerastl(capsys, "predict", str(run_dir), str(images), *extra)
        assert code == 2, (extra, err)
        assert fragment in err.splitlines()[-1], (extra, err)
        assert out == ""
    assert not folder.exists() and not (tmp_path / "gone").exists()
