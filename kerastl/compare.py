"""`kerastl compare`: read run folders, tabulate what differs, plot their curves.

A run folder is what a generated training script writes: `history.csv`,
`metrics.json` and `run.json`. Everything here reads them with the standard
library; matplotlib loads only to draw the figure.
"""

from kerastl.compare_plot import loss_column, plot_runs, score_column
from kerastl.compare_table import column_names, table_lines
from kerastl.run_folder import RunFolderError, RunResult, phase_starts, read_run

__all__ = [
    "RunFolderError",
    "RunResult",
    "column_names",
    "loss_column",
    "phase_starts",
    "plot_runs",
    "read_run",
    "score_column",
    "table_lines",
]
