"""The recipe options: label smoothing, MixUp/CutMix, RandAugment, EMA, layer
decay, the LR finder and TTA, each on real Keras objects, then in scripts."""

import contextlib
import itertools
import json
import runpy
import signal
import subprocess
import sys
from functools import partial
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

from kerastl.cli import cli
from kerastl.runtime import (
    Phase,
    Run,
    RunStopped,
    ScriptError,
    layer_decay,
    read_history,
    unfreeze,
)
from kerastl.runtime.epochs import augment_batch, epoch_batches, mix_batch
from kerastl.runtime.input_pipeline import _augment, to_model_input
from kerastl.runtime.lr_finder import lr_range_test, suggested_rate

from .conftest import new_script, run_script, script_env
from .test_run import Signal, state

pytestmark = pytest.mark.slow  # real Keras models, and generated scripts run

RNG = np.random.default_rng(0)
IMAGES = RNG.integers(0, 256, size=(48, 8, 8, 3), dtype=np.uint8)
LABELS = (IMAGES[..., 0].mean(axis=(1, 2)) > 127).astype("int32")


def one_hot_batches(images, labels, batch_size: int = 8) -> tf.data.Dataset:
    return (
        tf.data.Dataset.from_tensor_slices((images, labels))
        .batch(batch_size)
        .map(partial(to_model_input, num_classes=2))
    )


def test_mixup_and_cutmix_take_turns_by_batch_and_repeat_from_the_key() -> None:
    images = tf.constant(IMAGES[:8], tf.float32)
    labels = tf.one_hot(LABELS[:8], 2)
    mixup, cutmix = keras.layers.MixUp(alpha=0.4), keras.layers.CutMix(factor=1.0)
    both = [mixup, cutmix]
    for index, alone in ((0, mixup), (1, cutmix), (2, mixup)):
        key = tf.constant([7, index], tf.int64)
        mixed_images, mixed_labels = mix_batch(both, images, labels, key)
        expected_images, expected_labels = mix_batch([alone], images, labels, key)
        np.testing.assert_array_equal(mixed_images, expected_images)
        np.testing.assert_allclose(mixed_labels, expected_labels)
        np.testing.assert_allclose(np.sum(mixed_labels, axis=1), 1.0, rtol=1e-6)
    # The same key mixes the same way; another key, another way.
    key = tf.constant([7, 0], tf.int64)
    again = mix_batch([mixup], images, labels, key)[0]
    np.testing.assert_array_equal(again, mix_batch([mixup], images, labels, key)[0])
    other = mix_batch([mixup], images, labels, tf.constant([8, 0], tf.int64))[0]
    assert not np.array_equal(again, other)
    assert not np.array_equal(again, images)


def test_rand_augment_draws_from_the_batch_key() -> None:
    """RandAugment ignores the seed it is given; the batch's key still rules it."""
    layer = keras.layers.RandAugment(value_range=(0, 255))
    images = tf.constant(IMAGES[:8], tf.float32)
    first = augment_batch(layer, images, tf.constant([3, 1], tf.int64))
    np.testing.assert_array_equal(
        first, augment_batch(layer, images, tf.constant([3, 1], tf.int64))
    )
    assert not np.array_equal(
        first, augment_batch(layer, images, tf.constant([3, 2], tf.int64))
    )
    assert "_get_seed_generator" not in vars(layer)  # the layer is left as it was


def small_base() -> keras.Model:
    return keras.applications.MobileNetV3Small(
        include_top=False, weights=None, input_shape=(32, 32, 3)
    )


def classifier(base: keras.Model) -> keras.Model:
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(base(inputs, training=False))
    outputs = keras.layers.Dense(3, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs)


