"""Grad-CAM (`runtime.grad_cam`): against its closed form, on ViT tokens, and
on digits whose place on the canvas is known."""

import hashlib
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from kerastl import runtime
from kerastl.runtime import explain, explain_plots
from kerastl.runtime.predictions import Predictions, _hash_images
from kerastl.runtime.top_losses import TopLosses
from tests.digits import digits_on_canvas

pytestmark = pytest.mark.slow  # builds Keras models


def classifier(base: keras.Model, size: int, classes: int) -> keras.Model:
    """A model shaped as the scripts build it: base, pooling, dropout, dense."""
    inputs = keras.Input((size, size, 3), name="image")
    x = base(inputs, training=False)
    pooling = keras.layers.GlobalAveragePooling2D
    if len(x.shape) == 3:  # tokens
        pooling = keras.layers.GlobalAveragePooling1D
    x = pooling(name="avg_pool")(x)
    x = keras.layers.Dropout(0.2, name="dropout")(x)
    outputs = keras.layers.Dense(
        classes, activation="softmax", dtype="float32", name="predictions"
    )(x)
    return keras.Model(inputs, outputs)


def small_cnn(size: int, filters=(16, 32, 64, 64), strides=(2, 2, 1, 1)):
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    for count, stride in zip(filters, strides):
        x = keras.layers.Conv2D(count, 3, strides=stride, padding="same")(x)
        x = keras.layers.Activation("relu")(x)
    return keras.Model(inputs, x, name="base")


def class_activation_map(features, kernel, classes) -> np.ndarray:
    """Grad-CAM's closed form under pooling and a dense layer: CAM (Zhou et al.)."""
    features = np.asarray(features, dtype="float64")
    maps = np.maximum(np.einsum("nhwk,kn->nhw", features, kernel[:, classes]), 0)
    return maps / maps.max(axis=(1, 2), keepdims=True)


def test_a_cnn_heatmap_is_the_class_activation_map(tmp_path: Path) -> None:
    keras.utils.set_random_seed(0)
    base = small_cnn(32)
    model = classifier(base, 32, 5)
    model.save(tmp_path / "model.keras")  # as the scripts save it
    model = keras.saving.load_model(tmp_path / "model.keras")
    # Called on their own too, as the feature cache calls the base and the head.
    model.layers[1](keras.Input((32, 32, 3)))
    model.layers[-1](keras.Input((64,)))
    images = np.random.default_rng(0).uniform(0, 255, (6, 32, 32, 3))
    features = model.layers[1](images)
    kernel = np.asarray(model.layers[-1].kernel)
    top = model.predict(images, verbose=0).argmax(axis=1)
    split = explain.split_model(model)
    grids = explain.class_activation_grids(split, images)
    assert grids == pytest.approx(class_activation_map(features, kernel, top), abs=1e-5)
    chosen = np.array([4, 3, 2, 1, 0, 4])
    grids = explain.class_activation_grids(split, images, chosen)
    assert grids == pytest.approx(
        class_activation_map(features, kernel, chosen), abs=1e-5
    )
    heatmaps = runtime.grad_cam(model, images)
    assert heatmaps.shape == (6, 32, 32) and heatmaps.dtype == np.float32
    assert heatmaps.min() >= 0 and heatmaps.max() <= 1 and heatmaps.max() > 0.8
    assert (runtime.grad_cam(model, images, class_index=2)[2] == heatmaps[2]).all() or (
        top[2] != 2
    )
    larger = runtime.grad_cam(model, np.repeat(np.repeat(images, 2, 1), 2, 2))
    assert larger.shape == (6, 64, 64)  # resized to the model, maps at their size
    with pytest.raises(ValueError, match="3 class indices for 6 images"):
        runtime.grad_cam(model, images, class_index=[0, 1, 2])


def test_mixed_precision_gives_the_float32_heatmaps() -> None:
    images = np.random.default_rng(1).uniform(0, 255, (4, 32, 32, 3))
    keras.utils.set_random_seed(0)
    expected = runtime.grad_cam(classifier(small_cnn(32), 32, 3), images)
    keras.config.set_dtype_policy("mixed_float16")
    try:
        keras.utils.set_random_seed(0)
        model = classifier(small_cnn(32), 32, 3)  # the same weights, float16 maps
        assert model.layers[1].compute_dtype == "float16"
        heatmaps = runtime.grad_cam(model, images)
    finally:
        keras.config.set_dtype_policy("float32")
    assert heatmaps == pytest.approx(expected, abs=0.02)


def test_a_base_too_coarse_is_explained_at_a_larger_map_inside() -> None:
    keras.utils.set_random_seed(0)
    base = keras.applications.MobileNetV3Small(
        include_top=False, weights=None, input_shape=(32, 32, 3)
    )
    model = classifier(base, 32, 3)
    assert model.layers[1].output.shape[1:3] == (1, 1)  # one position at 32 px
    split = explain.split_model(model)
    assert split.features.output.shape[1:3] == (4, 4)
    images = np.random.default_rng(2).uniform(0, 255, (2, 32, 32, 3))
    pooled = keras.Model(model.input, model.get_layer("dropout").output)
    assert np.asarray(split.head(split.features(images))) == pytest.approx(
        np.asarray(pooled(images)), abs=1e-5
    )


