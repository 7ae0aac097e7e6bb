"""The figures of a classifier: accuracy, per-class scores, confusion matrix.

Plain numpy, importable without TensorFlow; the figures are JSON-ready
(Python ints and floats, never NaN). The predictions they are computed from
come from `predictions`; `metrics_summary` prints them.
"""

import numpy as np

from .metric_math import class_indices, ratio


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
    precision = ratio(correct, matrix.sum(axis=0))
    recall = ratio(correct, support)
    f1 = ratio(2 * precision * recall, precision + recall)
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
