"""Freeze and unfreeze a base model a whole block at a time, and compile safely.

The rules these helpers enforce, each a trap Keras users report:

* BatchNormalization layers stay frozen when the base is unfrozen, so their
  moving statistics are not overwritten by a small new data set
  (keras-team/keras#11590; the Keras "Transfer learning & fine-tuning" guide).
* A change of `trainable` only takes effect when the model is compiled again
  (keras-team/keras#6405): `compile_checked` recompiles and verifies the
  trainable weights.
* Blocks (a residual unit, a dense layer, a cell) are unfrozen whole, as the
  Keras EfficientNet fine-tuning example advises; each family's `BlockRule`,
  recognised from the model, says which layers form one.
"""

import difflib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import keras

from .errors import TrainabilityError, UnfreezeError
from .hub import frozen_embeddings, hub_blocks, is_hub_backbone


def freeze(model: keras.Model) -> list[keras.layers.Layer]:
    """Freezes every layer of `model`; returns the (empty) list of trainable layers."""
    model.trainable = False
    return []


@dataclass(frozen=True)
class BlockRule:
    """How the layers of one `keras.applications` family divide into blocks.

    Attributes:
        pattern: Regular expression whose first group names the block of a
            layer, searched in the layer's name.
        unnamed_layers: The block that a layer the pattern does not match
            joins: that of the nearest matching layer after it (`"next"`) or
            before it (`"previous"`). Layers at the far end join the first or
            last block.
    """

    pattern: str
    unnamed_layers: Literal["next", "previous"] = "next"


#: Each `keras.applications` family's facts; kerastl's generator reads the
#: same file. Here: the names Keras gives its models and its block rule.
FAMILIES_FILE = Path(__file__).with_name("families.json")


def _family_blocks() -> dict[str, BlockRule]:
    """Each family's block rule, keyed by the regex of its Keras model names."""
    families = json.loads(FAMILIES_FILE.read_text(encoding="utf-8"))
    return {
        family["model_names"]: BlockRule(
            family["block_pattern"], family["unnamed_layers"]
        )
        for family in families
        if "source" not in family  # KerasHub's families: `hub.py`
    }


FAMILY_BLOCKS: dict[str, BlockRule] = _family_blocks()


def block_rule_of(base: keras.Model) -> BlockRule:
    """The block rule of a `keras.applications` base model.

    The family is recognised by the model's name, or else by the rule whose
    pattern matches the most layer names (a renamed model).

    Raises:
        UnfreezeError: If neither the name nor the layers fit a known family.
    """
    for name_pattern, rule in FAMILY_BLOCKS.items():
        if re.search(name_pattern, base.name, re.IGNORECASE):
            return rule
    names = [layer.name for layer in base.layers]
    matches = {
        rule: sum(bool(re.search(rule.pattern, name)) for name in names)
        for rule in FAMILY_BLOCKS.values()
    }
    rule = max(matches, key=matches.__getitem__)
    if not matches[rule]:
        raise UnfreezeError(
            f"{base.name!r} is not a keras.applications model kerastl knows by its "
            "name or layer names; pass block_rule=BlockRule(pattern) to unfreeze it"
        )
    return rule


def find_blocks(
    base: keras.Model, block_rule: BlockRule | None = None
) -> dict[str, list[keras.layers.Layer]]:
    """Groups the layers of `base` into its blocks, in model order.

    Args:
        base: The base model.
        block_rule: How its layers form blocks; by default recognised from
            the model (`block_rule_of`).

    Returns:
        Block name to its layers, in the order the blocks first appear.
    """
    if block_rule is None and is_hub_backbone(base):
        return hub_blocks(base)  # its transformer blocks, nested in its encoder
    rule = block_rule or block_rule_of(base)
    if rule.unnamed_layers not in ("next", "previous"):
        raise UnfreezeError(
            f"unnamed_layers must be 'next' or 'previous', not {rule.unnamed_layers!r}"
        )
    pattern = re.compile(rule.pattern)
    layers = [
        layer for layer in base.layers if not isinstance(layer, keras.layers.InputLayer)
    ]
    keys: list[str | None] = [
        match.group(1) if (match := pattern.search(layer.name)) else None
        for layer in layers
    ]
    if not any(keys):
        raise UnfreezeError(
            f"no layer of {base.name!r} matches the block pattern {rule.pattern!r}"
        )
    forward = list(range(len(layers)))
    first_pass, second_pass = (
        (forward[::-1], forward)
        if rule.unnamed_layers == "next"
        else (forward, forward[::-1])
    )
    for order in (first_pass, second_pass):
        current = None
        for index in order:
            if keys[index] is None:
                keys[index] = current
            else:
                current = keys[index]
    blocks: dict[str, list[keras.layers.Layer]] = {}
    for key, layer in zip(keys, layers):
        blocks.setdefault(str(key), []).append(layer)
    return blocks


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


