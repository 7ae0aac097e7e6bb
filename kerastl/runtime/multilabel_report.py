"""The report of a multi-label run: thresholds, figures, pictures, run card.

`write_report` hands a multi-label run (`TrainingData.multi_label`) here. The
shipped model's decision thresholds are chosen on the validation images
(`choose_thresholds`: each class's F1-optimal one) and saved in `labels.json`
with the class names, where `kerastl predict` and the exports read them; the
test images, read once, are judged at those thresholds.
"""

import os
from typing import TYPE_CHECKING, Any

import keras
import numpy as np

from . import files
from .history import read_history
from .jsonfile import write_json
from .labels_file import save_labels
from .multilabel_metrics import (
    binary_cross_entropy,
    choose_thresholds,
    multilabel_metrics,
    multilabel_summary_lines,
)
from .multilabel_plots import (
    MultiLabelTopLosses,
    plot_class_figures,
    plot_multilabel_top_losses,
)
from .platforms import labels_to_model_dir
from .report import (
    METRICS_FILE,
    TOP_LOSSES_FILE,
    TRAINING_CURVES_FILE,
    load_test_images,
)
from .report_plots import plot_training_curves
from .run_card import RUN_CARD_FILE, run_card, write_run_card
from .training_data import TrainingData
from .tta import averaged, mirror, tta_decision

if TYPE_CHECKING:
    from .run import Run

#: The picture of each class's average precision and F1.
CLASS_FIGURES_FILE = "class_figures.png"
#: The figures of a set recorded with test-time augmentation.
TTA_FIGURES = (
    "loss",
    "mean_average_precision",
    "exact_match_accuracy",
    "micro_f1",
    "macro_f1",
)


def multilabel_pass(model: keras.Model, dataset, *, tta: bool = False) -> dict:
    """The label rows and probabilities of a batched dataset, in one pass.

    Returns:
        `labels` and `probabilities` (each `(n, classes)`), `mirrored` (the
        probabilities of the mirror images, with `tta`; else None) and
        `worst` (`MultiLabelTopLosses`).
    """
    labels, probabilities, mirrored = [], [], []
    worst = MultiLabelTopLosses()
    for images, batch_labels in dataset:
        batch_labels = np.asarray(batch_labels, dtype="float32")
        scores = np.asarray(model.predict_on_batch(images))
        labels.append(batch_labels)
        probabilities.append(scores)
        if tta:
            mirrored.append(np.asarray(model.predict_on_batch(mirror(images))))
        losses = binary_cross_entropy(batch_labels, scores)
        worst.add(images, batch_labels, scores, losses)
    return {
        "labels": np.concatenate(labels),
        "probabilities": np.concatenate(probabilities),
        "mirrored": np.concatenate(mirrored) if tta else None,
        "worst": worst,
    }


def set_figures(passed: dict, class_names: list[str], thresholds) -> dict:
    """The figures of one set (`multilabel_metrics`), with a `tta` entry of
    the averaged predictions at the same thresholds when it was mirrored."""
    labels, probabilities = passed["labels"], passed["probabilities"]
    figures = multilabel_metrics(labels, probabilities, class_names, thresholds)
    if passed["mirrored"] is not None:
        both = averaged(probabilities, passed["mirrored"])
        tta = multilabel_metrics(labels, both, class_names, thresholds)
        figures["tta"] = {key: tta[key] for key in TTA_FIGURES}
    return figures


