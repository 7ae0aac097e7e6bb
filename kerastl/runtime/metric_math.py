"""The arithmetic the figures share: class indices, safe ratios, cross-entropy."""

import numpy as np


def class_indices(labels) -> np.ndarray:
    """Class indices from indices or one-hot rows."""
    labels = np.asarray(labels)
    if labels.ndim == 2:
        labels = labels.argmax(axis=1)
    return labels.reshape(-1).astype("int64")


def ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """`numerator / denominator`, 0 where the denominator is 0."""
    numerator = np.asarray(numerator, dtype="float64")
    denominator = np.broadcast_to(
        np.asarray(denominator, dtype="float64"), numerator.shape
    )
    result = np.zeros(numerator.shape)
    np.divide(numerator, denominator, out=result, where=denominator != 0)
    return result


def cross_entropy(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """The mean sparse categorical cross-entropy, clipped as Keras clips it."""
    chosen = probabilities[np.arange(len(labels)), labels]
    return float(np.mean(-np.log(np.clip(chosen, 1e-7, 1.0))))
