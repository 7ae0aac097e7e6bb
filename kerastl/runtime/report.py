"""The evaluation report of a trained model: metrics, pictures, the run card.

The metrics are plain numpy and JSON-ready (Python ints and floats, never NaN).
The pictures (`report_plots`, `explain_plots`) need matplotlib, imported only
when one is drawn: without it, a script prints one line and goes on. The run
card is `run_card`'s.
"""

import os
from typing import TYPE_CHECKING, Any

import keras
import numpy as np

from . import files
from .explain_plots import EXPLANATIONS_FILE, heatmaps_or_none, plot_explanations
from .history import read_history
from .image_sets import ImageSet, load_test_folder, load_test_set
from .jsonfile import write_json
from .metric_math import cross_entropy
from .metrics import classification_metrics
from .metrics_summary import summary_lines
from .predictions import predictions_of, with_mirror_images
from .report_plots import (
    plot_confusion_matrix,
    plot_top_losses,
    plot_training_curves,
)
from .run_card import RUN_CARD_FILE, run_card, write_run_card
from .top_losses import TopLosses
from .training_data import TrainingData
from .tta import averaged, tta_decision

if TYPE_CHECKING:
    from .run import Run


# The files of the report, in the run's output folder.
METRICS_FILE = "metrics.json"
CONFUSION_MATRIX_FILE = "confusion_matrix.png"
TRAINING_CURVES_FILE = "training_curves.png"
TOP_LOSSES_FILE = "top_losses.png"
REPORT_FILES = (
    METRICS_FILE,
    CONFUSION_MATRIX_FILE,
    TRAINING_CURVES_FILE,
    TOP_LOSSES_FILE,
    EXPLANATIONS_FILE,
    RUN_CARD_FILE,
)


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
