"""`kerastl compare`'s table: the settings that differ, and each run's figures."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kerastl.run_folder import RunFolderError, RunResult

MISSING = "-"


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


def _canonical(settings: dict[str, Any], key: str) -> tuple[bool, str]:
    """A setting in a comparable form; an absent one differs from any value."""
    return key in settings, json.dumps(settings.get(key), sort_keys=True, default=str)


def _setting(settings: dict[str, Any], key: str) -> str:
    if key not in settings:
        return MISSING
    value = settings[key]
    if value is None:  # as the option takes it: --weights none
        return "none"
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
