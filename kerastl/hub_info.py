"""What `kerastl info` shows about a KerasHub preset (`kerastl.hub`)."""

from __future__ import annotations

from kerastl import hub
from kerastl.hub_pooling import POOLINGS


def facts(entry: hub.HubBackbone) -> dict[str, object]:
    """What `kerastl info` shows about a KerasHub backbone."""
    family = entry.family
    blocks = "unknown until loaded" if entry.num_blocks is None else entry.num_blocks
    return {
        "name": entry.name,
        "preset": entry.preset,
        "source": _source(entry),
        "family": family.name,
        "class": f"keras_hub.models.{family.backbone_class}",
        "image_tower": _tower(family),
        "image_converter": f"keras_hub.layers.{family.image_converter}",
        "image_size": entry.default_size,
        "params": _params(entry),
        "pooling": POOLINGS[family.pooling].summary,
        "num_blocks": blocks,
        "optimizer": family.optimizer,
        "head_learning_rate": family.head_learning_rate,
        "fine_tune_learning_rate": family.fine_tune_learning_rate,
        "description": entry.description or "-",
    }


def _source(entry: hub.HubBackbone) -> str:
    """Where `facts` come from, in words."""
    if entry.preset in hub.preset_table()["presets"]:
        return f"KerasHub {hub.keras_hub_version()}'s preset table (nothing downloaded)"
    if "://" in entry.preset:
        return "the handle's name; KerasHub reads the preset at run time"
    return "the folder's config.json"


def _tower(family: hub.HubFamily) -> str:
    """The base model of a family, in words: the backbone or its image tower."""
    if family.image_tower is None:
        return "the backbone itself"
    return f"{family.image_tower} ({family.tower_class}); the text tower is left out"


def _params(entry: hub.HubBackbone) -> str:
    """The preset's parameters: of both towers for an image-and-text model."""
    if entry.params is None:
        return "unknown"
    towers = " (image and text towers)" if entry.family.image_tower else ""
    return f"{entry.params:,}{towers}"
