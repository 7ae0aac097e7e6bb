"""How an exported artifact compares with the Keras model, and the line that says so."""

from functools import partial

import keras
import numpy as np
import tensorflow as tf

from .export_types import Predict
from .metric_math import class_indices
from .multilabel_metrics import decisions


def compare(
    model: keras.Model,
    predict: Predict,
    validation_data: tf.data.Dataset,
    thresholds: list[float] | None = None,
) -> dict:
    """The artifact's accuracy beside the Keras model's, and how they agree.

    A single-label model's answer is its top class; a multi-label one's (with
    `thresholds`) the set of labels at least their thresholds: its accuracy
    is then the exact-match accuracy, and its agreement the share of the
    (image, label) decisions that are the same (whole label sets are held to
    the agreement gate of one top class otherwise: one label in ten images
    flipping would fail an int8 export).
    """
    if thresholds is None:
        answer, truth = _top_class, class_indices  # one-hot rows
    else:
        answer = partial(decisions, thresholds=thresholds)
        truth = _label_sets
    right = keras_right = total = 0
    agree = 0.0
    difference = 0.0
    for images, labels in validation_data:
        images = np.asarray(images, dtype="float32")
        probabilities = np.asarray(model.predict_on_batch(images))
        expected = answer(probabilities)
        actual = predict(images)
        labels = truth(labels)
        right += _same(answer(actual), labels)
        keras_right += _same(expected, labels)
        if thresholds is None:
            agree += _same(answer(actual), expected)
        else:  # decisions, not whole label sets
            agree += float(np.mean(answer(actual) == expected)) * len(labels)
        difference = max(difference, float(np.max(np.abs(actual - probabilities))))
        total += len(labels)
    accuracy, keras_accuracy = right / max(total, 1), keras_right / max(total, 1)
    return {
        "accuracy": accuracy,
        "keras_accuracy": keras_accuracy,
        "accuracy_change": accuracy - keras_accuracy,
        "agreement": agree / max(total, 1),
        "agreement_of": "top-1" if thresholds is None else "per-label",
        "max_probability_difference": difference,
        "examples": total,
    }


def _top_class(probabilities: np.ndarray) -> np.ndarray:
    return probabilities.argmax(axis=1)


def _label_sets(labels) -> np.ndarray:
    return np.asarray(labels) >= 0.5


def _same(answers: np.ndarray, others: np.ndarray) -> int:
    """How many rows of two answers (classes or label sets) are the same."""
    equal = np.asarray(answers) == np.asarray(others)
    return int(equal.reshape(len(equal), -1).all(axis=1).sum())


def export_line(path: str, figures: dict) -> str:
    """What the script prints of one checked artifact."""
    weights = "" if figures["weights"] == "none" else f"{figures['weights']} weights, "
    return (
        f"Exported {path}: accuracy {figures['accuracy']:.4f} (the Keras model's "
        f"{figures['keras_accuracy']:.4f}: {100 * figures['accuracy_change']:+.2f} "
        f"points) on {figures['examples']} {figures['images']} images, "
        f"{figures.get('agreement_of', 'top-1')} agreement {figures['agreement']:.2%}, largest probability difference "
        f"{figures['max_probability_difference']:.2g} ({weights}checked with "
        f"{figures['runtime']})"
    )
