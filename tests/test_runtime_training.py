"""Callbacks, schedules, base-model creation, saving and run state, on real Keras."""

import csv
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest

from kerastl.runtime import (
    HistoryLogger,
    Phase,
    RunState,
    ScriptError,
    WeightsError,
    create_base_model,
    read_history,
    save_model_checked,
    standard_callbacks,
    warmup_cosine,
)

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


def test_standard_callbacks_in_order(tmp_path: Path) -> None:
    callbacks = standard_callbacks(tmp_path, phase="head")
    names = [type(callback).__name__ for callback in callbacks]
    assert names == [
        "TerminateOnNaN",
        "HistoryLogger",
        "ModelCheckpoint",
        "EarlyStopping",
        "TensorBoard",
    ]
    early = callbacks[3]
    assert early.restore_best_weights and early.monitor == "val_loss"
    assert str(callbacks[2].filepath).endswith("best.keras")


def test_each_standard_callback_can_be_switched_off(tmp_path: Path) -> None:
    none = standard_callbacks(
        tmp_path,
        checkpoint=False,
        early_stopping=False,
        history=False,
        tensorboard=False,
        terminate_on_nan=False,
    )
    assert none == []
    plateau = standard_callbacks(tmp_path, reduce_lr_on_plateau=True, tensorboard=False)
    assert "ReduceLROnPlateau" in [type(callback).__name__ for callback in plateau]


def test_history_logger_appends_across_phases_and_drops_redone_epochs(
    tmp_path: Path,
) -> None:
    path = tmp_path / "history.csv"
    model = tiny_model()
    model.fit(X, Y, epochs=2, verbose=0, callbacks=[HistoryLogger(path, "head")])
    model.fit(
        X,
        Y,
        initial_epoch=2,
        epochs=3,
        verbose=0,
        callbacks=[HistoryLogger(path, "tune")],
    )
    header, rows = read_history(path)
    assert header[:2] == ["epoch", "phase"] and "loss" in header
    assert [(row["epoch"], row["phase"]) for row in rows] == [
        ("0", "head"),
        ("1", "head"),
        ("2", "tune"),
    ]
    # A resumed run that restarts at epoch 1 replaces the rows from epoch 1 on.
    model.fit(
        X,
        Y,
        initial_epoch=1,
        epochs=2,
        verbose=0,
        callbacks=[HistoryLogger(path, "again")],
    )
    _, rows = read_history(path)
    assert [(row["epoch"], row["phase"]) for row in rows] == [
        ("0", "head"),
        ("1", "again"),
    ]


def test_history_logger_adds_columns_that_appear_later(tmp_path: Path) -> None:
    path = tmp_path / "history.csv"
    model = tiny_model()
    model.fit(X, Y, epochs=1, verbose=0, callbacks=[HistoryLogger(path, "a")])
    model.fit(
        X,
        Y,
        validation_data=(X, Y),
        initial_epoch=1,
        epochs=2,
        verbose=0,
        callbacks=[HistoryLogger(path, "b")],
    )
    with open(path, newline="") as file:
        rows = list(csv.DictReader(file))
    assert rows[0]["val_loss"] == "" and rows[1]["val_loss"] != ""


def test_plain_backup_and_restore_would_restart_the_next_phase_early(
    tmp_path: Path,
) -> None:
    """Why PhaseBackupAndRestore exists: Keras keeps the restored epoch on the model."""
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


def test_create_base_model_with_random_weights() -> None:
    base = create_base_model(
        keras.applications.MobileNetV3Small,
        weights="none",
        include_top=False,
        input_shape=(32, 32, 3),
    )
    assert base.output_shape == (None, 1, 1, 576)


def test_create_base_model_from_a_weights_file(tmp_path: Path) -> None:
    kwargs = {"include_top": False, "input_shape": (32, 32, 3)}
    source = keras.applications.MobileNetV3Small(weights=None, **kwargs)
    path = tmp_path / "base.weights.h5"
    source.save_weights(path)
    loaded = create_base_model(
        keras.applications.MobileNetV3Small, weights=str(path), **kwargs
    )
    for expected, actual in zip(source.weights, loaded.weights):
        np.testing.assert_array_equal(np.array(expected), np.array(actual))
    with (
        warnings.catch_warnings(),
        pytest.raises(WeightsError, match="does not fit MobileNetV3Large"),
    ):
        warnings.simplefilter("error")  # one error, not a warning per layer
        create_base_model(
            keras.applications.MobileNetV3Large, weights=str(path), **kwargs
        )
    with pytest.raises(WeightsError, match="missing.weights.h5 does not exist"):
        create_base_model(
            keras.applications.MobileNetV3Small,
            weights=str(tmp_path / "missing.weights.h5"),
            **kwargs,
        )