def write_multilabel_report(
    output_dir: str | os.PathLike,
    model: keras.Model,
    shipped: str,
    data: TrainingData,
    run: "Run",
    *,
    test_dir: str | os.PathLike | None = None,
    tta: str | bool = "off",
) -> dict:
    """Chooses the thresholds, then writes the report of a multi-label run.

    Writes `labels.json` with each class's threshold (chosen on the
    validation images with the plain predictions of the shipped model),
    `metrics.json` (`multilabel_metrics` of the validation images and the
    test images when given, and each class's threshold),
    `class_figures.png` (each class's average precision and F1),
    `training_curves.png`, `top_losses.png` (the validation images of
    highest loss, with their true and predicted label sets) and `run.json`,
    then prints a summary. Arguments as `report.write_report`'s.

    Returns:
        The contents of `metrics.json`.
    """
    folder = os.fspath(output_dir)
    use_tta, tta_reason = tta_decision(tta, data.flipped)
    names = data.class_names
    validation = multilabel_pass(model, data.validation, tta=use_tta)
    thresholds = choose_thresholds(validation["labels"], validation["probabilities"])
    save_labels(folder, names, thresholds)
    labels_to_model_dir(folder)  # on Vertex AI, with the thresholds now
    metrics: dict[str, Any] = {
        "model": shipped,
        "task": "multi-label",
        "thresholds": dict(zip(names, thresholds)),
        "validation": set_figures(validation, names, thresholds),
    }
    test = load_test_images(model, data, test_dir)
    if test is not None:
        passed = multilabel_pass(model, test.batches, tta=use_tta)
        metrics["test"] = set_figures(passed, names, thresholds)
    write_json(files.join(folder, METRICS_FILE), metrics)
    evaluated = "test" if "test" in metrics else "validation"
    card = run_card(run.state, run.settings)
    pictures = _draw_pictures(
        folder, model, shipped, metrics[evaluated], evaluated, validation, names, card
    )
    pictures.append(_top_losses(folder, shipped, validation, names, thresholds))
    write_run_card(folder, card, model, shipped, data, test)
    written = [METRICS_FILE, *filter(None, pictures), "labels.json", RUN_CARD_FILE]
    print(f"\nThe {evaluated} images, with {shipped} (multi-label):")
    print("\n".join(multilabel_summary_lines(metrics[evaluated])))
    print(threshold_line(metrics["thresholds"]))
    if line := tta_line(metrics[evaluated], tta, tta_reason):
        print(line)
    print("Wrote " + ", ".join(files.join(folder, name) for name in written))
    return metrics


def threshold_line(thresholds: dict[str, float]) -> str:
    """Each class's threshold, in one line."""
    return "Thresholds (F1-optimal on the validation images): " + ", ".join(
        f"{name} {value:.3f}" for name, value in thresholds.items()
    )


def tta_line(figures: dict, choice: str | bool, reason: str) -> str | None:
    """The TTA figures against the plain ones in one line, or why there are
    none when `--tta auto` chose; None when `--tta off` said so."""
    tta = figures.get("tta")
    if tta is None:
        return None if choice != "auto" else f"No TTA ({reason})."
    return (
        f"With TTA (each image and its mirror image; {reason}): mAP "
        f"{tta['mean_average_precision']:.4f}, exact match "
        f"{tta['exact_match_accuracy']:.4f} (without: "
        f"{figures['mean_average_precision']:.4f}, "
        f"{figures['exact_match_accuracy']:.4f})"
    )


def _draw_pictures(
    folder: str,
    model: keras.Model,
    shipped: str,
    figures: dict,
    evaluated: str,
    validation: dict,
    names: list[str],
    card: dict,
) -> list[str | None]:
    """Each class's figures and the training curves; the paths, None where
    a picture was not drawn."""
    classes = plot_class_figures(
        figures["per_class"],
        files.join(folder, CLASS_FIGURES_FILE),
        f"{shipped} on the {evaluated} images, class by class",
    )
    _, history = read_history(files.join(folder, "history.csv"))
    curves = plot_training_curves(
        history,
        files.join(folder, TRAINING_CURVES_FILE),
        f"Training of {model.name}",
        card["phases"],
    )
    return [_name(classes), _name(curves)]


def _top_losses(
    folder: str, shipped: str, validation: dict, names: list[str], thresholds
) -> str | None:
    path = plot_multilabel_top_losses(
        validation["worst"],
        names,
        thresholds,
        files.join(folder, TOP_LOSSES_FILE),
        f"Highest losses of {shipped} on the validation images",
    )
    return _name(path)


def _name(path: str | None) -> str | None:
    return None if path is None else files.base_name(path)
