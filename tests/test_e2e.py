"""Generate scripts and really run them on small digit images (slow: minutes)."""

import csv
import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.conftest import new_script, run_script, script_env
from tests.digits import write_digits

pytestmark = pytest.mark.slow


def generate(folder: Path, options: str) -> Path:
    """Runs `kerastl new OPTIONS -o script.py` in `folder`."""
    return new_script(folder, *shlex.split(options), name="script.py")


def on_data(data: Path, options: str) -> list[str]:
    """The arguments `--data-dir DATA OPTIONS` of a training script."""
    return ["--data-dir", str(data), *shlex.split(options)]


def check_reload(model_path: Path, size: int, classes: int) -> None:
    code = (
        "import sys, numpy as np, keras\n"
        "model = keras.saving.load_model(sys.argv[1])\n"
        f"out = model.predict(np.zeros((2, {size}, {size}, 3), 'float32'), verbose=0)\n"
        f"assert out.shape == (2, {classes}), out.shape\n"
        "assert np.allclose(out.sum(axis=1), 1, atol=1e-4)\n"
        "def walk(m):\n"
        "    for layer in m.layers:\n"
        "        yield type(layer).__name__\n"
        "        if hasattr(layer, 'layers'):\n"
        "            yield from walk(layer)\n"
        "kinds = set(walk(model))\n"
        "assert not {k for k in kinds if k.startswith('Random') or k == 'Lambda'}, kinds\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(model_path)],
        capture_output=True,
        text=True,
        check=False,
        env=script_env(),
    )
    assert result.returncode == 0, result.stderr[-2000:]


