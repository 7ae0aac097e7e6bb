"""The report's Grad-CAM pictures: each image beside its heatmap.

Grad-CAM (`explain.grad_cam`) runs only for the images drawn: the report's
top losses and a few correctly classified validation images of each class,
found in the predictions the report made already (`predictions.predictions_of`).
"""

import hashlib
import os

import numpy as np

from . import files
from .common.plots import agg_figure, png_bytes
from .explain import grad_cam, overlay
from .predictions import Predictions, _hash_images

EXPLANATIONS_FILE = "explanations.png"
#: Correctly classified images shown per class, and classes shown at most.
PER_CLASS = 3
SHOWN_CLASSES = 10
#: Inches of height of each image and its overlay, side by side.
PAIR_HEIGHT = 1.2


def heatmaps_or_none(model, images, probabilities) -> np.ndarray | None:
    """`grad_cam` of the images for their top classes (in `probabilities`),
    or None, said in one line, for a model it cannot explain (a head edited
    away from pooling and a dense layer)."""
    if not len(images):
        return None
    try:
        return grad_cam(model, images, np.argmax(probabilities, axis=1))
    except (TypeError, ValueError, RuntimeError) as error:
        print(f"No heatmaps: {error}", flush=True)
        return None


def plot_explained_grid(
    images,
    heatmaps,
    captions: list[str],
    path: str | os.PathLike,
    title: str,
    columns: int | None = None,
) -> str | None:
    """Draws each image with its heatmap overlaid beside it, in a grid, as a PNG.

    Args:
        images: Raw 0-255 RGB images, shape `(n, height, width, 3)`.
        heatmaps: Their heatmaps in [0, 1], shape `(n, height, width)`.
        captions: One caption per image; an empty caption leaves its cell blank.
        path: The PNG to write.
        title: The title of the picture.
        columns: Pairs per row (default: a square grid).

    Returns:
        `path`, or None if matplotlib is not installed.
    """
    path = os.fspath(path)
    count = len(captions)
    columns = columns or max(1, min(count, int(np.ceil(np.sqrt(count)))))
    rows = int(np.ceil(count / columns))
    lines = max((caption.count("\n") + 1 for caption in captions if caption), default=1)
    caption_height = 0.14 * lines + 0.08  # inches above each pair
    height = rows * (PAIR_HEIGHT + caption_height) + 0.5
    # Laid out by hand, one axes per pair: matplotlib's constrained layout of
    # two axes per cell took most of the report's drawing time.
    figure = agg_figure(path, (2.6 * columns, height), layout=None)
    if figure is None:
        return None
    grid = figure.add_gridspec(
        rows,
        columns,
        left=0.01,
        right=0.99,
        bottom=0.01,
        top=1 - (0.5 + caption_height) / height,
        hspace=caption_height / PAIR_HEIGHT,
        wspace=0.06,
    )
    for index, (image, heatmap, caption) in enumerate(zip(images, heatmaps, captions)):
        if not caption:
            continue
        axes = figure.add_subplot(grid[index // columns, index % columns])
        axes.imshow(side_by_side(image, heatmap), interpolation="nearest")
        axes.set_title(caption, fontsize=8)
        axes.axis("off")
    figure.suptitle(title)
    return files.write_bytes(path, png_bytes(figure, title))


def side_by_side(image, heatmap) -> np.ndarray:
    """`image` (0-255 RGB) and its `overlay` with `heatmap`, side by side, a
    white gap of a sixteenth of its width between them."""
    pixels = np.clip(np.asarray(image), 0, 255).astype("uint8")
    gap = np.full((pixels.shape[0], max(1, pixels.shape[1] // 16), 3), 255, "uint8")
    return np.concatenate([pixels, gap, overlay(image, heatmap)], axis=1)


def plot_explanations(
    model,
    dataset,
    predictions: Predictions,
    class_names: list[str],
    path: str | os.PathLike,
    title: str,
) -> str | None:
    """Draws the most confident correct predictions of each class with their
    heatmaps: a row per class (the first `SHOWN_CLASSES`), `PER_CLASS` pairs.

    Args:
        model: The model that made `predictions`.
        dataset: The batches of `(images, labels)` it predicted, read again
            for the images chosen.
        predictions: `predictions_of(model, dataset)`.
        class_names: The names of the classes.
        path: The PNG to write.
        title: The title of the picture.

    Returns:
        `path`, or None without matplotlib, a correct prediction, or heatmaps.
    """
    chosen = correct_examples(predictions, len(class_names))
    shown = [index for index in chosen if index >= 0]
    images = images_at(dataset, shown, predictions.images) if shown else {}
    if not images:
        return None
    heatmaps = heatmaps_or_none(
        model,
        np.stack([images[index] for index in shown]),
        predictions.probabilities[shown],
    )
    if heatmaps is None:
        return None
    maps = dict(zip(shown, heatmaps))
    captions = [
        (
            (
                f"{class_names[predictions.labels[index]][:18]} "
                f"{predictions.probabilities[index].max():.2f}"
            )
            if index >= 0
            else ""
        )
        for index in chosen
    ]
    blank_image, blank_map = np.zeros((1, 1, 3)), np.zeros((1, 1))
    cells = [images.get(index, blank_image) for index in chosen]
    heat = [maps.get(index, blank_map) for index in chosen]
    if len(class_names) > SHOWN_CLASSES:
        title = f"{title} (the first {SHOWN_CLASSES} of {len(class_names)} classes)"
    return plot_explained_grid(cells, heat, captions, path, title, columns=PER_CLASS)


def correct_examples(predictions: Predictions, classes: int) -> list[int]:
    """The positions of the `PER_CLASS` most confident correct predictions of
    each of the first `SHOWN_CLASSES` classes, -1 where a class has fewer."""
    predicted = predictions.probabilities.argmax(axis=1)
    confidence = predictions.probabilities.max(axis=1)
    chosen: list[int] = []
    for label in range(min(classes, SHOWN_CLASSES)):
        right = np.flatnonzero((predictions.labels == label) & (predicted == label))
        best = right[np.argsort(-confidence[right], kind="stable")][:PER_CLASS]
        chosen += [int(index) for index in best] + [-1] * (PER_CLASS - len(best))
    if all(index < 0 for index in chosen):
        return []
    return chosen


def images_at(dataset, positions: list[int], images_hash: str) -> dict:
    """The images at `positions` of `dataset`, if it reads the images that
    were predicted (their hash is `images_hash`); else nothing."""
    wanted, found, start = set(positions), {}, 0
    digest = hashlib.blake2b(digest_size=16)
    for batch in dataset:
        batch_images = np.asarray(batch[0])
        _hash_images(digest, batch[0])
        for offset in range(len(batch_images)):
            if start + offset in wanted:
                found[start + offset] = batch_images[offset]
        start += len(batch_images)
    if digest.hexdigest() != images_hash:
        print("No explanations: the validation images came in another order")
        return {}
    return found
