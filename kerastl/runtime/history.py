"""`history.csv`: one row per epoch of a run, across phases and resumed runs.

Epochs are numbered from 1, as Keras prints them. Unlike `keras.callbacks.CSVLogger`,
the file records the phase of each epoch, takes new columns in a later phase, and
a resumed run first drops the rows it is about to redo, so no epoch appears twice.
The file is written whole after each epoch (object stores cannot append), through
a temporary name.
"""

import csv
import io
import os

from . import files

FIRST_COLUMNS = ["epoch", "phase"]


def read_history(path: str | os.PathLike) -> tuple[list[str], list[dict[str, str]]]:
    """Reads a history CSV; returns its columns and rows (empty if there is none)."""
    if not files.exists(path):
        return list(FIRST_COLUMNS), []
    reader = csv.DictReader(io.StringIO(files.read_text(path), newline=""))
    rows = list(reader)
    return list(reader.fieldnames or FIRST_COLUMNS), rows


def drop_epochs_from(path: str | os.PathLike, epoch: int) -> None:
    """Removes the rows of `epoch` and later ones (a resumed run redoes them)."""
    header, rows = read_history(path)
    kept = [row for row in rows if int(row["epoch"]) < epoch]
    if len(kept) != len(rows):
        _write_history(path, header, kept)


def record_epoch(
    path: str | os.PathLike, epoch: int, phase: str, logs: dict[str, float]
) -> None:
    """Adds the row of `epoch` (numbered from 1) with its phase and metrics."""
    header, rows = read_history(path)
    row = {
        "epoch": epoch,
        "phase": phase,
        **{key: f"{float(value):.6g}" for key, value in logs.items()},
    }
    new_columns = [key for key in row if key not in header]
    _write_history(path, header + new_columns, [*rows, row])


def _write_history(
    path: str | os.PathLike, header: list[str], rows: list[dict]
) -> None:
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, header, restval="")
    writer.writeheader()
    writer.writerows(rows)
    files.write_text(path, text.getvalue())
