"""The feature cache: the head trained on the frozen base's pooled features."""

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_script
from tests.digits import write_digits
from tests.test_e2e import generate, on_data

pytestmark = pytest.mark.slow


def small_model(classes: int = 3):
    import keras

    inputs = keras.Input((8, 8, 3), name="image")
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = keras.layers.Dropout(0.2, name="dropout")(x)
    outputs = keras.layers.Dense(classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="small")


def image_dataset(count: int, files: str):
    """Batches of random images and their files (`files` their fingerprint)."""
    import tensorflow as tf

    from kerastl.runtime.image_sets import ImageFiles

    images = np.random.default_rng(0).uniform(0, 255, (count, 8, 8, 3))
    labels = np.arange(count) % 3
    dataset = tf.data.Dataset.from_tensor_slices(
        (images.astype("float32"), labels)
    ).batch(4)
    paths = [f"{index}.png" for index in range(count)]
    return dataset, ImageFiles(paths, {"0": count}, files), images


def image_folders(train_files: str, validation_files: str):
    """Training and validation images as `load_image_folders` gives them."""
    from kerastl.runtime.data import ImageFolders

    train, train_listed, images = image_dataset(10, train_files)
    val, val_listed, _ = image_dataset(6, validation_files)
    folders = ImageFolders(
        train=train,
        validation=val,
        class_names=["0", "1", "2"],
        train_files=train_listed,
        validation_files=val_listed,
        train_in_order=train,
    )
    return folders, images


def test_the_head_shares_its_layers_with_the_model() -> None:
    from kerastl import runtime

    model = small_model()
    features, head = runtime.features.split_at(model, "avg_pool")
    images = np.random.default_rng(1).uniform(0, 255, (5, 8, 8, 3))
    np.testing.assert_allclose(
        head.predict(features.predict(images, verbose=0), verbose=0),
        model.predict(images, verbose=0),
        rtol=1e-5,
    )
    assert head.get_layer("predictions") is model.get_layer("predictions")
    with pytest.raises(runtime.ScriptError, match="no layer 'pool'"):
        runtime.features.split_at(model, "pool")


def test_a_head_that_is_not_a_chain_is_refused() -> None:
    import keras

    from kerastl import runtime

    inputs = keras.Input((8, 8, 3))
    pooled = keras.layers.GlobalAveragePooling2D(name="avg_pool")(
        keras.layers.Conv2D(4, 3)(inputs)
    )
    side = keras.layers.Dense(4, name="side")(keras.layers.Flatten()(inputs))
    merged = keras.layers.Concatenate(name="merge")([pooled, side])
    model = keras.Model(inputs, keras.layers.Dense(3, name="out")(merged))
    with pytest.raises((runtime.ScriptError, ValueError)):
        runtime.features.split_at(model, "avg_pool")


def test_features_are_cached_by_model_weights_and_files(tmp_path: Path, capsys) -> None:
    from kerastl import runtime

    model = small_model()
    folders, images = image_folders("files-a", "files-b")
    options = {"batch_size": 4, "seed": 1}
    head, train_features, _ = runtime.features.cache_features(
        model, "avg_pool", folders, tmp_path, **options
    )
    assert head.get_layer("predictions") is model.get_layer("predictions")
    first = sorted(path.name for path in tmp_path.iterdir())
    assert len(first) == 2 and "running the frozen base once" in capsys.readouterr().out
    features, _ = runtime.features.split_at(model, "avg_pool")
    cached = np.concatenate([x for x, _ in train_features])
    expected = features.predict(images, verbose=0)
    # Shuffled each epoch, but the same vectors.
    np.testing.assert_allclose(
        np.sort(cached, axis=0), np.sort(expected, axis=0), rtol=1e-5
    )
    # The same model and files: read back, not computed.
    runtime.features.cache_features(model, "avg_pool", folders, tmp_path, **options)
    assert capsys.readouterr().out.count("reusing") == 2
    # The same model built again (a notebook's second run): other made-up layer
    # names, the same features.
    again = small_model()
    again.set_weights(model.get_weights())
    runtime.features.cache_features(again, "avg_pool", folders, tmp_path, **options)
    assert capsys.readouterr().out.count("reusing") == 2
    # Other weights of the base, or other files: computed again, the old file gone.
    conv = model.get_layer("conv")
    conv.set_weights([weight + 1 for weight in conv.get_weights()])
    folders, _ = image_folders("files-c", "files-b")
    runtime.features.cache_features(model, "avg_pool", folders, tmp_path, **options)
    assert "reusing" not in capsys.readouterr().out
    assert len(list(tmp_path.iterdir())) == 2
    assert not set(first) & {path.name for path in tmp_path.iterdir()}


