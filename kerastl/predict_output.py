"""What `kerastl predict` prints and writes, besides the predictions themselves.

The lines on screen, the images skipped, the progress bar, the CSV file
(written atomically) and the contact sheet.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import IO, Any

import click

from kerastl.common.ranking import over_thresholds, ranked
from kerastl.files import replacing

SHEET_IMAGES = 64


def screen_lines(
    paths: list[Path], probabilities: Any, k: int, class_names: list[str]
) -> Iterator[str]:
    """One line per image: its path and its `k` most probable classes."""
    for path, scores in zip(paths, probabilities):
        yield f"{path}  " + ", ".join(
            f"{class_names[index]} {scores[index]:.4f}" for index in ranked(scores, k)
        )


def label_lines(
    paths: list[Path],
    probabilities: Any,
    thresholds: list[float],
    k: int | None,
    names: list[str],
) -> Iterator[str]:
    """One line per image of a multi-label run: its path and every label at
    least its threshold (at most `k`), the most probable first."""
    for path, scores in zip(paths, probabilities):
        chosen = over_thresholds(scores, thresholds, k)
        yield f"{path}  " + (
            ", ".join(f"{names[index]} {scores[index]:.4f}" for index in chosen)
            or "no label over its threshold"
        )


def skip(path: Path, why: str) -> None:
    """Names an image that is left out, on stderr."""
    click.echo(f"kerastl: skipped {path}: not a readable image ({why})", err=True)


class _NoBar:
    """What `progress_bar` gives where no bar is drawn: a count."""

    pos = 0

    def update(self, steps: int) -> None:
        self.pos += steps


def progress_bar(total: int) -> Any:
    """`click.progressbar` on stderr, where it is a terminal and stdout is not.

    On a terminal the printed lines are the progress; into a log or a pipe
    the bar would write carriage returns, so there is none.
    """
    if sys.stderr.isatty() and not sys.stdout.isatty():
        return click.progressbar(
            length=total, label="kerastl: predicting", file=sys.stderr, show_pos=True
        )
    return nullcontext(_NoBar())


@contextmanager
def csv_file(path: Path | None) -> Iterator[IO[str] | None]:
    """The CSV file to write, atomically; None without `--output`."""
    if path is None:
        yield None
        return
    with (
        replacing(path) as partial,
        open(partial, "w", newline="", encoding="utf-8") as file,
    ):
        yield file


def refused(paths: list[Path]) -> None:
    """Names the images TensorFlow could not decode."""
    for path in paths:
        skip(path, "TensorFlow could not decode it")


class ContactSheet:
    """The contact sheet's first `SHEET_IMAGES` thumbnails and their captions.

    It counts the images predicted, drawn or not.
    """

    def __init__(
        self,
        path: Path | None,
        class_names: list[str],
        model_name: str,
        thresholds: list[float] | None = None,
    ) -> None:
        self.path = path
        self.class_names = class_names
        self.model_name = model_name
        self.thresholds = thresholds  # a multi-label run's: captions name its labels
        self.thumbnails: list[Any] = []
        self.captions: list[str] = []
        self.predicted = 0

    def add(self, paths: list[Path], images: Any, probabilities: Any) -> None:
        """Counts a predicted batch; keeps its thumbnails while there is room."""
        import numpy as np

        self.predicted += len(paths)
        if not self.path:
            return
        room = SHEET_IMAGES - len(self.thumbnails)
        names = self.class_names
        for path, image, scores in zip(
            paths[:room], images[:room], probabilities[:room]
        ):
            self.thumbnails.append(np.clip(image, 0, 255).astype("uint8"))
            if self.thresholds is None:
                best = int(np.argmax(scores))
                caption = f"{names[best]} {scores[best]:.2f}"
            else:
                chosen = over_thresholds(scores, self.thresholds, 3)
                caption = ", ".join(names[index] for index in chosen) or "none"
            self.captions.append(f"{caption}\n{path.name}")

    def draw(self) -> None:
        """Writes the contact sheet, if one was asked for."""
        from kerastl.runtime.report_plots import plot_image_grid

        if self.path is None:
            return
        shown: str | int = self.predicted
        if self.predicted > len(self.captions):
            shown = f"the first {len(self.captions)} of {self.predicted}"
        title = f"{self.model_name}: predictions of {shown} images"
        if plot_image_grid(self.thumbnails, self.captions, self.path, title):
            click.echo(f"wrote {self.path}")


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
