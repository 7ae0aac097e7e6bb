"""`kerastl predict`: the classes of new images, under a trained run's model.

The run folder, the paths and the output files are checked first, without
TensorFlow (`check_request`), so that a usage error is quick; `predict` imports
TensorFlow and the runtime only when it runs. The images stream through
`tf.data` in batches: what is held in memory does not grow with their number
(the contact sheet keeps at most `predict_output.SHEET_IMAGES` thumbnails).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import click

from kerastl.common.jsontext import JsonFileError, read_json_file
from kerastl.common.labels import LABELS_FILE, class_names_in, thresholds_in
from kerastl.errors import KerastlError
from kerastl.predict_explain import HeatmapWriter, explain_problem, heatmap_names
from kerastl.predict_output import (
    ContactSheet,
    csv_file,
    label_lines,
    progress_bar,
    refused,
    screen_lines,
    skip,
)

KERAS_SUFFIX = ".keras"
ARTIFACT_SUFFIXES = (".tflite", ".onnx", ".xml")  # .xml: OpenVINO's
DEFAULT_TOP_K = {"screen": 1, "file": 5}


class PredictUsageError(KerastlError):
    """A request `kerastl predict` cannot serve; `param` names the culprit."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class Request:
    """What `kerastl predict` was asked, checked."""

    model: Path  # a .keras file, a SavedModel folder, a .tflite, .onnx or .xml file
    model_param: str  # where the model came from: "run_dir" or "model" (--model)
    class_names: list[str]
    paths: list[Path]  # as given: images and folders
    output: Path | None
    sheet: Path | None
    top_k: int | None
    batch_size: int
    force: bool
    tta: bool = False  # average each image's prediction with its mirror image's
    explain: Path | None = None  # the folder of the images with their heatmaps
    # A multi-label run's decision thresholds (labels.json), one per class.
    thresholds: list[float] | None = None


def check_request(
    run_dir: Path,
    paths: tuple[Path, ...],
    *,
    model: Path | None = None,
    output: Path | None = None,
    sheet: Path | None = None,
    top_k: int | None = None,
    batch_size: int = 32,
    force: bool = False,
    tta: bool = False,
    explain: Path | None = None,
) -> Request:
    """Checks a request without TensorFlow: the run, the model's kind, the paths.

    Args:
        run_dir: A finished run's output folder: `metrics.json` names the
            shipped model, `labels.json` holds the class names.
        paths: Image files and folders.
        model: Another model than the shipped one: a path as given, or a
            path inside `run_dir` (`best.keras`, `export/model.tflite`).
        output: The CSV file to write.
        sheet: The PNG contact sheet to write.
        top_k: The classes per image, on screen and in the file.
        batch_size: Images per batch.
        force: Whether `output` and `sheet` may replace existing files.
        tta: Whether to average each prediction with the mirror image's.
        explain: The folder to write each image with its heatmap into (made
            if missing); needs a .keras model.

    Raises:
        PredictUsageError: Naming the parameter at fault and why.
    """
    metrics = _read_json(run_dir, "metrics.json")
    labels = _read_json(run_dir, LABELS_FILE)
    try:
        class_names = class_names_in(labels, f"{run_dir}/{LABELS_FILE}")
        thresholds = thresholds_in(labels, f"{run_dir}/{LABELS_FILE}")
    except ValueError as error:
        raise PredictUsageError("run_dir", str(error)) from None
    if model is None:
        shipped = metrics.get("model") if isinstance(metrics, dict) else None
        if not isinstance(shipped, str):
            raise PredictUsageError(
                "run_dir",
                f"{run_dir}/metrics.json names no shipped model: the run is not finished",
            )
        chosen, param = run_dir / shipped, "run_dir"
    else:
        chosen = model if model.exists() else run_dir / model
        param = "model"
    if not chosen.exists():
        where = f" (nor {chosen})" if model is not None and chosen != model else ""
        raise PredictUsageError(param, f"{model or chosen} does not exist{where}")
    if not _model_kind(chosen):
        raise PredictUsageError(
            param,
            f"{chosen} is not a .keras file, a SavedModel folder, a .tflite, "
            "an .onnx or an OpenVINO .xml file",
        )
    for path in paths:
        if not path.exists():
            raise PredictUsageError("paths", f"{path} does not exist")
    if explain is not None:
        _check_explain(explain, chosen)
    for name, target in (("output", output), ("sheet", sheet)):
        if target is None:
            continue
        if not target.parent.is_dir():
            raise PredictUsageError(name, f"folder {target.parent} does not exist")
        if target.is_dir():
            raise PredictUsageError(name, f"{target} is a folder")
        if target.exists() and not force:
            raise PredictUsageError(
                name, f"{target} exists; pass --force to overwrite it"
            )
    return Request(
        model=chosen,
        model_param=param,
        class_names=class_names,
        paths=list(paths),
        output=output,
        sheet=sheet,
        top_k=top_k,
        batch_size=batch_size,
        force=force,
        tta=tta,
        explain=explain,
        thresholds=thresholds,
    )


