"""KerasHub backbones in the eight steps: loading, normalization, pooling, blocks.

Each KerasHub family's facts (its backbone class, the encoder attribute that
lists its transformer blocks) are entries of `families.json` with
`"source": "keras_hub"`, the table kerastl's generator reads too. Nothing
here imports keras_hub: a script that uses a KerasHub backbone imports it.
"""

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import keras

from .errors import ScriptError, WeightsError

_FAMILIES = [
    family
    for family in json.loads(
        Path(__file__).with_name("families.json").read_text(encoding="utf-8")
    )
    if family.get("source") == "keras_hub"
]
#: Each KerasHub backbone class to the attribute of its encoder that lists
#: its transformer blocks in order (`families.json`).
BLOCK_LISTS: dict[str, str] = {
    family["backbone_class"]: family["blocks"] for family in _FAMILIES
}
#: The classes whose embeddings stay frozen when their first block unfreezes.
FROZEN_EMBEDDINGS = {
    family["backbone_class"] for family in _FAMILIES if not family["trains_embeddings"]
}


def preset_option(value: str) -> str | None:
    """An argparse `type` for a KerasHub `--weights`: a preset, or `none` (None)."""
    return None if value == "none" else value


@contextlib.contextmanager
def loading_preset(preset: str) -> Iterator[None]:
    """Turns the ways `from_preset` fails into one line naming the preset.

    Raises:
        WeightsError: If the preset cannot be downloaded or read.
        ScriptError: If it is not a preset of the backbone class asked for.
    """
    try:
        yield
    except (OSError, ValueError, KeyError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
        if isinstance(error, ValueError) and "Saved preset has type" in reason:
            raise ScriptError(f"--weights {preset}: {reason}") from None
        raise WeightsError(
            f"could not load the KerasHub preset {preset} ({reason or type(error).__name__}); "
            "pass a local preset folder, or --weights none"
        ) from None


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


def pool_tokens(tokens, base_model: keras.Model, name: str = "token_pool"):
    """The class token beside the mean of the patch tokens, as DINOv2 evaluates.

    DINOv2's linear evaluation concatenates the class token with the average
    of the patch tokens; register tokens (DINOv2 with registers, DINOv3) sit
    between them and are left out. Keras layers only, so the model saves and
    loads without custom objects.

    Args:
        tokens: The base model's output, `(batch, tokens, features)`.
        base_model: The KerasHub backbone: its `num_register_tokens`, if any.
        name: The name of the layer whose output is the pooled vector.
    """
    if not getattr(base_model, "use_class_token", True):
        raise ScriptError(f"{base_model.name} has no class token to pool")
    count = int(tokens.shape[1])
    prefix = 1 + int(getattr(base_model, "num_register_tokens", 0))
    class_token = keras.layers.Cropping1D((0, count - 1), name="class_token")(tokens)
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

    Each transformer block is one block; the layers before the encoder (the
    patch embedding) join the first, and the layers after the last block (the
    final normalization) join the last, as `find_blocks` groups the stem and
    the top of a `keras.applications` model.
    """
    encoder, blocks = _encoder(base)
    block_ids = {id(block) for block in blocks}
    top = [layer for layer in _sublayers(encoder) if id(layer) not in block_ids]
    outer = [
        layer for layer in base.layers if not isinstance(layer, keras.layers.InputLayer)
    ]
    position = [id(layer) for layer in outer].index(id(encoder))
    groups = {block.name: [block] for block in blocks}
    groups[blocks[0].name] = outer[:position] + groups[blocks[0].name]
    groups[blocks[-1].name] += top + outer[position + 1 :]
    return groups


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
