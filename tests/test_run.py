"""A run keeps the best model of all its phases, never saves NaN, and refuses a
rerun it cannot continue (on real, tiny Keras models)."""

import json
import os
import re
import signal
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerastl.runtime import (
    Phase,
    Run,
    RunStopped,
    checkpoints,
    choose_model,
    read_history,
    save_model_checked,
)
from kerastl.runtime.epochs import epoch_batches
from kerastl.runtime.errors import DivergedError, RunMismatchError
from kerastl.runtime.run_card import run_card

RNG = np.random.default_rng(0)
X = RNG.normal(size=(64, 4)).astype("float32")
Y = (X[:, 0] > 0).astype("int32")
TRAINING = (X[:48], Y[:48])
VALIDATION = (X[48:], Y[48:])


def tiny_model(hidden: int = 8) -> keras.Model:
    keras.utils.set_random_seed(1)
    inputs = keras.Input((4,), name="features")
    x = keras.layers.Dense(hidden, activation="relu", name="hidden")(inputs)
    outputs = keras.layers.Dense(2, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs)


class Crash(keras.callbacks.Callback):
    """Simulates a kill: raises at the end of an epoch, before the run records it."""

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def batches(x: np.ndarray, y: np.ndarray) -> tf.data.Dataset:
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(16)


def fit(run: Run, phase: Phase, **kwargs):
    """Compile for `phase` (plain SGD), then fit it as a script does."""
    run.model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=phase.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return run.fit(
        phase, batches(*TRAINING), validation_data=batches(*VALIDATION), **kwargs
    )


def state(folder: Path) -> dict:
    return json.loads((folder / "resume" / "state.json").read_text())


def val_loss_of(path: Path) -> float:
    model = keras.saving.load_model(path, compile=False)
    model.compile(loss="sparse_categorical_crossentropy")
    return float(model.evaluate(*VALIDATION, verbose=0))


HEAD = Phase("head", epochs=6, learning_rate=0.1)
WILD = Phase("wild", epochs=2, learning_rate=50.0)  # degrades the model
NAN = Phase("nan", epochs=2, learning_rate=1e38)  # overflows to NaN/inf


@pytest.mark.slow
def test_best_keras_is_the_best_epoch_of_the_whole_run(tmp_path: Path, capsys) -> None:
    run = Run(tmp_path, tiny_model(), [HEAD, WILD])
    fit(run, HEAD)
    head_best = state(tmp_path)["best"]
    assert head_best["phase"] == "head"
    fit(run, WILD)
    assert state(tmp_path)["best"] == head_best  # the wild phase never beat it
    assert run_card(run.state, run.settings)["phases"] == [
        {"name": "head", "first_epoch": 1, "last_epoch": 6},
        {"name": "wild", "first_epoch": 7, "last_epoch": 8},
    ]
    run.finish(batches(*VALIDATION))
    shipped = choose_model(run, batches(*VALIDATION))
    best_loss = val_loss_of(tmp_path / "best.keras")
    assert best_loss == pytest.approx(head_best["value"], rel=1e-4)
    assert best_loss < val_loss_of(tmp_path / "model.keras")
    assert shipped == "best.keras"  # and the model now holds its weights
    assert run.model.evaluate(*VALIDATION, verbose=0, return_dict=True)[
        "loss"
    ] == pytest.approx(best_loss, rel=1e-5)
    out = capsys.readouterr().out
    assert "Better on the validation data: best.keras (val_loss " in out
    assert not list(
        (tmp_path / "resume").glob("*.weights.h5")
    )  # model.keras replaces it


def counted_saves(monkeypatch) -> list[str]:
    """The names of the weights files saved from now on."""
    written: list[str] = []
    save_weights = keras.Model.save_weights

    def counted_save_weights(self, path, *args, **kwargs):
        written.append(os.path.basename(path))
        save_weights(self, path, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "save_weights", counted_save_weights)
    return written


