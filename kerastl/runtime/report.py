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
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from . import files
from .common.plots import agg_figure, png_bytes
from .data import ImageFiles, load_test_folder
from .history import read_history
from .jsonfile import write_json
from .training_data import TrainingData
from .tta import averaged, mirror, tta_decision

MOST_CONFUSED = 20
READABLE_CLASSES = 50
TOP_LOSSES = 16


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
    RUN_CARD_FILE,
)


def classification_metrics(
    labels: np.ndarray, probabilities: np.ndarray, class_names: list[str]
) -> dict:
    """Accuracy, per-class precision, recall and F1, and the confusion matrix.

    Args:
        labels: True class indices, shape `(n,)`, or one-hot rows `(n, classes)`.
        probabilities: The model's outputs, shape `(n, classes)`.
        class_names: The names of the classes, in index order.

    Returns:
        `accuracy`, `top5_accuracy` (with more than 5 classes only), `macro_f1`,
        `per_class` (class, precision, recall, f1, support; precision and
        recall are 0 where undefined), `confusion_matrix` (rows: true class,
        columns: predicted class), `most_confused` (see `most_confused`) and
        `examples`.

    Raises:
        ValueError: If the shapes do not match each other or `class_names`, or
            there are no examples.
    """
    probabilities = np.asarray(probabilities)
    labels = class_indices(labels)
    count = len(class_names)
    if probabilities.ndim != 2 or probabilities.shape[1] != count:
        raise ValueError(
            f"probabilities of shape {probabilities.shape} do not match {count} classes"
        )
    if len(labels) != len(probabilities):
        raise ValueError(
            f"{len(labels)} labels for {len(probabilities)} rows of probabilities"
        )
    if len(labels) == 0:
        raise ValueError("no examples to evaluate")
    if labels.min() < 0 or labels.max() >= count:
        raise ValueError(f"labels outside 0..{count - 1}")
    predicted = probabilities.argmax(axis=1)
    matrix = np.bincount(labels * count + predicted, minlength=count * count)
    matrix = matrix.reshape(count, count)
    correct = np.diag(matrix)
    support = matrix.sum(axis=1)
    precision = _ratio(correct, matrix.sum(axis=0))
    recall = _ratio(correct, support)
    f1 = _ratio(2 * precision * recall, precision + recall)
    metrics: dict = {"accuracy": float(correct.sum() / len(labels))}
    if count > 5:
        top5 = np.argsort(-probabilities, axis=1, kind="stable")[:, :5]
        metrics["top5_accuracy"] = float((top5 == labels[:, None]).any(axis=1).mean())
    metrics["macro_f1"] = float(f1.mean())
    metrics["per_class"] = [
        {
            "class": name,
            "precision": float(precision[index]),
            "recall": float(recall[index]),
            "f1": float(f1[index]),
            "support": int(support[index]),
        }
        for index, name in enumerate(class_names)
    ]
    metrics["confusion_matrix"] = matrix.tolist()
    metrics["most_confused"] = most_confused(matrix, class_names)
    metrics["examples"] = len(labels)
    return metrics


def most_confused(matrix, class_names: list[str]) -> list[list]:
    """The mistakes of a confusion matrix, the most frequent first.

    Args:
        matrix: Counts; rows are the true class, columns the predicted one.
        class_names: The names of the classes, in index order.

    Returns:
        `[true class, predicted class, count]` for every cell off the diagonal
        that is not 0, by count, then in the matrix's order.
    """
    matrix = np.asarray(matrix, dtype="int64")
    errors = matrix - np.diag(np.diag(matrix))
    rows, columns = np.nonzero(errors)
    order = np.argsort(-errors[rows, columns], kind="stable")
    return [
        [
            class_names[rows[i]],
            class_names[columns[i]],
            int(errors[rows[i], columns[i]]),
        ]
        for i in order
    ]


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


