"""`kerastl compare`'s figure: every run's validation loss and score over epochs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from kerastl.common.atomic import write_bytes
from kerastl.common.plots import agg_figure, png_bytes
from kerastl.run_folder import RunResult

#: The history's columns of the validation loss without label smoothing:
#: single-label, multi-label.
PLAIN_LOSSES = ("val_categorical_crossentropy", "val_binary_crossentropy")


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
