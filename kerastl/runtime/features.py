"""Feature extraction that runs the frozen base once: pooled features, cached.

With the base frozen and no augmentation, every epoch feeds each image through
the base to the same pooled vector. The Keras transfer-learning guide's
alternative computes those vectors once and trains the head on them:
`cache_features` does so, keeps them on disk beside the run, and returns the
head as a model of its own that shares its layers (and so its weights) with
the full model. Training the head trains the full model, which the run saves.
"""

import hashlib
import io
import json
import os
import time

import keras
import numpy as np
import tensorflow as tf

from . import files
from .cache import cache_folder
from .data import SHUFFLE_BUFFER
from .epochs import epoch_batches
from .errors import ScriptError

# In every cache file's key: a new layout of the files, new keys.
_FEATURES_FORMAT = "pooled-float32-v2"  # v2: one-hot labels


def split_at(model: keras.Model, layer_name: str) -> tuple[keras.Model, keras.Model]:
    """Splits a functional model after one layer into a feature model and a head.

    Args:
        model: A model whose layers after `layer_name` form a chain (each takes
            the output of the one before), like the head of kerastl's scripts.
        layer_name: The last layer of the feature model (the pooling layer).

    Returns:
        `(features, head)`: `model`'s inputs to that layer's output, and a new
        input of the layer's output shape through the layers after it. The
        head reuses `model`'s layer objects, so training it trains `model`.

    Raises:
        ScriptError: If there is no such layer or the layers after it are not a
            chain ending in `model`'s output.
    """
    names = [layer.name for layer in model.layers]
    if layer_name not in names:
        raise ScriptError(f"{model.name} has no layer {layer_name!r} to split at")
    split = model.get_layer(layer_name)
    features = keras.Model(model.inputs, split.output, name=f"{model.name}_features")
    inputs = keras.Input(shape=split.output.shape[1:], name=f"{layer_name}_features")
    x = inputs
    for layer in model.layers[names.index(layer_name) + 1 :]:
        x = layer(x)
    if tuple(x.shape) != tuple(model.output.shape):
        raise ScriptError(
            f"the layers of {model.name} after {layer_name!r} are not a chain "
            "ending in its output; train it without the feature cache"
        )
    return features, keras.Model(inputs, x, name=f"{model.name}_head")


def cache_features(
    model: keras.Model,
    layer_name: str,
    train_data: tf.data.Dataset,
    validation_data: tf.data.Dataset,
    cache_dir: str | os.PathLike,
    *,
    batch_size: int,
    seed: int,
) -> tuple[keras.Model, tf.data.Dataset, tf.data.Dataset]:
    """The head of `model` and the datasets of features it trains on.

    The feature model (`model` up to `layer_name`) runs once, in inference mode,
    over each dataset of `(images, labels)`; the features and labels are saved
    in `cache_dir`, keyed by the feature model (its layers, input size and
    weights) and the dataset's files, so a rerun with other head settings, or
    after a kill, reads them back. Only use it when the layers up to
    `layer_name` do not train and the images are not augmented.

    Args:
        model: The full model: inputs, normalization, frozen base, pooling, head.
        layer_name: The pooling layer whose outputs are cached.
        train_data: Training batches, not augmented, from `load_image_folders`
            (its `ordered` batches are read, in file order).
        validation_data: Validation batches.
        cache_dir: Folder of the cache files (the script's output folder's own).
        batch_size: Batch size of the feature datasets.
        seed: Seed of the training features' shuffling, reshuffled each epoch:
            the image pipeline's, for the same batches in the same order.

    Returns:
        `(head, train_features, validation_features)`, the datasets yielding
        `(features, labels)` batches and keeping the image datasets'
        `file_paths`, `class_counts` and `files_sha256`.
    """
    with model.distribute_strategy.scope():  # the head trains where the model does
        features_model, head = split_at(model, layer_name)
    digest = _model_digest(features_model)
    # Traced once, for every batch size and both subsets (and only if needed):
    # each trace of a large base costs seconds.
    features_of = tf.function(
        lambda images: features_model(images, training=False),
        input_signature=[tf.TensorSpec((None, *features_model.input_shape[1:]))],
    )
    images = sum(
        len(getattr(data, "file_paths", ())) for data in (train_data, validation_data)
    )
    folder, where = cache_folder(
        cache_dir, images * int(np.prod(features_model.output_shape[1:])) * 4
    )
    arrays = {
        subset: _cached(features_of, digest, data, folder, subset, where)
        for subset, data in (("training", train_data), ("validation", validation_data))
    }
    train_features, train_labels = arrays["training"]
    # Shuffled as `load_image_folders` shuffles the images: the same batches,
    # in the same order, as the head would see through the whole model.
    batches = epoch_batches(
        tf.data.Dataset.from_tensor_slices((train_features, train_labels)),
        batch_size=batch_size,
        seed=seed,
        buffer_size=min(len(train_labels), SHUFFLE_BUFFER),
    )
    train = batches.prefetch(tf.data.AUTOTUNE)
    train.epoch = batches.epoch
    val = tf.data.Dataset.from_tensor_slices(arrays["validation"]).batch(batch_size)
    for dataset, images in ((train, train_data), (val, validation_data)):
        for name in ("file_paths", "class_counts", "files_sha256"):
            if hasattr(images, name):
                setattr(dataset, name, getattr(images, name))
    return head, train, val


