"""`run.json`, the run card: what a run trained on, with which settings and
versions, and how it went."""

import platform
from importlib import metadata
from typing import TYPE_CHECKING

import keras
import tensorflow as tf

from . import files
from .image_sets import ImageFiles, ImageSet
from .jsonfile import write_json
from .training_data import TrainingData

if TYPE_CHECKING:
    from .run_state import RunState

RUN_CARD_FILE = "run.json"


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
