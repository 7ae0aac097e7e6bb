"""A model's predictions from the features its frozen part already computed.

With the feature cache, the head trained on the pooled features of the
validation images; the whole model's predictions over those images are the
head's over the features. `predictions_of` takes them from here, so choosing
the model to ship and its report do not run the frozen base over the
validation images again. Plain numpy, importable without TensorFlow.
"""

import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np

from .weights_digest import weights_hash

#: The datasets whose features are known: (model, dataset, `_Features`).
_KNOWN: list[tuple[Any, Any, "_Features"]] = []
_KNOWN_KEPT = 2


@dataclass(frozen=True, eq=False)
class _Features:
    frozen: Any  # the model up to the layer whose outputs are the features
    frozen_weights: str  # its weights' hash when the features were computed
    head: Any  # the rest of the model, from the features to its outputs
    features: Any  # batches of (features, labels), in the images' order


def predict_from_features(model, dataset, *, frozen, head, features) -> None:
    """Lets `predictions_of(model, dataset)` run `head` on `features`.

    Args:
        model: The whole model: `frozen`, then `head`.
        dataset: Batches of `(images, labels)`, read in the same order on
            every pass (not shuffled).
        frozen: The model up to the features; they stand for its outputs
            while its weights hash as they do now.
        head: The layers of `model` after the features (sharing its weights).
        features: Batches of `(features, labels)`: `frozen`'s outputs on the
            images of `dataset`, in its order.
    """
    entry = _Features(frozen, weights_hash(frozen), head, features)
    _KNOWN.insert(0, (weakref.ref(model), weakref.ref(dataset), entry))
    del _KNOWN[_KNOWN_KEPT:]


def predictor_from_features(model, dataset) -> "FeaturePredictor | None":
    """The head's predictions of `dataset`'s images, batch by batch, if its
    features are known and still stand for the frozen part's outputs."""
    for model_ref, dataset_ref, entry in _KNOWN:
        if model_ref() is model and dataset_ref() is dataset:
            if weights_hash(entry.frozen) != entry.frozen_weights:
                return None  # the frozen part trained since: features are stale
            return FeaturePredictor(entry.head, entry.features)
    return None


class FeaturePredictor:
    """Hands out the head's predictions over the features, in slices the
    length of each image batch (call it as `model.predict_on_batch`)."""

    def __init__(self, head, features) -> None:
        outputs, labels = [], []
        for batch in features:
            outputs.append(np.asarray(head.predict_on_batch(batch[0])))
            labels.append(np.asarray(batch[1]))
        self.probabilities = np.concatenate(outputs) if outputs else np.zeros((0, 0))
        self.labels = np.concatenate(labels) if labels else np.zeros(0)
        self.read = 0

    def __call__(self, images) -> np.ndarray:
        start, self.read = self.read, self.read + len(images)
        return self.probabilities[start : self.read]

    def lines_up(self, labels: np.ndarray) -> bool:
        """Whether the images read had the features' labels, all of them."""
        return self.read == len(self.labels) and np.array_equal(
            np.asarray(labels).reshape(len(labels), -1),
            self.labels.reshape(len(self.labels), -1),
        )
