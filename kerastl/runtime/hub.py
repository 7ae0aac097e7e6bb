"""KerasHub backbones in the eight steps: loading, normalization, pooling, blocks.

Each KerasHub family's facts (its backbone class, the encoder attribute that
lists its transformer blocks, its pooling) are entries of `families.json` with
`"source": "keras_hub"`, the table kerastl's generator reads too. The base
model of an image-and-text family (SigLIP, CLIP) is its image tower, of the
family's `tower_class`. Nothing here imports keras_hub: a script that uses a
KerasHub backbone imports it.
"""

import json
from pathlib import Path

import keras

from .errors import ScriptError

_FAMILIES = [
    family
    for family in json.loads(
        Path(__file__).with_name("families.json").read_text(encoding="utf-8")
    )
    if family.get("source") == "keras_hub"
]
#: The class of each family's base model: its image tower's, or the backbone's.
_BASE_CLASSES = {
    family.get("tower_class") or family["backbone_class"]: family
    for family in _FAMILIES
}
#: Each base model class to the attribute of its encoder that lists its
#: transformer blocks in order (`families.json`).
BLOCK_LISTS: dict[str, str] = {
    name: family["blocks"] for name, family in _BASE_CLASSES.items()
}
#: Image towers, which list their blocks themselves (no encoder layer inside).
IMAGE_TOWERS = {
    family["tower_class"] for family in _FAMILIES if family.get("tower_class")
}
#: The classes whose embeddings stay frozen when their first block unfreezes.
FROZEN_EMBEDDINGS = {
    family["backbone_class"] for family in _FAMILIES if not family["trains_embeddings"]
}


def converter_rescaling(
    converter: keras.layers.Layer, name: str = "normalize"
) -> keras.layers.Rescaling:
    """A `Rescaling` layer that scales and shifts pixels as `converter` does.

    The image converter of a KerasHub preset also resizes; the data pipeline
    already gives images of the model's size, so only its `scale` and `offset`
    (one number, or one per channel) go into the model, as a Keras layer that
    `keras.models.load_model` and every export read.
    """
    scale = 1.0 if converter.scale is None else converter.scale
    offset = 0.0 if converter.offset is None else converter.offset
    as_data = [
        (
            [float(value) for value in item]
            if isinstance(item, list | tuple)
            else float(item)
        )
        for item in (scale, offset)
    ]
    return keras.layers.Rescaling(*as_data, name=name)


def check_image_size(base_model: keras.Model, image_size: int) -> None:
    """Checks that an image tower takes `--image-size` images.

    An image tower's size is fixed by its preset (its position embeddings are
    learned at that size), with pretrained or random weights.

    Raises:
        ScriptError: If `image_size` is not the tower's.
    """
    size = int(base_model.image_shape[0])
    if size != image_size:
        raise ScriptError(
            f"--image-size {image_size}: {base_model.name} takes {size} px images, "
            f"the size of its preset; use --image-size {size}"
        )


def pool_tokens(tokens, base_model: keras.Model, name: str = "token_pool"):
    """Pools the base model's output as its family does (`"pooling"`).

    - `"class-and-patches"` (DINOv2, DINOv3, ViT, and any other base): the
      class token beside the mean of the patch tokens, as DINOv2's linear
      evaluation pools them; register tokens sit between them, left out.
    - `"attention-head"` (SigLIP): the image tower pooled already, with its
      own attention-pooling head; its output is kept as it is.
    - `"class-token"` (CLIP): the class token, as CLIP's own pooler takes it.

    Keras layers only, so the model saves and loads without custom objects.

    Args:
        tokens: The base model's output, `(batch, tokens, features)`, or
            `(batch, features)` for a base that pools itself.
        base_model: The KerasHub backbone or image tower.
        name: The name of the layer whose output is the pooled vector.
    """
    family = _BASE_CLASSES.get(type(base_model).__name__, {})
    pooling = family.get("pooling", "class-and-patches")
    if pooling == "attention-head":
        return keras.layers.Identity(name=name)(tokens)
    if not getattr(base_model, "use_class_token", True):
        raise ScriptError(f"{base_model.name} has no class token to pool")
    count = int(tokens.shape[1])
    prefix = 1 + int(getattr(base_model, "num_register_tokens", 0))
    class_token = keras.layers.Cropping1D((0, count - 1), name="class_token")(tokens)
    if pooling == "class-token":
        return keras.layers.Flatten(name=name)(class_token)
    class_token = keras.layers.Flatten(name="class_token_flat")(class_token)
    patches = keras.layers.Cropping1D((prefix, 0), name="patch_tokens")(tokens)
    patch_mean = keras.layers.GlobalAveragePooling1D(name="patch_mean")(patches)
    return keras.layers.Concatenate(name=name)([class_token, patch_mean])


