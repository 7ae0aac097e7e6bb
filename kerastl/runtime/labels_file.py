"""`labels.json`: the class names in the order of the model's outputs."""

import json
import os

from . import files
from .common.labels import LABELS_FILE, labels_data


def save_labels(
    output_dir: str | os.PathLike,
    class_names: list[str],
    thresholds: list[float] | None = None,
) -> str:
    """Writes `labels.json`: the class names, in the order of the model's
    outputs, and a multi-label run's decision thresholds (`labels_data`)."""
    return files.write_text(
        files.join(output_dir, LABELS_FILE),
        json.dumps(labels_data(class_names, thresholds), indent=2) + "\n",
    )
