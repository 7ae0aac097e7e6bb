"""The evaluation report of a trained model: metrics, pictures, the run card.

The metrics are plain numpy and JSON-ready (Python ints and floats, never NaN).
The pictures need matplotlib, imported only when one is drawn: without it, a
script prints one line and goes on. They are drawn with the Agg canvas on a
`Figure` of their own, never through pyplot, so a script's (or a notebook's)
matplotlib state stays as it was.
"""

import os
import platform
from importlib import metadata
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
import tensorflow as tf

from . import files
from .common.plots import agg_figure, png_bytes
from .data import ImageFiles, ImageSet, load_test_folder, load_test_set
from .explain_plots import (
    EXPLANATIONS_FILE,
    heatmaps_or_none,
    plot_explained_grid,
    plot_explanations,
)
from .history import read_history
from .jsonfile import write_json
from .metrics import (  # noqa: F401 (the metrics came from here: still importable)
    TopLosses,
    class_indices,
    classification_metrics,
    cross_entropy,
    most_confused,
    predict_dataset,
    predictions_of,
    ratio,
    summary_lines,
    with_mirror_images,
)
from .training_data import TrainingData
from .tta import averaged, tta_decision

if TYPE_CHECKING:
    from .checkpoints import RunState
    from .run import Run

MOST_CONFUSED = 20
READABLE_CLASSES = 50


# The files of the report, in the run's output folder.
METRICS_FILE = "metrics.json"
CONFUSION_MATRIX_FILE = "confusion_matrix.png"
TRAINING_CURVES_FILE = "training_curves.png"
TOP_LOSSES_FILE = "top_losses.png"
RUN_CARD_FILE = "run.json"
REPORT_FILES = (
    METRICS_FILE,
    CONFUSION_MATRIX_FILE,
    TRAINING_CURVES_FILE,
    TOP_LOSSES_FILE,
    EXPLANATIONS_FILE,
    RUN_CARD_FILE,
)


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


def write_report(
    output_dir: str | os.PathLike,
    model: keras.Model,
    shipped: str,
    data: TrainingData,
    run: "Run",
    *,
    test_dir: str | os.PathLike | None = None,
    tta: str | bool = "off",
) -> dict:
    """Evaluates the shipped model and writes the report into the run's folder.

    Call it after `choose_model()`, which leaves the model holding the weights
    of the file it ships (and its predictions of the validation images, which
    are not made again). Writes `metrics.json` (for the validation data, and the
    test data when given: loss, accuracy, top-5 accuracy over 5 classes,
    macro-F1, per-class figures, the confusion matrix, the most confused pairs),
    `confusion_matrix.png`, `training_curves.png`, `top_losses.png` (the
    validation images with the highest loss, each beside its Grad-CAM
    heatmap), `explanations.png` (a few correctly classified ones of each
    class with theirs: `explain_plots`) and `run.json` (`run_card`),
    then prints a summary. A multi-label run's report is
    `multilabel_report.write_multilabel_report`'s (thresholds, mAP, its own
    pictures).

    Args:
        output_dir: The run's folder.
        model: The model, holding the weights of `shipped`.
        shipped: The file `choose_model()` chose.
        data: The training and validation data (`load_training_data`).
        run: The finished run: its state and settings go into `run.json`.
        test_dir: A test folder with the same classes, read now, once: the
            test images never choose an epoch or a model.
        tta: `--tta` ("auto", "on" or "off"): whether to also evaluate with
            test-time augmentation (`tta`; auto: when the training images were
            flipped). Each set's figures then get a `tta` entry with the
            loss, accuracy, top-5 accuracy and macro-F1 of the averaged
            predictions, and a line says which and why.

    Returns:
        The contents of `metrics.json`.
    """
    if data.multi_label:  # a sigmoid per class: its own figures and pictures
        from .multilabel_report import write_multilabel_report

        return write_multilabel_report(
            output_dir, model, shipped, data, run, test_dir=test_dir, tta=tta
        )
    folder = os.fspath(output_dir)
    test = load_test_images(model, data, test_dir)
    datasets = {
        "validation": data.validation,
        "test": None if test is None else test.batches,
    }
    use_tta, tta_reason = tta_decision(tta, data.flipped)
    metrics: dict[str, Any] = {"model": shipped}
    for name, dataset in datasets.items():
        if dataset is not None:
            metrics[name] = _set_figures(model, dataset, data.class_names, use_tta)
    write_json(files.join(folder, METRICS_FILE), metrics)
    evaluated = "test" if "test" in metrics else "validation"
    card = run_card(run.state, run.settings)
    pictures = _draw_pictures(
        folder,
        model,
        shipped,
        metrics[evaluated],
        evaluated,
        predictions_of(model, data.validation).worst,
        data.class_names,
        card["phases"],
    )
    pictures += _draw_explanations(folder, model, shipped, data)
    write_run_card(folder, card, model, shipped, data, test)
    written = [files.join(folder, METRICS_FILE), *pictures]
    written.append(files.join(folder, RUN_CARD_FILE))
    print(f"\nThe {evaluated} images, with {shipped}:")
    print("\n".join(summary_lines(metrics[evaluated])))
    if line := _tta_line(metrics[evaluated], tta, tta_reason):
        print(line)
    print("Wrote " + ", ".join(str(path) for path in written))
    return metrics


