"""What `resume/state.json` holds: a run's phases, its best epoch, its latest
checkpoint (`RunState`)."""

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypedDict

from . import files
from .jsonfile import read_json

STATE_FORMAT = 2  # the layout of state.json; another one is refused


class CompletedPhase(TypedDict):
    """A phase that ended, and the epochs of the run after it."""

    phase: str
    end_epoch: int


class Best(TypedDict):
    """The best epoch of the run, and the file holding its weights."""

    value: float
    epoch: int
    phase: str
    weights: str  # a checkpoint under resume/, or best.keras


class Checkpoint(TypedDict, total=False):
    """The run's latest weights: after an epoch, inside one, or the final model."""

    phase: str
    epoch: int  # epochs the weights trained in all
    weights: str  # relative to the output folder
    random_state: list  # Dropout's seed generators: save_weights leaves them out
    batch: int  # stopped after this many batches of epoch `epoch + 1`
    metrics: list  # that epoch's running metrics


@dataclass
class RunState:
    """What `resume/state.json` holds (the same keys, written as they are).

    Attributes:
        format: `STATE_FORMAT` of the code that wrote it.
        model: The model's `fingerprint`.
        settings: The values resuming depends on (image size, classes...).
        phases: The run's phases, as dicts.
        training_settings: The settings the run trained with.
        completed: The phases that ended, in order.
        checkpoint: The latest weights, or None before the first epoch.
        best: The best epoch of the run, or None.
        wait: Epochs of the current phase without beating `best`.
        seconds: Wall time of each phase that trained.
    """

    format: int
    model: dict
    settings: dict
    phases: list[dict]
    training_settings: dict = field(default_factory=dict)
    completed: list[CompletedPhase] = field(default_factory=list)
    checkpoint: Checkpoint | None = None
    best: Best | None = None
    wait: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> "RunState":
        """The state of a `state.json` (keys it does not know are left out)."""
        names = {item.name for item in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in record.items() if key in names})

    def to_json(self) -> dict[str, Any]:
        """The contents of `state.json`."""
        return dataclasses.asdict(self)


def read_state(output_dir: str) -> dict | None:
    """The JSON of the state saved in `output_dir`, or None if there is none."""
    return read_json(files.join(output_dir, "resume", "state.json"))
