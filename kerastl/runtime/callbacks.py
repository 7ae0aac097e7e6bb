"""The standard callbacks of a training run, and learning-rate schedules."""

import csv
import importlib.util
import os
from pathlib import Path

import keras


class HistoryLogger(keras.callbacks.Callback):
    """Appends one row per epoch to a CSV file, across phases and resumed runs.

    Unlike `keras.callbacks.CSVLogger`, it records the phase, accepts new
    columns in a later phase, and when a resumed run starts an epoch it first
    drops the rows of that epoch and later ones, so the file never holds an
    epoch twice.
    """

    def __init__(self, path: str | os.PathLike, phase: str = "") -> None:
        super().__init__()
        self.path = Path(path)
        self.phase = phase
        self._first_epoch = True

    def on_train_begin(self, logs=None):
        self._first_epoch = True

    def on_epoch_begin(self, epoch, logs=None):
        if self._first_epoch:
            header, rows = read_history(self.path)
            _write_history(
                self.path, header, [row for row in rows if int(row["epoch"]) < epoch]
            )
            self._first_epoch = False

    def on_epoch_end(self, epoch, logs=None):
        header, rows = read_history(self.path)
        row = {
            "epoch": epoch,
            "phase": self.phase,
            **{k: f"{float(v):.6g}" for k, v in (logs or {}).items()},
        }
        new_columns = [key for key in row if key not in header]
        if new_columns or not self.path.exists():
            _write_history(self.path, header + new_columns, [*rows, row])
        else:
            with open(self.path, "a", newline="") as file:
                csv.DictWriter(file, header, restval="").writerow(row)
                file.flush()
                os.fsync(file.fileno())


def read_history(path: str | os.PathLike) -> tuple[list[str], list[dict[str, str]]]:
    """Reads a history CSV; returns its columns and rows (empty if there is none)."""
    path = Path(path)
    if not path.exists():
        return ["epoch", "phase"], []
    with open(path, newline="") as file:
        reader = csv.DictReader(file)
        rows = list(reader)
        return list(reader.fieldnames or ["epoch", "phase"]), rows


def _write_history(path: Path, header: list[str], rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w", newline="") as file:
        writer = csv.DictWriter(file, header, restval="")
        writer.writeheader()
        writer.writerows(rows)
        file.flush()
        os.fsync(file.fileno())
    os.replace(partial, path)


def standard_callbacks(
    run_dir: str | os.PathLike,
    *,
    phase: str = "",
    monitor: str = "val_loss",
    patience: int = 5,
    checkpoint: bool = True,
    early_stopping: bool = True,
    history: bool = True,
    tensorboard: bool | None = None,
    terminate_on_nan: bool = True,
    reduce_lr_on_plateau: bool = False,
) -> list[keras.callbacks.Callback]:
    """Returns the callbacks of one training phase, writing into `run_dir`.

    A resumable run adds `RunState.checkpoint(phase)` after these.

    Args:
        run_dir: Output folder of the run.
        phase: Name of the phase, recorded in `history.csv`.
        monitor: Metric watched by the checkpoint, early stopping and plateau.
        patience: Epochs without improvement before early stopping.
        checkpoint: Keep the best epoch of the phase in `best.keras`.
        early_stopping: Stop when `monitor` stops improving and restore the
            best weights.
        history: Append each epoch to `history.csv` (`HistoryLogger`).
        tensorboard: Write TensorBoard logs into `run_dir/logs`; None (the
            default) does so when the `tensorboard` package is installed.
        terminate_on_nan: Stop at the first NaN loss.
        reduce_lr_on_plateau: Divide the learning rate by 5 when `monitor`
            stalls (for a constant learning rate, not a schedule).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    callbacks: list[keras.callbacks.Callback] = []
    if terminate_on_nan:
        callbacks.append(keras.callbacks.TerminateOnNaN())
    if history:
        callbacks.append(HistoryLogger(run_dir / "history.csv", phase))
    if checkpoint:
        callbacks.append(
            keras.callbacks.ModelCheckpoint(
                run_dir / "best.keras", monitor=monitor, save_best_only=True
            )
        )
    if early_stopping:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=monitor, patience=patience, restore_best_weights=True
            )
        )
    if reduce_lr_on_plateau:
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor=monitor, factor=0.2, patience=max(1, patience // 2), min_lr=1e-7
            )
        )
    if tensorboard is None:
        tensorboard = importlib.util.find_spec("tensorboard") is not None
    if tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(run_dir / "logs")))
    return callbacks


def warmup_cosine(
    learning_rate: float, total_steps: int, warmup_fraction: float = 0.1
) -> keras.optimizers.schedules.LearningRateSchedule:
    """A linear warm-up to `learning_rate`, then a cosine decay to zero.

    Args:
        learning_rate: Peak learning rate, reached at the end of the warm-up.
        total_steps: Training steps of the phase (epochs x steps per epoch).
        warmup_fraction: Share of the steps spent warming up.
    """
    warmup_steps = max(1, int(total_steps * warmup_fraction))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=learning_rate / 10,
        decay_steps=max(1, total_steps - warmup_steps),
        warmup_target=learning_rate,
        warmup_steps=warmup_steps,
    )
