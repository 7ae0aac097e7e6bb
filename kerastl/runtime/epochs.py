"""Training batches that depend on the seed and the epoch alone.

A dataset shuffled with `reshuffle_each_iteration=True` draws each epoch's
order from the iterations before it, and an augmentation layer mapped over it
draws from a random state shared by parallel calls: a run resumed at epoch 6
sees another order and other augmentations than the run it continues. Here
epoch `e` is shuffled with the seed `(seed, e)` and its batch `b` augmented
with `(seed, e, b)`, so a resumed run (or the same command run twice) trains
on the same batches as an uninterrupted one.

The epoch is one variable of the process (`training_epoch()`), which `Run`
sets before each epoch; each such dataset reads it every time it is iterated.
"""

import contextlib

import keras
import tensorflow as tf

from .keras_internals import private

_EPOCH: list[tf.Variable] = []  # created on first use


def training_epoch() -> tf.Variable:
    """The epoch (0-based) that every dataset of `epoch_batches` draws.

    One int64 variable of the process: `Run` sets it before each epoch, the
    learning-rate range test puts it back as it was.
    """
    if not _EPOCH:
        with tf.init_scope():  # of the process, even inside a tf.function
            _EPOCH.append(tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch"))
    return _EPOCH[0]


def epoch_batches(
    examples: tf.data.Dataset,
    *,
    batch_size: int,
    seed: int,
    buffer_size: int,
    augment=None,
) -> tf.data.Dataset:
    """The batches of one epoch of `examples`, shuffled and augmented by epoch.

    Args:
        examples: Unbatched `(x, y)` examples, the same on every pass.
        batch_size: Examples per batch.
        seed: The run's seed.
        buffer_size: Examples shuffled at once.
        augment: Optional `augment(x, y, key)` applied to each batch, returning
            the new `(x, y)`; `key` is stateless, of shape (2,): the epoch's
            seed and the batch's index.

    Returns:
        A dataset of as many batches as one epoch, drawn on each pass for the
        epoch `training_epoch()` holds.
    """
    epoch = training_epoch()
    count = int(examples.cardinality())

    def one_epoch(_) -> tf.data.Dataset:
        # The order of this epoch follows from its own seed alone: a fixed graph
        # seed, not the process's (with 0 there, TensorFlow would test the
        # tensor seed below as a Python bool).
        tf.random.set_seed(1)
        # A seed drawn from (seed, epoch): the order of this epoch.
        epoch_seed = tf.random.stateless_uniform(
            [],
            seed=tf.stack([tf.constant(seed, tf.int64), epoch.read_value()]),
            maxval=2**31 - 1,
            dtype=tf.int64,
        )
        shuffled = examples.shuffle(
            buffer_size, seed=epoch_seed, reshuffle_each_iteration=False
        ).batch(batch_size)
        if augment is None:
            return shuffled
        return shuffled.enumerate().map(
            lambda index, batch: augment(
                batch[0], batch[1], tf.stack([epoch_seed, index])
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )

    dataset = tf.data.Dataset.range(1).flat_map(one_epoch)
    if count >= 0:  # else Keras counts the batches of the first epoch
        batches = -(-count // batch_size)
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(batches))
    return dataset


class _KeyedSeeds(keras.random.SeedGenerator):
    """Seeds without state: the n-th draw folds n into a key tensor.

    Keras's random layers take a `SeedGenerator` and call its `next()`; this one
    holds no variable, so it can be made inside a tf.data function.
    """

    def __init__(self, key: tf.Tensor) -> None:  # no variable: skip the parent's
        self._key = key
        self._draws = 0

    def next(self, ordered: bool = True) -> tf.Tensor:
        self._draws += 1
        return tf.random.experimental.stateless_fold_in(self._key, self._draws)


def augment_batch(augmentation: keras.layers.Layer, images, key: tf.Tensor):
    """`augmentation(images, training=True)`, drawn from `key` instead of a state.

    Each Keras image preprocessing layer (`RandomFlip`, `RandomRotation`,
    `RandAugment`...) draws its transformation from the key, also a layer that
    would draw from its own generator; a layer without
    `get_random_transformation` is called as it is (a random one of those
    would draw from its own state, and resume inexactly).
    """
    layers = (
        augmentation.layers
        if isinstance(augmentation, keras.Sequential)
        else [augmentation]
    )
    seeds = _KeyedSeeds(key)
    for layer in layers:
        if hasattr(layer, "get_random_transformation"):
            with _drawing_from(layer, seeds):
                transformation = layer.get_random_transformation(
                    images, training=True, seed=seeds
                )
            images = layer.transform_images(images, transformation, training=True)
        else:
            images = layer(images, training=True)
    return images


def mix_batch(layers, images, labels, key: tf.Tensor):
    """A batch and its one-hot labels mixed by `MixUp` or `CutMix`, drawn from `key`.

    With several layers, batch `b` is mixed by layer `b mod n`: MixUp and
    CutMix alternate by batch, as in timm's `Mixup` (which switches at random).

    Args:
        layers: Keras mixing layers (`keras.layers.MixUp`, `CutMix`).
        images: A batch of float images.
        labels: Their one-hot (float) labels.
        key: The batch's stateless key: the epoch's seed and the batch's index.

    Returns:
        `(images, labels)`, mixed.
    """
    # Draws of their own: not those of the batch's augmentation.
    seeds = _KeyedSeeds(tf.random.experimental.stateless_fold_in(key, _MIXING))

    def mixed_by(layer):
        def mix():
            data = {"images": images, "labels": labels}
            with _drawing_from(layer, seeds):
                transformation = layer.get_random_transformation(
                    data, training=True, seed=seeds
                )
            return (
                layer.transform_images(images, transformation, training=True),
                layer.transform_labels(labels, transformation, training=True),
            )

        return mix

    if len(layers) == 1:
        return mixed_by(layers[0])()
    index = tf.cast(key[1] % len(layers), tf.int32)
    return tf.switch_case(index, [mixed_by(layer) for layer in layers])


# What needs `_get_seed_generator`, for the error where Keras lacks it.
KEYED = "augmentation drawn from the batch's key (exact resume)"

# Folded into a batch's key for its mixing draws.
_MIXING = 0x6D6978


@contextlib.contextmanager
def _drawing_from(layer: keras.layers.Layer, seeds: keras.random.SeedGenerator):
    """Makes `layer` draw from `seeds` also where it ignores the seed it is given
    (`RandAugment` draws its operations from its own generator)."""
    private(keras.layers.RandAugment, "_get_seed_generator", purpose=KEYED)
    layer._get_seed_generator = lambda backend=None: seeds
    try:
        yield
    finally:
        del layer._get_seed_generator