@pytest.mark.slow
def test_each_epoch_writes_its_weights_once(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(checkpoints, "SAVING_SHARE", 1e9)  # saving costs nothing
    written = counted_saves(monkeypatch)
    run = Run(tmp_path, tiny_model(), [HEAD, WILD])
    fit(run, HEAD)
    assert len(written) == HEAD.epochs  # the phase's end names the last one
    saved = state(tmp_path)
    assert saved["completed"] == [{"phase": "head", "end_epoch": HEAD.epochs}]
    assert saved["checkpoint"]["epoch"] == HEAD.epochs
    assert (tmp_path / saved["checkpoint"]["weights"]).is_file()


@pytest.mark.slow
def test_short_epochs_save_the_first_and_the_last(tmp_path: Path, monkeypatch) -> None:
    """Epochs shorter than a save, say, skip it unless they must save; the best
    epoch's weights wait in memory and are written once, with the last."""
    monkeypatch.setattr(checkpoints, "SAVING_SHARE", 1e-9)  # never due by time
    written = counted_saves(monkeypatch)
    run = Run(tmp_path, tiny_model(), [HEAD, WILD])
    history = fit(run, HEAD).history["val_loss"]
    best = int(np.argmin(history)) + 1
    saved = [int(re.search(r"-(\d+)\.weights\.h5$", name)[1]) for name in written]
    assert saved == [1, HEAD.epochs] + [best] * (best not in (1, HEAD.epochs))
    assert state(tmp_path)["best"]["epoch"] == best
    # The wild phase never improves: its last epoch alone saves, and the rerun
    # of a run killed inside it goes on from the head's end.
    written.clear()
    with pytest.raises(KeyboardInterrupt):
        fit(run, WILD, callbacks=[Crash(epoch=HEAD.epochs + 1)])
    assert written == []
    assert state(tmp_path)["checkpoint"]["epoch"] == HEAD.epochs


@pytest.mark.slow
def test_a_kill_before_a_held_best_epoch_is_saved_trains_it_again(
    tmp_path: Path, monkeypatch
) -> None:
    """The best epochs after the last checkpoint were in memory only: the
    rerun resumes from that checkpoint and ends as an unbroken run does."""
    monkeypatch.setattr(checkpoints, "SAVING_SHARE", 1e-9)  # saves epoch 1 alone
    reference = Run(tmp_path / "reference", tiny_model(), [HEAD])
    fit(reference, HEAD)
    folder = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        fit(Run(folder, tiny_model(), [HEAD]), HEAD, callbacks=[Crash(epoch=4)])
    saved = state(folder)
    assert saved["checkpoint"]["epoch"] == 1 and saved["best"]["epoch"] == 1
    again = Run(folder, tiny_model(), [HEAD])
    fit(again, HEAD)
    assert state(folder)["best"] == state(tmp_path / "reference")["best"]
    assert read_history(folder / "history.csv") == read_history(
        tmp_path / "reference" / "history.csv"
    )
    assert val_loss_of(folder / "best.keras") == val_loss_of(
        tmp_path / "reference" / "best.keras"
    )


@pytest.mark.slow
def test_a_kill_after_the_best_epoch_keeps_it(tmp_path: Path) -> None:
    run = Run(tmp_path, tiny_model(), [HEAD, WILD])
    fit(run, HEAD)
    head_best = state(tmp_path)["best"]
    with pytest.raises(KeyboardInterrupt):
        fit(run, WILD, callbacks=[Crash(HEAD.epochs + 1)])  # killed in epoch 2 of wild
    best_bytes = (tmp_path / "best.keras").read_bytes()
    again = Run(tmp_path, tiny_model(), [HEAD, WILD])
    fit(again, HEAD)  # finished: restores, trains nothing
    fit(again, WILD)
    assert state(tmp_path)["best"] == head_best
    assert (tmp_path / "best.keras").read_bytes() == best_bytes
    _, rows = read_history(tmp_path / "history.csv")
    assert [int(row["epoch"]) for row in rows] == list(range(1, 9))
    assert [row["phase"] for row in rows] == ["head"] * 6 + ["wild"] * 2


@pytest.mark.slow
def test_patience_is_part_of_the_saved_state(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setattr(checkpoints, "SAVING_SHARE", 1e9)  # each epoch saves
    stalled = Phase("stalled", epochs=10, learning_rate=1e-9)  # cannot improve
    run = Run(tmp_path, tiny_model(), [HEAD, stalled], patience=3)
    fit(run, HEAD)
    with pytest.raises(KeyboardInterrupt):
        fit(run, stalled, callbacks=[Crash(HEAD.epochs + 2)])
    assert state(tmp_path)["wait"] == 2
    again = Run(tmp_path, tiny_model(), [HEAD, stalled], patience=3)
    fit(again, HEAD)
    capsys.readouterr()
    fit(again, stalled)
    _, rows = read_history(tmp_path / "history.csv")
    # Two epochs before the kill, one after: three without beating the best.
    assert [row["phase"] for row in rows].count("stalled") == 3
    best = state(tmp_path)["best"]
    assert (
        f"Phase 'stalled' stops early, epoch {HEAD.epochs + 3} of "
        f"{HEAD.epochs + 10}: val_loss has not beaten the run's best "
        f"({best['value']:.4f}, epoch {best['epoch']}) for 3 epochs (--patience); "
        "the model goes back to that epoch's weights."
    ) in capsys.readouterr().out
    weights = [np.array(w) for w in again.model.weights]
    reference = keras.saving.load_model(tmp_path / "best.keras", compile=False)
    for expected, actual in zip(reference.get_weights(), weights):
        np.testing.assert_array_equal(expected, actual)  # back to the best
    assert best["phase"] == "head"


@pytest.mark.slow
def test_a_kill_after_an_early_stop_ends_that_phase_on_the_rerun(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    stalled = Phase("stalled", epochs=10, learning_rate=1e-9)  # cannot improve
    tail = Phase("tail", epochs=1, learning_rate=0.01)
    run = Run(tmp_path, tiny_model(), [HEAD, stalled, tail], patience=3)
    fit(run, HEAD)

    def killed(phase: Phase, end_epoch: int) -> None:
        raise KeyboardInterrupt  # after the early stop, before the phase ends

    monkeypatch.setattr(run, "complete", killed)
    with pytest.raises(KeyboardInterrupt):
        fit(run, stalled)
    again = Run(tmp_path, tiny_model(), [HEAD, stalled, tail], patience=3)
    fit(again, HEAD)
    capsys.readouterr()
    assert fit(again, stalled) is None
    assert f"Phase 'stalled' stopped early after epoch {HEAD.epochs + 3}" in (
        capsys.readouterr().out
    )
    reference = keras.saving.load_model(tmp_path / "best.keras", compile=False)
    for expected, actual in zip(reference.get_weights(), again.model.get_weights()):
        np.testing.assert_array_equal(expected, actual)  # on from the best
    fit(again, tail)
    _, rows = read_history(tmp_path / "history.csv")
    phases = [row["phase"] for row in rows]
    assert phases == ["head"] * HEAD.epochs + ["stalled"] * 3 + ["tail"]


@pytest.mark.slow
def test_a_nan_phase_saves_nothing_and_says_what_to_do(tmp_path: Path) -> None:
    run = Run(tmp_path, tiny_model(), [HEAD, NAN])
    fit(run, HEAD)
    before = {
        name: (tmp_path / name).read_bytes()
        for name in ("best.keras", "history.csv", "resume/state.json")
    }
    with pytest.raises(DivergedError) as error:
        fit(run, NAN)
    message = str(error.value)
    assert "NaN or infinite in epoch 7 (phase 'nan'" in message
    assert "lower learning rate" in message and "\n" not in message
    after = {name: (tmp_path / name).read_bytes() for name in before}
    assert after == before
    assert len(list((tmp_path / "resume").glob("*.weights.h5"))) == 1
    # A lower learning rate resumes the same phase after the head.
    calmer = Phase("nan", epochs=2, learning_rate=0.01)
    again = Run(tmp_path, tiny_model(), [HEAD, calmer])
    fit(again, HEAD)
    fit(again, calmer)
    assert state(tmp_path)["completed"][-1] == {"phase": "nan", "end_epoch": 8}


@pytest.mark.slow
def test_save_model_checked_refuses_nan_weights_and_keeps_the_old_file(
    tmp_path: Path,
) -> None:
    model = tiny_model()
    path = tmp_path / "model.keras"
    save_model_checked(model, path, X[:4])
    before = path.read_bytes()
    model.get_layer("hidden").kernel.assign(np.full((4, 8), np.nan, "float32"))
    with pytest.raises(Exception, match="NaN or infinite weights"):
        save_model_checked(model, path, X[:4])
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras"]


@pytest.mark.slow
def test_the_epoch_check_reads_the_weights_training_changes() -> None:
    from kerastl.runtime.models import has_finite_weights

    inputs = keras.Input((4,))
    base = keras.Sequential(
        [keras.layers.Dense(4, name="frozen"), keras.layers.BatchNormalization()]
    )
    x = keras.layers.BatchNormalization(name="norm")(base(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(x))
    base.trainable = False
    nan = np.full((4, 4), np.nan, "float32")
    base.get_layer("frozen").kernel.assign(nan)  # as loaded: never trains
    assert has_finite_weights(model, trained_only=True)
    assert not has_finite_weights(model)
    model.get_layer("norm").moving_mean.assign(nan[0])  # updated while training
    assert not has_finite_weights(model, trained_only=True)
    model.get_layer("norm").moving_mean.assign(np.zeros(4, "float32"))
    model.get_layer("head").bias.assign(nan[0, :2])
    assert not has_finite_weights(model, trained_only=True)


@pytest.mark.slow
def test_an_edited_model_is_refused_before_training(tmp_path: Path) -> None:
    run = Run(tmp_path, tiny_model(), [HEAD])
    fit(run, HEAD)
    with pytest.raises(RunMismatchError) as error:
        Run(tmp_path, tiny_model(hidden=16), [HEAD])
    message = str(error.value)
    assert "layer 'hidden' changed" in message
    assert "--restart" in message and "--output-dir" in message


def unnamed_model(*hidden: int) -> keras.Model:
    """A model whose layers Keras names (`dense_3`...), counting in the process."""
    keras.utils.set_random_seed(1)
    inputs = keras.Input((4,))
    x = inputs
    for units in hidden:
        x = keras.layers.Dense(units, activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))


@pytest.mark.slow
def test_a_model_built_again_in_the_process_continues_its_run(
    tmp_path: Path, capsys
) -> None:
    """Keras's made-up layer names count up in a process (a notebook): the run
    goes on all the same, and a real edit is still refused."""
    short = Phase("head", epochs=1, learning_rate=0.1)
    fit(Run(tmp_path, unnamed_model(8), [short]), short)
    saved = state(tmp_path)
    names = [layer[0] for layer in saved["model"]["layers"]]
    assert names == ["input_layer", "dense", "dense_1"]
    again = Run(tmp_path, unnamed_model(8), [short])
    assert [layer.name for layer in again.model.layers][1:] != names[1:]
    capsys.readouterr()
    assert fit(again, short) is None
    assert "Phase 'head' finished in an earlier run." in capsys.readouterr().out
    # A state.json of an earlier kerastl version holds the names as they were.
    saved["model"]["layers"][1][0] = "dense_7"
    saved["model"]["layers"][2][0] = "dense_8"
    (tmp_path / "resume" / "state.json").write_text(json.dumps(saved))
    Run(tmp_path, unnamed_model(8), [short])
    with pytest.raises(RunMismatchError, match="layer 'dense' changed"):
        Run(tmp_path, unnamed_model(16), [short])
    with pytest.raises(RunMismatchError, match="layers added dense_2"):
        Run(tmp_path, unnamed_model(8, 8), [short])


@pytest.mark.slow
def test_changed_settings_and_finished_phases_are_refused(tmp_path: Path) -> None:
    run = Run(tmp_path, tiny_model(), [HEAD], depends_on={"batch_size": 16})
    fit(run, HEAD)
    with pytest.raises(RunMismatchError, match=r"batch_size 16 \(now 8\)"):
        Run(tmp_path, tiny_model(), [HEAD], depends_on={"batch_size": 8})
    slower = Phase("head", epochs=6, learning_rate=0.01)
    with pytest.raises(RunMismatchError, match="phase 1 finished as 'head': 6 epochs"):
        Run(tmp_path, tiny_model(), [slower, WILD], depends_on={"batch_size": 16})
    restarted = Run(
        tmp_path,
        tiny_model(hidden=16),
        [HEAD],
        depends_on={"batch_size": 8},
        restart=True,
    )
    assert not (tmp_path / "history.csv").exists()
    fit(restarted, HEAD)
    assert state(tmp_path)["settings"] == {"batch_size": 8}


@pytest.mark.slow
def test_more_epochs_on_a_finished_run_train_on(tmp_path: Path, capsys) -> None:
    run = Run(tmp_path, tiny_model(), [HEAD], settings={"dropout": 0.2, "seed": 1})
    fit(run, HEAD)
    run.finish(batches(*VALIDATION))
    model_file = (tmp_path / "model.keras").read_bytes()
    again = Run(tmp_path, tiny_model(), [HEAD], settings={"dropout": 0.5, "seed": 1})
    out = capsys.readouterr().out
    assert (
        "finished: nothing to train; --dropout 0.5 (the run used --dropout 0.2) cannot"
        in out
    )
    assert "--seed" not in out  # unchanged settings are not named
    assert fit(again, HEAD) is None
    again.finish(batches(*VALIDATION))
    assert (tmp_path / "model.keras").read_bytes() == model_file  # not saved again
    longer = Phase("head", epochs=8, learning_rate=0.1)
    more = Run(tmp_path, tiny_model(), [longer], settings={"dropout": 0.5, "seed": 1})
    out = capsys.readouterr().out
    assert "goes from 6 to 8 epochs" in out
    assert (
        "Changed from now on: --dropout 0.5 (the run used --dropout 0.2); "
        "run.json records the new." in out
    )
    fit(more, longer)
    _, rows = read_history(tmp_path / "history.csv")
    assert [int(row["epoch"]) for row in rows] == list(range(1, 9))
    assert state(tmp_path)["completed"] == [{"phase": "head", "end_epoch": 8}]


@pytest.mark.slow
def test_class_weights_reach_fit(tmp_path: Path) -> None:
    """A heavy weight on class 1 makes the trained model predict it far more."""
    predicted_ones = []
    for weights in (None, {0: 0.05, 1: 20.0}):
        run = Run(tmp_path / str(weights is None), tiny_model(), [HEAD])
        run.model.compile(
            optimizer=keras.optimizers.SGD(learning_rate=0.1),
            loss="sparse_categorical_crossentropy",
        )
        run.fit(
            HEAD,
            batches(*TRAINING),
            validation_data=batches(*VALIDATION),
            class_weight=weights,
        )
        predicted_ones.append(int(run.model.predict(X, verbose=0).argmax(1).sum()))
    assert predicted_ones[1] > predicted_ones[0]


class Signal(keras.callbacks.Callback):
    """Sends this process a signal after one batch, as a preemption would."""

    def __init__(self, number: int, epoch: int, batch: int) -> None:
        super().__init__()
        self.number, self.epoch, self.batch = number, epoch, batch
        self.current = -1

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.current, batch) == (self.epoch, self.batch):
            os.kill(os.getpid(), self.number)


def train_with_dropout(folder: Path, *callbacks: keras.callbacks.Callback) -> Run:
    """Two phases with Adam and dropout, on batches shuffled by epoch, as a script."""
    keras.utils.set_random_seed(1)
    inputs = keras.Input((4,), name="features")
    x = keras.layers.Dense(16, activation="relu", name="hidden")(inputs)
    x = keras.layers.Dropout(0.5, name="dropout")(x)
    outputs = keras.layers.Dense(2, activation="softmax", name="predictions")(x)
    phases = [Phase("head", 3, 0.01), Phase("tune", 2, 0.001)]
    run = Run(folder, keras.Model(inputs, outputs), phases)
    train = epoch_batches(
        tf.data.Dataset.from_tensor_slices(TRAINING),
        batch_size=8,
        seed=3,
        buffer_size=48,
    )
    for phase in phases:
        run.model.compile(
            optimizer=keras.optimizers.Adam(phase.learning_rate),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        run.fit(
            phase,
            train,
            validation_data=batches(*VALIDATION),
            callbacks=list(callbacks),
            verbose=0,
        )
    run.finish(batches(*VALIDATION))
    return run


@pytest.mark.slow
def test_a_stop_inside_an_epoch_resumes_exactly(tmp_path: Path, capsys) -> None:
    reference = train_with_dropout(tmp_path / "reference")
    folder = tmp_path / "run"
    with pytest.raises(RunStopped) as stopped:  # SIGTERM after batch 3 of epoch 2
        train_with_dropout(folder, Signal(signal.SIGTERM, epoch=1, batch=2))
    assert stopped.value.exit_code == 143
    assert str(stopped.value) == (
        f"Stopped by SIGTERM after batch 3 of epoch 2, saved in {folder}; "
        "run the same command to go on from there."
    )
    checkpoint = state(folder)["checkpoint"]
    assert (checkpoint["epoch"], checkpoint["batch"]) == (1, 3)
    assert len(checkpoint["metrics"]) == len(reference.model.metrics_variables)
    # Ctrl-C after the first batch of the second phase.
    with pytest.raises(RunStopped) as stopped:
        train_with_dropout(folder, Signal(signal.SIGINT, epoch=3, batch=0))
    assert stopped.value.exit_code == 130
    assert "Epoch 2/3, on from batch 4:" in capsys.readouterr().out
    assert "Stopped by SIGINT (Ctrl-C) after batch 1 of epoch 4" in str(stopped.value)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
    resumed = train_with_dropout(folder)
    # Every figure of every epoch, and every weight, as if never stopped.
    assert read_history(folder / "history.csv") == read_history(
        tmp_path / "reference" / "history.csv"
    )
    for actual, expected in zip(
        resumed.model.get_weights(), reference.model.get_weights(), strict=True
    ):
        np.testing.assert_array_equal(actual, expected)


def test_an_ignored_signal_stays_ignored_while_training() -> None:
    from kerastl.runtime.stops import stop_requests

    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        with stop_requests() as stop:
            assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler
            os.kill(os.getpid(), signal.SIGTERM)
        assert not stop
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGTERM, previous)
