"""`history.csv`: one row per epoch of a run, across phases and resumed runs.

Epochs are numbered from 1, as Keras prints them. Unlike `keras.callbacks.CSVLogger`,
the file records the phase of each epoch, takes new columns in a later phase, and
a resumed run first drops the rows it is about to redo, so no epoch appears twice.
"""

import csv
import os
from pathlib import Path

from .files import replacing

FIRST_COLUMNS = ["epoch", "phase"]


def read_history(path: str | os.PathLike) -> tuple[list[str], list[dict[str, str]]]:
    """Reads a history CSV; returns its columns and rows (empty if there is none)."""
    path = Path(path)
    if not path.exists():
        return list(FIRST_COLUMNS), []
    with open(path, newline="") as file:
        reader = csv.DictReader(file)
        rows = list(reader)
        return list(reader.fieldnames or FIRST_COLUMNS), rows


def drop_epochs_from(path: str | os.PathLike, epoch: int) -> None:
    """Removes the rows of `epoch` and later ones (a resumed run redoes them)."""
    header, rows = read_history(path)
    kept = [row for row in rows if int(row["epoch"]) < epoch]
    if len(kept) != len(rows):
        _write_history(Path(path), header, kept)


def record_epoch(
    path: str | os.PathLike, epoch: int, phase: str, logs: dict[str, float]
) -> None:
    """Appends the row of `epoch` (numbered from 1) with its phase and metrics."""
    path = Path(path)
    header, rows = read_history(path)
    row = {
        "epoch": epoch,
        "phase": phase,
        **{key: f"{float(value):.6g}" for key, value in logs.items()},
    }
    new_columns = [key for key in row if key not in header]
    if new_columns or not path.exists():
        _write_history(path, header + new_columns, [*rows, row])
        return
    with open(path, "a", newline="") as file:
        csv.DictWriter(file, header, restval="").writerow(row)
        file.flush()
        os.fsync(file.fileno())


def _write_history(path: Path, header: list[str], rows: list[dict]) -> None:
    with replacing(path) as partial, open(partial, "w", newline="") as file:
        writer = csv.DictWriter(file, header, restval="")
        writer.writeheader()
        writer.writerows(rows)
        file.flush()
        os.fsync(file.fileno())
