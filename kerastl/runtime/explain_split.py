"""Where Grad-CAM cuts a classifier: where its features leave the base model.

The base is the model's nested model (step 5 of a kerastl script), or, in a
model without one, its last layer whose output keeps positions. A base whose
feature map is smaller than `MIN_GRID` on a side (a 32-pixel image through a
network that divides it by 32 gives one position: a heatmap of one colour)
is cut inside instead, at its last feature map of at least that size that
the rest of the base is computed from alone. A ViT-like base's tokens keep
their patches last, after the class and register tokens. An image tower
(SigLIP, CLIP) is cut inside, at the tokens entering its last block
(`hub.tower_cut`).
"""

import weakref
from dataclasses import dataclass

import keras
import numpy as np

from .hub import tower_cut
from .keras_internals import private

#: The fewest positions on a side of the feature map explained.
MIN_GRID = 4


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
    """Cuts `model` at its base model's output (see `grad_cam`), once per model.

    Cutting builds models that call the layers again, so each model's cut is
    kept (weakly: while the model lives) and reused.

    Raises:
        TypeError: If the model's output layer is not a dense layer.
        ValueError: If the model has no layer with a feature map or tokens.
    """
    split = _SPLITS.get(model)
    if split is None:
        split = _SPLITS[model] = _split(model)
    return split


#: The cuts made, by model.
_SPLITS: "weakref.WeakKeyDictionary[keras.Model, SplitModel]" = (
    weakref.WeakKeyDictionary()
)


def _split(model: keras.Model) -> SplitModel:
    output = model.layers[-1]
    if not isinstance(output, keras.layers.Dense):
        raise TypeError(
            f"grad_cam needs a dense output layer; {model.name} ends with "
            f"{type(output).__name__}"
        )
    base = _base_layer(model)
    features = _call_tensor(model, base, "output")
    head = keras.Model(features, _call_tensor(model, output, "input"))
    inside = tower_cut(base)  # an image tower: inside, where patch tokens reach
    if inside is not None:
        return _split_inside(model, base, inside, head, output)
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
        tensor = _call_tensor(base, layer, "output")
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
    before = keras.Model(model.input, _call_tensor(model, base, "input"))
    upto = keras.Model(base.inputs, tensor)
    features = keras.Model(inputs, upto(before(inputs), training=False))
    inner = keras.Input(rest.inputs[0].shape[1:], dtype=tensor.dtype)
    after = keras.Model(inner, head(rest(inner, training=False), training=False))
    grid = None
    if len(inner.shape) == 3:  # tokens inside an image tower
        grid = _token_grid(base, inner.shape[1], model.input_shape[1:3])
    return SplitModel(features, after, output, grid)


def _base_layer(model: keras.Model) -> keras.layers.Layer:
    """The base model (the last nested model), or the last layer with positions."""
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if nested:
        return nested[-1]
    positional = [
        layer
        for layer in model.layers[1:]
        if len(_call_tensor(model, layer, "output").shape) in (3, 4)
    ]
    if not positional:
        raise ValueError(
            f"grad_cam found no feature map or token sequence in {model.name}"
        )
    return positional[-1]


def _call_tensor(graph: keras.Model, layer: keras.layers.Layer, which: str):
    """The tensor `layer` gives (`which="output"`) or takes (`"input"`) where
    the functional model `graph` calls it: a layer called elsewhere too (the
    feature cache calls the base and the head on their own) has a call of
    each graph.

    Raises:
        ValueError: If `graph` does not call `layer`.
    """
    depths = private(graph, "_nodes_by_depth", purpose="grad_cam")
    own = {id(node) for nodes in depths.values() for node in nodes}
    for node in private(layer, "_inbound_nodes", purpose="grad_cam"):
        if id(node) in own:
            tensors = node.output_tensors if which == "output" else node.input_tensors
            return tensors[0]
    raise ValueError(f"grad_cam found no call of {layer.name} in {graph.name}")


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
