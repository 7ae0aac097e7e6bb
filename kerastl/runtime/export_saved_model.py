"""The TensorFlow SavedModel export, checked with TensorFlow."""

import keras
import numpy as np
import tensorflow as tf

from .export_types import ExportFormat, Loaded


def export_saved_model(
    model: keras.Model, path: str, weights: str, calibration
) -> dict:
    """Writes `model` to the SavedModel folder `path` (gs:// as well)."""
    model.export(path, format="tf_saved_model", verbose=False)
    return {}


def load_saved_model(path: str) -> Loaded:
    """The SavedModel folder `path`, run by TensorFlow through its `serve`."""
    loaded = tf.saved_model.load(path)  # holds the variables `serve` reads
    shape = tuple(loaded.serve.input_signature[0].shape)

    def predict(images: np.ndarray) -> np.ndarray:
        return np.asarray(loaded.serve(images))

    return Loaded(predict, shape, f"tensorflow {tf.__version__}")


SAVED_MODEL = ExportFormat(
    files=("saved_model",), export=export_saved_model, load=load_saved_model
)