def load_test_images(
    model: keras.Model, data: TrainingData, test_dir: str | os.PathLike | None
) -> ImageSet | None:
    """The test images, read now, once: a test folder, a table's test rows, or
    None."""
    options = {
        "image_size": model.input_shape[1],
        "batch_size": data.identity["batch_size"],
        "class_names": data.class_names,
    }
    if test_dir is not None:
        return load_test_folder(test_dir, **options)
    if data.test_images is not None:  # a table's test rows
        return load_test_set(data.test_images, **options)
    return None


def write_run_card(
    folder: str,
    card: dict,
    model: keras.Model,
    shipped: str,
    data: TrainingData,
    test: ImageSet | None,
) -> None:
    """Writes `run.json`: `card` (`run_card`), the model shipped, the
    versions and devices, the classes and the images of each set."""
    card = {
        "shipped_model": shipped,
        **card,
        "settings": {"model": model.name, **card["settings"]},
        **_environment(),
        "classes": dict(enumerate(data.class_names)),
        "data": _data_card(
            {
                "training": data.train_files,
                "validation": data.validation_files,
                "test": None if test is None else test.files,
            }
        ),
    }
    write_json(files.join(folder, RUN_CARD_FILE), card)


def run_card(state: "RunState", settings: dict) -> dict:
    """What `run.json` says of a run, from its saved state and its settings.

    Args:
        state: The run's state (`Run.state`): the phases completed with the
            epoch each ended after, the best epoch and the seconds of each phase.
        settings: The settings the run was started with (`Run.settings`).

    Returns:
        `best_epoch` (its `value`, `epoch` and `phase`, or None),
        `phase_seconds`, `phases` (each phase that trained, with its first and
        last epoch) and `settings` (a finished run rerun with other settings
        did not train with them: the settings it trained with win).
    """
    completed = state.completed
    ends = [0] + [phase["end_epoch"] for phase in completed]
    best = state.best
    return {
        "best_epoch": (
            None
            if best is None
            else {
                "value": best["value"],
                "epoch": best["epoch"],
                "phase": best["phase"],
            }
        ),
        "phase_seconds": state.seconds,
        "phases": [
            {"name": phase["phase"], "first_epoch": start + 1, "last_epoch": end}
            for phase, start, end in zip(completed, ends, ends[1:])
            if end > start
        ],
        "settings": {**settings, **state.training_settings},
    }


def _set_figures(
    model: keras.Model, dataset, class_names: list[str], tta: bool
) -> dict:
    """The figures of one set, with a `tta` entry if asked."""
    predictions = predictions_of(model, dataset)
    figures = _figures(predictions.labels, predictions.probabilities, class_names)
    if tta:
        labels, probabilities, mirrored = with_mirror_images(
            model, dataset, predictions
        )
        figures = _figures(labels, probabilities, class_names)
        both = _figures(labels, averaged(probabilities, mirrored), class_names)
        figures["tta"] = {key: both[key] for key in TTA_FIGURES if key in both}
    return figures