def test_layer_decay_gives_each_block_below_the_top_a_lower_rate(
    tmp_path: Path, capsys
) -> None:
    base = small_base()
    model = classifier(base)
    unfreeze(base, 3)
    optimizer = layer_decay(keras.optimizers.Adam, 1e-3, base, 0.5)
    assert capsys.readouterr().out.strip() == (
        "Layer decay 0.5: the head and the top block (expanded_conv_10) train at "
        "0.001, the lowest trained block (expanded_conv_8) at 0.00025"
    )
    model.compile(optimizer=optimizer, loss="categorical_crossentropy")
    x = RNG.uniform(0, 255, size=(4, 32, 32, 3)).astype("float32")
    model.fit(x, np.eye(3)[[0, 1, 2, 0]], verbose=0)
    rates = {
        variable.path: float(inner.learning_rate)
        for inner in optimizer.optimizers
        for variable in inner._trainable_variables
    }
    assert rates["predictions/kernel"] == pytest.approx(1e-3)
    assert rates["expanded_conv_10_project/kernel"] == pytest.approx(1e-3)
    assert rates["expanded_conv_9_project/kernel"] == pytest.approx(5e-4)
    assert rates["expanded_conv_8_project/kernel"] == pytest.approx(2.5e-4)
    assert set(rates) == {variable.path for variable in model.trainable_variables}
    # Saved, it loads with plain Keras: MultiOptimizer is Keras's own.
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert isinstance(loaded.optimizer, keras.optimizers.MultiOptimizer)
    # A factor of 1 is one plain optimizer; so is a phase whose base is frozen.
    assert isinstance(
        layer_decay(keras.optimizers.Adam, 1e-3, base, 1.0), keras.optimizers.Adam
    )
    base.trainable = False
    assert isinstance(
        layer_decay(keras.optimizers.Adam, 1e-3, base, 0.5), keras.optimizers.Adam
    )


def test_the_range_test_leaves_the_model_and_its_optimizer_as_they_were() -> None:
    keras.utils.set_random_seed(0)
    model = tiny_image_model()
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3, use_ema=True),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1),
    )
    x = IMAGES[:16].astype("float32")
    y = np.eye(2)[LABELS[:16]].astype("float32")
    model.fit(x, y, batch_size=8, verbose=0)  # an optimizer with a state
    variables = [v.numpy() for v in model.variables]
    optimizer_state = [v.numpy() for v in model.optimizer.variables]
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    rates, losses = lr_range_test(model, data, steps=30)
    assert len(rates) == len(losses) <= 30
    assert rates[0] == pytest.approx(1e-7)
    assert all(later > earlier for earlier, later in itertools.pairwise(rates))
    for before, after in zip(variables, model.variables, strict=True):
        np.testing.assert_array_equal(before, after.numpy())
    for before, after in zip(optimizer_state, model.optimizer.variables, strict=True):
        np.testing.assert_array_equal(before, after.numpy())


def test_the_suggestion_lies_two_thirds_down_the_longest_fall() -> None:
    rates = list(np.logspace(-7, 1, 100))
    # Flat, then falling from step 40 to step 70, then diverging.
    losses = (
        [2.0] * 40 + list(np.linspace(2.0, 0.5, 31))[1:] + [0.6 + i for i in range(30)]
    )
    suggested = suggested_rate(rates, losses)
    assert rates[50] <= suggested <= rates[65]
    with pytest.raises(ScriptError, match="diverged after 2 steps"):
        suggested_rate(rates[:2], [1.0, 5.0])


def tiny_image_model() -> keras.Model:
    inputs = keras.Input((8, 8, 3), name="image")
    x = keras.layers.Rescaling(1 / 255, name="rescale")(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dropout(0.3, name="dropout")(x)
    outputs = keras.layers.Dense(2, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs)


def train_recipe(
    folder: Path, *callbacks: keras.callbacks.Callback, ema: bool = True
) -> Run:
    """Two phases with EMA, MixUp and label smoothing on tiny images, as a script."""
    keras.utils.set_random_seed(1)
    phases = [Phase("head", 3, 0.02), Phase("tune", 2, 0.005)]
    run = Run(folder, tiny_image_model(), phases)
    batches = epoch_batches(
        tf.data.Dataset.from_tensor_slices((IMAGES[:40], LABELS[:40])),
        batch_size=8,
        seed=3,
        buffer_size=40,
        augment=partial(_augment, None, (keras.layers.MixUp(0.4),), num_classes=2),
    )
    train = batches.map(partial(to_model_input, num_classes=2))
    validation = one_hot_batches(IMAGES[40:], LABELS[40:])
    for phase in phases:
        run.model.compile(
            optimizer=keras.optimizers.Adam(phase.learning_rate, use_ema=ema),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1),
            metrics=["accuracy"],
        )
        run.fit(
            phase,
            train,
            validation_data=validation,
            callbacks=list(callbacks),
            verbose=0,
        )
    run.finish(validation)
    return run


