"""The report's pictures of a single-label run: the top losses, a grid of
images, the confusion matrix and the training curves.

Drawn with the Agg canvas on a `Figure` of their own (`common.plots`), never
through pyplot; without matplotlib each is skipped, said once.
"""

import os
from typing import Any

import numpy as np

from . import files
from .common.plots import agg_figure, png_bytes
from .explain_plots import plot_explained_grid
from .metric_math import ratio
from .top_losses import TopLosses

MOST_CONFUSED = 20
READABLE_CLASSES = 50


def plot_top_losses(
    worst: TopLosses,
    class_names: list[str],
    path: str | os.PathLike,
    title: str,
    heatmaps: np.ndarray | None = None,
) -> str | None:
    """Draws the images of `worst`, the highest loss first, as fastai's plot_top_losses.

    Each image is captioned with its true class, the predicted class and its
    probability, and the loss; with `heatmaps` (`grad_cam` of the predicted
    classes), each has its heatmap beside it.

    Returns:
        `path`, or None if matplotlib is not installed or there are no images.
    """
    if not len(worst.losses):
        return None
    captions = []
    for label, scores, loss in zip(worst.labels, worst.probabilities, worst.losses):
        predicted = int(np.argmax(scores))
        captions.append(
            f"true {_label_text(class_names[label], 14)}\n"
            f"predicted {_label_text(class_names[predicted], 14)} "
            f"{scores[predicted]:.2f}\nloss {loss:.2f}"
        )
    if heatmaps is not None:
        return plot_explained_grid(worst.images, heatmaps, captions, path, title)
    return plot_image_grid(worst.images, captions, path, title)


def plot_image_grid(
    images, captions: list[str], path: str | os.PathLike, title: str
) -> str | None:
    """Draws images in a grid, each with its caption above it, as a PNG.

    Args:
        images: Raw 0-255 RGB images, shape `(n, height, width, 3)`.
        captions: One caption per image (up to three short lines).
        path: The PNG to write.
        title: The title of the picture.

    Returns:
        `path`, or None if matplotlib is not installed.
    """
    path = os.fspath(path)
    count = len(captions)
    columns = max(1, min(count, int(np.ceil(np.sqrt(count)))))
    rows = int(np.ceil(count / columns))
    figure = agg_figure(path, (2.6 * columns, 2.9 * rows + 0.4))
    if figure is None:
        return None
    for index, (image, caption) in enumerate(zip(images, captions)):
        axes = figure.add_subplot(rows, columns, index + 1)
        axes.imshow(np.asarray(image, dtype="uint8"), interpolation="nearest")
        axes.set_title(caption, fontsize=9)
        axes.axis("off")
    figure.suptitle(title)
    return save_png(figure, path, title)


def plot_confusion_matrix(
    matrix, class_names: list[str], path: str | os.PathLike, title: str
) -> str | None:
    """Draws the confusion matrix as a PNG: counts in the cells, rows coloured.

    A cell's colour is its share of the true class's examples. With more than
    `READABLE_CLASSES` classes, only the `MOST_CONFUSED` classes with the most
    misclassifications (as true or predicted class) are shown, and the title
    says so.

    Returns:
        `path`, or None if matplotlib is not installed.
    """
    path = os.fspath(path)
    matrix = np.asarray(matrix, dtype="int64")
    shown = list(range(len(class_names)))
    if len(shown) > READABLE_CLASSES:
        shown = _most_confused_classes(matrix, MOST_CONFUSED)
        title = f"{title} ({len(shown)} most confused of {len(class_names)} classes)"
    totals = matrix.sum(axis=1)[shown]
    counts = matrix[np.ix_(shown, shown)]
    shares = ratio(counts, totals[:, None])
    side = min(20.0, max(6.0, 2.0 + 0.35 * len(shown)))
    figure = agg_figure(path, (side + 1.5, side))
    if figure is None:
        return None
    font = min(10.0, max(6.0, 240 / len(shown)))
    axes = figure.add_subplot()
    image = axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    colorbar = figure.colorbar(image, ax=axes, shrink=0.8)
    colorbar.set_label("share of the true class")
    for row, column in zip(*np.nonzero(counts)):
        axes.text(
            column,
            row,
            str(counts[row, column]),
            ha="center",
            va="center",
            fontsize=font,
            color="white" if shares[row, column] > 0.5 else "black",
        )
    names = [_label_text(class_names[index]) for index in shown]
    axes.set_xticks(range(len(shown)), names, rotation=90, fontsize=font)
    axes.set_yticks(range(len(shown)), names, fontsize=font)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    figure.suptitle(title)
    return save_png(figure, path, title)


