"""The figures of a multi-label classifier: thresholds, average precision, F1.

Plain numpy, importable without TensorFlow; the figures are JSON-ready
(Python ints and floats, never NaN: a figure a set cannot define is None).

Each class has its own decision threshold: an image has a label when the
label's probability is at least the class's threshold. `choose_thresholds`
picks each one on the validation images, where the class's F1 is highest.
"""

import numpy as np

from .metric_math import ratio
from .metrics_summary import plural

#: The threshold of a class without a positive validation image: no F1 can
#: be measured, so it keeps the sigmoid's even odds.
FALLBACK_THRESHOLD = 0.5


def _ranked(labels: np.ndarray, scores: np.ndarray):
    """The scores' distinct values, highest first, and at each the true and
    false positives of predicting every score at least that value."""
    order = np.argsort(-scores, kind="stable")
    scores, labels = scores[order], labels[order]
    last_of_value = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    true_positives = np.cumsum(labels)[last_of_value]
    false_positives = (last_of_value + 1) - true_positives
    return scores[last_of_value], true_positives, false_positives


def average_precision(labels, scores) -> float | None:
    """The average precision of one class: the area under its precision-recall
    steps, `sum((R_n - R_n-1) * P_n)` over the distinct scores, highest first
    (scikit-learn's `average_precision_score`).

    Args:
        labels: Whether each image has the class (0/1), shape `(n,)`.
        scores: The class's predicted probability of each image, `(n,)`.

    Returns:
        The average precision, or None if no image has the class.
    """
    labels = np.asarray(labels, dtype="float64") >= 0.5
    scores = np.asarray(scores, dtype="float64")
    positives = int(labels.sum())
    if not positives:
        return None
    _, true_positives, false_positives = _ranked(labels, scores)
    precision = true_positives / (true_positives + false_positives)
    recall = true_positives / positives
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def best_threshold(labels, scores) -> float:
    """The F1-optimal decision threshold of one class.

    The candidates are the class's distinct scores: predicting "yes" for every
    score at least a candidate gives that candidate's F1. The best candidate
    wins; of several with the same F1, the highest (fewer "yes" answers).
    Any threshold between the winner and the next lower score gives the same
    F1 on these images: the threshold is the midpoint, the margin that new
    images get on either side (below the lowest score: half of it). A class
    that no image has keeps `FALLBACK_THRESHOLD`.

    Args:
        labels: Whether each image has the class (0/1), shape `(n,)`.
        scores: The class's predicted probability of each image, `(n,)`.
    """
    labels = np.asarray(labels, dtype="float64") >= 0.5
    scores = np.asarray(scores, dtype="float64")
    positives = int(labels.sum())
    if not positives:
        return FALLBACK_THRESHOLD
    values, true_positives, false_positives = _ranked(labels, scores)
    f1 = 2 * true_positives / (true_positives + false_positives + positives)
    best = int(np.argmax(f1))  # the first of a tie: the highest threshold
    below = values[best + 1] if best + 1 < len(values) else 0.0
    return float((values[best] + below) / 2)


def choose_thresholds(labels, probabilities) -> list[float]:
    """`best_threshold` of each class: one per column of `probabilities`."""
    labels, probabilities = _checked(labels, probabilities)
    return [
        best_threshold(labels[:, index], probabilities[:, index])
        for index in range(probabilities.shape[1])
    ]


def decisions(probabilities, thresholds) -> np.ndarray:
    """Which labels each image gets: its probabilities at least the thresholds."""
    return np.asarray(probabilities, dtype="float64") >= np.asarray(
        thresholds, dtype="float64"
    )


def binary_cross_entropy(labels, probabilities) -> np.ndarray:
    """Each image's binary cross-entropy, averaged over the classes and
    clipped as Keras clips it, shape `(n,)`."""
    labels = np.asarray(labels, dtype="float64")
    clipped = np.clip(np.asarray(probabilities, dtype="float64"), 1e-7, 1 - 1e-7)
    losses = labels * np.log(clipped) + (1 - labels) * np.log(1 - clipped)
    return -losses.mean(axis=1)


