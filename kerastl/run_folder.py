"""A run folder, read with the standard library: history, metrics and run card.

A run folder is what a generated training script writes.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kerastl.common.jsontext import JsonFileError, read_json_file
from kerastl.errors import KerastlError

RUN_FILES = ("history.csv", "metrics.json", "run.json")


class RunFolderError(KerastlError):
    """A folder is not a readable run folder."""


@dataclass(frozen=True)
class RunResult:
    """What one run folder holds.

    Attributes:
        folder: The run folder.
        history: Rows of `history.csv` (text values; a cell may be empty).
        metrics: The contents of `metrics.json`.
        card: The contents of `run.json`.
    """

    folder: Path
    history: list[dict[str, str]]
    metrics: dict[str, Any]
    card: dict[str, Any]

    @property
    def settings(self) -> dict[str, Any]:
        """The script's options, as `run.json` records them."""
        settings = self.card.get("settings")
        return settings if isinstance(settings, dict) else {}

    def series(self, column: str) -> tuple[list[int], list[float]]:
        """The epochs and values of a `history.csv` column (NaN where empty)."""
        return [int(row["epoch"]) for row in self.history], [
            _number(row.get(column)) for row in self.history
        ]

    def phase_starts(self) -> list[tuple[int, str]]:
        """The first epoch and the name of each phase that trained, in order."""
        phases = self.card.get("phases")
        return phase_starts(phases if isinstance(phases, list) else [])


def phase_starts(phases: list[dict[str, Any]]) -> list[tuple[int, str]]:
    """The first epoch and name of each phase `run.json` lists."""
    return [(phase["first_epoch"], phase["name"]) for phase in phases]


def read_run(folder: Path) -> RunResult:
    """Reads one run folder.

    Raises:
        RunFolderError: If a file is missing or cannot be read; the message
            names the folder and the file.
    """
    missing = [name for name in RUN_FILES if not (folder / name).is_file()]
    if missing and (folder / "resume" / "state.json").is_file():
        raise _error(
            folder,
            f"not a finished run (no {', '.join(missing)}): run its script "
            "again, with the same options, to finish it",
        )
    if missing:
        raise _error(folder, f"not a run folder: no {', '.join(missing)}")
    return RunResult(
        folder=folder,
        history=_read_history(folder),
        metrics=_read_json(folder, "metrics.json"),
        card=_read_json(folder, "run.json"),
    )


def _error(folder: Path, detail: str) -> RunFolderError:
    return RunFolderError(f"{folder}: {detail}")


def _read_json(folder: Path, name: str) -> dict[str, Any]:
    """One JSON file of a run folder; it must hold an object."""
    try:
        return read_json_file(folder / name, dict, name=name)
    except FileNotFoundError as error:
        raise _error(folder, f"cannot read {name} ({error})") from None
    except JsonFileError as error:
        raise _error(folder, str(error)) from None


def _read_history(folder: Path) -> list[dict[str, str]]:
    """The rows of `history.csv`, checked for whole epoch numbers and a phase."""
    try:
        with open(folder / "history.csv", newline="", encoding="utf-8") as file:
            reader = csv.DictReader(file)
            rows = list(reader)
            columns = reader.fieldnames or []
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise _error(folder, f"cannot read history.csv ({error})") from None
    lacking = [column for column in ("epoch", "phase") if column not in columns]
    if lacking:
        raise _error(folder, f"history.csv has no {' or '.join(lacking)} column")
    for line, row in enumerate(rows, start=2):
        if not (row["epoch"] or "").strip().isdigit():
            raise _error(
                folder,
                f"history.csv line {line}: epoch {row['epoch']!r} is not a whole number",
            )
    return rows


def _number(value: str | None) -> float:
    try:
        return float(value) if value not in (None, "") else math.nan
    except ValueError:
        return math.nan
