"""The training, validation and test images of label tables, checked together.

`read_table` finds the problems of each table alone; `load_tables` adds those
of the tables against each other and against the files (rows naming missing
files, images in the data folder that no row names, an image named twice, a
class only in the validation or test rows) and raises one `TableError` with
all of them, before any image is decoded.
"""

from dataclasses import dataclass

import numpy as np

from . import files
from .errors import TableError
from .image_lists import LabelledImages
from .images import all_files, is_image_name
from .tables import LabelTable, TableRow, named, read_table, rows_phrase


@dataclass(frozen=True)
class TableSets:
    """The images the tables name, by set, and the classes (sorted, as Keras
    numbers class folders). `validation` is None when it is to be split off
    the training images; `test` when there are no test rows."""

    train: LabelledImages
    validation: LabelledImages | None
    test: LabelledImages | None
    class_names: list[str]


def load_tables(
    data_dir: str,
    labels: str,
    *,
    val_labels: str | None = None,
    test_labels: str | None = None,
    delimiter: str | None = None,
) -> TableSets:
    """Reads and checks the tables of a run (`--labels`, `--val-labels`,
    `--test-labels`): the `split` column of `labels` may give the validation
    and test rows instead.

    Raises:
        TableError: Naming every problem found, with counts, in one line.
    """
    tables = {"train": read_table(labels, data_dir, delimiter)}
    for subset, path in (("val", val_labels), ("test", test_labels)):
        if path is not None:
            tables[subset] = read_table(path, data_dir, delimiter)
    main = tables["train"]
    by_set: dict[str, list[TableRow]] = {name: [] for name in ("train", "val", "test")}
    for row in main.rows:
        by_set[row.split or "train"].append(row)
    problems = [f"{_name(main)}: {p}" for p in main.problems]
    for subset, table in list(tables.items())[1:]:
        problems += [f"{_name(table)}: {p}" for p in table.problems]
        if by_set[subset]:
            problems.append(
                f"{_name(main)} has {subset} rows and --{subset}-labels is given too; "
                "give one of them"
            )
        if table.multi_label != main.multi_label:
            problems.append(
                f"{_name(table)} has a {_column(table)} column, {_name(main)} a "
                f"{_column(main)} column"
            )
        by_set[subset] += table.rows
    named = set().union(*(table.named for table in tables.values()))
    rows = [row for subset in by_set.values() for row in subset]
    problems += _file_problems(data_dir, rows, named)
    class_names = sorted({label for row in by_set["train"] for label in row.labels})
    problems += _class_problems(by_set, class_names)
    if problems:
        raise TableError("the labels cannot be used: " + "; ".join(problems))
    sets = {
        subset: (
            _labelled(rows, tables.get(subset, main), class_names, data_dir)
            if rows
            else None
        )
        for subset, rows in by_set.items()
    }
    if sets["train"] is None:
        raise TableError(f"{_name(main)} has no training rows")
    return TableSets(sets["train"], sets["val"], sets["test"], class_names)


def _file_problems(
    data_dir: str, rows: list[TableRow], named_paths: set[str]
) -> list[str]:
    """Rows naming missing files, images no row names (`named_paths`: every
    row's, read or not), images named twice."""
    present = set(all_files(data_dir)) if files.is_dir(data_dir) else set()
    missing = [
        f"{row.name} (line {row.line})"
        for row in rows
        if row.path not in present and not files.exists(row.path)
    ]
    lines: dict[str, list[int]] = {}
    names: dict[str, str] = {}
    for row in rows:
        lines.setdefault(row.path, []).append(row.line)
        names.setdefault(row.path, row.name)
    twice = [
        f"{names[path]} on lines {', '.join(map(str, at))}"
        for path, at in lines.items()
        if len(at) > 1
    ]
    unnamed = [
        files.relative(path, data_dir)
        for path in sorted(present)
        if is_image_name(path) and path not in named_paths
    ]
    problems = []
    if missing:
        problems.append(rows_phrase(missing, "naming missing files"))
    if twice:
        extra = sum(len(at) - 1 for at in lines.values())
        rows_word = "row" if extra == 1 else "rows"
        problems.append(f"{extra} duplicate {rows_word} ({named(twice)})")
    if unnamed:
        noun = "image" if len(unnamed) == 1 else "images"
        problems.append(
            f"{len(unnamed)} {noun} in {data_dir} that no row names ({named(unnamed)})"
        )
    return problems


def _class_problems(by_set: dict[str, list[TableRow]], classes: list[str]) -> list[str]:
    """Classes of validation or test rows that no training row has."""
    known = set(classes)
    problems = []
    for subset, what in (("val", "validation"), ("test", "test")):
        counts: dict[str, int] = {}
        for row in by_set[subset]:
            for label in row.labels:
                if label not in known:
                    counts[label] = counts.get(label, 0) + 1
        if counts:
            listed = named([f"{name!r} ({count})" for name, count in counts.items()])
            noun = "class" if len(counts) == 1 else "classes"
            problems.append(f"{noun} only in the {what} rows, none to train: {listed}")
    return problems


def _labelled(
    rows: list[TableRow], table: LabelTable, class_names: list[str], root: str
) -> LabelledImages:
    index = {name: i for i, name in enumerate(class_names)}
    if table.multi_label:
        labels = np.zeros((len(rows), len(class_names)), np.float32)
        for i, row in enumerate(rows):
            labels[i, [index[label] for label in row.labels]] = 1
    else:
        labels = np.array([index[row.labels[0]] for row in rows], np.int32)
    paths = [row.path for row in rows]
    return LabelledImages(paths, labels, root, table.path, table.sha256)


def _name(table: LabelTable) -> str:
    return files.base_name(table.path)


def _column(table: LabelTable) -> str:
    return "labels" if table.multi_label else "label"
