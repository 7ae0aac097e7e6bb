"""A model's predictions over a labelled dataset, in one pass, kept per weights.

Plain numpy, importable without TensorFlow (a model and a dataset are passed in).
"""

import hashlib
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .feature_predictions import predictor_from_features
from .metric_math import class_indices
from .tta import mirror
from .weights_digest import weights_hash

TOP_LOSSES = 16


class TopLosses:
    """The images with the highest loss seen so far, at most `count`, kept as uint8.

    Feed it batches with `add`; it holds `count` images whatever the number of
    batches, so it can follow a whole validation pass.
    """

    def __init__(self, count: int = TOP_LOSSES) -> None:
        self.count = count
        self.images: np.ndarray = np.zeros((0, 0, 0, 3), dtype="uint8")
        self.labels: np.ndarray = np.zeros(0, dtype="int64")
        self.probabilities: np.ndarray = np.zeros((0, 0), dtype="float32")
        self.losses: np.ndarray = np.zeros(0, dtype="float64")

    def add(self, images, labels, probabilities) -> None:
        """Takes one batch: raw 0-255 images, true classes, predicted probabilities."""
        images = np.clip(np.asarray(images), 0, 255).round().astype("uint8")
        labels = class_indices(labels)
        probabilities = np.asarray(probabilities, dtype="float32")
        losses = -np.log(
            np.clip(probabilities[np.arange(len(labels)), labels], 1e-7, 1.0)
        ).astype("float64")
        if len(self.losses):
            images = np.concatenate([self.images, images])
            labels = np.concatenate([self.labels, labels])
            probabilities = np.concatenate([self.probabilities, probabilities])
            losses = np.concatenate([self.losses, losses])
        kept = np.argsort(-losses, kind="stable")[: self.count]
        self.images, self.labels = images[kept], labels[kept]
        self.probabilities, self.losses = probabilities[kept], losses[kept]


