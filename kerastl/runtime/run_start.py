"""What a run starts from: its phases, its first state, and what `--restart`
deletes."""

import dataclasses
import json
from dataclasses import asdict, dataclass
from typing import Any

import keras

from . import files
from .continuation import fingerprint
from .errors import ScriptError
from .export import EXPORT_FOLDER
from .lora_saving import ADAPTERS_FILE
from .report import REPORT_FILES
from .run_state import STATE_FORMAT, RunState
from .settings import settings_record, training_settings

# What a run writes into its output folder; --restart deletes exactly these
# (the image and feature caches stay: they are keyed by what they hold).
RUN_FILES = (
    ("resume", "history.csv", "best.keras", "model.keras", "logs", "lr_find.png")
    + (ADAPTERS_FILE,)
    + REPORT_FILES
    + (EXPORT_FOLDER,)
)


@dataclass(frozen=True)
class Phase:
    """One `fit()` of a run.

    Attributes:
        name: Unique name of the phase.
        epochs: Epochs of this phase.
        learning_rate: Peak learning rate of this phase.
        unfreeze: What of the base trains: None (nothing), a number of top
            blocks, `"all"`, or the name of the first layer to train.
    """

    name: str
    epochs: int
    learning_rate: float
    unfreeze: int | str | None = None


def check_phases(phases: list[Phase], find_lr: str | None) -> None:
    names = [phase.name for phase in phases]
    if len(set(names)) != len(names):
        raise ScriptError(f"phase names must be unique: {names}")
    if find_lr is not None and find_lr not in names:
        raise ScriptError(
            f"--find-lr {find_lr}: the run has no such phase; its phases are "
            + ", ".join(names)
        )


def new_state(
    model: keras.Model,
    trained_model: keras.Model,
    phases: list[Phase],
    settings: Any,
    depends_on: dict | None,
) -> RunState:
    """The state a run starts with, before it trained."""
    depends_on = dict(depends_on or {})
    if trained_model is not model:  # its checkpoints hold other weights
        depends_on["trained_model"] = trained_model.name
    return RunState(
        format=STATE_FORMAT,
        model=fingerprint(model),
        settings=json.loads(json.dumps(depends_on)),
        phases=[asdict(phase) for phase in phases],
        training_settings=training_record(settings),
    )


def delete_run(output_dir: str) -> None:
    """Deletes the files of the run in `output_dir` (`RUN_FILES`), saying which."""
    deleted = [name for name in RUN_FILES if files.delete(files.join(output_dir, name))]
    if deleted:
        print(f"Restarting: deleted {', '.join(deleted)} in {output_dir}")


def as_record(settings: Any) -> dict:
    """The settings as JSON data, from a `Settings` dataclass or a dict."""
    if settings is None:
        return {}
    if dataclasses.is_dataclass(settings):
        return settings_record(settings)
    return json.loads(json.dumps(dict(settings), default=str))


def training_record(settings: Any) -> dict:
    if dataclasses.is_dataclass(settings):
        return training_settings(settings)
    return as_record(settings)
