"""A model trained under a tf.distribute strategy, copied out of it."""

import keras

from . import files
from .models import save_model_atomic


def local_copy(model: keras.Model, folder: str) -> keras.Model:
    """`model` saved and loaded back outside its tf.distribute strategy.

    Keras runs `predict_on_batch` on every replica of a strategy (each one
    predicting the whole batch), so evaluating and reporting use this copy,
    compiled with the same loss and metrics.
    """
    path = save_model_atomic(model, files.join(folder, "local-copy.keras"))
    try:
        local = keras.saving.load_model(path, compile=False)
    finally:
        files.delete(path)
    compile_like(local, model, optimizer=False)
    return local


def compile_like(
    model: keras.Model, source: keras.Model, *, optimizer: bool = True
) -> None:
    """Compiles `model` with the loss and metrics (and optimizer) of `source`."""
    config = dict(source.get_compile_config() or {})
    if not optimizer:
        config.pop("optimizer", None)
    model.compile_from_config(config)
