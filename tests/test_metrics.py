"""The predictions shared by the run's end: one pass per set of weights, the
mirror images lined up with it, and the shipped figures as Keras computes them
(tiny models)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerastl.runtime import predictions
from kerastl.runtime.predictions import predictions_of, with_mirror_images
from kerastl.runtime.run_card import run_card
from kerastl.runtime.run_state import RunState
from kerastl.runtime.ship import _evaluate
from kerastl.runtime.tta import mirror

COUNT = 12  # images, each its own class


def images_and_model() -> tuple[np.ndarray, keras.Model]:
    """Twelve 2x3 images, each unlike its mirror image, and a classifier of them."""
    keras.utils.set_random_seed(3)
    images = np.random.default_rng(3).uniform(0, 255, (COUNT, 2, 3, 1))
    inputs = keras.Input((2, 3, 1))
    x = keras.layers.Flatten()(inputs / 255.0)
    model = keras.Model(inputs, keras.layers.Dense(COUNT, activation="softmax")(x))
    return images.astype("float32"), model


def counting(model: keras.Model) -> list[int]:
    """Counts the model's `predict_on_batch` calls, in a list of one number."""
    calls = [0]
    predict = model.predict_on_batch

    def counted(images):
        calls[0] += 1
        return predict(images)

    model.predict_on_batch = counted
    return calls


def test_a_small_set_is_predicted_in_one_eager_call_alike() -> None:
    images, model = images_and_model()
    dataset = tf.data.Dataset.from_tensor_slices((images, np.arange(COUNT))).batch(5)
    calls = counting(model)
    predictions = predictions_of(model, dataset)
    assert calls[0] == 0  # no predict function traced
    np.testing.assert_allclose(
        predictions.probabilities, model.predict_on_batch(images), rtol=1e-5
    )
    assert predictions.labels.tolist() == list(range(COUNT))
    assert len(predictions.worst.labels) == COUNT


def test_a_larger_set_is_predicted_batch_by_batch(monkeypatch) -> None:
    images, model = images_and_model()
    monkeypatch.setattr(predictions, "EAGER_PIXELS", 5 * 2 * 3)  # one batch's
    dataset = tf.data.Dataset.from_tensor_slices((images, np.arange(COUNT)))
    shuffled = dataset.shuffle(COUNT, seed=2, reshuffle_each_iteration=True).batch(5)
    calls = counting(model)
    predicted = predictions_of(model, shuffled)
    assert calls[0] == 3
    np.testing.assert_allclose(
        predicted.probabilities,
        model.predict_on_batch(images)[predicted.labels],
        rtol=1e-5,
    )


def test_the_same_weights_are_predicted_once(monkeypatch) -> None:
    monkeypatch.setattr(predictions, "EAGER_PIXELS", 0)  # counted batch by batch
    images, model = images_and_model()
    dataset = tf.data.Dataset.from_tensor_slices((images, np.arange(COUNT))).batch(5)
    calls = counting(model)
    first = predictions_of(model, dataset)
    assert calls[0] == 3
    assert predictions_of(model, dataset) is first
    trained = model.get_weights()
    model.set_weights([weight * 2 for weight in trained])
    second = predictions_of(model, dataset)
    assert calls[0] == 6 and not np.allclose(second.probabilities, first.probabilities)
    model.set_weights(trained)  # back to the first weights: that pass is kept
    assert predictions_of(model, dataset) is first and calls[0] == 6
    np.testing.assert_allclose(
        first.probabilities, model.predict(images, verbose=0), rtol=1e-6
    )
    assert first.labels.tolist() == list(range(COUNT)) and not first.one_hot


@pytest.mark.parametrize("reshuffled", [False, True])
def test_mirror_images_line_up_with_the_predictions(reshuffled: bool) -> None:
    images, model = images_and_model()
    dataset = tf.data.Dataset.from_tensor_slices((images, np.arange(COUNT)))
    if reshuffled:  # another order on every pass: predicted again in one pass
        dataset = dataset.shuffle(COUNT, seed=1, reshuffle_each_iteration=True)
    dataset = dataset.batch(5)
    predictions = predictions_of(model, dataset)
    labels, probabilities, mirrored = with_mirror_images(model, dataset, predictions)
    plain = model.predict(images, verbose=0)
    flipped = model.predict(mirror(images), verbose=0)
    assert not np.allclose(plain, flipped)
    np.testing.assert_allclose(probabilities, plain[labels], rtol=1e-5)
    np.testing.assert_allclose(mirrored, flipped[labels], rtol=1e-5)
    assert (labels is predictions.labels) is not reshuffled


@pytest.mark.parametrize(
    "loss, one_hot",
    [
        (keras.losses.CategoricalCrossentropy(label_smoothing=0.1), True),
        ("sparse_categorical_crossentropy", False),
    ],
)
def test_the_shipped_figures_are_keras_own(loss, one_hot: bool) -> None:
    images, model = images_and_model()
    labels = np.random.default_rng(4).integers(0, COUNT, COUNT)
    targets = np.eye(COUNT, dtype="float32")[labels] if one_hot else labels
    model.compile(loss=loss, metrics=["accuracy"])
    dataset = tf.data.Dataset.from_tensor_slices((images, targets)).batch(5)
    figures = _evaluate(model, dataset, "val_loss")  # no test function traced yet
    assert model.test_function is None
    expected = model.evaluate(dataset, verbose=0, return_dict=True)
    assert figures == pytest.approx(expected, rel=1e-5)
    calls = counting(model)  # now traced: the evaluation is Keras's own
    assert _evaluate(model, dataset, "val_loss") == pytest.approx(expected, rel=1e-5)
    assert calls[0] == 0


def test_the_run_card_is_built_from_the_run_state() -> None:
    state = RunState.from_json(
        {
            "format": 2,
            "model": {},
            "settings": {},
            "phases": [],
            "completed": [
                {"phase": "head", "end_epoch": 3},
                {
                    "phase": "stage",
                    "end_epoch": 3,
                },  # no epochs: not a phase that trained
                {"phase": "all", "end_epoch": 5},
            ],
            "best": {
                "value": 0.5,
                "epoch": 2,
                "phase": "head",
                "weights": "best.keras",
            },
            "seconds": {"head": 1.5, "all": 2.0},
            "training_settings": {"epochs": 3},
        }
    )
    card = run_card(state, {"epochs": 4, "seed": 1})
    assert card == {
        "best_epoch": {"value": 0.5, "epoch": 2, "phase": "head"},
        "phase_seconds": {"head": 1.5, "all": 2.0},
        "phases": [
            {"name": "head", "first_epoch": 1, "last_epoch": 3},
            {"name": "all", "first_epoch": 4, "last_epoch": 5},
        ],
        "settings": {"epochs": 3, "seed": 1},  # what the finished run trained with
    }
    fresh = RunState(format=2, model={}, settings={}, phases=[])
    assert run_card(fresh, {})["best_epoch"] is None
