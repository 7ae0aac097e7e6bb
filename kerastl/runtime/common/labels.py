"""`labels.json`: a run's class names, in the order of the model's outputs.

A single-label run's file is the list of names. A multi-label run's is an
object: `{"task": "multi-label", "classes": [names], "thresholds": [one per
class]}`, the decision thresholds chosen on the validation images.
"""

from typing import Any

LABELS_FILE = "labels.json"
MULTI_LABEL = "multi-label"


def labels_data(class_names: list[str], thresholds: list[float] | None = None) -> Any:
    """What `labels.json` holds: the names, or with `thresholds` the object
    of a multi-label run."""
    if thresholds is None:
        return list(class_names)
    if len(thresholds) != len(class_names):
        raise ValueError(f"{len(thresholds)} thresholds for {len(class_names)} classes")
    return {
        "task": MULTI_LABEL,
        "classes": list(class_names),
        "thresholds": [float(value) for value in thresholds],
    }


def class_names_in(data: Any, name: str) -> list[str]:
    """The class names `data` (the contents of `labels.json`) lists.

    Args:
        data: The file's JSON value.
        name: The file, as the error names it.

    Raises:
        ValueError: If `data` is not a non-empty list of names.
    """
    if isinstance(data, dict):
        data = data.get("classes")
    if not isinstance(data, list) or not data:
        raise ValueError(f"{name} does not list the class names")
    return [str(class_name) for class_name in data]


def thresholds_in(data: Any, name: str) -> list[float] | None:
    """The decision thresholds of a multi-label run's `labels.json`, one per
    class; None for a single-label run's.

    Raises:
        ValueError: If `data` says multi-label but gives no valid thresholds.
    """
    if not isinstance(data, dict) or data.get("task") != MULTI_LABEL:
        return None
    thresholds = data.get("thresholds")
    count = len(class_names_in(data, name))
    if (
        not isinstance(thresholds, list)
        or len(thresholds) != count
        or not all(
            isinstance(value, (int, float)) and not isinstance(value, bool)
            for value in thresholds
        )
    ):
        raise ValueError(f"{name} does not give a threshold for each of its classes")
    return [float(value) for value in thresholds]