def _cached(
    features_of: tf.types.experimental.PolymorphicFunction,
    model_digest: str,
    data: tf.data.Dataset,
    cache_dir: str,
    subset: str,
    where: str,
) -> tuple[np.ndarray, np.ndarray]:
    """The features and labels of `data`, read from the cache in `cache_dir` or
    computed and saved there (`where` says where, for the printed line)."""
    images = getattr(data, "files_sha256", None)
    if images is None:
        raise ScriptError(
            f"the {subset} dataset does not record its files (files_sha256); "
            "load it with runtime.load_image_folders"
        )
    key = hashlib.sha256(
        json.dumps([_FEATURES_FORMAT, model_digest, images]).encode()
    ).hexdigest()[:20]
    name = f"{subset}-{key}.npz"
    path = files.join(cache_dir, name)
    if files.exists(path):
        with np.load(io.BytesIO(files.read_bytes(path))) as saved:
            print(f"Features of the {subset} images: reusing {path}")
            return saved["features"], saved["labels"]
    # In file order, so that the shuffling above matches the images' own.
    features, labels = _compute(
        features_of, getattr(data, "ordered", data), subset, where
    )
    saved = io.BytesIO()  # object stores write whole files, not seeks
    np.savez(saved, features=features, labels=labels)
    files.write_bytes(path, saved.getvalue())
    for old in files.list_dir(cache_dir):
        if old.startswith(f"{subset}-") and old.endswith(".npz") and old != name:
            files.delete(files.join(cache_dir, old))
    return features, labels


def _compute(
    features_of: tf.types.experimental.PolymorphicFunction,
    data: tf.data.Dataset,
    subset: str,
    where: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Runs `features_of` once over the batches of `data`, with a progress bar."""
    steps = int(data.cardinality())
    print(
        f"Features of the {subset} images: running the frozen base once, cached {where}"
    )
    progress = keras.utils.Progbar(steps if steps > 0 else None, unit_name="batch")
    started = time.monotonic()
    features, labels = [], []
    for images, batch_labels in data:
        features.append(features_of(images).numpy().astype(np.float32))
        labels.append(batch_labels.numpy())
        progress.add(1)
    count = sum(len(batch) for batch in labels)
    print(f"{count} images in {time.monotonic() - started:.1f} s")
    return np.concatenate(features), np.concatenate(labels)


def _model_digest(model: keras.Model) -> str:
    """A hash of the model's architecture, input size and weights."""
    digest = hashlib.sha256(model.to_json().encode())
    for weight in model.weights:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(weight)).data)
    return digest.hexdigest()


class FeatureCacheHint(keras.callbacks.Callback):
    """Says once, after the first epoch, how much faster cached features would train.

    For a frozen base with augmented images, where the base runs every epoch;
    without augmentation the script runs it once (`cache_features`).
    """

    def __init__(self) -> None:
        super().__init__()
        self._started = 0.0
        self._shown = False

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        if self._shown:
            return
        self._shown = True
        seconds = time.monotonic() - self._started
        epochs = self.params.get("epochs", 0) - epoch
        if epochs > 1:
            print(
                f"Epoch {epoch + 1} took {seconds:.1f} s, nearly all of it in the "
                f"frozen base. With --no-augment the base would run once over the "
                f"images and the head train on its features: about {seconds:.0f} s "
                f"for these {epochs} epochs instead of about {seconds * epochs:.0f} s."
            )


def feature_cache_hint(train_data: tf.data.Dataset) -> list[keras.callbacks.Callback]:
    """`[FeatureCacheHint()]` when `train_data` augments its images, else `[]`."""
    return [FeatureCacheHint()] if getattr(train_data, "augmented", False) else []
