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
from .continuation import fingerprint
from .data import ImageFolders
from .epochs import epoch_batches
from .errors import ScriptError
from .feature_predictions import predict_from_features
from .input_pipeline import SHUFFLE_BUFFER
from .quiet import progress_verbosity
from .trainable import flat_layers

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
    images: ImageFolders,
    cache_dir: str | os.PathLike,
    *,
    batch_size: int,
    seed: int,
) -> tuple[keras.Model, tf.data.Dataset, tf.data.Dataset]:
    """The head of `model` and the datasets of features it trains on.

    The feature model (`model` up to `layer_name`) runs once, in inference mode,
    over the training images (in file order) and the validation images; the
    features and labels are saved in `cache_dir`, keyed by the feature model
    (its layers, input size and weights) and the images' files, so a rerun
    with other head settings, or after a kill, reads them back. Only use it
    when the layers up to `layer_name` do not train and the images are not
    augmented. `predictions_of(model, images.validation)` then predicts from
    the validation features, while the feature model's weights stay the same.

    Args:
        model: The full model: inputs, normalization, frozen base, pooling, head.
        layer_name: The pooling layer whose outputs are cached.
        images: The images, from `load_image_folders`.
        cache_dir: Folder of the cache files (the script's output folder's own).
        batch_size: Batch size of the feature datasets.
        seed: Seed of the training features' shuffling, reshuffled each epoch:
            the image pipeline's, for the same batches in the same order.

    Returns:
        `(head, train_features, validation_features)`, the datasets yielding
        `(features, labels)` batches.
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
    count = len(images.train_files.paths) + len(images.validation_files.paths)
    folder, where = cache_folder(
        cache_dir, count * int(np.prod(features_model.output_shape[1:])) * 4
    )
    subsets = (
        ("training", images.train_in_order, images.train_files.fingerprint),
        ("validation", images.validation, images.validation_files.fingerprint),
    )
    arrays = {
        subset: _cached(features_of, [digest, files_key], data, folder, subset, where)
        for subset, data, files_key in subsets
    }
    train_features, train_labels = arrays["training"]
    # Shuffled as `load_image_folders` shuffles the images: the same batches,
    # in the same order, as the head would see through the whole model.
    train = epoch_batches(
        tf.data.Dataset.from_tensor_slices((train_features, train_labels)),
        batch_size=batch_size,
        seed=seed,
        buffer_size=min(len(train_labels), SHUFFLE_BUFFER),
    ).prefetch(tf.data.AUTOTUNE)
    val = tf.data.Dataset.from_tensor_slices(arrays["validation"]).batch(batch_size)
    # Choosing the model to ship and its report predict from these features too.
    predict_from_features(
        model, images.validation, frozen=features_model, head=head, features=val
    )
    return head, train, val


def _cached(
    features_of: tf.types.experimental.PolymorphicFunction,
    key_parts: list[str],
    data: tf.data.Dataset,
    cache_dir: str,
    subset: str,
    where: str,
) -> tuple[np.ndarray, np.ndarray]:
    """The features and labels of `data`, read from the cache in `cache_dir` or
    computed and saved there. The file's name holds a hash of `key_parts` (the
    feature model's digest, the images' fingerprint); `where` says where the
    cache is, for the printed line."""
    key = hashlib.sha256(
        json.dumps([_FEATURES_FORMAT, *key_parts]).encode()
    ).hexdigest()[:20]
    name = f"{subset}-{key}.npz"
    path = files.join(cache_dir, name)
    if files.exists(path):
        with np.load(io.BytesIO(files.read_bytes(path))) as saved:
            print(f"Features of the {subset} images: reusing {path}")
            return saved["features"], saved["labels"]
    # In file order, so that the shuffling above matches the images' own.
    features, labels = _compute(features_of, data, subset, where)
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
    # A live bar on a terminal; in a log, one line once done (as fit's verbose=2).
    progress = keras.utils.Progbar(
        steps if steps > 0 else None,
        unit_name="batch",
        verbose=1 if progress_verbosity() == "auto" else 2,
    )
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
    """A hash of the model's architecture, input size and weights.

    Names Keras made up count as `fingerprint` numbers them: the same model
    built again in the process (a notebook's second run) hashes the same.
    """
    digest = hashlib.sha256(json.dumps(fingerprint(model)).encode())
    for layer in flat_layers(model):
        config = dict(layer.get_config())
        config.pop("name", None)
        digest.update(json.dumps(config, sort_keys=True, default=str).encode())
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


def feature_cache_hint(images: ImageFolders) -> list[keras.callbacks.Callback]:
    """`[FeatureCacheHint()]` when the training images are augmented, else `[]`."""
    return [FeatureCacheHint()] if images.augmented else []