def test_a_run_with_ema_and_mixup_stopped_twice_ends_as_one_never_stopped(
    tmp_path: Path, capsys
) -> None:
    reference = train_recipe(tmp_path / "reference")
    folder = tmp_path / "run"
    with pytest.raises(RunStopped) as stopped:  # SIGTERM after batch 2 of epoch 2
        train_recipe(folder, Signal(signal.SIGTERM, epoch=1, batch=1))
    assert stopped.value.exit_code == 143
    assert state(folder)["checkpoint"]["batch"] == 2
    with pytest.raises(RunStopped) as stopped:  # Ctrl-C inside the second phase
        train_recipe(folder, Signal(signal.SIGINT, epoch=3, batch=2))
    assert stopped.value.exit_code == 130
    resumed = train_recipe(folder)
    expected = read_history(tmp_path / "reference" / "history.csv")
    assert read_history(folder / "history.csv") == expected
    for actual, wanted in zip(
        resumed.model.get_weights(), reference.model.get_weights(), strict=True
    ):
        np.testing.assert_array_equal(actual, wanted)
    # The validation figures are the averaged weights': best.keras, which holds
    # the best epoch's averages, gives that epoch's figure again.
    best = reference.best
    _, rows = expected
    logged = float(rows[best["epoch"] - 1]["val_loss"])
    model = keras.saving.load_model(tmp_path / "reference" / "best.keras")
    evaluated = model.evaluate(one_hot_batches(IMAGES[40:], LABELS[40:]), verbose=0)
    assert evaluated[0] == pytest.approx(logged, rel=1e-5)
    # And they are not the trained weights' figures.
    plain = train_recipe(tmp_path / "plain", ema=False)
    assert read_history(tmp_path / "plain" / "history.csv") != expected
    assert plain.best is not None
    capsys.readouterr()


def generate(folder: Path, *options: str) -> Path:
    return new_script(folder, *options)


def test_a_fine_tune_script_with_every_option(tmp_path: Path, digits_dir: Path) -> None:
    script = generate(
        tmp_path,
        *("--mode", "fine-tune", "--backbone", "MobileNetV3Small"),
        *("--image-size", "32", "--weights", "none", "--unfreeze", "2"),
    )
    common = ("--data-dir", str(digits_dir), "--epochs", "2", "--fine-tune-epochs", "1")
    # The range test of the stage needs the head first (refused in this process).
    main = runpy.run_path(str(script))["main"]
    with (
        contextlib.chdir(tmp_path),
        pytest.raises(
            ScriptError, match=("'head' has not trained in run: run it first")
        ),
    ):
        main([*common, "--find-lr", "unfreeze-2", "--output-dir", "run"])
    # The range test of the head: one line, a picture, and nothing else written.
    found = run_script(script, *common, "--find-lr", "--output-dir", "run")
    assert found.returncode == 0, found.stderr[-3000:]
    last = found.stdout.strip().splitlines()[-1]
    assert last.startswith("suggested learning rate: ")
    assert float(last.split(": ")[1]) > 0
    assert [path.name for path in (tmp_path / "run").iterdir()] == ["lr_find.png"]
    recipe = (
        *("--label-smoothing", "0.1", "--mixup", "0.2", "--cutmix", "1.0"),
        *("--rand-augment", "--ema", "--layer-decay", "0.7", "--tta"),
    )
    result = run_script(script, *common, *recipe, "--output-dir", "run")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (
        "Layer decay 0.7: the head and the top block (expanded_conv_10)"
        in result.stdout
    )
    assert "With TTA (each image and its mirror image; --tta on): acc" in result.stdout
    run_dir = tmp_path / "run"
    settings = json.loads((run_dir / "run.json").read_text())["settings"]
    assert settings["label_smoothing"] == 0.1 and settings["ema"] is True
    assert settings["layer_decay"] == 0.7 and settings["mixup"] == 0.2
    metrics = json.loads((run_dir / "metrics.json").read_text())["validation"]
    assert set(metrics["tta"]) == {"loss", "accuracy", "macro_f1", "top5_accuracy"}
    # The final model loads with plain Keras: the stage's per-block optimizer,
    # the smoothed loss.
    check = subprocess.run(
        [
            sys.executable,
            "-c",
            (
                "import sys, keras; m = keras.saving.load_model(sys.argv[1]); "
                "print(type(m.optimizer).__name__, m.loss.get_config()['label_smoothing'])"
            ),
            str(run_dir / "model.keras"),
        ],
        capture_output=True,
        text=True,
        env=script_env(),
        check=True,
    )
    assert check.stdout.split() == ["MultiOptimizer", "0.1"]
    # kerastl predict --tta averages each image with its mirror image.
    image = next(digits_dir.glob("3/*.png"))
    predicted = CliRunner().invoke(cli, ["predict", str(run_dir), str(image), "--tta"])
    assert predicted.exit_code == 0, predicted.output[-2000:]
    assert image.name in predicted.output


