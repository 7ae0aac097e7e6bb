"""How an exported artifact compares with the Keras model, and the line that says so."""

import keras
import numpy as np
import tensorflow as tf

from .export_types import Predict
from .metrics import class_indices


def compare(
    model: keras.Model, predict: Predict, validation_data: tf.data.Dataset
) -> dict:
    """The artifact's accuracy beside the Keras model's, and how they agree."""
    right = keras_right = agree = total = 0
    difference = 0.0
    for images, labels in validation_data:
        images = np.asarray(images, dtype="float32")
        probabilities = np.asarray(model.predict_on_batch(images))
        expected = probabilities.argmax(axis=1)
        actual = predict(images)
        labels = class_indices(labels)  # one-hot rows
        right += int(np.sum(actual.argmax(axis=1) == labels))
        keras_right += int(np.sum(expected == labels))
        agree += int(np.sum(actual.argmax(axis=1) == expected))
        difference = max(difference, float(np.max(np.abs(actual - probabilities))))
        total += len(labels)
    accuracy, keras_accuracy = right / max(total, 1), keras_right / max(total, 1)
    return {
        "accuracy": accuracy,
        "keras_accuracy": keras_accuracy,
        "accuracy_change": accuracy - keras_accuracy,
        "agreement": agree / max(total, 1),
        "max_probability_difference": difference,
        "examples": total,
    }


def export_line(path: str, figures: dict) -> str:
    """What the script prints of one checked artifact."""
    weights = "" if figures["weights"] == "none" else f"{figures['weights']} weights, "
    return (
        f"Exported {path}: accuracy {figures['accuracy']:.4f} (the Keras model's "
        f"{figures['keras_accuracy']:.4f}: {100 * figures['accuracy_change']:+.2f} "
        f"points) on {figures['examples']} {figures['images']} images, top-1 "
        f"agreement {figures['agreement']:.2%}, largest probability difference "
        f"{figures['max_probability_difference']:.2g} ({weights}checked with "
        f"{figures['runtime']})"
    )
