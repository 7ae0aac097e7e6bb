"""Multi-label classification: thresholds, metrics and loss against hand-computed
values and scikit-learn, labels.json, mixing multi-hot labels, the generated step 7."""

import json
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from kerastl.common.ranking import over_thresholds
from sklearn import metrics as skm

from kerastl.common import labels as common_labels
from kerastl.predict_output import label_lines
from kerastl.runtime import (
    WeightedBinaryCrossentropy,
    choose_thresholds,
    multi_label_loss,
    multilabel_metrics,
    save_labels,
)
from kerastl.runtime.epochs import mix_batch
from kerastl.runtime.errors import DataError
from kerastl.runtime.export_check import compare
from kerastl.runtime.multilabel import positive_weights
from kerastl.runtime.multilabel_metrics import (
    FALLBACK_THRESHOLD,
    average_precision,
    best_threshold,
    multilabel_summary_lines,
)
from kerastl.runtime.predict import PREDICTION_COLUMNS, labels_over_thresholds

from .conftest import data_settings, new_script
from .digits import write_digit_pairs

NAMES = ["cat", "dog", "fox"]


def test_average_precision_of_a_hand_computed_case() -> None:
    # Ranked 0.9 (yes), 0.8 (no), 0.7 (yes), 0.1 (no): precision 1 at recall
    # 1/2, then 2/3 at recall 1: AP = 1/2 * 1 + 1/2 * 2/3.
    labels, scores = [1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1]
    assert average_precision(labels, scores) == pytest.approx(0.5 + 1 / 3)
    assert average_precision([0, 0, 0, 0], scores) is None


def test_average_precision_and_thresholds_agree_with_scikit_learn() -> None:
    random = np.random.default_rng(3)
    for _ in range(20):
        labels = random.integers(0, 2, 25)
        scores = random.integers(0, 6, 25) / 6  # ties, as a sigmoid's can be
        if not labels.any():
            continue
        assert average_precision(labels, scores) == pytest.approx(
            skm.average_precision_score(labels, scores)
        )
        chosen = skm.f1_score(labels, scores >= best_threshold(labels, scores))
        best = max(skm.f1_score(labels, scores >= value) for value in set(scores))
        assert chosen == pytest.approx(best)


def test_the_threshold_is_the_midpoint_below_the_best_score() -> None:
    # Cut at >= 0.8 gives F1 1 (both positives, no negative): the threshold
    # is halfway to the next lower score, 0.3.
    assert best_threshold([0, 1, 1, 0], [0.1, 0.9, 0.8, 0.3]) == pytest.approx(0.55)
    # Below the lowest score: half of it.
    assert best_threshold([1, 1], [0.6, 0.4]) == pytest.approx(0.2)


def test_a_tie_takes_the_highest_threshold_and_no_positive_the_fallback() -> None:
    # At >= 0.9: tp 1, fp 0, fn 1: F1 2/3; at >= 0.5: tp 2, fp 2: F1 2/3 too;
    # the tie goes to the higher cut, whose midpoint is (0.9 + 0.5) / 2.
    labels, scores = [1, 1, 0, 0], [0.9, 0.5, 0.5, 0.5]
    assert best_threshold(labels, scores) == pytest.approx(0.7)
    assert best_threshold([0, 0, 0], [0.2, 0.9, 0.4]) == FALLBACK_THRESHOLD
    assert choose_thresholds(
        [[1, 0], [0, 0]], [[0.9, 0.3], [0.2, 0.8]]
    ) == pytest.approx([0.55, FALLBACK_THRESHOLD])


def test_metrics_of_a_hand_counted_case() -> None:
    labels = np.array([[1, 1, 0], [1, 0, 0], [0, 1, 1], [0, 0, 0]])
    probabilities = np.array(
        [[0.9, 0.6, 0.1], [0.8, 0.2, 0.7], [0.3, 0.7, 0.9], [0.1, 0.4, 0.2]]
    )
    metrics = multilabel_metrics(labels, probabilities, NAMES, [0.5, 0.5, 0.5])
    # Predicted: {cat, dog}, {cat, fox}, {dog, fox}, {}: rows 0, 2 and 3 exact.
    assert metrics["exact_match_accuracy"] == pytest.approx(3 / 4)
    cat, dog, fox = metrics["per_class"]
    assert (cat["precision"], cat["recall"], cat["f1"]) == (1.0, 1.0, 1.0)
    assert (dog["precision"], dog["recall"], dog["support"]) == (1.0, 1.0, 2)
    assert (fox["precision"], fox["recall"]) == (0.5, 1.0)
    assert fox["f1"] == pytest.approx(2 / 3)
    # Micro: tp 5, fp 1, fn 0.
    assert metrics["micro_f1"] == pytest.approx(10 / 11)
    assert metrics["macro_f1"] == pytest.approx((1 + 1 + 2 / 3) / 3)
    assert fox["average_precision"] == pytest.approx(1.0)
    assert metrics["mean_average_precision"] == pytest.approx(
        skm.average_precision_score(labels, probabilities, average="macro")
    )
    expected_loss = skm.log_loss(labels.ravel(), probabilities.ravel())
    assert metrics["loss"] == pytest.approx(expected_loss, rel=1e-6)
    lines = multilabel_summary_lines(metrics)
    assert lines[0].split() == ["mAP", f"{metrics['mean_average_precision']:.4f}"]


