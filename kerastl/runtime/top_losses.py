"""The images with the highest loss of a pass over a labelled dataset.

Plain numpy, importable without TensorFlow.
"""

import numpy as np

from .metric_math import class_indices

#: How many top-loss images a report shows.
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
