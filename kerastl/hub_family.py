"""The facts of each KerasHub backbone family, from the one family table
(`runtime/families.json`, its entries with `"source": "keras_hub"`).

Pure data: never imports keras_hub or TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass

from kerastl.backbones import FAMILY_ENTRIES
from kerastl.hub_pooling import POOLINGS


@dataclass(frozen=True)
class HubFamily:
    """Facts shared by the presets of one KerasHub backbone class.

    Attributes:
        name: Family name (`DINOv2`).
        source: Always `"keras_hub"`.
        backbone_class: The class in `keras_hub.models` (`DINOV2Backbone`).
        image_converter: Its image converter in `keras_hub.layers`.
        pooling: How step 6 pools the tokens: a key of `POOLINGS`.
        blocks: The attribute of the encoder layer that lists the transformer
            blocks, in order (`kerastl.runtime.transformer_blocks`).
        input_name: The name of its one input, if it takes a dict, else None.
        trains_embeddings: Whether its patch and position embeddings may train
            (`kerastl.runtime.frozen_embeddings`).
        default_size: Input size of presets whose name gives none.
        needs_preset_size: Whether pretrained weights only load at the preset's
            image size (learned position embeddings, not interpolated).
        optimizer: Name of the `keras.optimizers` class used by default.
        head_learning_rate: Default learning rate while only the head trains.
        fine_tune_learning_rate: Default learning rate once blocks are unfrozen.
        image_tower: For an image-and-text backbone (SigLIP, CLIP), the
            attribute that holds its image tower, the base model; else None.
        tower_class: The class of that image tower (`SigLIPVisionEncoder`).
    """

    name: str
    source: str
    backbone_class: str
    image_converter: str
    pooling: str
    blocks: str
    input_name: str | None
    trains_embeddings: bool
    default_size: int
    needs_preset_size: bool
    optimizer: str
    head_learning_rate: float
    fine_tune_learning_rate: float
    image_tower: str | None = None
    tower_class: str | None = None

    @property
    def fixed_size(self) -> bool:
        """Whether the preset fixes the image size, random weights or not.

        `from_preset(image_shape=...)` resizes a one-tower backbone; an image
        tower's size is its own config's, which that argument does not reach.
        """
        return self.image_tower is not None

    @property
    def pooling_comment(self) -> tuple[str, ...]:
        """The comment of step 6: how and why it pools (`POOLINGS`)."""
        return POOLINGS[self.pooling].step

    @property
    def imagenet_needs_default_size(self) -> bool:
        """`Family`'s name for `needs_preset_size` (`--weights imagenet`: the preset's)."""
        return self.needs_preset_size


HUB_FAMILIES: dict[str, HubFamily] = {
    facts["backbone_class"]: HubFamily(**facts)
    for facts in FAMILY_ENTRIES
    if facts.get("source") == "keras_hub"
}