def _check_explain(folder: Path, model: Path) -> None:
    """Refuses an --explain folder that cannot be written, or an exported model."""
    if _model_kind(model) != "keras":
        raise PredictUsageError(
            "explain",
            f"heatmaps need the Keras model (best.keras or model.keras); "
            f"{model} is an exported artifact",
        )
    if folder.exists() and not folder.is_dir():
        raise PredictUsageError("explain", f"{folder} is a file, not a folder")
    if not folder.parent.is_dir():
        raise PredictUsageError("explain", f"folder {folder.parent} does not exist")


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

    files = _image_files(request.paths)
    readable = _readable(files)
    heatmaps = _heatmap_names(request, readable)
    run_model, image_size, keras_model = _load_model(request)
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
        for paths, images in _batches(readable, image_size, request.batch_size):
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
            f"wrote {_plural(writer_of_heatmaps.written, 'heatmap')} "
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


class NoReadableImageError(KerastlError):
    """None of the images asked for can be read: there is nothing to predict."""


def _image_files(paths: list[Path]) -> list[Path]:
    """The image files at or below `paths`, unchecked."""
    from kerastl.runtime.errors import DataError
    from kerastl.runtime.predict import image_paths

    files: list[Path] = []
    for path in paths:
        try:
            files += [Path(found) for found in image_paths(path)]
        except DataError as error:
            raise PredictUsageError("paths", str(error)) from None
    return files


def _readable(files: list[Path]) -> list[Path]:
    """The files that look like readable images; each other one is named.

    Raises:
        NoReadableImageError: If there is none.
    """
    from kerastl.runtime.images import image_problem

    readable = []
    for path in files:
        problem = image_problem(path)
        if problem is None:
            readable.append(path)
        else:
            skip(path, problem)
    if not readable:
        raise NoReadableImageError(
            f"none of the {_plural(len(files), 'image')} can be read; "
            "nothing to predict"
        )
    return readable


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


def _read_json(run_dir: Path, name: str) -> Any:
    try:
        return read_json_file(run_dir / name)
    except FileNotFoundError:
        raise PredictUsageError(
            "run_dir",
            f"{run_dir} is not a finished run: it has no {name} (run its script "
            "again, with the same options, to finish it)",
        ) from None
    except JsonFileError as error:
        raise PredictUsageError("run_dir", str(error)) from None


def _model_kind(path: Path) -> str | None:
    """The kind of model at `path`: "keras", "artifact", or None."""
    if path.is_file() and path.suffix == KERAS_SUFFIX:
        return "keras"
    if path.is_file() and path.suffix in ARTIFACT_SUFFIXES:
        return "artifact"
    if path.is_dir() and (path / "saved_model.pb").is_file():
        return "artifact"
    return None


def _load_model(request: Request) -> tuple[Callable[[Any], Any], int, Any]:
    """The model as a function of a batch, its image size, checked to fit, and
    the Keras model (None for an exported artifact)."""
    import numpy as np

    param = request.model_param
    model = None
    try:
        if _model_kind(request.model) == "keras":
            import keras

            model = keras.saving.load_model(request.model, compile=False)
            shape = tuple(model.input_shape)
            run_model = model.predict_on_batch
        else:
            from kerastl.runtime.export import load_artifact

            run_model, shape = load_artifact(request.model)
    except Exception as error:  # noqa: BLE001 - any loader's refusal is the answer
        raise PredictUsageError(
            param, f"{request.model} cannot be loaded: {_first_line(error)}"
        ) from None
    if len(shape) != 4 or shape[3] != 3 or shape[1] != shape[2] or not shape[1]:
        raise PredictUsageError(
            param,
            f"{request.model} takes inputs of shape {shape}, not square RGB images",
        )
    size = int(shape[1])
    outputs = np.asarray(run_model(np.zeros((1, size, size, 3), "float32"))).shape
    if outputs != (1, len(request.class_names)):
        raise PredictUsageError(
            param,
            f"{request.model} gives outputs of shape {outputs}; the run has "
            f"{len(request.class_names)} classes (labels.json)",
        )
    if request.tta:
        from kerastl.runtime.tta import with_tta

        return with_tta(run_model), size, model
    return (lambda images: np.asarray(run_model(images))), size, model


def _batches(
    paths: list[Path], image_size: int, batch_size: int
) -> Iterator[tuple[list[Path], Any]]:
    """`(paths, images)` batches; an image TensorFlow cannot decode is left out."""
    import tensorflow as tf

    from kerastl.runtime.predict import load_image

    dataset = tf.data.Dataset.from_tensor_slices([str(path) for path in paths])
    dataset = dataset.map(
        lambda path: (path, load_image(path, image_size)),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    dataset = dataset.ignore_errors().batch(batch_size).prefetch(tf.data.AUTOTUNE)
    for names, images in dataset.as_numpy_iterator():
        yield [Path(name.decode()) for name in names], images


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
