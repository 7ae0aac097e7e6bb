"""`kerastl predict`'s request checked without TensorFlow: run, model, paths, files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kerastl.common.jsontext import JsonFileError, read_json_file
from kerastl.common.labels import LABELS_FILE, class_names_in, thresholds_in
from kerastl.errors import KerastlError

KERAS_SUFFIX = ".keras"
ARTIFACT_SUFFIXES = (".tflite", ".onnx", ".xml")  # .xml: OpenVINO's


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
    if not model_kind(chosen):
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
    if model_kind(model) != "keras":
        raise PredictUsageError(
            "explain",
            f"heatmaps need the Keras model (best.keras or model.keras); "
            f"{model} is an exported artifact",
        )
    if folder.exists() and not folder.is_dir():
        raise PredictUsageError("explain", f"{folder} is a file, not a folder")
    if not folder.parent.is_dir():
        raise PredictUsageError("explain", f"folder {folder.parent} does not exist")


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


def model_kind(path: Path) -> str | None:
    """The kind of model at `path`: "keras", "artifact", or None."""
    if path.is_file() and path.suffix == KERAS_SUFFIX:
        return "keras"
    if path.is_file() and path.suffix in ARTIFACT_SUFFIXES:
        return "artifact"
    if path.is_dir() and (path / "saved_model.pb").is_file():
        return "artifact"
    return None
