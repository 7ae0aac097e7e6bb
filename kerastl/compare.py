"""`kerastl compare`: read run folders, tabulate what differs, plot their curves.

A run folder is what a generated training script writes: `history.csv`,
`metrics.json` and `run.json`. Everything here reads them with the standard
library; matplotlib loads only to draw the figure.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kerastl.common.atomic import write_bytes
from kerastl.common.jsontext import JsonFileError, read_json_file
from kerastl.common.plots import agg_figure, png_bytes
from kerastl.errors import KerastlError

RUN_FILES = ("history.csv", "metrics.json", "run.json")
MISSING = "-"


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


def column_names(folders: Sequence[Path]) -> list[str]:
    """A heading per folder: its name, with parents added where names repeat.

    Raises:
        RunFolderError: If the same folder is given twice.
    """
    parts = [folder.resolve().parts for folder in folders]
    depths = [1] * len(folders)
    while True:
        names = ["/".join(part[-depth:]) for part, depth in zip(parts, depths)]
        repeated = {name for name in names if names.count(name) > 1}
        if not repeated:
            return names
        grown = False
        for index, name in enumerate(names):
            if name in repeated and depths[index] < len(parts[index]):
                depths[index] += 1
                grown = True
        if not grown:
            twice = folders[names.index(next(iter(repeated)))]
            raise RunFolderError(f"{twice} is given twice")


#: The history's columns of the validation loss without label smoothing:
#: single-label, multi-label.
PLAIN_LOSSES = ("val_categorical_crossentropy", "val_binary_crossentropy")


def table_lines(runs: Sequence[RunResult], names: Sequence[str]) -> list[str]:
    """The comparison as aligned text lines, one column per run.

    Rows: the settings that differ between the runs, how many are the same,
    then the shipped model's figures (its cross-entropy without label
    smoothing, as `metrics.json`'s loss; with TTA, its accuracy so too), its
    best epoch and the training time.
    """
    keys = list(dict.fromkeys(key for run in runs for key in run.settings))
    differ = [
        key for key in keys if len({_canonical(run.settings, key) for run in runs}) > 1
    ]
    rows: list[tuple[str, list[str]]] = [("", list(names))]
    rows.append(("settings", [""] * len(runs)))
    rows += [
        (f"  {key}", [_setting(run.settings, key) for run in runs]) for key in differ
    ]
    same = len(keys) - len(differ)
    rows.append((f"  ({same} {'setting' if same == 1 else 'settings'} the same)", []))
    rows.append(
        ("shipped model", [str(run.metrics.get("model", MISSING)) for run in runs])
    )
    for subset in ("validation", "test"):
        if any(isinstance(run.metrics.get(subset), dict) for run in runs):
            for key, label in (
                ("loss", "cross-entropy"),  # unsmoothed, whatever --label-smoothing
                ("accuracy", "accuracy"),
                ("macro_f1", "macro-F1"),
                *_multi_label_figures(runs, subset),
            ):
                values = [_figure(run.metrics, subset, key) for run in runs]
                if any(
                    value != MISSING for value in values
                ):  # multi-label: no accuracy
                    rows.append((f"{subset} {label}", values))
            rows += _tta_rows(runs, subset)
    rows.append(("best epoch", [_best_epoch(run.card) for run in runs]))
    rows.append(("training time", [_duration(run.card) for run in runs]))
    width = max(len(label) for label, _ in rows)
    widths = [
        max(len(cells[i]) for _, cells in rows if cells) for i in range(len(runs))
    ]
    return [
        "  ".join(
            [label.ljust(width), *(cell.ljust(w) for cell, w in zip(cells, widths))]
        ).rstrip()
        for label, cells in rows
    ]


#: The figures of a multi-label run's set, shown where a run has them.
MULTI_LABEL_FIGURES = (
    ("mean_average_precision", "mAP"),
    ("exact_match_accuracy", "exact match"),
    ("micro_f1", "micro-F1"),
)


def _multi_label_figures(
    runs: Sequence[RunResult], subset: str
) -> list[tuple[str, str]]:
    return [
        (key, label)
        for key, label in MULTI_LABEL_FIGURES
        if any(key in (run.metrics.get(subset) or {}) for run in runs)
    ]


def _tta_rows(runs: Sequence[RunResult], subset: str) -> list[tuple[str, list[str]]]:
    """The TTA figures of runs that ran with --tta: accuracy, and mAP of a
    multi-label run."""
    rows = []
    for key, label in (("accuracy", "accuracy"), ("mean_average_precision", "mAP")):
        if any(key in (_tta(run.metrics, subset) or {}) for run in runs):
            rows.append(
                (
                    f"{subset} {label}, TTA",
                    [_number_text(_tta(run.metrics, subset), key) for run in runs],
                )
            )
    return rows


def plot_runs(
    runs: Sequence[RunResult], names: Sequence[str], path: Path
) -> Path | None:
    """Draws validation loss and accuracy over epochs, one line per run, as a PNG.

    The loss is the plain cross-entropy (`val_categorical_crossentropy`) where
    every run's history has it, as label smoothing changes `val_loss`. The legend names each run's phases; each phase after the first is marked
    where it starts, in the run's colour, and named there. The file is
    written under a temporary name, then renamed.

    Returns:
        `path`, or None if matplotlib is not installed (said once).
    """
    figure = agg_figure(path, (10.0, 4.0))
    if figure is None:
        return None
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    colours = [f"C{index % 10}" for index in range(len(runs))]
    for panel, (metric, label) in enumerate((loss_column(runs), score_column(runs))):
        axes = figure.add_subplot(1, 2, panel + 1)
        drawn = False
        for index, (run, name, colour) in enumerate(zip(runs, names, colours)):
            epochs, values = run.series(_column(run, metric))
            if not any(math.isfinite(value) for value in values):
                continue
            drawn = True
            starts = run.phase_starts()
            phases = " > ".join(phase for _, phase in starts)
            axes.plot(
                epochs, values, color=colour, marker=".", label=f"{name}: {phases}"
            )
            by_epoch = dict(zip(epochs, values))
            for epoch, phase in starts[1:]:  # the first starts the run
                value = by_epoch.get(epoch, math.nan)
                if not math.isfinite(value):
                    continue
                axes.plot([epoch], [value], color=colour, marker="D", markersize=7)
                axes.annotate(
                    phase,
                    (epoch, value),
                    xytext=(4, 6 + 10 * index),
                    textcoords="offset points",
                    fontsize=7,
                    color=colour,
                )
        if drawn:
            handles, labels = axes.get_legend_handles_labels()
            marker = Line2D(
                [], [], color="grey", marker="D", linestyle="", label="phase start"
            )
            axes.legend(
                [*handles, marker], [*labels, "phase start"], loc="best", fontsize=8
            )
        else:
            axes.text(
                0.5, 0.5, f"no {label} recorded", transform=axes.transAxes, ha="center"
            )
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_title(label)
        axes.set_xlabel("epoch")
        axes.set_ylabel(label)
    title = "Comparison of " + ", ".join(names)
    figure.suptitle(title)
    write_bytes(path, png_bytes(figure, title))
    return path


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


def loss_column(runs: Sequence[RunResult]) -> tuple[str, str]:
    """The history's column of the validation loss to draw, and its label: the
    plain cross-entropy where every run has it, else `val_loss`."""
    for column in PLAIN_LOSSES:
        if all(run.history and column in run.history[0] for run in runs):
            return column, "validation cross-entropy"
    return "val_loss", "validation loss"


def score_column(runs: Sequence[RunResult]) -> tuple[str, str]:
    """The history's column of the validation score to draw, and its label:
    accuracy, or a multi-label run's precision-recall AUC (its binary
    accuracy counts the many right "no"s and says little)."""
    if any(run.history and "val_pr_auc" in run.history[0] for run in runs):
        return "val_pr_auc", "validation PR-AUC"
    return "val_accuracy", "validation accuracy"


def _column(run: RunResult, metric: str) -> str:
    """`metric`, or the first `val_...accuracy` column when asked for accuracy."""
    columns = {key for row in run.history for key in row}
    if metric in columns or metric != "val_accuracy":
        return metric
    named = sorted(
        key for key in columns if key.startswith("val_") and "accuracy" in key
    )
    return named[0] if named else metric


def _number(value: str | None) -> float:
    try:
        return float(value) if value not in (None, "") else math.nan
    except ValueError:
        return math.nan


def _canonical(settings: dict[str, Any], key: str) -> tuple[bool, str]:
    """A setting in a comparable form; an absent one differs from any value."""
    return key in settings, json.dumps(settings.get(key), sort_keys=True, default=str)


def _setting(settings: dict[str, Any], key: str) -> str:
    if key not in settings:
        return MISSING
    value = settings[key]
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _figure(metrics: dict[str, Any], subset: str, key: str) -> str:
    return _number_text(metrics.get(subset), key)


def _tta(metrics: dict[str, Any], subset: str) -> dict[str, Any] | None:
    """The figures of `subset` with test-time augmentation (`--tta`), if any."""
    figures = metrics.get(subset)
    tta = figures.get("tta") if isinstance(figures, dict) else None
    return tta if isinstance(tta, dict) else None


def _number_text(figures: Any, key: str) -> str:
    value = figures.get(key) if isinstance(figures, dict) else None
    return f"{value:.4f}" if isinstance(value, (int, float)) else MISSING


def _best_epoch(card: dict[str, Any]) -> str:
    best = card.get("best_epoch")
    if not isinstance(best, dict) or "epoch" not in best:
        return MISSING
    phase = f" ({best['phase']})" if best.get("phase") else ""
    return f"{best['epoch']}{phase}"


def _duration(card: dict[str, Any]) -> str:
    seconds = card.get("phase_seconds")
    if not isinstance(seconds, dict) or not seconds:
        return MISSING
    total = sum(value for value in seconds.values() if isinstance(value, (int, float)))
    if total < 60:
        return f"{total:.1f} s"
    minutes, rest = divmod(round(total), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"
