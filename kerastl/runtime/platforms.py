"""Where the platforms that run training jobs expect a run's files.

Vertex AI custom training sets three variables when a job has a base output
directory (https://cloud.google.com/vertex-ai/docs/training/code-requirements#environment-variables):
`AIP_CHECKPOINT_DIR` (a script's `--output-dir` when none is given: the run,
its checkpoints and report), `AIP_MODEL_DIR` (the model Vertex AI imports and
serves) and `AIP_TENSORBOARD_LOG_DIR` (logs its TensorBoard reads). All three
are `gs://` folders. Multi-worker clusters set `TF_CONFIG` (see `distribute`).
"""

import os

import keras

from . import files
from .models import save_model_atomic

VERTEX_AI_CHECKPOINT_DIR = "AIP_CHECKPOINT_DIR"
VERTEX_AI_MODEL_DIR = "AIP_MODEL_DIR"
VERTEX_AI_TENSORBOARD_DIR = "AIP_TENSORBOARD_LOG_DIR"


def on_vertex_ai(output_dir: str | os.PathLike) -> bool:
    """Whether the run writes where Vertex AI asked: `AIP_CHECKPOINT_DIR`."""
    asked = os.environ.get(VERTEX_AI_CHECKPOINT_DIR) or ""
    return bool(asked) and asked.rstrip("/") == os.fspath(output_dir).rstrip("/")


def tensorboard_folder(output_dir: str | os.PathLike) -> str:
    """Where TensorBoard logs go: `output_dir/logs`, or Vertex AI's folder."""
    asked = os.environ.get(VERTEX_AI_TENSORBOARD_DIR)
    if asked and on_vertex_ai(output_dir):
        return asked
    return files.join(output_dir, "logs")


def ship_to_model_dir(model: keras.Model, output_dir: str | os.PathLike) -> None:
    """On Vertex AI, saves the shipped model where Vertex AI imports it from.

    `AIP_MODEL_DIR` gets a SavedModel at its root (what Vertex AI's prebuilt
    TensorFlow prediction containers serve: raw 0-255 pixels in, class
    probabilities out), the `.keras` file and `labels.json`. Elsewhere it does
    nothing.
    """
    model_dir = os.environ.get(VERTEX_AI_MODEL_DIR)
    if not model_dir or not on_vertex_ai(output_dir):
        return
    files.make_dirs(model_dir)
    model.export(model_dir, format="tf_saved_model", verbose=False)
    labels_to_model_dir(output_dir)
    save_model_atomic(model, files.join(model_dir, "model.keras"))
    print(f"Vertex AI: the shipped model is in {model_dir} (${VERTEX_AI_MODEL_DIR})")


def labels_to_model_dir(output_dir: str | os.PathLike) -> None:
    """On Vertex AI, copies the run's `labels.json` into `AIP_MODEL_DIR` (again
    once a multi-label run's thresholds are in it); elsewhere does nothing."""
    model_dir = os.environ.get(VERTEX_AI_MODEL_DIR)
    if not model_dir or not on_vertex_ai(output_dir):
        return
    files.write_bytes(
        files.join(model_dir, "labels.json"),
        files.read_bytes(files.join(output_dir, "labels.json")),
    )