def test_a_class_without_examples_has_no_average_precision() -> None:
    labels = np.array([[1, 0], [1, 0]])
    metrics = multilabel_metrics(
        labels, [[0.9, 0.2], [0.7, 0.6]], ["a", "b"], [0.5] * 2
    )
    assert metrics["per_class"][1]["average_precision"] is None
    assert metrics["mean_average_precision"] == 1.0
    assert metrics["macro_f1"] == 1.0  # over the classes that have examples
    json.dumps(metrics, allow_nan=False)
    assert "No examples of: b" in multilabel_summary_lines(metrics)


def test_labels_json_keeps_the_thresholds(tmp_path) -> None:
    path = save_labels(tmp_path, NAMES, [0.4, 0.5, 0.25])
    data = json.loads(Path(path).read_text())
    assert common_labels.class_names_in(data, "labels.json") == NAMES
    assert common_labels.thresholds_in(data, "labels.json") == [0.4, 0.5, 0.25]
    single = json.loads(Path(save_labels(tmp_path, NAMES)).read_text())
    assert single == NAMES
    assert common_labels.thresholds_in(single, "labels.json") is None
    with pytest.raises(ValueError, match="a threshold for each"):
        common_labels.thresholds_in({**data, "thresholds": [0.5]}, "labels.json")


def test_positive_weights_balance_each_class() -> None:
    weights = positive_weights({"a": 2, "b": 5}, 10, ["a", "b"])
    assert weights == [4.0, 1.0]
    with pytest.raises(DataError, match="without images: b"):
        positive_weights({"a": 2}, 10, ["a", "b"])
    with pytest.raises(DataError, match="every training image has: a"):
        positive_weights({"a": 10, "b": 1}, 10, ["a", "b"])


@pytest.mark.slow
def test_the_weighted_loss_weighs_positives_and_reloads() -> None:
    labels = np.array([[1.0, 0.0], [0.0, 1.0]], "float32")
    scores = np.array([[0.8, 0.3], [0.4, 0.6]], "float32")
    plain = keras.losses.BinaryCrossentropy(label_smoothing=0.1)
    assert isinstance(multi_label_loss(0.1), keras.losses.BinaryCrossentropy)
    unweighted = WeightedBinaryCrossentropy([1.0, 1.0], label_smoothing=0.1)
    assert float(unweighted(labels, scores)) == pytest.approx(
        float(plain(labels, scores)), rel=1e-5
    )
    weighted = multi_label_loss(0.0, [3.0, 1.0])
    terms = [3 * np.log(0.8), np.log(0.7), np.log(0.6), np.log(0.6)]
    assert float(weighted(labels, scores)) == pytest.approx(-sum(terms) / 4, rel=1e-5)
    again = keras.losses.deserialize(keras.losses.serialize(weighted))
    assert float(again(labels, scores)) == pytest.approx(
        float(weighted(labels, scores))
    )


def on_segment(point, start, end) -> bool:
    """Whether `point` is `w * start + (1 - w) * end` for some w in [0, 1]."""
    direction = start - end
    if not direction.any():
        return np.allclose(point, start, atol=1e-5)
    weight = float(np.dot(point - end, direction) / np.dot(direction, direction))
    return -1e-5 <= weight <= 1 + 1e-5 and np.allclose(
        point, weight * start + (1 - weight) * end, atol=1e-5
    )