def multilabel_metrics(
    labels, probabilities, class_names: list[str], thresholds
) -> dict:
    """The figures of a multi-label classifier on one set of images.

    Args:
        labels: Multi-hot rows, shape `(n, classes)`.
        probabilities: The model's sigmoid outputs, `(n, classes)`.
        class_names: The names of the classes, in index order.
        thresholds: Each class's decision threshold (`choose_thresholds`).

    Returns:
        `loss` (binary cross-entropy), `mean_average_precision` (the mean of
        the average precisions of the classes that have a positive image),
        `exact_match_accuracy` (images whose predicted label set is exactly
        theirs), `micro_f1` (from the counts of every class together),
        `macro_f1` (the mean F1 of the classes with a positive image),
        `per_class` (class, threshold, average_precision, precision, recall,
        f1, support: the images that have the class) and `examples`.

    Raises:
        ValueError: If the shapes do not match each other or `class_names`,
            or there are no examples.
    """
    labels, probabilities = _checked(labels, probabilities)
    if probabilities.shape[1] != len(class_names):
        raise ValueError(
            f"probabilities of shape {probabilities.shape} do not match "
            f"{len(class_names)} classes"
        )
    truth = labels >= 0.5
    predicted = decisions(probabilities, thresholds)
    true_positives = (truth & predicted).sum(axis=0)
    support = truth.sum(axis=0)
    precision = ratio(true_positives, predicted.sum(axis=0))
    recall = ratio(true_positives, support)
    f1 = ratio(2 * true_positives, predicted.sum(axis=0) + support)
    precisions = [
        average_precision(truth[:, index], probabilities[:, index])
        for index in range(len(class_names))
    ]
    present = support > 0
    defined = [value for value in precisions if value is not None]
    return {
        "loss": float(binary_cross_entropy(labels, probabilities).mean()),
        "mean_average_precision": float(np.mean(defined)) if defined else None,
        "exact_match_accuracy": float((truth == predicted).all(axis=1).mean()),
        "micro_f1": float(
            ratio(2 * true_positives.sum(), predicted.sum() + truth.sum())
        ),
        "macro_f1": float(f1[present].mean()) if present.any() else None,
        "per_class": [
            {
                "class": name,
                "threshold": float(thresholds[index]),
                "average_precision": precisions[index],
                "precision": float(precision[index]),
                "recall": float(recall[index]),
                "f1": float(f1[index]),
                "support": int(support[index]),
            }
            for index, name in enumerate(class_names)
        ],
        "examples": len(labels),
    }


def multilabel_summary_lines(metrics: dict, weakest: int = 3) -> list[str]:
    """The figures of `multilabel_metrics` as lines to print: mAP, exact
    match, micro and macro F1, then the classes of lowest average precision."""
    figures = [
        ("mAP", metrics["mean_average_precision"]),
        ("exact match", metrics["exact_match_accuracy"]),
        ("micro F1", metrics["micro_f1"]),
        ("macro F1", metrics["macro_f1"]),
    ]
    lines = [
        f"  {name:<11}  {'-' if value is None else f'{value:.4f}'}"
        for name, value in figures
    ]
    lines.append(f"  {'examples':<11}  {metrics['examples']}")
    rows = [row for row in metrics["per_class"] if row["support"] > 0]
    ranked = sorted(rows, key=lambda row: row["average_precision"])[:weakest]
    if ranked:
        lines.append(
            f"Weakest {plural(len(ranked), 'class', 'classes')} by average precision:"
        )
        width = max(len(str(row["class"])) for row in ranked)
        lines += [
            f"  {row['class']!s:<{width}}  AP {row['average_precision']:.3f}  "
            f"F1 {row['f1']:.3f} at threshold {row['threshold']:.3f}  "
            f"({plural(row['support'], 'example', 'examples')})"
            for row in ranked
        ]
    empty = [str(row["class"]) for row in metrics["per_class"] if not row["support"]]
    if empty:
        lines.append(f"No examples of: {', '.join(empty)}")
    return lines


def _checked(labels, probabilities) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels, dtype="float64")
    probabilities = np.asarray(probabilities, dtype="float64")
    if probabilities.ndim != 2 or labels.shape != probabilities.shape:
        raise ValueError(
            f"labels of shape {labels.shape} do not match probabilities of "
            f"shape {probabilities.shape}"
        )
    if not len(labels):
        raise ValueError("no examples to evaluate")
    return labels, probabilities