def predict_dataset(
    model,
    dataset,
    worst: TopLosses | None = None,
    *,
    mirrored: list[np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The labels and predicted probabilities of a batched dataset, in one pass.

    Each batch is predicted as it is read, so the labels line up with the
    predictions even when the dataset shuffles on every pass.

    Args:
        model: A Keras model whose outputs are class probabilities.
        dataset: Batches of `(images, labels)`; labels are class indices or
            one-hot rows.
        worst: If given, it is fed every batch, to keep the top losses.
        mirrored: If given, receives the probabilities of each batch's mirror
            images (`tta.mirror`), in the same pass.

    Returns:
        The class indices, shape `(n,)`, and the probabilities, `(n, classes)`.
    """
    labels, probabilities, _ = _predict_pass(
        model.predict_on_batch, dataset, worst, mirrored
    )
    return labels, probabilities


@dataclass(frozen=True, eq=False)
class Predictions:
    """One pass of a model over a labelled dataset (`predictions_of`).

    Attributes:
        labels: The true class indices, shape `(n,)` (of multi-hot rows: the
            first class of each).
        probabilities: The model's outputs, shape `(n, classes)`.
        one_hot: Whether the dataset's labels are one-hot (or multi-hot) rows.
        worst: The images with the highest loss.
        images: A hash of the images in the order they were read.
        rows: The label rows as the dataset gives them, or None for indices.
    """

    labels: np.ndarray
    probabilities: np.ndarray
    one_hot: bool
    worst: TopLosses
    images: str
    rows: np.ndarray | None = None

    def targets(self) -> np.ndarray:
        """The labels as the dataset gives them: class indices or label rows."""
        return self.labels if self.rows is None else self.rows


#: The latest passes of `predictions_of`: (model, dataset, weights hash, result).
_PASSES: list[tuple[Any, Any, str, Predictions]] = []
_PASSES_KEPT = 2


def predictions_of(model, dataset) -> Predictions:
    """The predictions of `model` over `dataset`, once per set of weights.

    Choosing the file to ship and reporting on it need the same predictions
    of the validation set: a call with the same model and dataset objects
    whose weights hash the same as in one of the last two calls returns that
    call's result instead of predicting again. Where the feature cache holds
    the frozen base's outputs on the dataset's images
    (`feature_predictions.predict_from_features`), the head predicts from them.

    Args:
        model: A Keras model whose outputs are class probabilities.
        dataset: Batches of `(images, labels)`; labels are class indices or
            one-hot rows.
    """
    weights = weights_hash(model)
    for model_ref, dataset_ref, kept_weights, kept in _PASSES:
        if (
            model_ref() is model
            and dataset_ref() is dataset
            and kept_weights == weights
        ):
            return kept
    from_features = predictor_from_features(model, dataset)
    while True:
        worst = TopLosses()
        images = hashlib.blake2b(digest_size=16)
        rows: list[np.ndarray] = []
        labels, probabilities, one_hot = _predict_pass(
            from_features or model.predict_on_batch, dataset, worst, None, images, rows
        )
        if from_features is None or from_features.lines_up(_joined(rows)):
            break
        from_features = None  # other images than the features': predict them
    predictions = Predictions(
        labels,
        probabilities,
        one_hot,
        worst,
        images.hexdigest(),
        np.concatenate(rows) if one_hot and rows else None,
    )
    try:
        refs = (weakref.ref(model), weakref.ref(dataset))
    except TypeError:  # an object that takes no weak reference is not kept
        return predictions
    _PASSES.insert(0, (*refs, weights, predictions))
    del _PASSES[_PASSES_KEPT:]
    return predictions


def with_mirror_images(
    model, dataset, predictions: Predictions
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`predictions` with the probabilities of each image's mirror image.

    The mirror images are predicted in a pass of their own; if that pass reads
    other images or another order than `predictions` (a dataset that shuffles
    on every pass), both are predicted again in one pass.

    Returns:
        The class indices, the probabilities and the mirror images'
        probabilities, lined up.
    """
    images = hashlib.blake2b(digest_size=16)
    mirrored: list[np.ndarray] = []
    for batch in dataset:
        _hash_images(images, batch[0])
        mirrored.append(np.asarray(model.predict_on_batch(mirror(batch[0]))))
    if mirrored and images.hexdigest() == predictions.images:
        return predictions.labels, predictions.probabilities, np.concatenate(mirrored)
    mirrored = []
    labels, probabilities = predict_dataset(model, dataset, mirrored=mirrored)
    return (
        labels,
        probabilities,
        np.concatenate(mirrored) if mirrored else probabilities,
    )


def _predict_pass(
    predict: Callable[[Any], Any],
    dataset: Any,
    worst: TopLosses | None,
    mirrored: list[np.ndarray] | None,
    images: Any = None,
    rows: list[np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Labels, probabilities and whether the labels are one-hot, in one pass of
    `predict` (a model's `predict_on_batch`); `rows`, if given, receives each
    batch's labels as the dataset gives them."""
    labels: list[np.ndarray] = []
    probabilities: list[np.ndarray] = []
    one_hot = False
    for batch in dataset:
        batch_images, batch_labels = batch[0], np.asarray(batch[1])
        if images is not None:
            _hash_images(images, batch_images)
        probabilities.append(np.asarray(predict(batch_images)))
        one_hot = batch_labels.ndim == 2
        if rows is not None:
            rows.append(batch_labels.astype("float32"))
        labels.append(class_indices(batch_labels))
        if mirrored is not None:
            mirrored.append(np.asarray(predict(mirror(batch_images))))
        if worst is not None:
            worst.add(batch_images, labels[-1], probabilities[-1])
    if not labels:
        return np.zeros(0, dtype="int64"), np.zeros((0, 0), dtype="float32"), one_hot
    return np.concatenate(labels), np.concatenate(probabilities), one_hot


def _joined(batches: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(batches) if batches else np.zeros(0, dtype="float32")


def _hash_images(digest, images) -> None:
    digest.update(np.ascontiguousarray(np.asarray(images)).view(np.uint8).reshape(-1))
