"""The tf.data pipeline of a set: uint8 cache, filled once, then batches by epoch.

Decoded images are cached as uint8 before the augmentation, so that it is
drawn afresh each epoch (from the seed and the epoch: see `epochs`).
"""

import os
from collections.abc import Sequence
from functools import partial

import keras
import tensorflow as tf

from .cache import available_memory, cache_folder, choose_cache, disk_cache_prefix
from .epochs import augment_batch, epoch_batches, mix_batch
from .errors import DataError
from .image_lists import LabelledImages
from .upright import decode_upright

# Images shuffled at once, at most: the order of a larger set is only approximate.
SHUFFLE_BUFFER = 2048


def pipeline(
    dataset: tf.data.Dataset,
    file_paths: list[str],
    batch_size: int,
    cache: str,
    prefix: str | None,
    *,
    num_classes: int,
    augmentation: keras.layers.Layer | None = None,
    mixing: Sequence[keras.layers.Layer] = (),
    shuffle_seed: int | None = None,
) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    """Caches uint8 images (`cache`: memory, disk at `prefix`, none), then batches.

    Batches leave as float32, so the model still gets raw pixels in [0, 255],
    with one-hot (or multi-hot) labels.

    Returns:
        The batches (shuffled by epoch with `shuffle_seed`), and the same
        images in file order, neither shuffled nor augmented.
    """
    to_model = partial(to_model_input, num_classes=num_classes)
    size = len(file_paths)
    dataset = dataset.map(_to_uint8, num_parallel_calls=tf.data.AUTOTUNE)
    if cache != "none":
        dataset = dataset.cache(prefix or "")
        _fill_cache(dataset, size, prefix, file_paths)
    ordered = dataset.batch(batch_size).map(to_model).prefetch(tf.data.AUTOTUNE)
    if shuffle_seed is None:
        dataset = dataset.batch(batch_size)
    else:  # each epoch's order and augmentation follow from the seed and the epoch
        dataset = epoch_batches(
            dataset,  # shuffled as uint8: a quarter of the float32 memory
            batch_size=batch_size,
            seed=shuffle_seed,
            buffer_size=min(size, SHUFFLE_BUFFER),
            augment=(
                None
                if augmentation is None and not mixing
                else partial(
                    _augment, augmentation, tuple(mixing), num_classes=num_classes
                )
            ),
        )
    dataset = dataset.map(to_model).prefetch(tf.data.AUTOTUNE)
    # Multi-worker training shards batches, not files: the files are listed in
    # memory, so TensorFlow's default (files first) would only warn and fall back.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA
    )
    return dataset.with_options(options), ordered


def _to_uint8(image: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Resized pixels, rounded to uint8: a quarter of the float32 memory."""
    return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8), label


def to_model_input(
    images: tf.Tensor, labels: tf.Tensor, *, num_classes: int
) -> tuple[tf.Tensor, tf.Tensor]:
    """float32 pixels and one-hot labels (multi-hot ones, and those already
    mixed, are rank 2 and pass as they are)."""
    if labels.shape.rank == 1:
        labels = tf.one_hot(labels, num_classes)
    return tf.cast(images, tf.float32), labels


def _fill_cache(
    dataset: tf.data.Dataset, size: int, prefix: str | None, file_paths: list[str]
) -> None:
    """Reads a freshly cached dataset once, to the end, so that its cache is whole.

    An image that passed the scan but that TensorFlow cannot decode is named
    here: only a failed fill decodes the `file_paths` one by one to find it.

    An iterator dropped part-way through a cache that is still filling (a peek
    with `next(iter(dataset))`) can leave the cache finished but short of a few
    images (TensorFlow 2.21 loses one in about a third of such peeks). A full
    cache is only read, never written, so a later peek is harmless.
    """
    try:
        filled = int(
            dataset.reduce(tf.constant(0, tf.int64), lambda count, _: count + 1)
        )
    except tf.errors.InvalidArgumentError:
        for path in file_paths:  # which image the scan passed but TensorFlow refused
            try:
                decode_upright(tf.io.read_file(path))
            except tf.errors.InvalidArgumentError:
                raise DataError(
                    f"{path} is not a readable image (TensorFlow cannot decode it); "
                    "remove or replace it"
                ) from None
        raise
    if size < 0 or filled == size:
        return
    if prefix is None:
        raise DataError(f"the in-memory cache holds {filled} of {size} images")
    raise DataError(
        f"the cache {prefix} holds {filled} images, not {size}; "
        "delete its files to rebuild it"
    )


def _augment(
    augmentation: keras.layers.Layer | None,
    mixing: tuple[keras.layers.Layer, ...],
    images: tf.Tensor,
    labels: tf.Tensor,
    key: tf.Tensor,
    *,
    num_classes: int,
) -> tuple[tf.Tensor, tf.Tensor]:
    """One batch of uint8 images, augmented as float32 with the stateless `key`,
    then mixed with its labels (one-hot then, or multi-hot as they are)."""
    images = tf.cast(images, tf.float32)
    if augmentation is not None:
        images = augment_batch(augmentation, images, key)
    if mixing:
        if labels.shape.rank == 1:
            labels = tf.one_hot(labels, num_classes)
        images, labels = mix_batch(mixing, images, labels, key)
    return images, labels


def cache_for_subsets(
    subsets: dict[str, LabelledImages],
    cache: str,
    cache_dir: str | os.PathLike | None,
    memory_budget: int | None,
    class_names: list[str],
    image_size: int,
) -> tuple[str, dict[str, str | None]]:
    """The cache's kind and each subset's disk cache prefix; prints one line."""
    images = sum(len(subset.paths) for subset in subsets.values())
    size = images * image_size * image_size * 3
    kind, reason = choose_cache(
        cache,
        size,
        cache_dir=cache_dir,
        memory_budget=memory_budget,
        available=available_memory(),
    )
    prefixes: dict[str, str | None] = dict.fromkeys(subsets)
    where = ""
    if kind == "disk" and cache_dir is not None:
        folder, where = cache_folder(cache_dir, size)
        states = set()
        for name, subset in subsets.items():
            prefixes[name], state = disk_cache_prefix(
                folder,
                name,
                subset.paths,
                class_names,
                image_size,
                labels=subset.labels.tolist(),
            )
            states.add(state)
        where = f" {where}" + (
            ", reusing an earlier run's" if states == {"reused"} else ""
        )
        if "replaced" in states:
            where += ", replacing a cache of other images"
    print(f"Cache: {kind}{where} ({reason})")
    return kind, prefixes
