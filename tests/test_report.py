"""The evaluation report: metrics against hand counts and scikit-learn, the
pictures, the summary, and the class weights (tiny arrays and models)."""

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from sklearn import metrics as skm

from kerastl.runtime import (
    class_weights,
    classification_metrics,
    imbalance_warning,
    plot_confusion_matrix,
    plot_training_curves,
    predict_dataset,
    read_history,
    summary_lines,
)
from kerastl.runtime.errors import DataError
from kerastl.runtime.history import record_epoch
from kerastl.runtime.metrics import most_confused
from kerastl.runtime.report_plots import _most_confused_classes, plot_top_losses
from kerastl.runtime.top_losses import TopLosses

NAMES = ["cat", "dog", "fox"]


def one_hot_probabilities(predicted: list[int], classes: int) -> np.ndarray:
    return np.eye(classes, dtype="float32")[predicted] * 0.8 + 0.2 / classes


def test_metrics_of_a_hand_counted_case() -> None:
    labels = np.array([0, 0, 0, 1, 1, 2])
    predicted = [0, 0, 1, 1, 2, 2]
    metrics = classification_metrics(labels, one_hot_probabilities(predicted, 3), NAMES)
    assert metrics["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert "top5_accuracy" not in metrics
    cat, dog, fox = metrics["per_class"]
    assert cat == {
        "class": "cat",
        "precision": 1.0,
        "recall": pytest.approx(2 / 3),
        "f1": pytest.approx(0.8),
        "support": 3,
    }
    assert (dog["precision"], dog["recall"], dog["f1"]) == (0.5, 0.5, 0.5)
    assert (fox["precision"], fox["recall"]) == (0.5, 1.0)
    assert fox["f1"] == pytest.approx(2 / 3)
    assert metrics["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert metrics["examples"] == 6


def test_undefined_precision_and_recall_are_zero() -> None:
    # "fox" has no examples and is never predicted; "dog" is never predicted.
    labels = np.array([0, 1, 1])
    metrics = classification_metrics(labels, one_hot_probabilities([0, 0, 0], 3), NAMES)
    _, dog, fox = metrics["per_class"]
    assert (dog["precision"], dog["recall"], dog["f1"]) == (0.0, 0.0, 0.0)
    assert fox == {
        "class": "fox",
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "support": 0,
    }
    assert not np.isnan(metrics["macro_f1"])


def test_one_hot_labels_give_the_same_metrics() -> None:
    labels = np.array([0, 2, 1, 2])
    probabilities = one_hot_probabilities([0, 2, 2, 2], 3)
    assert classification_metrics(
        np.eye(3)[labels], probabilities, NAMES
    ) == classification_metrics(labels, probabilities, NAMES)


@pytest.mark.parametrize("classes", [4, 12])
def test_metrics_agree_with_scikit_learn(classes: int) -> None:
    rng = np.random.default_rng(classes)
    labels = rng.integers(0, classes, size=200)
    probabilities = rng.dirichlet(np.ones(classes), size=200)
    # Make the model right more often than chance, and leave one class unpredicted.
    probabilities[np.arange(100), labels[:100]] += 1.0
    probabilities[:, classes - 1] *= 0.01
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    names = [f"class{index}" for index in range(classes)]
    metrics = classification_metrics(labels, probabilities, names)

    predicted = probabilities.argmax(axis=1)
    everyone = list(range(classes))
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        labels, predicted, labels=everyone, zero_division=0
    )
    rows = metrics["per_class"]
    assert [row["precision"] for row in rows] == pytest.approx(precision)
    assert [row["recall"] for row in rows] == pytest.approx(recall)
    assert [row["f1"] for row in rows] == pytest.approx(f1)
    assert [row["support"] for row in rows] == list(support)
    assert metrics["accuracy"] == pytest.approx(skm.accuracy_score(labels, predicted))
    assert metrics["macro_f1"] == pytest.approx(
        skm.f1_score(
            labels, predicted, labels=everyone, average="macro", zero_division=0
        )
    )
    assert (
        metrics["confusion_matrix"]
        == skm.confusion_matrix(labels, predicted, labels=everyone).tolist()
    )
    if classes > 5:
        assert metrics["top5_accuracy"] == pytest.approx(
            skm.top_k_accuracy_score(labels, probabilities, k=5, labels=everyone)
        )
    else:
        assert "top5_accuracy" not in metrics
    assert sum(row["support"] for row in rows) == metrics["examples"] == 200
    assert sum(map(sum, metrics["confusion_matrix"])) == 200
    assert rows[-1]["precision"] == 0.0  # never predicted: no NaN


def test_metrics_refuse_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="3 classes"):
        classification_metrics(np.array([0, 1]), np.ones((2, 4)), NAMES)
    with pytest.raises(ValueError, match="2 labels for 3 rows"):
        classification_metrics(np.array([0, 1]), np.ones((3, 3)), NAMES)
    with pytest.raises(ValueError, match="no examples"):
        classification_metrics(np.zeros(0), np.ones((0, 3)), NAMES)
    with pytest.raises(ValueError, match="labels outside"):
        classification_metrics(np.array([0, 3]), np.ones((2, 3)), NAMES)


