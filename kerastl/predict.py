"""`kerastl predict`: the classes of new images, under a trained run's model.

The run folder, the paths and the output files are checked first, without
TensorFlow (`check_request`), so that a usage error is quick; `predict` imports
TensorFlow and the runtime only when it runs. The images stream through
`tf.data` in batches: what is held in memory does not grow with their number
(the contact sheet keeps at most `predict_output.SHEET_IMAGES` thumbnails).
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from functools import partial
from pathlib import Path

import click

from kerastl.predict_explain import HeatmapWriter, explain_problem, heatmap_names
from kerastl.predict_images import (
    NoReadableImageError,
    batches,
    image_files,
    readable_images,
)
from kerastl.predict_model import load_model
from kerastl.predict_output import (
    ContactSheet,
    csv_file,
    label_lines,
    plural,
    progress_bar,
    refused,
    screen_lines,
)
from kerastl.predict_request import PredictUsageError, Request, check_request

__all__ = [
    "NoReadableImageError",
    "PredictUsageError",
    "Request",
    "check_request",
    "predict",
]

DEFAULT_TOP_K = {"screen": 1, "file": 5}


def predict(request: Request) -> int:
    """Predicts the class of every image of the request, streaming.

    Prints the top classes of each image (of a multi-label run: every label
    at least its threshold, at most `top_k`) (and a progress bar on stderr when it
    is a terminal and the lines go elsewhere), writes the CSV and the contact
    sheet when asked, and names each image that cannot be read, in one line on
    stderr.

    Returns:
        The exit status: 0, or 1 when an image was skipped.

    Raises:
        PredictUsageError: If a folder holds no image or the model does not fit
            the run's classes.
        NoReadableImageError: If no image can be read.
    """
    from kerastl import runtime  # noqa: F401  (first: it quiets TensorFlow's start)
    from kerastl.runtime.predict import PREDICTION_COLUMNS

    files = image_files(request.paths)
    readable = readable_images(files)
    shipped = " (the run's shipped model)" * (request.model_param == "run_dir")
    click.echo(f"kerastl: predicting with {request.model}{shipped}", err=True)
    heatmaps = _heatmap_names(request, readable)
    run_model, image_size, keras_model = load_model(request)
    writer_of_heatmaps = None
    if request.explain is not None:
        if problem := explain_problem(keras_model):
            raise PredictUsageError("explain", problem)
        request.explain.mkdir(exist_ok=True)
        writer_of_heatmaps = HeatmapWriter(keras_model, heatmaps)
    screen_lines, file_rows = _outputs(request)
    sheet = ContactSheet(
        request.sheet, request.class_names, request.model.name, request.thresholds
    )
    with progress_bar(len(readable)) as bar, csv_file(request.output) as output:
        writer = csv.DictWriter(output, PREDICTION_COLUMNS) if output else None
        if writer:
            writer.writeheader()
        done = 0
        for paths, images in batches(readable, image_size, request.batch_size):
            for path in paths:  # the batch leaves out what TensorFlow refused
                position = readable.index(path, done)
                refused(readable[done:position])
                done = position + 1
            probabilities = run_model(images)
            for row in screen_lines(paths, probabilities):
                click.echo(row)
            if writer:
                writer.writerows(file_rows(paths, probabilities))
            if writer_of_heatmaps is not None:  # the sheet shows the heatmaps
                images = writer_of_heatmaps.add(paths, images, probabilities)
            sheet.add(paths, images, probabilities)
            bar.update(done - bar.pos)
        refused(readable[done:])
    if request.output:
        click.echo(f"wrote {request.output}")
    if writer_of_heatmaps is not None:
        click.echo(
            f"wrote {plural(writer_of_heatmaps.written, 'heatmap')} "
            f"into {request.explain}"
        )
    sheet.draw()
    skipped = len(files) - sheet.predicted
    if skipped:
        click.echo(f"kerastl: skipped {skipped} of {len(files)} images", err=True)
    return 1 if skipped else 0


def _outputs(request: Request) -> tuple[Callable, Callable]:
    """The lines on screen and the CSV rows of a batch's predictions: the top
    classes, or a multi-label run's labels over their thresholds."""
    from kerastl.runtime.predict import labels_over_thresholds, top_k

    names, thresholds = request.class_names, request.thresholds
    if thresholds is not None:
        return (
            partial(label_lines, thresholds=thresholds, k=request.top_k, names=names),
            partial(
                labels_over_thresholds,
                thresholds=thresholds,
                class_names=names,
                k=request.top_k,
            ),
        )
    screen_k = min(request.top_k or DEFAULT_TOP_K["screen"], len(names))
    file_k = min(request.top_k or DEFAULT_TOP_K["file"], len(names))
    return (
        partial(screen_lines, k=screen_k, class_names=names),
        partial(top_k, k=file_k, class_names=names),
    )


def _heatmap_names(request: Request, readable: list[Path]) -> dict[Path, Path]:
    """The PNGs of `--explain`, none of them there unless `--force`."""
    if request.explain is None:
        return {}
    names = heatmap_names(request.explain, readable)
    if not request.force:
        for target in names.values():
            if target.exists():
                raise PredictUsageError(
                    "explain", f"{target} exists; pass --force to overwrite it"
                )
    return names
