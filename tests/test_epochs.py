"""Training batches depend on the seed and the epoch alone, not on the passes before."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerastl.runtime.epochs import augment_batch, epoch_batches, training_epoch

pytestmark = pytest.mark.slow  # Keras augmentation layers run on TensorFlow

IMAGES = np.arange(10 * 4 * 4 * 3, dtype="uint8").reshape(10, 4, 4, 3)
LABELS = np.arange(10)


def augmentation() -> keras.Sequential:
    return keras.Sequential(
        [
            keras.layers.RandomFlip("horizontal"),
            keras.layers.RandomRotation(0.1),
            keras.layers.RandomZoom(0.1),
        ]
    )


def batches(seed: int = 7, augment: bool = True) -> tf.data.Dataset:
    layers = augmentation()
    return epoch_batches(
        tf.data.Dataset.from_tensor_slices((IMAGES, LABELS)),
        batch_size=4,
        seed=seed,
        buffer_size=10,
        augment=(
            (
                lambda images, labels, key: (
                    augment_batch(layers, tf.cast(images, "float32"), key),
                    labels,
                )
            )
            if augment
            else None
        ),
    )


def one_pass(dataset: tf.data.Dataset, epoch: int) -> list[tuple[np.ndarray, list]]:
    training_epoch().assign(epoch)
    return [(images.numpy(), labels.numpy().tolist()) for images, labels in dataset]


def same(first: list, second: list) -> bool:
    return all(
        np.array_equal(a, b) and la == lb
        for (a, la), (b, lb) in zip(first, second, strict=True)
    )


def test_an_epoch_is_the_same_whatever_came_before() -> None:
    dataset = batches()
    assert len(dataset) == 3  # ceil(10 / 4), known before any pass
    first = [one_pass(dataset, epoch) for epoch in range(3)]
    # Epoch 2 again, in another dataset made the same way (a resumed run).
    resumed = one_pass(batches(), 2)
    assert same(first[2], resumed)
    assert same(first[0], one_pass(dataset, 0))
    # Each epoch has its own order and augmentation; every image, once.
    assert [labels for _, labels in first[0]] != [labels for _, labels in first[1]]
    for epoch in first:
        assert sorted(label for _, labels in epoch for label in labels) == list(
            range(10)
        )


def test_the_seed_changes_the_batches() -> None:
    assert not same(one_pass(batches(seed=7), 0), one_pass(batches(seed=8), 0))


def test_augmentation_is_drawn_per_image_and_batch() -> None:
    plain = one_pass(batches(augment=False), 0)
    augmented = one_pass(batches(), 0)
    assert [labels for _, labels in plain] == [labels for _, labels in augmented]
    changed = [
        not np.allclose(a[index], b[index])
        for (a, _), (b, _) in zip(plain, augmented)
        for index in range(len(a))
    ]
    assert any(changed)


def test_the_order_does_not_depend_on_the_global_seed() -> None:
    """Not even a global seed of 0 (`--seed 0`), which TensorFlow treats apart."""
    orders = []
    for global_seed in (0, 1337):
        keras.utils.set_random_seed(global_seed)
        orders.append([labels for _, labels in one_pass(batches(), 1)])
    assert orders[0] == orders[1]