def plot_top_losses(
    worst: TopLosses, class_names: list[str], path: str | os.PathLike, title: str
) -> str | None:
    """Draws the images of `worst`, the highest loss first, as fastai's plot_top_losses.

    Each image is captioned with its true class, the predicted class and its
    probability, and the loss.

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
    labels: list[np.ndarray] = []
    probabilities: list[np.ndarray] = []
    for batch in dataset:
        images, batch_labels = batch[0], batch[1]
        probabilities.append(np.asarray(model.predict_on_batch(images)))
        labels.append(class_indices(np.asarray(batch_labels)))
        if mirrored is not None:
            mirrored.append(np.asarray(model.predict_on_batch(mirror(images))))
        if worst is not None:
            worst.add(images, labels[-1], probabilities[-1])
    if not labels:
        return np.zeros(0, dtype="int64"), np.zeros((0, 0), dtype="float32")
    return np.concatenate(labels), np.concatenate(probabilities)


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
    shares = _ratio(counts, totals[:, None])
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
        phases: The run's phases (`Run.card()["phases"]`), each start marked.

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


def summary_lines(metrics: dict, weakest: int = 3) -> list[str]:
    """The metrics of `classification_metrics` as lines to print.

    Args:
        metrics: What `classification_metrics` returned.
        weakest: How many classes with the lowest F1 to list.

    Returns:
        Accuracy, top-5 accuracy, macro F1 and examples, then the weakest
        classes (a class without examples is named apart, not ranked), then
        the three most frequent mistakes.
    """
    figures = [("accuracy", f"{metrics['accuracy']:.4f}")]
    if "top5_accuracy" in metrics:
        figures.append(("top-5 accuracy", f"{metrics['top5_accuracy']:.4f}"))
    figures.append(("macro F1", f"{metrics['macro_f1']:.4f}"))
    figures.append(("examples", str(metrics["examples"])))
    width = max(len(name) for name, _ in figures)
    lines = [f"  {name:<{width}}  {value}" for name, value in figures]
    rows = metrics["per_class"]
    ranked = sorted(
        (row for row in rows if row["support"] > 0), key=lambda row: row["f1"]
    )[: max(weakest, 0)]
    if ranked:
        lines.append(f"Weakest {_plural(len(ranked), 'class', 'classes')} by F1:")
        name_width = max(len(str(row["class"])) for row in ranked)
        lines += [
            f"  {row['class']!s:<{name_width}}  F1 {row['f1']:.3f}  "
            f"precision {row['precision']:.3f}  recall {row['recall']:.3f}  "
            f"({_plural(row['support'], 'example', 'examples')})"
            for row in ranked
        ]
    empty = [str(row["class"]) for row in rows if row["support"] == 0]
    if empty:
        lines.append(f"No examples of: {', '.join(empty)}")
    confused = metrics.get("most_confused", [])[:3]
    if confused:
        lines.append("Most confused (true -> predicted):")
        lines += [
            f"  {true} -> {predicted}  {_plural(count, 'time', 'times')}"
            for true, predicted, count in confused
        ]
    return lines


def class_indices(labels) -> np.ndarray:
    """Class indices from indices or one-hot rows."""
    labels = np.asarray(labels)
    if labels.ndim == 2:
        labels = labels.argmax(axis=1)
    return labels.reshape(-1).astype("int64")


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """`numerator / denominator`, 0 where the denominator is 0."""
    numerator = np.asarray(numerator, dtype="float64")
    denominator = np.broadcast_to(
        np.asarray(denominator, dtype="float64"), numerator.shape
    )
    result = np.zeros(numerator.shape)
    np.divide(numerator, denominator, out=result, where=denominator != 0)
    return result


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


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def save_png(figure: Any, path: str, title: str) -> str:
    """Writes `figure` to `path` under a temporary name, then renames it."""
    return files.write_bytes(path, png_bytes(figure, title))


def write_report(
    output_dir: str | os.PathLike,
    model: keras.Model,
    shipped: str,
    data: TrainingData,
    card: dict,
    *,
    test_dir: str | os.PathLike | None = None,
    tta: str | bool = "off",
) -> dict:
    """Evaluates the shipped model and writes the report into the run's folder.

    Call it after `choose_model()`, which leaves the model holding the weights
    of the file it ships. Writes `metrics.json` (for the validation data, and the
    test data when given: loss, accuracy, top-5 accuracy over 5 classes,
    macro-F1, per-class figures, the confusion matrix, the most confused pairs),
    `confusion_matrix.png`, `training_curves.png`, `top_losses.png` (the
    validation images with the highest loss) and `run.json` (settings,
    versions, devices, the data, each phase's wall time, the shipped file),
    then prints a summary.

    Args:
        output_dir: The run's folder.
        model: The model, holding the weights of `shipped`.
        shipped: The file `choose_model()` chose.
        data: The training and validation data (`load_training_data`).
        card: The run's part of `run.json` (`Run.card()`): its settings,
            best epoch and time per phase.
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
    folder = os.fspath(output_dir)
    test = None
    if test_dir is not None:
        test = load_test_folder(
            test_dir,
            image_size=model.input_shape[1],
            batch_size=data.identity["batch_size"],
            class_names=data.class_names,
        )
    datasets = {
        "validation": data.validation,
        "test": None if test is None else test.batches,
    }
    class_names = data.class_names
    metrics: dict[str, Any] = {"model": shipped}
    use_tta, tta_reason = tta_decision(tta, data.augmented)
    worst = TopLosses()
    for name in ("validation", "test"):
        dataset = datasets.get(name)
        if dataset is not None:
            keep = worst if name == "validation" else None
            mirrored: list[np.ndarray] | None = [] if use_tta else None
            labels, probabilities = predict_dataset(
                model, dataset, keep, mirrored=mirrored
            )
            metrics[name] = _figures(labels, probabilities, class_names)
            if mirrored:
                both = averaged(probabilities, np.concatenate(mirrored))
                metrics[name]["tta"] = {
                    key: value
                    for key, value in _figures(labels, both, class_names).items()
                    if key in TTA_FIGURES
                }
    write_json(files.join(folder, METRICS_FILE), metrics)
    evaluated = "test" if "test" in metrics else "validation"
    written = [files.join(folder, METRICS_FILE)]
    picture = plot_confusion_matrix(
        np.array(metrics[evaluated]["confusion_matrix"]),
        class_names,
        files.join(folder, CONFUSION_MATRIX_FILE),
        f"Confusion matrix of {shipped} on the {evaluated} images",
    )
    _, history = read_history(files.join(folder, "history.csv"))
    curves = plot_training_curves(
        history,
        files.join(folder, TRAINING_CURVES_FILE),
        f"Training of {model.name}",
        card.get("phases", []),
    )
    losses = plot_top_losses(
        worst,
        class_names,
        files.join(folder, TOP_LOSSES_FILE),
        f"Highest losses of {shipped} on the validation images",
    )
    written += [path for path in (picture, curves, losses) if path is not None]
    run_card = {
        "shipped_model": shipped,
        **card,
        "settings": {"model": model.name, **card.get("settings", {})},
        **_environment(),
        "classes": dict(enumerate(class_names)),
        "data": _data_card(
            {
                "training": data.train_files,
                "validation": data.validation_files,
                "test": None if test is None else test.files,
            }
        ),
    }
    write_json(files.join(folder, RUN_CARD_FILE), run_card)
    written.append(files.join(folder, RUN_CARD_FILE))
    print(f"\nThe {evaluated} images, with {shipped}:")
    print("\n".join(summary_lines(metrics[evaluated])))
    if line := _tta_line(metrics[evaluated], tta, tta_reason):
        print(line)
    print("Wrote " + ", ".join(str(path) for path in written))
    return metrics


def _tta_line(figures: dict, choice: str | bool, reason: str) -> str | None:
    """The TTA figures against the plain ones in one line, or why there are
    none when `--tta auto` chose; None when `--tta off` said so."""
    tta = figures.get("tta")
    if tta is None:
        if choice != "auto":
            return None
        return f"No TTA ({reason}); --tta on averages with mirror images anyway."
    return (
        f"With TTA (each image and its mirror image; {reason}): accuracy "
        f"{tta['accuracy']:.4f}, macro F1 {tta['macro_f1']:.4f} (without: "
        f"{figures['accuracy']:.4f}, {figures['macro_f1']:.4f})"
    )


#: The figures of a set recorded with test-time augmentation.
TTA_FIGURES = ("loss", "accuracy", "top5_accuracy", "macro_f1")


def _figures(labels: np.ndarray, probabilities: np.ndarray, class_names) -> dict:
    return {
        "loss": _cross_entropy(labels, probabilities),
        **classification_metrics(labels, probabilities, class_names),
    }


def _cross_entropy(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """The mean sparse categorical cross-entropy, clipped as Keras clips it."""
    chosen = probabilities[np.arange(len(labels)), labels]
    return float(np.mean(-np.log(np.clip(chosen, 1e-7, 1.0))))


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
    """How many images of each class each subset had, and the fingerprint of
    its files (their names and sizes)."""
    return {
        name: {
            "images": len(images.paths),
            "images_per_class": images.class_counts,
            "files_fingerprint": images.fingerprint,
        }
        for name, images in subsets.items()
        if images is not None
    }