def _draw_pictures(
    folder: str,
    model: keras.Model,
    shipped: str,
    figures: dict,
    evaluated: str,
    worst: TopLosses,
    class_names: list[str],
    phases: list[dict],
) -> list[str]:
    """Draws three of the report's pictures; returns the paths of those drawn."""
    picture = plot_confusion_matrix(
        np.array(figures["confusion_matrix"]),
        class_names,
        files.join(folder, CONFUSION_MATRIX_FILE),
        f"Confusion matrix of {shipped} on the {evaluated} images",
    )
    _, history = read_history(files.join(folder, "history.csv"))
    curves = plot_training_curves(
        history,
        files.join(folder, TRAINING_CURVES_FILE),
        f"Training of {model.name}",
        phases,
    )
    losses = plot_top_losses(
        worst,
        class_names,
        files.join(folder, TOP_LOSSES_FILE),
        f"Highest losses of {shipped} on the validation images, with Grad-CAM",
        heatmaps_or_none(model, worst.images, worst.probabilities),
    )
    return [path for path in (picture, curves, losses) if path is not None]


def _draw_explanations(
    folder: str, model: keras.Model, shipped: str, data: TrainingData
) -> list[str]:
    """Draws `explanations.png`; returns its path if drawn."""
    picture = plot_explanations(
        model,
        data.validation,
        predictions_of(model, data.validation),
        data.class_names,
        files.join(folder, EXPLANATIONS_FILE),
        f"Grad-CAM of {shipped}: the most confident correct validation images",
    )
    return [] if picture is None else [picture]


def _tta_line(figures: dict, choice: str | bool, reason: str) -> str | None:
    """The TTA figures against the plain ones in one line, or why there are
    none when `--tta auto` chose; None when `--tta off` said so."""
    tta = figures.get("tta")
    if tta is None:
        if choice != "auto":
            return None
        return f"No TTA ({reason})."
    return (
        f"With TTA (each image and its mirror image; {reason}): accuracy "
        f"{tta['accuracy']:.4f}, macro F1 {tta['macro_f1']:.4f} (without: "
        f"{figures['accuracy']:.4f}, {figures['macro_f1']:.4f})"
    )


#: The figures of a set recorded with test-time augmentation.
TTA_FIGURES = ("loss", "accuracy", "top5_accuracy", "macro_f1")


def _figures(labels: np.ndarray, probabilities: np.ndarray, class_names) -> dict:
    return {
        "loss": cross_entropy(labels, probabilities),
        **classification_metrics(labels, probabilities, class_names),
    }


def _environment() -> dict:
    """The versions and devices a run used."""
    return {
        "versions": {
            "kerastl": runtime_version(),
            "keras": keras.__version__,
            "tensorflow": tf.__version__,
            "python": platform.python_version(),
        },
        "devices": [device.name for device in tf.config.list_logical_devices()],
    }


def runtime_version() -> str | None:
    """The kerastl release of this runtime; None for a copy beside a script."""
    if not __name__.startswith("kerastl.runtime."):
        return None  # a `--standalone` copy: the script's header names the release
    try:
        return metadata.version("kerastl")
    except metadata.PackageNotFoundError:
        return None


def _data_card(subsets: dict[str, ImageFiles | None]) -> dict:
    """How many images of each class each subset had (with several labels per
    image: the images that have the class), the fingerprint of its files
    (their names and sizes, and labels from a table), and its label table's
    path and SHA-256."""
    return {
        name: {
            "images": len(images.paths),
            "images_per_class": images.class_counts,
            "files_fingerprint": images.fingerprint,
            **(
                {"label_table": images.table, "label_table_sha256": images.table_sha256}
                if images.table is not None
                else {}
            ),
        }
        for name, images in subsets.items()
        if images is not None
    }
