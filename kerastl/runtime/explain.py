"""Grad-CAM (Selvaraju et al. 2017): where a classifier looked to decide.

The model is split where the base model's features leave it: the layers up to
there give the features, the layers after them (pooling, dropout, the output
layer) give each class's score before its softmax or sigmoid. The gradient of
the chosen class's score weighs each feature channel (its mean over the
positions), and the weighted channels, summed and kept where positive, are
the heatmap. A CNN's features are a grid already; a ViT-like backbone's are
a sequence of tokens, whose patch tokens (the last grid-size ones, after the
class and register tokens) are put back on their grid (`explain_split`).
"""

import keras
import numpy as np
from keras import ops

from .explain_split import SplitModel, split_model

#: Images per forward and backward pass.
CHUNK = 32


def grad_cam(model: keras.Model, images, class_index=None) -> np.ndarray:
    """Grad-CAM heatmaps of `images` under `model`, as a kerastl script saves it.

    Args:
        model: A classifier: inputs, (normalization,) the base model (a nested
            `keras.Model`: a CNN's feature map or a ViT-like backbone's tokens),
            pooling, dropout and a dense output layer. A model without a
            nested base is explained at its last layer that keeps positions.
        images: Raw 0-255 RGB images, shape `(n, height, width, 3)`; resized
            to the model's input size if they differ from it.
        class_index: The class to explain: None (each image's top class), an
            int, or one int per image.

    Returns:
        float32 heatmaps in [0, 1], shape `(n, height, width)`: 1 where the
        features count most for the class, all 0 where nothing counts for it.
    """
    images = np.asarray(images, dtype="float32")
    if images.ndim != 4:
        raise ValueError(f"grad_cam takes a batch of images, not shape {images.shape}")
    split = split_model(model)
    height, width = images.shape[1:3]
    classes = _class_indices(class_index, len(images))
    maps = []
    for start in range(0, len(images), CHUNK):
        batch = _resized(images[start : start + CHUNK], model.input_shape[1:3])
        chosen = None if classes is None else classes[start : start + CHUNK]
        grids = class_activation_grids(split, batch, chosen)
        maps.append(_upsampled(grids, (height, width)))
    if not maps:
        return np.zeros((0, height, width), dtype="float32")
    return np.concatenate(maps)


def class_activation_grids(
    split: SplitModel, images, class_index: np.ndarray | None = None
) -> np.ndarray:
    """Grad-CAM at the features' own resolution, each map scaled to [0, 1].

    Args:
        split: The model, cut by `split_model`.
        images: Raw 0-255 images at the model's input size.
        class_index: One class per image; None: each image's top class.

    Returns:
        float32 maps, shape `(n, grid height, grid width)`.
    """
    features = split.features(images, training=False)
    gradients = _class_gradients(split, features, class_index)
    features = ops.cast(features, "float32")
    gradients = ops.cast(gradients, "float32")
    if split.grid is not None:  # tokens: keep the patches, back on their grid
        features = _patch_grid(features, split.grid)
        gradients = _patch_grid(gradients, split.grid)
    weights = ops.mean(gradients, axis=(1, 2), keepdims=True)
    maps = ops.relu(ops.sum(weights * features, axis=-1))
    peak = ops.max(maps, axis=(1, 2), keepdims=True)
    maps = ops.where(peak > 0, maps / ops.maximum(peak, 1e-12), 0.0)
    return np.asarray(ops.convert_to_numpy(maps), dtype="float32")


def _class_gradients(split: SplitModel, features, class_index):
    """The gradients of the chosen classes' scores with respect to `features`."""
    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(
            f"grad_cam runs on the TensorFlow backend, not {keras.backend.backend()}"
        )
    import tensorflow as tf

    with tf.GradientTape() as tape:
        tape.watch(features)
        logits = _logits(split, split.head(features, training=False))
        if class_index is None:
            class_index = ops.argmax(logits, axis=-1)
        chosen = ops.one_hot(ops.convert_to_tensor(class_index), logits.shape[-1])
        scores = ops.sum(logits * chosen, axis=-1)
    return tape.gradient(scores, features)


def _logits(split: SplitModel, inputs):
    """The output layer's pre-activation (the class scores), in float32."""
    dense = split.output
    logits = ops.matmul(ops.cast(inputs, "float32"), ops.cast(dense.kernel, "float32"))
    if dense.use_bias:
        logits = logits + ops.cast(dense.bias, "float32")
    return logits


def _patch_grid(tokens, grid: tuple[int, int]):
    """The last `rows * columns` tokens (the patches), as a grid."""
    count = grid[0] * grid[1]
    patches = tokens[:, tokens.shape[1] - count :, :]
    return ops.reshape(patches, (-1, grid[0], grid[1], tokens.shape[-1]))


def _class_indices(class_index, count: int) -> np.ndarray | None:
    if class_index is None:
        return None
    indices = np.asarray(class_index, dtype="int32").reshape(-1)
    if indices.size == 1:
        return np.full(count, int(indices[0]), dtype="int32")
    if indices.size != count:
        raise ValueError(f"{indices.size} class indices for {count} images")
    return indices


def _resized(images: np.ndarray, size) -> np.ndarray:
    """`images` at the model's input size (bilinear), unchanged if they fit."""
    if tuple(images.shape[1:3]) == tuple(size) or None in tuple(size):
        return images
    return np.asarray(ops.image.resize(images, tuple(size), interpolation="bilinear"))


def _upsampled(grids: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Maps resized (bilinear) to `size`, kept in [0, 1]."""
    resized = ops.image.resize(grids[..., None], size, interpolation="bilinear")
    return np.clip(np.asarray(resized)[..., 0], 0.0, 1.0).astype("float32")


def overlay(image, heatmap, strength: float = 0.5) -> np.ndarray:
    """`image` (0-255 RGB) with `heatmap` (its size, in [0, 1]) coloured over it.

    Cold (blue, transparent) where the map is 0, hot (red) where it is 1.

    Returns:
        A uint8 RGB image.
    """
    image = np.asarray(image, dtype="float32")
    heat = np.clip(np.asarray(heatmap, dtype="float32"), 0.0, 1.0)
    alpha = strength * (0.3 + 0.7 * heat)[..., None]
    mixed = (1 - alpha) * image + alpha * heat_colors(heat)
    return np.clip(mixed, 0, 255).round().astype("uint8")


#: The colours of 0, 1/3, 2/3 and 1 on a heatmap: blue, cyan, yellow, red.
HEAT_COLORS = np.array(
    [[0, 0, 255], [0, 255, 255], [255, 255, 0], [255, 0, 0]], dtype="float32"
)


def heat_colors(heat: np.ndarray) -> np.ndarray:
    """RGB colours (0-255) of values in [0, 1], from `HEAT_COLORS`."""
    stops = np.linspace(0.0, 1.0, len(HEAT_COLORS))
    channels = [np.interp(heat, stops, HEAT_COLORS[:, c]) for c in range(3)]
    return np.stack(channels, axis=-1).astype("float32")