def plot_training_curves(
    history_rows: list[dict],
    path: str | os.PathLike,
    title: str,
    phases: list[dict] = (),  # type: ignore[assignment]
) -> str | None:
    """Draws loss and accuracy per epoch, training and validation, as a PNG.

    Args:
        history_rows: Rows of `history.csv`, as `read_history` gives them.
        path: The PNG to write.
        title: The title of the picture.
        phases: The run's phases (`run_card(...)["phases"]`), each start marked.

    Returns:
        `path`, or None if matplotlib is not installed.
    """
    path = os.fspath(path)
    figure = agg_figure(path, (10.0, 4.0))
    if figure is None:
        return None
    epochs = [int(row["epoch"]) for row in history_rows]
    starts = [(phase["first_epoch"], phase["name"]) for phase in phases]
    columns = {key for row in history_rows for key in row}
    accuracy = "accuracy"
    if accuracy not in columns:
        named = sorted(
            key for key in columns if "accuracy" in key and not key.startswith("val_")
        )
        accuracy = named[0] if named else accuracy
    for index, metric in enumerate(["loss", accuracy]):
        axes = figure.add_subplot(1, 2, index + 1)
        drawn = False
        for key, label in ((metric, "training"), (f"val_{metric}", "validation")):
            values = [_history_value(row.get(key)) for row in history_rows]
            if any(np.isfinite(values)):
                axes.plot(epochs, values, marker=".", label=label)
                drawn = True
        for epoch, _ in starts:
            axes.axvline(epoch - 0.5, color="grey", linestyle="--", linewidth=0.8)
        # The phase names label the lines from above, clear of curves and legend.
        phase_axis = axes.secondary_xaxis("top")
        phase_axis.set_xticks([epoch - 0.5 for epoch, _ in starts])
        phase_axis.set_xticklabels(
            [name for _, name in starts], fontsize=8, color="dimgrey", ha="left"
        )
        phase_axis.tick_params(length=0)
        if drawn:
            axes.legend(loc="best")
        else:
            axes.text(
                0.5,
                0.5,
                f"no {metric} recorded",
                transform=axes.transAxes,
                ha="center",
                va="center",
            )
        if epochs:
            axes.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
        if epochs and max(epochs) - min(epochs) < 15:
            axes.set_xticks(range(min(epochs), max(epochs) + 1))
        else:
            axes.xaxis.get_major_locator().set_params(integer=True)
        axes.set_title(metric)
        axes.set_xlabel("epoch")
        axes.set_ylabel(metric)
    figure.suptitle(title)
    return save_png(figure, path, title)


def _most_confused_classes(matrix: np.ndarray, count: int) -> list[int]:
    """The `count` classes most often mistaken (as true or predicted), in order."""
    errors = matrix - np.diag(np.diag(matrix))
    confusion = errors.sum(axis=0) + errors.sum(axis=1)
    chosen = np.argsort(-confusion, kind="stable")[:count]
    return sorted(int(index) for index in chosen)


def _label_text(name: str, limit: int = 24) -> str:
    """A class name short enough for an axis label."""
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _history_value(value) -> float:
    """A number of `history.csv`; NaN where the row has none."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def save_png(figure: Any, path: str, title: str) -> str:
    """Writes `figure` to `path` under a temporary name, then renames it."""
    return files.write_bytes(path, png_bytes(figure, title))