def compile_checked(
    model: keras.Model,
    base: keras.Model,
    trainable_layers: list[keras.layers.Layer],
    **compile_kwargs,
) -> None:
    """Compiles `model`, then checks that exactly the intended weights will train.

    Trainability changes take effect only at compile time, so every change goes
    through here. The trainable weights of the base must be exactly those of
    `trainable_layers`, and the head (everything outside the base) must train.

    Args:
        model: The full model.
        base: The base model inside it.
        trainable_layers: The layers of `base` returned by an unfreeze helper.
        **compile_kwargs: Passed to `model.compile`.

    Raises:
        TrainabilityError: On any difference, naming the layers concerned.
    """
    model.compile(**compile_kwargs)
    base_weights = {id(weight) for weight in base.weights}
    wanted = {
        id(weight): layer.name
        for layer in trainable_layers
        for weight in layer.weights
        if weight.trainable
    }
    actual = {
        id(weight) for weight in model.trainable_weights if id(weight) in base_weights
    }
    if actual != wanted.keys():
        owners = {
            id(weight): layer.name for layer in base.layers for weight in layer.weights
        }
        extra = sorted({owners.get(key, "?") for key in actual - wanted.keys()})
        missing = sorted({wanted[key] for key in wanted.keys() - actual})
        raise TrainabilityError(
            f"trainable weights differ from what was asked: unexpected {extra}, missing {missing}"
        )
    if len(model.trainable_weights) == len(actual):
        raise TrainabilityError("the head has no trainable weights")


def trainable_summary(model: keras.Model) -> str:
    """Describes which layers and parameters of `model` will train."""
    rows = flat_layers(model)
    trainable_params = sum(int(keras.ops.size(w)) for w in model.trainable_weights)
    total_params = sum(int(keras.ops.size(w)) for w in model.weights)
    trainable_rows = [layer for layer in rows if layer.trainable and layer.weights]
    with_weights = [layer for layer in rows if layer.weights]
    batchnorm = [
        layer for layer in rows if isinstance(layer, keras.layers.BatchNormalization)
    ]
    trainable_bn = sum(layer.trainable for layer in batchnorm)
    share = 100 * trainable_params / max(total_params, 1)
    lines = [
        f"trainable parameters: {trainable_params:,} of {total_params:,} ({share:.1f}%)",
        f"layers with weights that train: {len(trainable_rows)} of {len(with_weights)}",
        f"BatchNormalization layers that train: {trainable_bn} of {len(batchnorm)}",
    ]
    if trainable_rows:
        names = [layer.name for layer in trainable_rows]
        shown = names if len(names) <= 6 else [*names[:3], "...", *names[-3:]]
        lines.append("trainable: " + ", ".join(shown))
    return "\n".join(lines)


def flat_layers(
    model: keras.Model, *, with_models: bool = False
) -> list[keras.layers.Layer]:
    """Layers of `model`, each nested model replaced by its own layers.

    Args:
        model: The model.
        with_models: Keep each nested model too, just before its layers.
    """
    layers = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            if with_models:
                layers.append(layer)
            layers.extend(flat_layers(layer, with_models=with_models))
        else:
            layers.append(layer)
    return layers