@pytest.mark.parametrize("registers", [0, 2])
def test_a_vit_heatmap_is_on_the_grid_of_its_patch_tokens(registers) -> None:
    keras_hub = pytest.importorskip("keras_hub")
    keras.utils.set_random_seed(0)
    if registers:  # DINOv2: the class token, then the registers, then the patches
        backbone = keras_hub.models.DINOV2Backbone(
            patch_size=8,
            num_layers=1,
            hidden_dim=16,
            num_heads=2,
            intermediate_dim=32,
            layer_scale_init_value=1.0,
            num_register_tokens=registers,
            image_shape=(32, 32, 3),
            position_embedding_shape=(32, 32),
        )
    else:  # ViT: the class token, then the patches
        backbone = keras_hub.models.ViTBackbone(
            image_shape=(32, 32, 3),
            patch_size=8,
            num_layers=1,
            num_heads=2,
            hidden_dim=16,
            mlp_dim=32,
        )
    model = classifier(backbone, 32, 4)
    images = np.random.default_rng(3).uniform(0, 255, (3, 32, 32, 3))
    tokens = np.asarray(backbone({"images": images} if registers else images))
    assert tokens.shape[1] == 1 + registers + 16
    split = explain.split_model(model)
    assert split.grid == (4, 4)
    grids = explain.class_activation_grids(split, images, np.array([0, 1, 3]))
    patches = tokens[:, 1 + registers :].reshape(3, 4, 4, 16)
    kernel = np.asarray(model.layers[-1].kernel)
    expected = class_activation_map(patches, kernel, np.array([0, 1, 3]))
    assert grids == pytest.approx(expected, abs=1e-4)
    assert runtime.grad_cam(model, images).shape == (3, 32, 32)


def test_a_model_without_a_dense_output_is_refused() -> None:
    inputs = keras.Input((16, 16, 3))
    outputs = keras.layers.Conv2D(2, 3)(inputs)
    with pytest.raises(TypeError, match="needs a dense output layer"):
        runtime.grad_cam(keras.Model(inputs, outputs), np.zeros((1, 16, 16, 3)))


def test_overlay_colours_the_heat_over_the_image() -> None:
    image = np.full((2, 2, 3), 128, dtype=np.uint8)
    heat = np.array([[0.0, 0.0], [0.0, 1.0]])
    shown = explain.overlay(image, heat)
    assert shown.dtype == np.uint8 and shown.shape == (2, 2, 3)
    assert shown[1, 1, 0] > 128 > shown[1, 1, 2]  # hot: red
    assert shown[0, 0, 2] > 128 > shown[0, 0, 0]  # cold: a blue tint


def test_explanations_show_the_most_confident_correct_images_of_each_class(
    tmp_path: Path, capsys
) -> None:
    images = np.random.default_rng(4).uniform(0, 255, (7, 32, 32, 3))
    labels = np.array([0, 0, 0, 0, 1, 1, 2])
    probabilities = np.array(
        [[0.6, 0.4, 0], [0.9, 0.1, 0], [0.3, 0.7, 0], [0.8, 0, 0.2]]
        + [[0, 0.5, 0.4], [0.1, 0.6, 0.3], [0.5, 0.5, 0]]  # 6: wrong (a tie)
    )
    digest = hashlib.blake2b(digest_size=16)
    batches = [(images[:4], labels[:4]), (images[4:], labels[4:])]
    for batch in batches:
        _hash_images(digest, batch[0])
    predictions = Predictions(
        labels, probabilities, False, TopLosses(), digest.hexdigest()
    )
    # By confidence: 1 (0.9), 3 (0.8), 0 (0.6) of class 0; 5, 4 of class 1; no 2.
    assert (
        explain_plots.correct_examples(predictions, 3) == [1, 3, 0, 5, 4, -1] + [-1] * 3
    )
    keras.utils.set_random_seed(0)
    model = classifier(small_cnn(32), 32, 3)
    names = ["zero", "one", "two"]
    path = explain_plots.plot_explanations(
        model, batches, predictions, names, tmp_path / "explanations.png", "t"
    )
    with Image.open(path) as picture:  # 3 rows of 3 pairs, one caption line each
        assert picture.size == (780, 476)
    shuffled = [batches[1], batches[0]]
    assert (
        explain_plots.plot_explanations(
            model, shuffled, predictions, names, tmp_path / "none.png", "t"
        )
        is None
    )
    assert "No explanations: the validation images came in another order" in (
        capsys.readouterr().out
    )


@pytest.fixture(scope="module")
def canvas_classifier(tmp_path_factory) -> keras.Model:
    """A small CNN trained on digits 0, 1, 3, 7 pasted on 64x64 noise."""
    images, classes, _ = digits_on_canvas(600, seed=0)
    keras.utils.set_random_seed(0)
    model = classifier(small_cnn(64), 64, 4)
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    model.fit(images.astype("float32"), classes, epochs=8, batch_size=16, verbose=0)
    path = tmp_path_factory.mktemp("canvas") / "best.keras"
    model.save(path)
    return keras.saving.load_model(path)


def test_the_heatmap_peaks_on_the_digit(canvas_classifier) -> None:
    images, classes, boxes = digits_on_canvas(200, seed=1)  # other canvases
    accuracy = np.mean(
        canvas_classifier.predict(images, verbose=0).argmax(axis=1) == classes
    )
    heatmaps = runtime.grad_cam(canvas_classifier, images)
    peaks = [np.unravel_index(heat.argmax(), heat.shape) for heat in heatmaps]
    on_digit = np.mean(
        [
            top <= row < top + size and left <= column < left + size
            for (row, column), (top, left, size) in zip(peaks, boxes)
        ]
    )
    area = np.mean(boxes[:, 2] ** 2) / 64**2  # the digit's share of the canvas
    print(f"accuracy {accuracy:.3f}, peak on the digit {on_digit:.3f}, area {area:.3f}")
    assert accuracy > 0.6  # chance: 0.25
    assert area < 0.12 and on_digit > 0.8  # 0.94 when measured
