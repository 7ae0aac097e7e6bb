"""The end of a run: which file to ship (the final model or the run's best
epoch), its report and its exports."""

import os
from typing import Any

import keras
import numpy as np

from . import files
from .epoch_end import improves
from .export import export_model
from .fitting import without_retracing_warnings
from .image_sets import load_test_folder
from .lora_saving import ADAPTERS_FILE, holds_adapters, save_adapters
from .platforms import ship_to_model_dir
from .predictions import predictions_of
from .report import write_report
from .run import Run
from .run_settings import RunSettings
from .training_data import TrainingData
from .weights_files import load_weights_into


def ship(
    run: Run,
    data: TrainingData,
    settings: RunSettings,
    *,
    test_dir: str | os.PathLike | None = None,
) -> None:
    """Ends a trained run: saves, chooses, reports and exports its model.

    Saves `model.keras` (`save_model_checked`), ships the better of it and
    `best.keras` on the validation images (`choose_model`), then writes the
    report (`write_report`: the test images are read only now, so they never
    choose a model) and the exports of `--export`, each checked against the
    Keras model on the test images when given, else the validation images. In
    a multi-worker run only the chief does more than save.

    Args:
        run: The run, after its last phase.
        data: Its training and validation data (`load_training_data`).
        settings: The script's settings: `--tta`, `--export` and `--quantize`.
        test_dir: A folder of test images with the same classes, or None.
    """
    run.finish(data.validation)
    if not run.is_chief:
        return  # a worker of a multi-worker run: the chief writes the rest
    shipped = choose_model(run, data.validation)
    if shipped == "model.keras" and holds_adapters(run.model):  # else best.keras's
        save_adapters(run.model, files.join(run.output_dir, ADAPTERS_FILE))
    write_report(
        run.output_dir,
        run.model,
        shipped,
        data,
        run,
        test_dir=test_dir,
        tta=settings.tta,
    )
    if settings.export:
        images = "validation" if test_dir is None else "test"
        export_model(
            run.model,
            run.output_dir,
            settings.export,
            _images_to_compare(run.model, data, test_dir),
            quantize=settings.quantize,
            calibration_data=data.train,
            images=images,
        )


def _images_to_compare(
    model: keras.Model, data: TrainingData, test_dir: str | os.PathLike | None
) -> Any:
    """The images each export is checked on: the test folder's when given (its
    accuracy is then the one the report leads with), else the validation images."""
    if test_dir is None:
        return data.validation
    return load_test_folder(
        test_dir,
        image_size=model.input_shape[1],
        batch_size=data.identity["batch_size"],
        class_names=data.class_names,
    ).batches


def choose_model(run: Run, validation_data) -> str:
    """Evaluates `model.keras` and `best.keras` and returns the better one.

    Call it after `run.finish()`. Both models are evaluated on
    `validation_data` by the run's monitored metric, and a line says which is
    better (a tie ships the final model); the run's model then holds the
    weights of the file chosen.

    On Vertex AI the model is also saved into `AIP_MODEL_DIR`
    (`ship_to_model_dir`).

    Returns:
        The file to ship: `"best.keras"` or `"model.keras"`.
    """
    model = run.model
    final_weights = model.get_weights()
    best_path = files.join(run.output_dir, "best.keras")
    with without_retracing_warnings():
        figures = {"model.keras": _evaluate(model, validation_data, run.monitor)}
        if run.best is not None and files.exists(best_path):
            if model is run.checkpoints.model:  # from memory, if this process saved it
                run.checkpoints.load_best()
            else:  # a copy outside the tf.distribute strategy
                load_weights_into(model, best_path)
            figures["best.keras"] = _evaluate(model, validation_data, run.monitor)
    better = _better(run.monitor, figures)
    if better != "best.keras":
        model.set_weights(final_weights)
    print(_verdict(run, figures, better))
    ship_to_model_dir(model, run.output_dir)  # on Vertex AI, where it serves from
    return better or "model.keras"


def _evaluate(model, validation_data, monitor: str) -> dict[str, float]:
    """The model's figures on the validation data, at the least cost.

    The model is judged by its accuracy and compiled loss from one prediction
    pass (`predictions_of`), which the report then reuses for the file it
    ships. Other monitored metrics, and losses that are not one function of
    the labels and outputs (several outputs, regularization), are left to
    `model.evaluate`.
    """
    loss = getattr(model, "loss", None)
    if (
        monitor.removeprefix("val_") not in ("loss", "accuracy")
        or model.losses
        or not (isinstance(loss, str) or callable(loss))
    ):
        return model.evaluate(validation_data, verbose=0, return_dict=True)
    predictions = predictions_of(model, validation_data)
    if not len(predictions.labels):
        return model.evaluate(validation_data, verbose=0, return_dict=True)
    targets = predictions.targets()
    values = keras.losses.get(loss)(targets, predictions.probabilities)
    figures = {"loss": float(np.mean(keras.ops.convert_to_numpy(values)))}
    if targets.ndim == 1 or np.all(targets.sum(axis=1) == 1):  # one class each
        predicted = predictions.probabilities.argmax(axis=1)
        figures["accuracy"] = float(np.mean(predicted == predictions.labels))
    return figures


def _better(monitor: str, figures: dict[str, dict[str, float]]) -> str | None:
    """`"best.keras"` or `"model.keras"`, or None when the figures shown tie."""
    key = monitor.removeprefix("val_")
    final, best = figures["model.keras"], figures.get("best.keras")
    if best is None or key not in best or key not in final:
        return None
    if f"{final[key]:.6g}" == f"{best[key]:.6g}":
        return None
    return "best.keras" if improves(monitor, best[key], final[key]) else "model.keras"


def _verdict(run: Run, figures: dict[str, dict[str, float]], better: str | None) -> str:
    key = run.monitor.removeprefix("val_")
    final = figures["model.keras"]
    lines = [f"model.keras (the final model): {_figures(final, key)}"]
    if "best.keras" not in figures or key not in final or run.best is None:
        return lines[0]
    best = figures["best.keras"]
    lines.append(
        f"best.keras (epoch {run.best['epoch']}, phase {run.best['phase']!r}): "
        f"{_figures(best, key)}"
    )
    if better is None:
        lines.append(
            f"Both are as good on the validation data ({run.monitor} {final[key]:.6g})."
        )
    else:
        value, other = (best, final) if better == "best.keras" else (final, best)
        lines.append(
            f"Better on the validation data: {better} ({run.monitor} "
            f"{value[key]:.6g} against {other[key]:.6g})."
        )
    return "\n".join(lines)


def _figures(logs: dict[str, float], monitored: str) -> str:
    """The accuracy and the monitored figure (whichever way they were computed,
    the same two: a rerun that trained nothing evaluates otherwise)."""
    shown = [key for key in ("accuracy", monitored) if key in logs]
    return ", ".join(f"val_{key} {logs[key]:.4f}" for key in dict.fromkeys(shown))
