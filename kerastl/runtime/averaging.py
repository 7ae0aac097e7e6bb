"""The moving average of the weights kept by an optimizer with `use_ema=True`.

Keras's optimizers average each trained variable after every step when they
are created with `use_ema=True`; `fit()` copies the averages into the model at
its end. A run evaluates, saves and ships the averaged weights: its validation
runs on them, and its checkpoints hold them in the model's place (and the
trained weights in the averages' place), so that the best epoch's checkpoint
is the averaged model and a resume swaps the two back.
"""

import contextlib

import keras

from .keras_internals import private

EMA = "--ema (the optimizer's moving averages)"


def averaged_variables(model: keras.Model) -> list[tuple]:
    """`(variable, average)` pairs of the model's trained variables.

    Empty unless the model's optimizer (or, under mixed precision or
    `MultiOptimizer`, an optimizer inside it) was created with `use_ema=True`
    and is built.
    """
    pairs = []
    for optimizer in _optimizers(getattr(model, "optimizer", None)):
        if not getattr(optimizer, "use_ema", False) or not optimizer.built:
            continue
        averages = private(optimizer, "_model_variables_moving_average", purpose=EMA)
        indices = private(optimizer, "_trainable_variables_indices", purpose=EMA)
        var_key = private(optimizer, "_var_key", purpose=EMA)
        for variable in model.trainable_variables:
            index = indices.get(var_key(variable))
            if index is not None:
                pairs.append((variable, averages[index]))
    return pairs


def uses_averages(model: keras.Model) -> bool:
    """Whether the model's optimizer keeps a moving average of the weights."""
    return any(
        getattr(optimizer, "use_ema", False)
        for optimizer in _optimizers(getattr(model, "optimizer", None))
    )


def swap_averages(pairs: list[tuple]) -> None:
    """Exchanges the values of each variable and its average."""
    for variable, average in pairs:
        value = variable.numpy()
        variable.assign(average.numpy())
        average.assign(value)


@contextlib.contextmanager
def averaged_weights(model: keras.Model):
    """The model holds its averaged weights inside the block (a no-op without)."""
    pairs = averaged_variables(model)
    swap_averages(pairs)
    try:
        yield
    finally:
        swap_averages(pairs)


@contextlib.contextmanager
def averages_kept(model: keras.Model):
    """Keeps `fit()` from copying the averages into the model when it returns:
    a run that stops inside an epoch fits twice, and must train on the same
    weights as one that did not stop. `Run` copies them when a phase ends."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not uses_averages(model):
        yield
        return
    optimizer.finalize_variable_values = lambda var_list: None
    try:
        yield
    finally:
        del optimizer.finalize_variable_values


class AveragedValidation(keras.callbacks.Callback):
    """Validates on the averaged weights (Keras's `SwapEMAWeights`, as `Run`
    needs it: the trained weights are back before the epoch's checkpoint)."""

    def on_test_begin(self, logs=None):
        self._pairs = averaged_variables(self.model)
        swap_averages(self._pairs)

    def on_test_end(self, logs=None):
        swap_averages(self._pairs)


def _optimizers(optimizer) -> list:
    """The optimizers that update variables: inside a loss scaler or a
    `MultiOptimizer`, the inner ones."""
    if optimizer is None:
        return []
    inner = getattr(optimizer, "inner_optimizer", None)
    if inner is not None:
        return _optimizers(inner)
    if isinstance(optimizer, keras.optimizers.MultiOptimizer):
        return list(optimizer.optimizers)
    return [optimizer]