def test_the_feature_cache_with_smoothing_and_ema_but_not_with_mixing(
    tmp_path: Path, digits_dir: Path
) -> None:
    script = generate(
        tmp_path,
        *("--mode", "feature-extraction", "--backbone", "MobileNetV3Small"),
        *("--image-size", "32", "--weights", "none"),
    )
    common = ("--data-dir", str(digits_dir), "--epochs", "2", "--no-augment")
    cached = run_script(
        script, *common, "--label-smoothing", "0.1", "--ema", "--output-dir", "a"
    )
    assert cached.returncode == 0, cached.stderr[-3000:]
    assert "Features of the training images:" in cached.stdout
    # --tta auto: the model never saw a mirror image, so none is averaged.
    assert "No TTA (--tta auto: the training never flipped" in cached.stdout
    metrics = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert "tta" not in metrics["validation"]
    mixed = run_script(script, *common, "--mixup", "0.2", "--output-dir", "b")
    assert mixed.returncode == 0, mixed.stderr[-3000:]
    assert (
        "Features: not cached, as MixUp or CutMix mixes the images anew each epoch"
        in mixed.stdout
    )
    assert not (tmp_path / "b" / "features").exists()


def test_the_tta_line_sets_the_figures_against_the_plain_ones_and_says_why() -> None:
    from kerastl.runtime.report import _tta_line
    from kerastl.runtime.tta import tta_decision

    figures = {
        "accuracy": 0.77,
        "macro_f1": 0.76,
        "tta": {"accuracy": 0.49, "macro_f1": 0.48},
    }
    on, reason = tta_decision("auto", flipped_in_training=True)
    assert on
    assert _tta_line(figures, "auto", reason) == (
        "With TTA (each image and its mirror image; --tta auto: the training "
        "images were flipped): accuracy 0.4900, macro F1 0.4800 (without: "
        "0.7700, 0.7600)"
    )
    on, reason = tta_decision("on", flipped_in_training=False)
    assert on and "never flipped" in _tta_line(figures, "on", reason)
    plain = {"accuracy": 0.77, "macro_f1": 0.76}
    on, reason = tta_decision("auto", flipped_in_training=False)
    assert not on
    assert _tta_line(plain, "auto", reason) == (
        "No TTA (--tta auto: the training never flipped the images)."
    )
    assert tta_decision("off", flipped_in_training=True) == (False, "--tta off")
    assert _tta_line(plain, "off", "--tta off") is None


def test_auto_tta_follows_the_flip_of_the_augmentation() -> None:
    """A user who deletes RandomFlip from augmentation() (digits, text) turns
    mirror TTA off with it; a vertical flip alone is no mirror image."""
    import keras

    from kerastl.runtime.tta import flips_left_to_right

    def augmentation(*layers: keras.layers.Layer) -> keras.Sequential:
        return keras.Sequential([*layers, keras.layers.RandomZoom(0.1)])

    assert flips_left_to_right(augmentation(keras.layers.RandomFlip("horizontal")))
    assert flips_left_to_right(keras.layers.RandomFlip())  # both directions
    assert not flips_left_to_right(augmentation(keras.layers.RandomRotation(0.05)))
    assert not flips_left_to_right(augmentation(keras.layers.RandomFlip("vertical")))
    assert not flips_left_to_right(None)  # --no-augment
