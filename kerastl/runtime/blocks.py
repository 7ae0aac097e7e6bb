"""A base model's blocks, each unfrozen whole: each family's `BlockRule`.

Blocks (a residual unit, a dense layer, a cell) are unfrozen whole, as the
Keras EfficientNet fine-tuning example advises; each family's `BlockRule`,
recognised from the model, says which layers form one.
"""

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import keras

from .errors import UnfreezeError
from .hub import hub_blocks, is_hub_backbone


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