@pytest.mark.slow
def test_predict_dataset_lines_labels_up_with_predictions_of_a_shuffled_set() -> None:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Softmax()(inputs * 10.0))
    # Each example's largest feature is its label: a correct model is 100% right.
    labels: np.ndarray = np.arange(20) % 3
    features = np.eye(3, dtype="float32")[labels]
    dataset = (
        tf.data.Dataset.from_tensor_slices((features, labels))
        .shuffle(20, reshuffle_each_iteration=True)
        .batch(6)
    )
    got_labels, probabilities = predict_dataset(model, dataset)
    assert probabilities.shape == (20, 3)
    assert sorted(got_labels.tolist()) == sorted(labels.tolist())
    assert (probabilities.argmax(axis=1) == got_labels).all()

    one_hot = tf.data.Dataset.from_tensor_slices(
        (features, np.eye(3, dtype="float32")[labels])
    ).batch(7)
    got_labels, _ = predict_dataset(model, one_hot)
    assert got_labels.tolist() == labels.tolist()


def test_confusion_matrix_picture(tmp_path: Path) -> None:
    path = plot_confusion_matrix(
        [[5, 1, 0], [2, 3, 0], [0, 0, 4]], NAMES, tmp_path / "out" / "cm.png", "Digits"
    )
    assert path == str(tmp_path / "out" / "cm.png")
    with Image.open(path) as image:
        assert image.size == (750, 600)
        assert image.text["Title"] == "Digits"
    assert [file.name for file in Path(path).parent.iterdir()] == ["cm.png"]