def is_hub_backbone(base: keras.Model) -> bool:
    """Whether `base` is a KerasHub backbone kerastl knows the blocks of."""
    return type(base).__name__ in BLOCK_LISTS and type(base).__module__.startswith(
        "keras_hub"
    )


def _encoder(base: keras.Model) -> tuple[keras.layers.Layer, list[keras.layers.Layer]]:
    """The layer of `base` that holds the transformer blocks, and the blocks."""
    attribute = BLOCK_LISTS[type(base).__name__]
    if type(base).__name__ in IMAGE_TOWERS:
        return base, list(getattr(base, attribute))
    for layer in base.layers:
        blocks = getattr(layer, attribute, None)
        if layer is not base and isinstance(blocks, list) and blocks:
            return layer, list(blocks)
    raise ScriptError(f"{base.name} has no layer listing its blocks as {attribute!r}")


def transformer_blocks(base: keras.Model) -> list[keras.layers.Layer]:
    """The transformer blocks of a KerasHub backbone, from the input up."""
    return _encoder(base)[1]


def hub_blocks(base: keras.Model) -> dict[str, list[keras.layers.Layer]]:
    """The layers of a KerasHub backbone grouped into its blocks, in order.

    Each transformer block is one block; the layers before the blocks (the
    patch embedding) join the first, and the layers after the last block (the
    final normalization, an image tower's pooling head) join the last, as
    `find_blocks` groups the stem and the top of a `keras.applications` model.
    """
    encoder, blocks = _encoder(base)
    outer = [
        layer for layer in base.layers if not isinstance(layer, keras.layers.InputLayer)
    ]
    positions = [id(layer) for layer in outer]
    if encoder is base:  # an image tower: the blocks are its own layers
        first, last = positions.index(id(blocks[0])), positions.index(id(blocks[-1]))
        top = []
    else:
        block_ids = {id(block) for block in blocks}
        top = [layer for layer in _sublayers(encoder) if id(layer) not in block_ids]
        first = last = positions.index(id(encoder))
    groups = {block.name: [block] for block in blocks}
    groups[blocks[0].name] = outer[:first] + groups[blocks[0].name]
    groups[blocks[-1].name] += top + outer[last + 1 :]
    return groups


def tower_cut(base: keras.layers.Layer):
    """Where Grad-CAM cuts inside an image tower: the tokens entering its last block.

    The patch tokens of an image tower's output do not reach the head
    (SigLIP's output is pooled already; CLIP's head reads its class token
    alone, so the patch tokens' gradients are 0). The tokens entering the last
    block reach the pooled vector through that block's attention, where
    Grad-CAM for ViTs cuts (jacobgil/pytorch-grad-cam: `blocks[-1].norm1`).

    Returns:
        The tokens and the rest of the tower from them, or None for any other base.
    """
    if type(base).__name__ not in IMAGE_TOWERS:
        return None
    last = _encoder(base)[1][-1]
    tokens = last.input
    # The tokens' true count: SigLIP's embedding (keras-hub 0.32) reports one
    # token too many, a class token it does not have; CLIP's has one.
    count = int(base.embedding.num_positions)
    inner = x = keras.Input((count, tokens.shape[-1]), dtype=tokens.dtype)
    layers = base.layers
    for layer in layers[[id(layer) for layer in layers].index(id(last)) :]:
        x = layer(x)  # the rest of the tower: its last block and what follows
    return tokens, keras.Model(inner, x)


def frozen_embeddings(base: keras.Model) -> list[keras.layers.Layer]:
    """The layers of `base` that stay frozen when its blocks unfreeze.

    DINOv2 (keras-hub 0.32) trains a copy of its position embeddings
    interpolated to the image size, and rebuilds that copy from the saved
    originals when it loads: trained, they do not survive a save and reload
    (the check of `save_model_checked` fails). Its layers before the encoder
    (patch and position embeddings, class and register tokens) stay frozen,
    as BatchNormalization does in the CNNs.
    """
    if not is_hub_backbone(base) or type(base).__name__ not in FROZEN_EMBEDDINGS:
        return []
    encoder, _ = _encoder(base)
    outer = [
        layer for layer in base.layers if not isinstance(layer, keras.layers.InputLayer)
    ]
    return outer[: [id(layer) for layer in outer].index(id(encoder))]


def _sublayers(layer: keras.layers.Layer) -> list[keras.layers.Layer]:
    """The layers `layer` holds as attributes (one each, not in lists)."""
    return [
        value for value in vars(layer).values() if isinstance(value, keras.layers.Layer)
    ]
