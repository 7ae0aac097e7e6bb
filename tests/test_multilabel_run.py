"""A multi-label fine-tune on pairs of digits, whose label sets the test knows.

Each image is two different digits side by side (tests/digits.py), labelled
with both, in a table with a split column. One run (the demo's digit base,
MobileNetV3Small at 32 px) is shared by the asserts: it beats chance clearly,
its thresholds are the F1-optimal ones on its validation images, its mAP is
scikit-learn's, and `kerastl predict` gives the label sets the thresholds say.
"""

import csv
import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn import metrics as skm

from kerastl.cli import cli
from tests.conftest import REPO, new_script, run_script
from tests.digits import write_digit_pairs

pytestmark = pytest.mark.slow

DEMO_WEIGHTS = REPO / "examples" / "digits_base" / "mobilenetv3small_32px.weights.h5"
SPLITS = {"val": 80, "test": 40}
CLASSES = 10
SIZE = 64
# Chance: a class is on 2 images in 10, so a model that ranks at random has
# an average precision near 0.2, and an F1 near 0.2 to 0.33 (answering yes
# at random, or always). Measured: mAP 0.75, micro-F1 0.50 on the test images
# (exact match 0.05: F1-optimal thresholds from 80 images are rough).
MIN_MAP = 0.55
MIN_MICRO_F1 = 0.4


@pytest.fixture(scope="session")
def multilabel_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The finished run, its images and their label sets, by split."""
    folder = tmp_path_factory.mktemp("multilabel")
    rows = write_digit_pairs(folder / "pairs", count=400, splits=SPLITS)
    script = new_script(
        folder,
        *("--mode", "fine-tune", "--task", "multi-label"),
        *("--backbone", "MobileNetV3Small", "--image-size", str(SIZE)),
    )
    result = run_script(
        script,
        *("--data-dir", "pairs", "--labels", "pairs/labels.csv"),
        *("--weights", str(DEMO_WEIGHTS), "--no-augment", "--batch-size", "32"),
        *("--epochs", "3", "--learning-rate", "0.01", "--unfreeze", "all"),
        *("--fine-tune-epochs", "4", "--fine-tune-learning-rate", "0.001"),
        *("--output-dir", "run"),
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    run = folder / "run"
    sets: dict[str, dict[str, tuple[int, int]]] = {}
    for name, digits, split in rows:
        sets.setdefault(split, {})[name] = digits
    return {
        "run": run,
        "images": folder / "pairs",
        "sets": sets,
        "stdout": result.stdout,
        "metrics": json.loads((run / "metrics.json").read_text()),
        "labels": json.loads((run / "labels.json").read_text()),
    }


def multi_hot(sets: dict[str, tuple[int, int]]) -> np.ndarray:
    rows = np.zeros((len(sets), CLASSES))
    for row, digits in zip(rows, sets.values()):
        row[list(digits)] = 1
    return rows


@cache
def shipped_model(path: Path):
    """The run's shipped model, loaded once for every assert."""
    import keras

    return keras.saving.load_model(path)


def probabilities(run: dict, split: str, *, cached: bool = False) -> np.ndarray:
    """The shipped model's probabilities of a split's images, read as
    `kerastl predict` reads them; `cached`: rounded to uint8 as the training
    pipeline's cache keeps the training and validation images."""
    import tensorflow as tf

    from kerastl.runtime.predict import load_image

    model = shipped_model(run["run"] / run["metrics"]["model"])
    images = [
        load_image(tf.constant(str(run["images"] / name)), SIZE)
        for name in run["sets"][split]
    ]
    if cached:
        images = [tf.round(image) for image in images]
    return np.asarray(model.predict_on_batch(tf.stack(images)))


def test_it_beats_chance_clearly(multilabel_run: dict) -> None:
    test = multilabel_run["metrics"]["test"]
    assert test["mean_average_precision"] >= MIN_MAP, test
    assert test["micro_f1"] >= MIN_MICRO_F1, test
    assert multilabel_run["metrics"]["task"] == "multi-label"
    assert "The test images, with" in multilabel_run["stdout"]
    assert "Thresholds (F1-optimal on the validation images):" in (
        multilabel_run["stdout"]
    )
    for picture in ("class_figures.png", "top_losses.png", "training_curves.png"):
        assert (multilabel_run["run"] / picture).is_file()
    assert not (multilabel_run["run"] / "confusion_matrix.png").exists()


def test_the_thresholds_are_f1_optimal_on_the_validation_images(
    multilabel_run: dict,
) -> None:
    saved = multilabel_run["labels"]
    assert saved["task"] == "multi-label"
    assert saved["classes"] == [str(digit) for digit in range(CLASSES)]
    thresholds = np.array(saved["thresholds"])
    assert list(multilabel_run["metrics"]["thresholds"].values()) == saved["thresholds"]
    truth = multi_hot(multilabel_run["sets"]["val"])
    scores = probabilities(multilabel_run, "val", cached=True)
    for index, threshold in enumerate(thresholds):
        assert 0 < threshold < 1
        chosen = skm.f1_score(truth[:, index], scores[:, index] >= threshold)
        # Every cut at one of the class's scores, at once (rows: cuts).
        answers = scores[None, :, index] >= scores[:, index, None]
        hits = (answers & (truth[None, :, index] == 1)).sum(axis=1)
        best = np.max(2 * hits / (answers.sum(axis=1) + truth[:, index].sum()))
        assert chosen == pytest.approx(best), index
        figures = multilabel_run["metrics"]["validation"]["per_class"][index]
        assert figures["f1"] == pytest.approx(chosen)


def test_the_map_is_scikit_learns(multilabel_run: dict) -> None:
    truth = multi_hot(multilabel_run["sets"]["test"])
    scores = probabilities(multilabel_run, "test")
    present = truth.any(axis=0)
    expected = skm.average_precision_score(
        truth[:, present], scores[:, present], average="macro"
    )
    test = multilabel_run["metrics"]["test"]
    assert test["mean_average_precision"] == pytest.approx(expected, abs=1e-4)


def test_predict_writes_the_label_sets_over_the_thresholds(
    multilabel_run: dict, tmp_path: Path
) -> None:
    known = multilabel_run["sets"]["test"]
    paths = [str(multilabel_run["images"] / name) for name in known]
    output = tmp_path / "predictions.csv"
    result = CliRunner().invoke(
        cli, ["predict", str(multilabel_run["run"]), *paths, "--output", str(output)]
    )
    assert result.exit_code == 0, result.output
    predicted: dict[str, set[int]] = {Path(path).name: set() for path in paths}
    with output.open(newline="") as file:
        for row in csv.DictReader(file):
            if row["class_name"]:
                predicted[Path(row["image"]).name].add(int(row["class_name"]))
    thresholds = np.array(multilabel_run["labels"]["thresholds"])
    over = probabilities(multilabel_run, "test") >= thresholds
    assert [predicted[name] for name in known] == [
        set(np.flatnonzero(row)) for row in over
    ]
    exact = np.mean([predicted[name] == set(known[name]) for name in known])
    test = multilabel_run["metrics"]["test"]
    assert exact == pytest.approx(test["exact_match_accuracy"])
