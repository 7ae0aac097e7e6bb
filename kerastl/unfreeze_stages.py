"""`--unfreeze`: the fine-tuning stages checked against the backbone's blocks."""

from __future__ import annotations

import re

from kerastl import backbones
from kerastl.backbones import Backbone
from kerastl.closest_names import closest_names
from kerastl.hub import HubBackbone
from kerastl.spec_fields import SpecError, Unfreeze

#: KerasHub presets' blocks are unknown without a download: a quarter of 12,
#: the depth of ViT-S and ViT-B, is the default stage.
HUB_DEFAULT_UNFREEZE = 3


def default_unfreeze(backbone: Backbone | HubBackbone) -> int:
    """Default fine-tuning stage: the top quarter of the blocks, at least one."""
    if backbone.num_blocks is None:
        return HUB_DEFAULT_UNFREEZE
    return max(1, round(backbone.num_blocks / 4))


def unfreeze_stages(
    values: tuple[str | int, ...], backbone: Backbone | HubBackbone
) -> tuple[Unfreeze, ...]:
    if not values:
        return (default_unfreeze(backbone),)
    stages = tuple(_unfreeze_stage(raw, backbone) for raw in values)
    counts = [stage for stage in stages if isinstance(stage, int)]
    if counts != sorted(set(counts)) or ("all" in stages and stages[-1] != "all"):
        raise SpecError(
            "unfreeze",
            f"{' '.join(map(str, stages))}: each stage must unfreeze more than "
            "the last (increasing block counts, 'all' last)",
        )
    if len(set(map(str, stages))) != len(stages):
        raise SpecError(
            "unfreeze", f"{' '.join(map(str, stages))}: a stage is repeated"
        )
    return stages


def _unfreeze_stage(raw: str | int, backbone: Backbone | HubBackbone) -> Unfreeze:
    value = str(raw).strip()
    if re.fullmatch(r"[+-]?\d+", value):
        blocks = int(value)
        if blocks < 1 and backbone.num_blocks is None:
            raise SpecError("unfreeze", f"{blocks}: give 1 or more blocks, or 'all'")
        if backbone.num_blocks is not None and not 1 <= blocks <= backbone.num_blocks:
            raise SpecError(
                "unfreeze",
                f"{blocks}: {backbone.name} has {backbone.num_blocks} blocks; "
                f"give 1 to {backbone.num_blocks}, 'all' or a layer name",
            )
        return blocks
    if value.lower() == "all":
        return "all"
    if not value:
        raise SpecError(
            "unfreeze", "empty value; give a number of blocks, 'all' or a layer name"
        )
    if isinstance(backbone, HubBackbone):
        raise SpecError(
            "unfreeze",
            f"{value!r}: a KerasHub backbone unfreezes a number of blocks or 'all'",
        )
    starts = backbones.block_starts(backbone.name)
    if value in starts:
        return value
    close = closest_names(value, starts)
    hint = (
        f"did you mean {' or '.join(close)}?"
        if close
        else f"give the first layer of a block: {starts[0]} ... {starts[-1]}"
    )
    raise SpecError(
        "unfreeze", f"{value!r} does not start a block of {backbone.name}; {hint}"
    )
