"""The pictures of a multi-label report: each class's figures, the worst images.

They take the place of the single-label report's confusion matrix and top
losses (a multi-label model has no one predicted class to confuse).
"""

import os

import numpy as np

from .common.plots import agg_figure
from .report_plots import plot_image_grid, save_png
from .top_losses import TOP_LOSSES


class MultiLabelTopLosses:
    """The images with the highest binary cross-entropy seen so far, at most
    `count`, with their label rows and probabilities (as uint8 images)."""

    def __init__(self, count: int = TOP_LOSSES) -> None:
        self.count = count
        self.images = np.zeros((0, 0, 0, 3), dtype="uint8")
        self.labels = np.zeros((0, 0), dtype="float32")
        self.probabilities = np.zeros((0, 0), dtype="float32")
        self.losses = np.zeros(0, dtype="float64")

    def add(self, images, labels, probabilities, losses) -> None:
        """Takes one batch: raw 0-255 images, multi-hot labels, probabilities,
        and each image's loss."""
        images = np.clip(np.asarray(images), 0, 255).round().astype("uint8")
        parts = [images, np.asarray(labels, "float32")]
        parts += [np.asarray(probabilities, "float32"), np.asarray(losses, "float64")]
        if len(self.losses):
            kept = (self.images, self.labels, self.probabilities, self.losses)
            parts = [np.concatenate([old, new]) for old, new in zip(kept, parts)]
        order = np.argsort(-parts[3], kind="stable")[: self.count]
        self.images, self.labels, self.probabilities, self.losses = (
            part[order] for part in parts
        )


def label_set(row, class_names: list[str], limit: int = 24) -> str:
    """The names of the labels a row has, comma-separated ("none" if empty)."""
    names = ", ".join(class_names[index] for index in np.flatnonzero(row))
    names = names or "none"
    return names if len(names) <= limit else names[: limit - 1] + "…"


def plot_multilabel_top_losses(
    worst: MultiLabelTopLosses,
    class_names: list[str],
    thresholds,
    path: str | os.PathLike,
    title: str,
) -> str | None:
    """Draws the images of `worst`, the highest loss first, each captioned
    with its true label set, the set predicted at `thresholds`, and the loss.

    Returns:
        `path`, or None if matplotlib is not installed or there are no images.
    """
    if not len(worst.losses):
        return None
    predicted = worst.probabilities >= np.asarray(thresholds)
    captions = [
        f"true {label_set(truth >= 0.5, class_names)}\n"
        f"predicted {label_set(guess, class_names)}\nloss {loss:.2f}"
        for truth, guess, loss in zip(worst.labels, predicted, worst.losses)
    ]
    return plot_image_grid(worst.images, captions, path, title)


def plot_class_figures(
    per_class: list[dict], path: str | os.PathLike, title: str
) -> str | None:
    """Draws each class's average precision and F1 (at its threshold) as bars.

    Args:
        per_class: The `per_class` rows of `multilabel_metrics`; a class
            without examples has no bar, and its name says so.
        path: The PNG to write.
        title: The title of the picture.

    Returns:
        `path`, or None if matplotlib is not installed.
    """
    path = os.fspath(path)
    names = [
        str(row["class"]) + ("" if row["support"] else " (no examples)")
        for row in per_class
    ]
    height = max(3.0, 0.3 * len(names) + 1.5)
    figure = agg_figure(path, (10.0, min(height, 40.0)))
    if figure is None:
        return None
    positions = np.arange(len(names))
    panels = (("average_precision", "average precision"), ("f1", "F1 at the threshold"))
    for index, (key, label) in enumerate(panels):
        axes = figure.add_subplot(1, 2, index + 1)
        values = [
            row[key] if row["support"] and row[key] is not None else 0.0
            for row in per_class
        ]
        axes.barh(positions, values, color="tab:blue" if index == 0 else "tab:green")
        axes.set_yticks(positions, names if index == 0 else [""] * len(names))
        axes.invert_yaxis()
        axes.set_xlim(0, 1)
        axes.set_xlabel(label)
        for position, value in zip(positions, values):
            axes.text(min(value, 0.85) + 0.01, position, f"{value:.2f}", va="center")
    figure.suptitle(title)
    return save_png(figure, path, title)
