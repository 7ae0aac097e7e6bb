"""A model's predictions over a labelled dataset, in one pass, kept per weights.

Plain numpy, importable without TensorFlow (a model and a dataset are passed in).
"""

import hashlib
import itertools
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .feature_predictions import predictor_from_features
from .metric_math import class_indices
from .top_losses import TopLosses
from .tta import mirror
from .weights_digest import weights_hash

#: A set whose images hold at most this many pixels in all (64 images of
#: 224 x 224) is predicted in one eager call of the model: tracing a predict
#: function (`predict_on_batch`) costs more than that call saves.
EAGER_PIXELS = 64 * 224 * 224


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
    predict = model.predict_on_batch
    labels, probabilities, _ = _predict_pass(
        _predicted(predict, dataset),
        worst,
        None if mirrored is None else (mirrored, predict),
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
        batches = (
            _predicted_small_set(model, dataset)
            if from_features is None
            else _predicted(from_features, dataset)
        )
        labels, probabilities, one_hot = _predict_pass(
            batches, worst, None, images, rows
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
    batches: Iterable[tuple[Any, Any, np.ndarray]],
    worst: TopLosses | None,
    mirrored: tuple[list[np.ndarray], Callable[[Any], Any]] | None,
    images: Any = None,
    rows: list[np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Labels, probabilities and whether the labels are one-hot, from
    `batches` of images, labels and predictions; `rows`, if given, receives
    each batch's labels as the dataset gives them, `mirrored` (a list and a
    predict function) the predictions of each batch's mirror images."""
    labels: list[np.ndarray] = []
    probabilities: list[np.ndarray] = []
    one_hot = False
    for batch_images, batch_labels, predicted in batches:
        batch_labels = np.asarray(batch_labels)
        if images is not None:
            _hash_images(images, batch_images)
        probabilities.append(predicted)
        one_hot = batch_labels.ndim == 2
        if rows is not None:
            rows.append(batch_labels.astype("float32"))
        labels.append(class_indices(batch_labels))
        if mirrored is not None:
            mirrored[0].append(np.asarray(mirrored[1](mirror(batch_images))))
        if worst is not None:
            worst.add(batch_images, labels[-1], probabilities[-1])
    if not labels:
        return np.zeros(0, dtype="int64"), np.zeros((0, 0), dtype="float32"), one_hot
    return np.concatenate(labels), np.concatenate(probabilities), one_hot


def _predicted(
    predict: Callable[[Any], Any], batches: Iterable
) -> Iterator[tuple[Any, Any, np.ndarray]]:
    """Each batch's images and labels with `predict`'s outputs, as it is read
    (so they line up even when the dataset shuffles on every pass)."""
    for batch in batches:
        yield batch[0], batch[1], np.asarray(predict(batch[0]))


def _predicted_small_set(model, dataset) -> Iterator[tuple[Any, Any, np.ndarray]]:
    """`_predicted` with `model.predict_on_batch`, but a set of at most
    `EAGER_PIXELS` is predicted in one eager call of the model instead."""
    read = iter(dataset)
    held: list = []
    pixels = 0
    for batch in read:
        held.append(batch)
        pixels += int(np.prod(np.shape(batch[0])[:3]))
        if pixels > EAGER_PIXELS:
            yield from _predicted(model.predict_on_batch, itertools.chain(held, read))
            return
    if not held:
        return
    images = np.concatenate([np.asarray(batch[0]) for batch in held])
    outputs = np.asarray(model(images, training=False))
    ends = np.cumsum([len(batch[0]) for batch in held])
    for batch, predicted in zip(held, np.split(outputs, ends[:-1]), strict=True):
        yield batch[0], batch[1], predicted


def _joined(batches: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(batches) if batches else np.zeros(0, dtype="float32")


def _hash_images(digest, images) -> None:
    digest.update(np.ascontiguousarray(np.asarray(images)).view(np.uint8).reshape(-1))
