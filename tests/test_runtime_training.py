"""History, schedules, base-model weights, saving and script options, on real Keras."""

import argparse
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest

from kerastl.runtime import (
    ScriptError,
    loading_weights,
    read_history,
    save_model_checked,
    warmup_cosine,
    weights_option,
)
from kerastl.runtime.errors import WeightsError
from kerastl.runtime.history import drop_epochs_from, record_epoch

RNG = np.random.default_rng(0)
X = RNG.normal(size=(32, 4)).astype("float32")
Y = RNG.integers(0, 2, 32)


def tiny_model() -> keras.Model:
    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.Dense(8)(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


class StopAfter(keras.callbacks.Callback):
    """Simulates a crash: raises at the end of an epoch."""

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError("killed")


def test_history_numbers_epochs_from_one_across_phases_and_drops_redone_ones(
    tmp_path: Path,
) -> None:
    path = tmp_path / "history.csv"
    record_epoch(path, 1, "head", {"loss": 0.9})
    record_epoch(path, 2, "head", {"loss": 0.8})
    record_epoch(path, 3, "tune", {"loss": 0.7, "val_loss": 0.75})  # a new column
    header, rows = read_history(path)
    assert header == ["epoch", "phase", "loss", "val_loss"]
    assert [(row["epoch"], row["phase"], row["val_loss"]) for row in rows] == [
        ("1", "head", ""),
        ("2", "head", ""),
        ("3", "tune", "0.75"),
    ]
    # A resumed run that redoes epoch 2 first drops the rows from epoch 2 on.
    drop_epochs_from(path, 2)
    record_epoch(path, 2, "again", {"loss": 0.5})
    _, rows = read_history(path)
    assert [(row["epoch"], row["phase"]) for row in rows] == [
        ("1", "head"),
        ("2", "again"),
    ]


@pytest.mark.slow
def test_plain_backup_and_restore_would_restart_the_next_phase_early(
    tmp_path: Path,
) -> None:
    """Why `Run` keeps its own checkpoints: Keras keeps the restored epoch on the model."""
    model = tiny_model()
    backup = keras.callbacks.BackupAndRestore(
        str(tmp_path / "p1"), delete_checkpoint=False
    )
    with pytest.raises(RuntimeError):
        model.fit(X, Y, epochs=3, verbose=0, callbacks=[backup, StopAfter(0)])
    model.fit(
        X,
        Y,
        epochs=3,
        verbose=0,
        callbacks=[keras.callbacks.BackupAndRestore(str(tmp_path / "p1"))],
    )
    following = model.fit(X, Y, initial_epoch=3, epochs=4, verbose=0)
    assert following.epoch != [3]


def test_warmup_cosine_rises_then_decays() -> None:
    schedule = warmup_cosine(1e-3, total_steps=100)
    rates = [float(schedule(step)) for step in (0, 10, 55, 100)]
    assert rates[0] == pytest.approx(1e-4)
    assert rates[1] == pytest.approx(1e-3)
    assert rates[1] > rates[2] > rates[3]
    assert rates[3] == pytest.approx(0.0, abs=1e-9)


def small(constructor, weights, **kwargs) -> keras.Model:
    """A script's step 1: the constructor inside `loading_weights`."""
    with loading_weights(constructor.__name__, weights):
        return constructor(weights=weights, **kwargs)


@pytest.mark.slow
def test_loading_weights_from_a_file(tmp_path: Path) -> None:
    kwargs = {"include_top": False, "input_shape": (32, 32, 3)}
    source = small(keras.applications.MobileNetV3Small, None, **kwargs)
    assert source.output_shape == (None, 1, 1, 576)
    path = tmp_path / "base.weights.h5"
    source.save_weights(path)
    loaded = small(keras.applications.MobileNetV3Small, str(path), **kwargs)
    for expected, actual in zip(source.weights, loaded.weights):
        np.testing.assert_array_equal(np.array(expected), np.array(actual))
    with (
        warnings.catch_warnings(),
        pytest.raises(WeightsError, match="does not fit MobileNetV3Large"),
    ):
        warnings.simplefilter("error")  # one error, not a warning per layer
        small(keras.applications.MobileNetV3Large, str(path), **kwargs)
    junk = tmp_path / "junk.weights.h5"
    junk.write_text("not HDF5")
    with pytest.raises(WeightsError) as error:
        small(keras.applications.MobileNetV3Small, str(junk), **kwargs)
    assert str(error.value).startswith(f"{junk} does not fit MobileNetV3Small")
    assert "save_weights()" in str(error.value) and "\n" not in str(error.value)


def test_loading_weights_explains_a_failed_download() -> None:
    def offline(**kwargs):
        # Keras's get_file raises a bare Exception with this message.
        raise Exception(  # noqa: TRY002
            "URL fetch failure on https://storage.googleapis.com/x.h5: None -- "
            "[Errno -2] Name or service not known"
        )

    offline.__name__ = "ResNet50"
    with pytest.raises(WeightsError) as error:
        small(offline, "imagenet")
    message = str(error.value)
    assert "could not download the ImageNet weights of ResNet50" in message
    assert "--weights PATH" in message and "--weights none" in message
    assert "\n" not in message


@pytest.mark.slow
def test_loading_weights_turns_keras_argument_errors_into_one_line() -> None:
    with pytest.raises(
        ScriptError, match="InceptionV3: Input size must be at least 75x75"
    ):
        small(
            keras.applications.InceptionV3,
            None,
            include_top=False,
            input_shape=(64, 64, 3),
        )


def test_the_weights_option_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="does not exist"):
        weights_option(str(tmp_path / "nope.h5"))
    assert weights_option("none") is None and weights_option("imagenet") == "imagenet"


