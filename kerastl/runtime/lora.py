"""LoRA: low-rank adapters that train while the base model stays frozen.

Keras 3 gives `Dense`, `EinsumDense` and `Conv2D` layers `enable_lora(rank)`:
the frozen kernel W computes `W + (alpha / rank) * A @ B`, where only the small
matrices A and B train. `add_lora` gives adapters to the `Conv2D` and `Dense`
layers of a `keras.applications` base's top blocks (`DepthwiseConv2D` has
none), or to a KerasHub backbone's attention query and value projections (its
own `default_lora_layer_names`).

How the adapters are saved: `lora_saving`.
"""

import keras
import numpy as np

from .errors import UnfreezeError
from .hub import hub_blocks, is_hub_backbone
from .keras_internals import private
from .unfreeze import unfreeze

ADAPTER_NAMES = ("lora_kernel_a", "lora_kernel_b")
TRAINED_NAMES = (*ADAPTER_NAMES, "bias")  # of a layer with adapters
_PURPOSE = "--mode lora"


def every_layer(model: keras.Layer) -> list[keras.Layer]:
    """Every layer inside `model`, at any depth (a KerasHub block's own layers too)."""
    flatten = private(model, "_flatten_layers", purpose=_PURPOSE)
    return list(flatten(include_self=False, recursive=True))


def lora_layers(model: keras.Layer) -> list[keras.Layer]:
    """The layers of `model` (at any depth) that have LoRA adapters."""
    return [layer for layer in every_layer(model) if _has_lora(layer)]


def _has_lora(layer: keras.Layer) -> bool:
    return bool(getattr(layer, "lora_enabled", False))


def add_lora(
    base: keras.Model, blocks: int | str, *, rank: int, alpha: float | None = None
) -> list[keras.Layer]:
    """Gives LoRA adapters of `rank` to the layers of `base` that take them.

    Args:
        base: A `keras.applications` base model or a KerasHub backbone.
        blocks: Which blocks: the top N, `"all"`, or the first layer of a
            block (as `--unfreeze` in fine-tune mode: the family's block rule).
            A KerasHub backbone's blocks are its attention layers, in order.
        rank: The rank of A and B.
        alpha: The adapters' scale is `alpha / rank` (default: `rank`).

    Returns:
        The layers that have adapters now.

    Raises:
        UnfreezeError: If `blocks` does not fit `base`, or no layer takes LoRA.
    """
    targets = _targets(base, blocks)
    if not targets:
        raise UnfreezeError(
            f"--unfreeze {blocks}: no layer of {base.name!r} takes LoRA"
        )
    for layer in targets:
        layer.enable_lora(rank, lora_alpha=alpha)
    adapters = sum(_size(weight) for layer in targets for weight in adapters_of(layer))
    print(
        f"LoRA: rank {rank}, alpha {alpha or rank}, adapters on {len(targets)} "
        f"layers of {base.name!r}: {adapters:,} weights"
    )
    return targets


def _targets(base: keras.Model, blocks: int | str) -> list[keras.Layer]:
    """The layers of the blocks chosen that take adapters."""
    if hasattr(base, "default_lora_layer_names"):  # a KerasHub backbone
        return _attention_targets(base, blocks)
    base_trainable = base.trainable
    trainable = [layer.trainable for layer in base.layers]
    try:  # the layers fine-tuning would unfreeze, BatchNorm included
        chosen = unfreeze(base, blocks, train_batchnorm=True)
    finally:
        base.trainable = base_trainable
        for layer, flag in zip(base.layers, trainable):
            layer.trainable = flag
    kinds = (keras.layers.Conv2D, keras.layers.Dense)  # not DepthwiseConv2D
    return [layer for layer in chosen if isinstance(layer, kinds)]


def _attention_targets(backbone: keras.Model, blocks: int | str) -> list[keras.Layer]:
    """KerasHub's own targets (query and value), in the top `blocks` attention layers."""
    names = set(backbone.default_lora_layer_names())
    order = {id(weight): index for index, weight in enumerate(backbone.weights)}
    targets = sorted(
        (
            layer
            for layer in every_layer(backbone)
            if layer.name in names and hasattr(layer, "enable_lora") and layer.weights
        ),
        key=lambda layer: order[id(layer.weights[0])],
    )
    block_of = _blocks_by_layer(backbone)
    groups: dict[str, list[keras.Layer]] = {}
    for layer in targets:  # query and value of one attention layer: one block
        key = block_of.get(id(layer), layer.path.rsplit("/", 1)[0])
        groups.setdefault(key, []).append(layer)
    if blocks == "all":
        return targets
    if not isinstance(blocks, int) or not 1 <= blocks <= len(groups):
        raise UnfreezeError(
            f"--unfreeze {blocks}: {backbone.name!r} has {len(groups)} attention "
            f"layers; give 1 to {len(groups)} or 'all'"
        )
    return [layer for key in list(groups)[-blocks:] for layer in groups[key]]


def _blocks_by_layer(backbone: keras.Model) -> dict[int, str]:
    """The transformer block of each layer of a known KerasHub backbone, by id.

    An attention layer after the last block (SigLIP's attention-pooling head)
    belongs to the top block, as it unfreezes with it in fine-tune mode.
    """
    if not is_hub_backbone(backbone):
        return {}
    return {
        id(inner): name
        for name, members in hub_blocks(backbone).items()
        for member in members
        for inner in (member, *every_layer(member))
    }


def train_lora(base: keras.Model) -> list[keras.Layer]:
    """Lets only the layers of `base` with adapters train (call it before each compile).

    Their kernels stay frozen; their adapters and biases train, as those of
    a reloaded `.keras` file would (`enable_lora` freezes the kernel alone,
    and the file keeps which layers train, not which of their weights). Every
    other layer stays frozen, BatchNormalization included.

    Returns:
        The layers with adapters.
    """
    layers = lora_layers(base)
    base.trainable = True
    for layer in every_layer(base):
        layer.trainable = _has_lora(layer)  # which sets each of its weights too
    for layer in layers:
        for weight in layer.weights:
            weight.trainable = weight.name in TRAINED_NAMES
    return layers


def adapters_of(layer: keras.Layer) -> list:
    """The two adapter matrices of a layer with LoRA, A then B."""
    return [getattr(layer, name) for name in ADAPTER_NAMES]


def _size(weight) -> int:
    return int(np.prod(weight.shape))
