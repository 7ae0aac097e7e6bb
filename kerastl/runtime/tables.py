"""Labels from a table: a CSV file naming each image and its class or classes.

The header names an `image` column (a path relative to `--data-dir`, or
absolute, or a URL) and a `label` column (one class per image) or a `labels`
column (several, separated by spaces or another delimiter); an optional
`split` column (train, val, test) replaces the random split. Other columns are
ignored. The tables are read and checked against the files before anything
loads: every problem is counted and named in one line (`TableError`).
"""

import csv
import hashlib
import io
import os
from dataclasses import dataclass, field
from typing import Any

from . import files
from .errors import TableError

SPLITS = ("train", "val", "test")
LABEL_COLUMNS = ("label", "labels")
NAMED = 3  # examples a problem names, then a count


@dataclass(frozen=True)
class TableRow:
    """One row: its line in the file, the image as written and as a path,
    its classes and its split (None: not given)."""

    line: int
    name: str
    path: str
    labels: tuple[str, ...]
    split: str | None


@dataclass
class LabelTable:
    """A table as read: its rows, and the problems found in it alone.

    Attributes:
        path: The table's file.
        sha256: The SHA-256 of its bytes (`run.json` records it).
        multi_label: Whether it has a `labels` column.
        has_split: Whether it has a `split` column.
        rows: The rows that could be read.
        problems: One phrase per kind of problem, with counts.
        named: The paths of the images every row names, read or not.
    """

    path: str
    sha256: str
    multi_label: bool
    has_split: bool
    rows: list[TableRow] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    named: set[str] = field(default_factory=set)


def read_table(path: str, data_dir: str, delimiter: str | None = None) -> LabelTable:
    """Reads a table of labels, collecting the problems of its rows.

    Args:
        path: The CSV file (a local path or a URL).
        data_dir: The folder its relative image paths start from.
        delimiter: What separates the classes of a `labels` cell (default,
            or blank: spaces, however many).

    Raises:
        TableError: If the file is missing, is not UTF-8 text or its header
            lacks the columns.
    """
    if not files.is_file(path):
        raise TableError(f"label table {path} does not exist")
    data = files.read_bytes(path)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise TableError(
            f"label table {path} is not UTF-8 text (byte {error.start})"
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [name.strip().lower() for name in next(reader, [])]
    except csv.Error as error:
        raise TableError(f"label table {path}: malformed CSV at line 1 ({error})")
    label_columns = [name for name in LABEL_COLUMNS if name in header]
    if "image" not in header or len(label_columns) != 1:
        raise TableError(
            f"label table {path} has the columns {', '.join(header) or 'none'}; it "
            "needs a header row with image, and label or labels (and optionally split)"
        )
    table = LabelTable(
        path,
        hashlib.sha256(data).hexdigest(),
        multi_label=label_columns[0] == "labels",
        has_split="split" in header,
    )
    _read_rows(table, reader, header, data_dir, delimiter)
    return table


def _read_rows(
    table: LabelTable,
    reader: Any,  # a csv.reader: its rows, and line_num
    header: list[str],
    data_dir: str,
    delimiter: str | None,
) -> None:
    columns = {
        name: header.index(name)
        for name in ("image", *LABEL_COLUMNS, "split")
        if name in header
    }
    label_column = columns.get("labels", columns.get("label"))
    found: dict[str, list[str]] = {"fields": [], "image": [], "labels": [], "split": []}
    line = reader.line_num  # the last line read whole
    try:
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue  # a blank line
            if len(row) != len(header):
                found["fields"].append(f"line {line}: {len(row)} fields")
                continue
            name = row[columns["image"]].strip()
            labels = _labels(row[label_column], table.multi_label, delimiter)
            split = row[columns["split"]].strip().lower() if "split" in columns else ""
            if not name:
                found["image"].append(f"line {line}")
            if not labels:
                found["labels"].append(f"line {line}")
            if split and split not in SPLITS:
                found["split"].append(f"line {line}: {split!r}")
            if not name:
                continue
            path = image_path(name, data_dir)
            table.named.add(path)
            if labels and (not split or split in SPLITS):
                table.rows.append(TableRow(line, name, path, labels, split or None))
    except csv.Error as error:
        # The row that fails starts after the last one read (an unclosed quote
        # reads on to the end of the file).
        table.problems.append(f"malformed CSV at line {line + 1} ({error})")
    phrases = {
        "fields": f"with another number of fields than the header's {len(header)}",
        "image": "with an empty image",
        "labels": "with empty labels",
        "split": f"with an unknown split (use {', '.join(SPLITS)})",
    }
    for kind, phrase in phrases.items():
        if found[kind]:
            table.problems.append(rows_phrase(found[kind], phrase))


def _labels(cell: str, multi_label: bool, delimiter: str | None) -> tuple[str, ...]:
    if not multi_label:
        return (cell.strip(),) if cell.strip() else ()
    parts = cell.split(delimiter) if delimiter and delimiter.strip() else cell.split()
    return tuple(dict.fromkeys(part.strip() for part in parts if part.strip()))


def image_path(name: str, data_dir: str) -> str:
    """The path of a table's image: `name` itself when it is absolute or a URL,
    else below `data_dir`; local paths normalized (as `images.all_files`)."""
    if files.is_remote(name):
        return name
    path = name if os.path.isabs(name) else files.join(data_dir, name)
    return path if files.is_remote(path) else os.path.normpath(path)


def rows_phrase(examples: list[str], phrase: str) -> str:
    """`3 rows <phrase> (first, second, third and 1 more)`."""
    noun = "row" if len(examples) == 1 else "rows"
    return f"{len(examples)} {noun} {phrase} ({named(examples)})"


def named(examples: list[str]) -> str:
    """The first `NAMED` examples, then how many more."""
    more = len(examples) - NAMED
    return ", ".join(examples[:NAMED]) + (f" and {more} more" if more > 0 else "")
