"""Keras's private names: a Keras without one gets a one-line error naming it."""

import keras
import numpy as np
import pytest

from kerastl.runtime import ScriptError
from kerastl.runtime.averaging import averaged_variables
from kerastl.runtime.keras_internals import (
    KerasInternalsError,
    private,
    private_module,
    reuse_saving_skipsets,
)

pytestmark = pytest.mark.lowest  # also on the lowest versions pyproject.toml allows


def test_a_private_name_is_returned_where_keras_has_it() -> None:
    optimizer = keras.optimizers.Adam()
    assert private(optimizer, "_var_key", purpose="--ema") == optimizer._var_key


def test_a_missing_private_name_is_one_line_naming_it_and_the_version() -> None:
    with pytest.raises(KerasInternalsError) as raised:
        private(keras.optimizers.Adam, "_gone", purpose="--ema")
    version = keras.version()
    major_minor = ".".join(version.split(".")[:2])
    assert str(raised.value) == (
        f"--ema relies on Keras's private Adam._gone, which keras {version} does "
        f"not have: pip install 'keras<{major_minor}' until kerastl supports it"
    )
    assert isinstance(raised.value, ScriptError)  # the script: `error: ...`, exit 1


def test_a_missing_private_module_is_named() -> None:
    with pytest.raises(KerasInternalsError, match="private keras.src.gone, which"):
        private_module("keras.src.gone", purpose="--strategy multi-worker")


@pytest.mark.slow
def test_ema_without_the_optimizers_private_averages_stops_with_the_error() -> None:
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(use_ema=True), loss="mse")
    model.fit(np.zeros((4, 2)), np.zeros((4, 1)), verbose=0)
    assert len(averaged_variables(model)) == 2  # the kernel and the bias
    del model.optimizer._trainable_variables_indices  # as a Keras without it
    with pytest.raises(KerasInternalsError, match="Adam._trainable_variables_indices"):
        averaged_variables(model)


@pytest.mark.slow
def test_saving_weights_builds_no_throwaway_layers_once_skipsets_are_reused(
    tmp_path, monkeypatch
) -> None:
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
    model.compile(keras.optimizers.Adam(), loss="mse")
    model.fit(np.ones((4, 2)), np.ones((4, 3)), verbose=0)
    keras.backend.clear_session()  # which drops Keras's global attributes
    reuse_saving_skipsets()
    built = []
    init = keras.layers.Layer.__init__

    def counted_init(self, *args, **kwargs):
        built.append(type(self).__name__)
        init(self, *args, **kwargs)

    monkeypatch.setattr(keras.layers.Layer, "__init__", counted_init)
    path = str(tmp_path / "model.weights.h5")
    model.save_weights(path)
    monkeypatch.undo()
    assert built == []
    copy = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
    copy.compile(keras.optimizers.Adam(), loss="mse")
    copy.optimizer.build(copy.trainable_variables)
    copy.load_weights(path)
    for saved, loaded in zip(
        model.weights + model.optimizer.variables,
        copy.weights + copy.optimizer.variables,
        strict=True,
    ):
        np.testing.assert_array_equal(saved.numpy(), loaded.numpy())