def assert_training_outputs(output: Path, epochs: int) -> None:
    for name in ("model.keras", "best.keras", "history.csv", "labels.json"):
        assert (output / name).is_file(), name
    assert json.loads((output / "labels.json").read_text()) == [
        str(d) for d in range(10)
    ]
    with open(output / "history.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [int(row["epoch"]) for row in rows] == list(range(1, epochs + 1))
    check_reload(output / "model.keras", 32, 10)


class FinishedRun(NamedTuple):
    """A finished run: its folder, script, options and output."""

    folder: Path
    script: Path
    options: str
    result: subprocess.CompletedProcess[str]
    output: Path
    weights: Path
    test: Path


@pytest.fixture(scope="module")
def finished_run(
    tmp_path_factory: pytest.TempPathFactory, digits_dir: Path
) -> FinishedRun:
    """A run trained once for the tests that read or copy it.

    A feature-extraction script for MobileNetV3Small at 32 pixels, two epochs
    from a weights file made here, with a test folder, `--class-weight auto`
    and two exports.
    """
    folder = tmp_path_factory.mktemp("finished")
    script = generate(
        folder,
        "--mode feature-extraction --backbone MobileNetV3Small --image-size 32",
    )
    weights = folder / "base.weights.h5"
    subprocess.run(
        [
            sys.executable,
            "-c",
            (
                "import sys, keras; keras.applications.MobileNetV3Small(include_top=False, "
                "weights=None, input_shape=(32, 32, 3)).save_weights(sys.argv[1])"
            ),
            str(weights),
        ],
        check=True,
        capture_output=True,
        env=script_env(),
    )
    test = write_digits(folder / "test", per_class=2)
    options = (
        f"--weights {weights} --test-dir {test} --class-weight auto --epochs 2 "
        "--output-dir out --export saved-model tflite"
    )
    result = run_script(script, *on_data(digits_dir, options))
    assert result.returncode == 0, result.stderr[-3000:]
    return FinishedRun(folder, script, options, result, folder / "out", weights, test)


def test_feature_extraction_runs(tmp_path: Path, digits_dir: Path) -> None:
    script = generate(
        tmp_path,
        "--mode feature-extraction --backbone EfficientNetV2B0 --image-size 32 --num-classes 10",
    )
    validation = write_digits(tmp_path / "val", per_class=3)
    options = f"--val-dir {validation} --weights none --epochs 1 --output-dir out"
    result = run_script(script, *on_data(digits_dir, options))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "model.keras (the final model): val_accuracy" in result.stdout
    assert_training_outputs(tmp_path / "out", epochs=1)


def test_as_is_predicts_imagenet_classes(tmp_path: Path, digits_dir: Path) -> None:
    script = generate(tmp_path, "--mode as-is --backbone MobileNetV3Small")
    options = "--weights none --top-k 3 --output-dir out"
    result = run_script(
        script, "--images", str(digits_dir / "3"), *shlex.split(options)
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with open(tmp_path / "out" / "predictions.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    images = sorted((digits_dir / "3").iterdir())
    assert len(rows) == 3 * len(images)
    assert [int(row["rank"]) for row in rows[:3]] == [1, 2, 3]
    assert all(
        0 <= int(row["class_index"]) < 1000 and row["class_name"] for row in rows
    )
    assert rows[0]["wordnet_id"].startswith("n")


def test_a_standalone_fine_tune_script_runs_each_stage_without_kerastl(
    tmp_path: Path, digits_dir: Path
) -> None:
    script = generate(
        tmp_path,
        "--mode fine-tune --backbone MobileNetV3Small --image-size 32 --standalone "
        "--unfreeze 1 --unfreeze 2",
    )
    poison = tmp_path / "poison" / "kerastl"
    poison.mkdir(parents=True)
    (poison / "__init__.py").write_text(
        "raise ImportError('kerastl must not be imported')\n"
    )
    env = script_env(PYTHONPATH=str(poison.parent))  # not the repository
    shadowed = subprocess.run(
        [sys.executable, "-c", "import kerastl"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert "kerastl must not be imported" in shadowed.stderr
    assert (tmp_path / "kerastl_runtime" / "MANIFEST").is_file()
    result = run_script(
        script,
        *on_data(
            digits_dir,
            "--weights none --epochs 1 --fine-tune-epochs 1 --output-dir out",
        ),
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Phase 'unfreeze-2', epochs 3 to 3:" in result.stdout
    assert "BatchNormalization layers that train: 0 of" in result.stdout
    assert_training_outputs(tmp_path / "out", epochs=3)
    with open(tmp_path / "out" / "history.csv", newline="") as file:
        phases = [row["phase"] for row in csv.DictReader(file)]
    assert phases == ["head", "unfreeze-1", "unfreeze-2"]


def test_weights_from_a_file(finished_run: FinishedRun, digits_dir: Path) -> None:
    import keras
    import numpy as np

    card = json.loads((finished_run.output / "run.json").read_text())
    assert card["settings"]["weights"] == str(finished_run.weights)
    # The frozen base of the shipped model holds the file's weights.
    base = keras.applications.MobileNetV3Small(
        include_top=False, weights=str(finished_run.weights), input_shape=(32, 32, 3)
    )
    model = keras.saving.load_model(finished_run.output / "model.keras", compile=False)
    shipped_base = model.get_layer(base.name).get_weights()
    for shipped, loaded in zip(shipped_base, base.get_weights(), strict=True):
        np.testing.assert_array_equal(shipped, loaded)
    missing = finished_run.folder / "nope.weights.h5"
    result = run_script(
        finished_run.script,
        *on_data(digits_dir, f"--weights {missing} --output-dir other"),
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "script.py: error: argument --weights: weights file "
        f"{missing} does not exist (give imagenet, none or a file)"
    )
    assert not (finished_run.folder / "other").exists()


def test_imagenet_weights_that_cannot_be_downloaded(
    tmp_path: Path, digits_dir: Path
) -> None:
    """No download (a proxy that refuses) and no cached file: one clear line."""
    script = generate(
        tmp_path,
        "--mode feature-extraction --backbone MobileNetV3Small --image-size 32",
    )
    env = script_env(
        KERAS_HOME=str(tmp_path / "keras-home"),
        HTTPS_PROXY="http://127.0.0.1:9",
        https_proxy="http://127.0.0.1:9",
    )
    result = run_script(
        script, *on_data(digits_dir, "--epochs 1 --output-dir out"), env=env
    )
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "error: could not download the ImageNet weights of MobileNetV3Small"
    )
    assert "--weights PATH" in last and "Traceback" not in result.stderr


def test_a_corrupt_image_is_named_before_training(
    tmp_path: Path, digits_dir: Path
) -> None:
    data = tmp_path / "data"
    for folder in ("0", "1"):
        (data / folder).mkdir(parents=True)
        for image in sorted((digits_dir / folder).iterdir())[:3]:
            (data / folder / image.name).write_bytes(image.read_bytes())
    (data / "1" / "bad.png").write_text("not a png")
    script = generate(
        tmp_path,
        "--mode feature-extraction --backbone MobileNetV3Small --image-size 32",
    )
    result = run_script(script, *on_data(data, "--weights none"))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {data / '1' / 'bad.png'} is not a readable image "
        "(it is not a BMP, GIF, JPEG, PNG or WebP file); remove or replace it"
    )


def test_a_stage_that_fits_no_layer_stops_before_training(
    tmp_path: Path, digits_dir: Path
) -> None:
    script = generate(tmp_path, "--backbone MobileNetV3Small --image-size 32")
    # The generator refuses such a name; a user's edit of the default is caught here.
    text = script.read_text()
    script.write_text(text.replace("        (3,),\n", '        ("conv_2",),\n'))
    assert script.read_text() != text
    result = run_script(script, *on_data(digits_dir, "--weights none --output-dir out"))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: 'MobileNetV3Small' has no layer 'conv_2' (closest: conv_1, conv, conv_bn)"
    )
    assert not (tmp_path / "out" / "history.csv").exists()


def test_a_rerun_after_an_edit_is_refused_then_restarted(
    finished_run: FinishedRun, digits_dir: Path, tmp_path: Path
) -> None:
    script = Path(shutil.copy(finished_run.script, tmp_path))
    shutil.copytree(finished_run.output, tmp_path / "out")
    # The user adds a hidden layer to the head, as the settings invite.
    text = script.read_text()
    edited = text.replace(
        '    x = keras.layers.Dropout(settings.dropout, name="dropout")(x)\n',
        '    x = keras.layers.Dense(64, activation="relu", name="hidden")(x)\n'
        '    x = keras.layers.Dropout(settings.dropout, name="dropout")(x)\n',
    )
    assert edited != text
    script.write_text(edited)
    refused = run_script(script, *on_data(digits_dir, finished_run.options))
    assert refused.returncode == 1
    assert "Traceback" not in refused.stderr
    last = refused.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "error: out holds a run with another model (layers added hidden)"
    )
    assert last.endswith(
        "pass --restart to start that folder over, or choose another --output-dir"
    )
    assert "Epoch 1/" not in refused.stdout  # refused before training
    args = on_data(digits_dir, "--weights none --epochs 1 --output-dir out")
    restarted = run_script(script, *args, "--restart")
    assert restarted.returncode == 0, restarted.stderr[-3000:]
    assert_training_outputs(tmp_path / "out", epochs=1)
    assert not (tmp_path / "out" / "export").exists()  # the old run's files are gone


def load_script(path: Path):
    """Imports a generated script as a module (it only runs under __main__)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BAD_OPTIONS = {
    "--batch-size 0": "argument --batch-size: must be at least 1, not 0",
    "--epochs -1": "argument --epochs: must be at least 0, not -1",
    "--fine-tune-epochs two": "argument --fine-tune-epochs: not a whole number: 'two'",
    "--learning-rate 0": "argument --learning-rate: must be above 0, not 0",
    "--fine-tune-learning-rate -0.001": (
        "argument --fine-tune-learning-rate: must be above 0, not -0.001"
    ),
    "--dropout 1": "argument --dropout: must be at least 0 and below 1, not 1",
    "--val-dir data": "argument --val-dir: data is also --data-dir; give a different",
    "--test-dir missing": "argument --test-dir: missing is not a folder",
    "--cache ram": "argument --cache: 'ram' is not one of auto, memory, disk, none",
    "--weights missing.h5": "argument --weights: weights file missing.h5 does not",
    "--layer-decay 0.7 --lr-schedule plateau": (
        "argument --layer-decay: needs --lr-schedule cosine, not plateau"
    ),
    "--tta maybe": "argument --tta: 'maybe' is not one of auto, on, off",
}


def test_bad_script_options_are_usage_errors(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    from kerastl import runtime

    training = load_script(generate(tmp_path, "--image-size 32"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    # The run's settings come from the runtime, the output folder's default
    # from the script.
    settings = runtime.parse_settings(training.Settings, ["--data-dir", "data"])
    assert isinstance(settings, runtime.RunSettings)
    assert (settings.output_dir, settings.tta) == (
        "runs/efficientnetv2b0_fine_tune",
        "auto",
    )
    for options, message in BAD_OPTIONS.items():
        with pytest.raises(SystemExit) as exit:
            runtime.parse_settings(
                training.Settings, ["--data-dir", "data", *shlex.split(options)]
            )
        assert exit.value.code == 2, options
        assert message in capsys.readouterr().err.strip().splitlines()[-1]
    (tmp_path / "predict").mkdir()
    predict = load_script(generate(tmp_path / "predict", "--mode as-is"))
    for top_k in ("0", "1001"):
        with pytest.raises(SystemExit) as exit:
            runtime.parse_settings(
                predict.Settings, ["--images", "x", "--top-k", top_k]
            )
        assert exit.value.code == 2
        assert f"at most 1000, not {top_k}" in capsys.readouterr().err


def test_the_report_describes_the_shipped_model(finished_run: FinishedRun) -> None:
    import keras
    import numpy as np
    from PIL import Image

    from kerastl import runtime

    result, out, test = finished_run.result, finished_run.output, finished_run.test
    metrics = json.loads((out / "metrics.json").read_text())
    card = json.loads((out / "run.json").read_text())
    assert metrics["model"] == card["shipped_model"] in ("best.keras", "model.keras")
    # The figure printed for each file is that file's own: the shipped one's is
    # in metrics.json, best.keras's in the history at its epoch.
    printed = {
        line.split(" ")[0]: float(line.rsplit("val_loss ", 1)[1])
        for line in result.stdout.splitlines()
        if line.startswith(("model.keras (", "best.keras ("))
    }
    assert printed[metrics["model"]] == round(metrics["validation"]["loss"], 4)
    best = card["best_epoch"]
    with open(out / "history.csv", newline="") as file:
        at_best = next(
            row for row in csv.DictReader(file) if int(row["epoch"]) == best["epoch"]
        )
    if "best.keras" in printed:
        assert printed["best.keras"] == round(float(at_best["val_loss"]), 4)
    assert f"The test images, with {metrics['model']}:" in result.stdout
    # With augmentation, epoch 1 tells what --no-augment would save.
    assert "With --no-augment the base would run once" in result.stdout
    # The figures agree with the shipped file's own predictions.
    model = keras.saving.load_model(out / metrics["model"], compile=False)
    test_ds = runtime.load_test_folder(
        test, image_size=32, batch_size=8, class_names=[str(d) for d in range(10)]
    ).batches
    labels, probabilities = runtime.predict_dataset(model, test_ds)
    expected = runtime.classification_metrics(
        labels, probabilities, [str(d) for d in range(10)]
    )
    for key in ("accuracy", "top5_accuracy", "macro_f1", "examples"):
        assert metrics["test"][key] == pytest.approx(expected[key], abs=1e-6), key
    assert metrics["test"]["confusion_matrix"] == expected["confusion_matrix"]
    assert sum(row["support"] for row in metrics["test"]["per_class"]) == 20
    validation = card["data"]["validation"]["images"]
    assert np.array(metrics["validation"]["confusion_matrix"]).sum() == validation
    # The run card: data, phases, versions.
    assert card["data"]["test"]["images_per_class"] == {str(d): 2 for d in range(10)}
    assert card["data"]["training"]["images"] + validation == 120
    assert set(card["phase_seconds"]) == {"head"}
    assert card["settings"]["class_weight"] == "auto"
    assert card["settings"]["model"] == "mobilenetv3small_feature_extraction"
    assert card["settings"]["image_size"] == 32
    assert card["versions"]["keras"] == keras.__version__
    # Each export, checked with its own runtime, agrees with the Keras model.
    exports = metrics["exports"]
    assert sorted(Path(path).name for path in exports) == [
        "model.tflite",
        "saved_model",
    ]
    assert all(figures["agreement"] >= 0.99 for figures in exports.values())
    # On the test images, as the report: 2 of each digit.
    assert all(figures["images"] == "test" for figures in exports.values())
    assert all(figures["examples"] == 20 for figures in exports.values())
    assert "Exported out/export/model.tflite: accuracy" in result.stdout
    assert "XNNPACK" not in result.stdout + result.stderr  # TFLite's C++ INFO line
    assert set(exports) == {"export/model.tflite", "export/saved_model"}  # relative
    labels = (out / "export" / "labels.txt").read_text().splitlines()
    assert labels == [str(d) for d in range(10)]
    # The mistakes: counted off the confusion matrix, the top three printed.
    for subset in ("validation", "test"):
        assert metrics[subset]["most_confused"] == runtime.metrics.most_confused(
            metrics[subset]["confusion_matrix"], labels
        )
    for true, predicted, count in metrics["test"]["most_confused"][:3]:
        assert f"  {true} -> {predicted}  {count} time" in result.stdout
    # Pictures a person can look at.
    with Image.open(out / "confusion_matrix.png") as picture:
        assert picture.size[0] >= 600 and picture.size[1] >= 500
    with Image.open(out / "training_curves.png") as picture:
        assert picture.size == (1000, 400)
    with Image.open(out / "top_losses.png") as picture:  # 16 of the 24 images
        assert picture.size == (1040, 730)  # each beside its heatmap, 4 rows
    with Image.open(out / "explanations.png") as picture:  # 3 of each class
        assert picture.size[0] == 780 and picture.size[1] > 1000