@pytest.mark.slow
@pytest.mark.parametrize("layer", [keras.layers.MixUp(0.4), keras.layers.CutMix(1.0)])
def test_mixing_blends_multi_hot_rows(layer) -> None:
    images = tf.constant(
        np.random.default_rng(1).uniform(0, 255, (6, 8, 8, 3)), "float32"
    )
    labels = tf.constant(
        [[1, 1, 0], [0, 1, 1], [1, 0, 1], [1, 1, 0], [0, 0, 1], [1, 0, 0]], "float32"
    )
    _, mixed = mix_batch([layer], images, labels, tf.constant([5, 0], tf.int64))
    mixed = np.asarray(mixed)
    assert mixed.shape == (6, 3) and mixed.min() >= 0 and mixed.max() <= 1 + 1e-6
    # Each row is w * its own labels + (1 - w) * another row's, for one w.
    rows = np.asarray(labels)
    for row, own in zip(mixed, rows):
        assert any(on_segment(row, own, other) for other in rows), (row, own)
    assert not np.allclose(mixed, rows)


def test_step_7_follows_the_task(tmp_path) -> None:
    options = ("--backbone", "MobileNetV3Small", "--image-size", "32")
    multi = new_script(tmp_path, "--task", "multi-label", *options).read_text()
    assert 'activation="sigmoid", dtype="float32"' in multi
    assert "loss=runtime.multi_label_loss(" in multi
    assert "multi_label=True" in multi
    assert "--task multi-label" in multi.splitlines()[1]
    single = new_script(tmp_path, *options, name="single.py").read_text()
    assert 'activation="softmax"' in single and "CategoricalCrossentropy" in single


def test_predictions_list_every_label_over_its_threshold() -> None:
    scores = np.array([[0.9, 0.2, 0.6], [0.1, 0.2, 0.3]])
    rows = labels_over_thresholds(["a.png", "b.png"], scores, [0.5, 0.5, 0.55], NAMES)
    assert [(row["image"], row["rank"], row["class_name"]) for row in rows] == [
        ("a.png", 1, "cat"),
        ("a.png", 2, "fox"),
        ("b.png", "", ""),  # no label over its threshold: listed all the same
    ]
    assert rows[1]["probability"] == 0.6 and set(rows[2]) == set(PREDICTION_COLUMNS)
    assert over_thresholds(scores[0], [0.5, 0.5, 0.55], k=1) == [0]
    lines = list(
        label_lines([Path("a.png"), Path("b.png")], scores, [0.5] * 3, None, NAMES)
    )
    assert lines == [
        "a.png  cat 0.9000, fox 0.6000",
        "b.png  no label over its threshold",
    ]


@pytest.mark.slow
def test_exports_are_judged_on_label_sets() -> None:
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, "sigmoid")])
    model.set_weights([np.array([[4.0, 0.0], [0.0, 4.0]]), np.array([-2.0, -2.0])])
    images = np.array([[1, 1], [1, 0], [0, 0], [0, 1]], "float32")  # sets as given
    labels = np.array([[1, 1], [1, 0], [0, 1], [0, 1]], "float32")
    batches = tf.data.Dataset.from_tensor_slices((images, labels)).batch(2)
    figures = compare(model, model.predict_on_batch, batches, [0.5, 0.5])
    assert figures["accuracy"] == 0.75 and figures["agreement"] == 1.0
    shifted = compare(model, lambda x: np.asarray(model(x)) * 0.9, batches, [0.5, 0.85])
    # The second label's 0.88 falls to 0.79, under its 0.85: the two images
    # that have it lose it (2 of the 8 decisions); the first label's 0.79
    # stays over 0.5.
    assert shifted["agreement"] == 0.75
    assert shifted["accuracy"] == 0.25  # exact match: one label set stays right


@pytest.mark.slow
def test_a_labels_table_loads_for_a_multi_label_script_only(tmp_path) -> None:
    from kerastl.runtime import load_training_data

    rows = write_digit_pairs(tmp_path / "pairs", count=30, classes=4, size=8)
    settings = data_settings(
        output_dir=str(tmp_path / "run"),
        data_dir=str(tmp_path / "pairs"),
        labels=str(tmp_path / "pairs" / "labels.csv"),
        validation_split=0.3,
        image_size=8,
        class_weight="auto",
    )
    strategy = tf.distribute.get_strategy()
    with pytest.raises(DataError, match="generate it with --task multi-label"):
        load_training_data(settings, strategy)
    data = load_training_data(settings, strategy, multi_label=True)
    assert data.multi_label and data.class_weight is None
    labels = np.concatenate([np.asarray(y) for _, y in data.validation])
    assert labels.shape[1] == 4 and set(labels.sum(axis=1)) == {2.0}
    counts = data.train_files.class_counts
    images = len(data.train_files.paths)
    assert data.positive_weights == [
        (images - counts[name]) / counts[name] for name in data.class_names
    ]
    assert sum(counts.values()) == 2 * images  # two digits on each image
    assert len(rows) == 30