def test_create_base_model_explains_a_failed_download() -> None:
    def offline(**kwargs):
        # Keras's get_file raises a bare Exception with this message.
        raise Exception(  # noqa: TRY002
            "URL fetch failure on https://storage.googleapis.com/x.h5: None -- "
            "[Errno -2] Name or service not known"
        )

    offline.__name__ = "ResNet50"
    with pytest.raises(WeightsError) as error:
        create_base_model(offline, weights="imagenet")
    message = str(error.value)
    assert "could not download the ImageNet weights of ResNet50" in message
    assert "--weights PATH" in message and "--weights none" in message
    assert "\n" not in message


def test_create_base_model_turns_keras_argument_errors_into_one_line() -> None:
    with pytest.raises(
        ScriptError, match="InceptionV3: Input size must be at least 75x75"
    ):
        create_base_model(
            keras.applications.InceptionV3,
            weights="none",
            include_top=False,
            input_shape=(64, 64, 3),
        )


def test_save_model_checked_reloads_and_compares(tmp_path: Path) -> None:
    model = tiny_model()
    model.fit(X, Y, epochs=1, verbose=0)  # built optimizer state, as after training
    reloaded = save_model_checked(model, tmp_path / "out" / "model.keras", X[:4])
    np.testing.assert_allclose(
        reloaded.predict(X, verbose=0), model.predict(X, verbose=0)
    )
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["model.keras"]


def test_run_state_records_phases_and_restores_their_weights(tmp_path: Path) -> None:
    phases = [Phase("head", 2, 1e-3), Phase("tune", 2, 1e-4, unfreeze=2)]
    model = tiny_model()
    run = RunState(tmp_path, phases)
    assert run.epoch_range(phases[0]) == (0, 2) and not run.is_complete(phases[0])
    history = model.fit(
        X, Y, epochs=2, verbose=0, callbacks=[run.checkpoint(phases[0])]
    )
    run.complete(phases[0], model, history)
    trained = [np.array(w) for w in model.weights]

    fresh = tiny_model()
    again = RunState(tmp_path, phases)
    assert again.is_complete(phases[0]) and not again.is_complete(phases[1])
    assert again.epoch_range(phases[1]) == (2, 4)
    again.restore(fresh, phases[1])
    for expected, actual in zip(trained, fresh.weights):
        np.testing.assert_array_equal(expected, np.array(actual))
    assert not fresh.optimizer.built  # a new phase starts with a fresh optimizer
    with pytest.raises(ScriptError, match="holds a run with the phases"):
        RunState(tmp_path, [Phase("other", 1, 1e-3)])
    with pytest.raises(ScriptError, match="unique"):
        RunState(tmp_path / "x", [phases[0], phases[0]])


def test_run_state_resumes_mid_phase_with_the_optimizer_state(tmp_path: Path) -> None:
    """The schedule continues: the optimizer's step count comes back with the weights."""
    phase = Phase("head", 3, 1e-3)
    model = tiny_model()
    run = RunState(tmp_path, [phase])
    with pytest.raises(RuntimeError, match="killed"):
        model.fit(
            X,
            Y,
            epochs=3,
            batch_size=8,
            verbose=0,
            callbacks=[run.checkpoint(phase), StopAfter(1)],
        )
    steps = int(model.optimizer.iterations)
    assert steps == 8
    fresh = tiny_model()
    again = RunState(tmp_path, [phase])
    assert again.epoch_range(phase) == (2, 3)
    again.restore(fresh, phase)
    assert int(fresh.optimizer.iterations) == steps
    for expected, actual in zip(model.weights, fresh.weights):
        np.testing.assert_array_equal(np.array(expected), np.array(actual))


def test_a_failed_checkpoint_write_keeps_the_previous_one(
    tmp_path: Path, monkeypatch
) -> None:
    phase = Phase("head", 3, 1e-3)
    model = tiny_model()
    run = RunState(tmp_path, [phase])
    model.fit(X, Y, epochs=1, verbose=0)
    run.save(model, phase, 1)
    before = (tmp_path / "resume" / "state.json").read_text()

    def crash(path, *args, **kwargs):
        Path(path).write_bytes(b"half an HDF5 file")
        raise KeyboardInterrupt  # killed mid-write

    monkeypatch.setattr(model, "save_weights", crash)
    with pytest.raises(KeyboardInterrupt):
        run.save(model, phase, 2)
    assert (tmp_path / "resume" / "state.json").read_text() == before
    again = RunState(tmp_path, [phase])
    assert again.epoch_range(phase) == (1, 3)
    again.restore(tiny_model(), phase)  # the last complete checkpoint still loads
