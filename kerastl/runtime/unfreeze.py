"""Freeze and unfreeze a base model a whole block at a time.

The rules these helpers enforce, each a trap Keras users report:

* BatchNormalization layers stay frozen when the base is unfrozen, so their
  moving statistics are not overwritten by a small new data set
  (keras-team/keras#11590; the Keras "Transfer learning & fine-tuning" guide).
* A change of `trainable` only takes effect when the model is compiled again
  (keras-team/keras#6405): `trainable.compile_checked` recompiles and verifies
  the trainable weights.
* Blocks (a residual unit, a dense layer, a cell) are unfrozen whole
  (`blocks`): a stage named by a layer must start a block.
"""

import difflib
from collections.abc import Sequence

import keras

from .blocks import BlockRule, find_blocks
from .errors import UnfreezeError
from .hub import frozen_embeddings, hub_blocks, is_hub_backbone


def freeze(model: keras.Model) -> list[keras.layers.Layer]:
    """Freezes every layer of `model`; returns the (empty) list of trainable layers."""
    model.trainable = False
    return []


def unfreeze_top_blocks(
    base: keras.Model,
    num_blocks: int,
    *,
    block_rule: BlockRule | None = None,
    train_batchnorm: bool = False,
) -> list[keras.layers.Layer]:
    """Unfreezes the last `num_blocks` whole blocks of `base`; freezes the rest.

    Returns:
        The layers left trainable.
    """
    blocks = find_blocks(base, block_rule)
    if not 1 <= num_blocks <= len(blocks):
        raise UnfreezeError(
            f"{base.name!r} has {len(blocks)} blocks; cannot unfreeze {num_blocks}"
        )
    chosen = [layer for key in list(blocks)[-num_blocks:] for layer in blocks[key]]
    return _set_trainable(base, chosen, train_batchnorm)


def unfreeze_top_layers(
    base: keras.Model, num_layers: int, *, train_batchnorm: bool = False
) -> list[keras.layers.Layer]:
    """Unfreezes the last `num_layers` layers of `base`; freezes the rest."""
    if not 1 <= num_layers <= len(base.layers):
        raise UnfreezeError(
            f"{base.name!r} has {len(base.layers)} layers; cannot unfreeze {num_layers}"
        )
    return _set_trainable(base, base.layers[-num_layers:], train_batchnorm)


def unfreeze_from(
    base: keras.Model, layer_name: str, *, train_batchnorm: bool = False
) -> list[keras.layers.Layer]:
    """Unfreezes the layer called `layer_name` and every layer after it."""
    units = _units(base)
    names = [layer.name for layer in units]
    if layer_name not in names:
        close = (
            ", ".join(difflib.get_close_matches(layer_name, names, n=3)) or "none close"
        )
        raise UnfreezeError(
            f"{base.name!r} has no layer {layer_name!r} (closest: {close})"
        )
    return _set_trainable(base, units[names.index(layer_name) :], train_batchnorm)


def unfreeze_all(
    base: keras.Model, *, train_batchnorm: bool = False
) -> list[keras.layers.Layer]:
    """Unfreezes every layer of `base` (BatchNormalization stays frozen unless asked)."""
    return _set_trainable(base, _units(base), train_batchnorm)


def unfreeze(
    base: keras.Model,
    what: int | str | None,
    *,
    block_rule: BlockRule | None = None,
    train_batchnorm: bool = False,
) -> list[keras.layers.Layer]:
    """Applies one fine-tuning setting to `base`.

    Args:
        base: The base model.
        what: None (freeze everything), a number of top blocks, `"all"`, or
            the name of the first layer to unfreeze.
        block_rule: How the base divides into blocks; by default recognised
            from the model (`block_rule_of`).
        train_batchnorm: Let BatchNormalization layers train too.

    Returns:
        The layers left trainable.
    """
    if what is None:
        return freeze(base)
    if what == "all":
        return unfreeze_all(base, train_batchnorm=train_batchnorm)
    if isinstance(what, int):
        return unfreeze_top_blocks(
            base, what, block_rule=block_rule, train_batchnorm=train_batchnorm
        )
    trainable = unfreeze_from(base, what, train_batchnorm=train_batchnorm)
    _check_block_start(base, what, block_rule)  # after: a missing layer is named
    return trainable


def _check_block_start(
    base: keras.Model, layer_name: str, block_rule: BlockRule | None
) -> None:
    """A stage named by a layer must start a block: blocks are never cut in half."""
    starts = [layers[0].name for layers in find_blocks(base, block_rule).values()]
    if layer_name not in starts:
        close = difflib.get_close_matches(layer_name, starts, n=2) or starts[-1:]
        raise UnfreezeError(
            f"{layer_name!r} does not start a block of {base.name!r}, so a stage "
            f"from it would cut a block in half; did you mean {' or '.join(close)}?"
        )


def check_unfreeze_stages(
    base: keras.Model,
    stages: Sequence[int | str],
    *,
    block_rule: BlockRule | None = None,
) -> None:
    """Checks that every fine-tuning stage fits `base`, before any training.

    Raises:
        UnfreezeError: For the first stage that names no layer of `base` or
            asks for more blocks (or layers) than it has.
    """
    base_trainable = base.trainable
    units = _units(base)
    trainable = [layer.trainable for layer in units]
    try:
        for what in stages:
            unfreeze(base, what, block_rule=block_rule)
    finally:
        base.trainable = base_trainable
        for layer, flag in zip(units, trainable):
            layer.trainable = flag


def _set_trainable(
    base: keras.Model, chosen: list[keras.layers.Layer], train_batchnorm: bool
) -> list[keras.layers.Layer]:
    base.trainable = True
    chosen_ids = {id(layer) for layer in chosen}
    frozen_ids = {id(layer) for layer in frozen_embeddings(base)}
    trainable = []
    for layer in _units(base):
        is_batchnorm = isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = (
            id(layer) in chosen_ids
            and (train_batchnorm or not is_batchnorm)
            and id(layer) not in frozen_ids
        )
        if layer.trainable:
            trainable.append(layer)
    return trainable


def _units(base: keras.Model) -> list[keras.layers.Layer]:
    """The layers that freeze and unfreeze as one: `base.layers`, except for a
    KerasHub backbone, whose transformer blocks are nested in its encoder."""
    if is_hub_backbone(base):
        return [layer for block in hub_blocks(base).values() for layer in block]
    return base.layers
