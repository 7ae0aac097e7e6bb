"""Grad-CAM (Selvaraju et al. 2017): where a classifier looked to decide.

The model is split where the base model's features leave it: the layers up to
there give the features, the layers after them (pooling, dropout, the output
layer) give each class's score before its softmax or sigmoid. The gradient of
the chosen class's score weighs each feature channel (its mean over the
positions), and the weighted channels, summed and kept where positive, are
the heatmap. A CNN's features are a grid already; a ViT-like backbone's are
a sequence of tokens, whose patch tokens (the last grid-size ones, after the
class and register tokens) are put back on their grid. A base whose feature
map is smaller than `MIN_GRID` on a side (a 32-pixel image through a network
that divides it by 32 gives one position: a heatmap of one colour) is cut
inside instead, at its last feature map of at least that size that the whole
base passes through.
"""

from dataclasses import dataclass

import keras
import numpy as np
from keras import ops

from .keras_internals import private

#: Images per forward and backward pass.
CHUNK = 32
#: The fewest positions on a side of the feature map explained.
MIN_GRID = 4


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


@dataclass(frozen=True)
class SplitModel:
    """A classifier cut where its features leave the base model.

    Attributes:
        features: The inputs to the features (the base model's outputs).
        head: The features to the output layer's inputs.
        output: The output layer; its pre-activation is the class score.
        grid: The patch grid of a token sequence (None for a feature map).
    """

    features: keras.Model
    head: keras.Model
    output: keras.layers.Layer
    grid: tuple[int, int] | None


def split_model(model: keras.Model) -> SplitModel:
    """Cuts `model` at its base model's output (see `grad_cam`).

    Raises:
        TypeError: If the model's output layer is not a dense layer.
        ValueError: If the model has no layer with a feature map or tokens.
    """
    output = model.layers[-1]
    if not isinstance(output, keras.layers.Dense):
        raise TypeError(
            f"grad_cam needs a dense output layer; {model.name} ends with "
            f"{type(output).__name__}"
        )
    base = _base_layer(model)
    features = _call_tensor(model.input, base, "output")
    head = keras.Model(features, _call_tensor(model.input, output, "input"))
    if len(features.shape) == 3:
        grid = _token_grid(base, features.shape[1], model.input_shape[1:3])
        return SplitModel(keras.Model(model.input, features), head, output, grid)
    if isinstance(base, keras.Model) and min(features.shape[1:3]) < MIN_GRID:
        inside = _larger_map(base)
        if inside is not None:
            return _split_inside(model, base, inside, head, output)
    return SplitModel(keras.Model(model.input, features), head, output, None)


def _larger_map(base: keras.Model):
    """The last feature map inside `base` at least `MIN_GRID` on a side that
    the rest of the base can be computed from; None if there is none."""
    for layer in reversed(base.layers[1:]):
        tensor = _call_tensor(base.input, layer, "output")
        if (
            len(tensor.shape) != 4
            or min(tensor.shape[1:3]) < MIN_GRID
            or isinstance(layer, keras.layers.ZeroPadding2D)  # a border of zeros
        ):
            continue
        try:
            return tensor, keras.Model(tensor, base.output)
        except ValueError:  # a skip connection passes around it
            continue
    return None


def _split_inside(model, base, inside, head, output) -> SplitModel:
    """`model` cut at a feature map inside its base (`_larger_map`)."""
    tensor, rest = inside
    inputs = keras.Input(model.input_shape[1:], dtype=model.input.dtype)
    before = keras.Model(model.input, _call_tensor(model.input, base, "input"))
    upto = keras.Model(base.input, tensor)
    features = keras.Model(inputs, upto(before(inputs), training=False))
    inner = keras.Input(tensor.shape[1:], dtype=tensor.dtype)
    after = keras.Model(inner, head(rest(inner, training=False), training=False))
    return SplitModel(features, after, output, None)


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


def _base_layer(model: keras.Model) -> keras.layers.Layer:
    """The base model (the last nested model), or the last layer with positions."""
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if nested:
        return nested[-1]
    positional = [
        layer
        for layer in model.layers[1:]
        if len(_call_tensor(model.input, layer, "output").shape) in (3, 4)
    ]
    if not positional:
        raise ValueError(
            f"grad_cam found no feature map or token sequence in {model.name}"
        )
    return positional[-1]


def _call_tensor(inputs, layer: keras.layers.Layer, which: str):
    """The tensor `layer` gives (`which="output"`) or takes (`"input"`) where
    the graph that starts at `inputs` calls it: a layer called elsewhere too
    (the feature cache calls the base and the head on their own) has a call
    of each graph.

    Raises:
        ValueError: If that graph does not call `layer`.
    """
    nodes = private(layer, "_inbound_nodes", purpose="grad_cam")
    for node in reversed(nodes):
        tensors = node.output_tensors if which == "output" else node.input_tensors
        try:
            keras.Model(inputs, tensors[0])
        except ValueError:  # a call from another graph
            continue
        return tensors[0]
    raise ValueError(f"grad_cam found no call of {layer.name} in the model")


def _token_grid(base, tokens: int, image_size) -> tuple[int, int]:
    """The patch grid of a ViT-like backbone's `tokens` (patches come last)."""
    patch = getattr(base, "patch_size", None)
    if patch is not None:
        rows, columns = (patch, patch) if isinstance(patch, int) else patch
        grid = (int(image_size[0]) // rows, int(image_size[1]) // columns)
    else:  # a square grid after at most a few class and register tokens
        side = int(np.sqrt(tokens))
        grid = (side, side)
    if grid[0] * grid[1] > tokens:
        raise ValueError(f"{tokens} tokens cannot hold a {grid[0]}x{grid[1]} grid")
    return grid


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