@pytest.mark.slow
def test_save_model_checked_writes_a_model_that_reloads(tmp_path: Path) -> None:
    model = tiny_model()
    model.fit(X, Y, epochs=1, verbose=0)  # built optimizer state, as after training
    path = tmp_path / "out" / "model.keras"
    save_model_checked(model, path, X[:4])
    reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(
        reloaded.predict(X, verbose=0), model.predict(X, verbose=0)
    )
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["model.keras"]


def test_save_model_checked_refuses_a_lambda_layer_in_one_line(
    tmp_path: Path,
) -> None:
    inputs = keras.Input((4,))
    doubled = keras.layers.Lambda(lambda x: x * 2)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(doubled))
    with pytest.raises(ScriptError, match="does not reload .*Lambda") as error:
        save_model_checked(model, tmp_path / "model.keras", X[:4])
    assert "\n" not in str(error.value)
    assert list(tmp_path.iterdir()) == []


@keras.saving.register_keras_serializable("kerastl_tests")
class Scale(keras.layers.Layer):
    """A layer of one's own; with `forgetful`, its config loses its factor."""

    def __init__(self, factor: float = 1.0, forgetful: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.factor, self.forgetful = factor, forgetful

    def call(self, inputs):
        return inputs * self.factor

    def get_config(self) -> dict:
        if self.forgetful:
            return super().get_config()
        return {**super().get_config(), "factor": self.factor}


@pytest.mark.parametrize("forgetful", [False, True])
def test_save_model_checked_calls_a_model_with_a_layer_of_its_own(
    tmp_path: Path, forgetful: bool
) -> None:
    inputs = keras.Input((4,))
    scaled = Scale(3.0, forgetful=forgetful)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(scaled))
    path = tmp_path / "model.keras"
    if not forgetful:
        save_model_checked(model, path, X[:4])
        assert path.is_file()
        return
    with pytest.raises(ScriptError, match="reloaded model predicts differently"):
        save_model_checked(model, path, X[:4])  # reloaded with factor 1
    assert list(tmp_path.iterdir()) == []


def test_save_model_checked_compares_the_reloaded_predictions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inputs = keras.Input((4,))
    scaled = Scale(3.0)(inputs)  # a layer of one's own: reloaded and called
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(scaled))
    path = tmp_path / "model.keras"
    save_model_checked(model, path, X[:4])
    saved = path.read_bytes()
    load = keras.saving.load_model

    def altered(*args, **kwargs):  # a file that reloads with other weights
        reloaded = load(*args, **kwargs)
        reloaded.set_weights([weight * 2 + 0.1 for weight in reloaded.get_weights()])
        return reloaded

    monkeypatch.setattr(keras.saving, "load_model", altered)
    with pytest.raises(ScriptError, match="reloaded model predicts differently"):
        save_model_checked(model, path, X[:4])
    assert path.read_bytes() == saved  # the last good file stays


def test_save_model_checked_reloads_only_what_keras_cannot_vouch_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reloads = []
    load = keras.saving.load_model
    monkeypatch.setattr(
        keras.saving, "load_model", lambda *a, **k: reloads.append(1) or load(*a, **k)
    )
    save_model_checked(tiny_model(), tmp_path / "own.keras", X[:4])
    assert reloads == []  # Keras's own layers, initializers and activations
    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(2, activation=_softsign)(inputs)
    save_model_checked(keras.Model(inputs, outputs), tmp_path / "fn.keras", X[:4])
    assert reloads == [1]  # a function of one's own


@keras.saving.register_keras_serializable("kerastl_tests")
def _softsign(x):
    return x / (1 + abs(x))


def test_a_model_saved_as_it_was_saved_last_is_copied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kerastl.runtime.models import save_model_atomic

    model = tiny_model()
    model.fit(X, Y, epochs=1, verbose=0)
    saves = []
    save = keras.Model.save
    monkeypatch.setattr(
        keras.Model,
        "save",
        lambda self, *a, **k: saves.append(1) or save(self, *a, **k),
    )
    save_model_atomic(model, tmp_path / "best.keras")
    save_model_checked(model, tmp_path / "model.keras", X[:4])
    assert saves == [1]  # the same weights and optimizer state: a copy
    assert (tmp_path / "model.keras").read_bytes() == (
        tmp_path / "best.keras"
    ).read_bytes()
    model.fit(X, Y, epochs=1, verbose=0)  # other weights: saved anew
    save_model_checked(model, tmp_path / "model.keras", X[:4])
    assert saves == [1, 1]
    reloaded = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(
        reloaded.predict(X, verbose=0), model.predict(X, verbose=0)
    )
    (tmp_path / "model.keras").write_bytes(b"edited")  # the file changed since
    save_model_checked(model, tmp_path / "copy.keras", X[:4])
    assert saves == [1, 1, 1]
