"""`labels.json`: a run's class names, in the order of the model's outputs."""

from typing import Any

LABELS_FILE = "labels.json"


def class_names_in(data: Any, name: str) -> list[str]:
    """The class names `data` (the contents of `labels.json`) lists.

    Args:
        data: The file's JSON value.
        name: The file, as the error names it.

    Raises:
        ValueError: If `data` is not a non-empty list of names.
    """
    if not isinstance(data, list) or not data:
        raise ValueError(f"{name} does not list the class names")
    return [str(class_name) for class_name in data]