def test_predictions_of_the_validation_images_come_from_their_features(
    tmp_path: Path,
) -> None:
    from kerastl import runtime
    from kerastl.runtime.predictions import predictions_of

    model = small_model()
    folders, _ = image_folders("files-a", "files-b")
    head, _, _ = runtime.features.cache_features(
        model, "avg_pool", folders, tmp_path, batch_size=4, seed=1
    )
    whole = np.concatenate(
        [model.predict_on_batch(images) for images, _ in folders.validation]
    )
    calls = []
    predict = head.predict_on_batch
    head.predict_on_batch = lambda x: calls.append(len(x)) or predict(x)
    predicted = predictions_of(model, folders.validation)
    assert calls == [4, 2]  # the head, on the features of the 6 images
    np.testing.assert_allclose(predicted.probabilities, whole, rtol=1e-5)
    assert predicted.labels.tolist() == [0, 1, 2, 0, 1, 2]
    assert len(predicted.worst.images) == 6  # the images themselves
    # Once the frozen part changes, its features no longer stand for it.
    conv = model.get_layer("conv")
    conv.set_weights([weight + 1 for weight in conv.get_weights()])
    calls.clear()
    after = predictions_of(model, folders.validation)
    assert calls == []
    np.testing.assert_allclose(
        after.probabilities,
        np.concatenate([model.predict_on_batch(x) for x, _ in folders.validation]),
        rtol=1e-5,
    )


def calibrated_weights(path: Path, data: Path, size: int) -> Path:
    """MobileNetV3Small weights made here: random, with BatchNorm statistics
    measured on the digits, so that its features tell the digits apart."""
    import keras

    from kerastl import runtime

    keras.utils.set_random_seed(1)  # the same base whatever ran before it
    base = keras.applications.MobileNetV3Small(
        include_top=False, weights=None, input_shape=(size, size, 3)
    )
    train = runtime.load_image_folders(
        data, image_size=size, batch_size=256, seed=1
    ).train
    images = np.concatenate([x.numpy() for x, _ in train])
    for layer in base.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0
    base(images, training=True)
    base.save_weights(path)
    return path


def test_cached_and_plain_feature_extraction_agree(tmp_path: Path) -> None:
    import keras

    from kerastl import runtime

    data = write_digits(tmp_path / "digits", per_class=20)
    weights = calibrated_weights(tmp_path / "base.weights.h5", data, 32)
    script = generate(
        tmp_path,
        "--mode feature-extraction --backbone MobileNetV3Small --image-size 32",
    )
    common = f"--weights {weights} --no-augment --epochs 10"
    cached = run_script(script, *on_data(data, f"{common} --output-dir cached"))
    assert cached.returncode == 0, cached.stderr[-3000:]
    assert "Features of the training images: running the frozen base once" in (
        cached.stdout
    )
    plain = run_script(
        script, *on_data(data, f"{common} --no-feature-cache --output-dir plain")
    )
    assert plain.returncode == 0, plain.stderr[-3000:]
    assert "Features of" not in plain.stdout
    # The same model comes out: same layers, nearly the same predictions.
    val_ds = runtime.load_image_folders(
        data, image_size=32, batch_size=32, seed=1337
    ).validation
    labels = np.concatenate([y for _, y in val_ds]).argmax(axis=1)  # one-hot
    predictions = {}
    for name in ("cached", "plain"):
        model = keras.saving.load_model(tmp_path / name / "model.keras")
        assert model.name == "mobilenetv3small_feature_extraction"
        predictions[name] = model.predict(val_ds, verbose=0).argmax(axis=1)
    agreement = np.mean(predictions["cached"] == predictions["plain"])
    assert agreement >= 0.99, agreement
    # Agreement means something: both learned above chance (0.1); the base's
    # random weights decide how far (0.225 to 0.375 over seeds 0 and 1).
    assert np.mean(predictions["cached"] == labels) > 0.2  # 0.375 with this base
    card = json.loads((tmp_path / "cached" / "run.json").read_text())
    assert card["settings"]["feature_cache"] is True
    assert card["settings"]["augment"] is False

    # Training on reuses the cached features and the run's checkpoint.
    more = run_script(
        script,
        *on_data(data, f"{common.replace('10', '12')} --output-dir cached"),
    )
    assert more.returncode == 0, more.stderr[-3000:]
    assert "Features of the training images: reusing" in more.stdout
    assert "Training on: phase 'head' goes from 10 to 12 epochs." in more.stdout
    assert "epochs 11 to 12" in more.stdout
    # The plain path cannot continue a run trained on features.
    switch = run_script(
        script,
        *on_data(data, f"{common} --no-feature-cache --output-dir cached"),
    )
    assert switch.returncode == 1
    assert "trained_model" in switch.stderr.strip().splitlines()[-1]