def test_many_classes_show_the_twenty_most_confused(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    matrix = np.diag(rng.integers(5, 10, size=60))
    for true, predicted in [(3, 40), (41, 7), (55, 56), (58, 2)]:
        matrix[true, predicted] = 9
    names = [f"class {index}" for index in range(60)]
    path = plot_confusion_matrix(matrix, names, tmp_path / "cm.png", "Val")
    with Image.open(path) as image:
        assert image.text["Title"] == "Val (20 most confused of 60 classes)"
        assert image.size == (1050, 900)
    shown = _most_confused_classes(matrix, 20)
    assert len(shown) == 20 and shown == sorted(shown)
    assert {2, 3, 7, 40, 41, 55, 56, 58} <= set(shown)


def history_rows(tmp_path: Path) -> list[dict[str, str]]:
    path = tmp_path / "history.csv"
    for epoch, phase in [(1, "head"), (2, "head"), (3, "fine-tune"), (4, "fine-tune")]:
        logs = {"loss": 1 / epoch, "accuracy": 1 - 0.5 / epoch}
        logs.update({"val_loss": 1.2 / epoch, "val_accuracy": 0.9 - 0.5 / epoch})
        record_epoch(path, epoch, phase, logs)
    return read_history(path)[1]


def test_training_curves_picture(tmp_path: Path) -> None:
    path = plot_training_curves(history_rows(tmp_path), tmp_path / "curves.png", "Run")
    with Image.open(path) as image:
        assert image.size == (1000, 400)
        assert image.text["Title"] == "Run"


def test_the_phases_of_the_run_card_are_marked(tmp_path: Path) -> None:
    phases = [
        {"name": "head", "first_epoch": 1, "last_epoch": 2},
        {"name": "fine-tune", "first_epoch": 3, "last_epoch": 4},
    ]
    plain = plot_training_curves(history_rows(tmp_path), tmp_path / "a.png", "Run")
    marked = plot_training_curves(
        history_rows(tmp_path), tmp_path / "b.png", "Run", phases
    )
    with Image.open(plain) as first, Image.open(marked) as second:
        assert first.tobytes() != second.tobytes()  # the phase lines are drawn


def test_training_curves_without_accuracy_or_epochs(tmp_path: Path) -> None:
    rows = [{"epoch": "1", "phase": "head", "loss": "0.5", "val_loss": ""}]
    assert plot_training_curves(rows, tmp_path / "a.png", "A") is not None
    assert plot_training_curves([], tmp_path / "b.png", "B") is not None
    assert sorted(file.name for file in tmp_path.iterdir()) == ["a.png", "b.png"]


@pytest.mark.usefixtures("without_matplotlib")
def test_pictures_are_skipped_without_matplotlib(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert plot_confusion_matrix([[1]], ["a"], tmp_path / "cm.png", "T") is None
    assert plot_training_curves([], tmp_path / "curves.png", "T") is None
    assert capsys.readouterr().out.splitlines() == [  # once per process
        f"matplotlib is not installed: skipping {tmp_path / 'cm.png'}",
    ]
    assert list(tmp_path.iterdir()) == []


def test_summary_lines() -> None:
    labels = np.array([0, 0, 0, 1, 1, 2])
    metrics = classification_metrics(
        labels, one_hot_probabilities([0, 0, 1, 1, 2, 2], 3), NAMES
    )
    assert summary_lines(metrics, weakest=2) == [
        "  accuracy  0.6667",
        "  macro F1  0.6556",
        "  examples  6",
        "Weakest 2 classes by F1:",
        "  dog  F1 0.500  precision 0.500  recall 0.500  (2 examples)",
        "  fox  F1 0.667  precision 0.500  recall 1.000  (1 example)",
        "Most confused (true -> predicted):",
        "  cat -> dog  1 time",
        "  dog -> fox  1 time",
    ]
    metrics["top5_accuracy"] = 1.0
    metrics["per_class"][0]["support"] = 0
    metrics["most_confused"] = []
    lines = summary_lines(metrics, weakest=0)
    assert lines[1] == "  top-5 accuracy  1.0000"
    assert lines[-1] == "No examples of: cat"
    assert not any(line.startswith("Weakest") for line in lines)


def test_most_confused_pairs_come_largest_first() -> None:
    matrix = [[5, 1, 3], [2, 4, 0], [3, 0, 7]]
    assert most_confused(matrix, NAMES) == [
        ["cat", "fox", 3],
        ["fox", "cat", 3],
        ["dog", "cat", 2],
        ["cat", "dog", 1],
    ]
    labels = np.array([0, 0, 0, 1, 1, 2])
    metrics = classification_metrics(
        labels, one_hot_probabilities([0, 1, 1, 1, 2, 2], 3), NAMES
    )
    assert metrics["most_confused"] == [["cat", "dog", 2], ["dog", "fox", 1]]


def test_top_losses_are_the_highest_of_all_batches(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (50, 6, 6, 3)).astype("float32")
    labels = rng.integers(0, 3, 50)
    probabilities = rng.dirichlet(np.ones(3), 50).astype("float32")
    worst = TopLosses(count=16)
    for start in range(0, 50, 8):
        end = start + 8
        worst.add(images[start:end], labels[start:end], probabilities[start:end])
    losses = -np.log(probabilities[np.arange(50), labels])
    expected = np.argsort(-losses)[:16]
    assert worst.losses == pytest.approx(losses[expected])
    assert (worst.labels == labels[expected]).all()
    assert (worst.images == images[expected].round().astype("uint8")).all()
    picture = plot_top_losses(worst, NAMES, tmp_path / "top_losses.png", "Worst")
    with Image.open(picture) as image:  # 16 images: 4 columns, 4 rows
        assert image.size == (1040, 1200)
    assert plot_top_losses(TopLosses(), NAMES, tmp_path / "none.png", "t") is None


def test_class_weights_are_inverse_frequencies() -> None:
    weights = class_weights({"dog": 10, "cat": 30, "fox": 20}, NAMES)
    assert weights == pytest.approx({0: 60 / 90, 1: 60 / 30, 2: 60 / 60})
    with pytest.raises(DataError, match="without images: fox"):
        class_weights({"cat": 3, "dog": 2, "fox": 0}, NAMES)
    with pytest.raises(DataError, match="without images: dog"):
        class_weights({"cat": 3, "fox": 2}, NAMES)


def test_imbalance_warning() -> None:
    assert imbalance_warning({"cat": 50, "dog": 10}) is None
    assert imbalance_warning({"cat": 5}) is None
    warning = imbalance_warning({"cat": 51, "dog": 10, "fox": 20})
    assert warning is not None and "\n" not in warning
    assert "'cat' has 51 images, 5.1 times as many as 'dog' (10)" in warning
    assert warning.endswith("--class-weight auto.")
