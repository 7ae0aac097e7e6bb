"""KerasHub presets as backbones: which preset `--backbone` names, and its facts.

`--backbone` takes a KerasHub image preset as well as a `keras.applications`
name: a preset name of `HUB_PRESETS_FILE` (`dinov2_small`), an `hf://` or
`kaggle://` handle, or a local preset folder written by `save_to_preset` (its
`config.json` names the backbone class). The facts of each family (its
backbone class, image converter, pooling, blocks) are entries of the family
table, `runtime/families.json`, with `"source": "keras_hub"`.

Pure data: never imports keras_hub or TensorFlow (`kerastl.hub_presets`
writes the preset table from KerasHub's own).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kerastl.errors import KerastlError
from kerastl.hub_family import HUB_FAMILIES, HubFamily
from kerastl.hub_presets import HUB_PRESETS_FILE, size_in_name

#: How to install what a KerasHub backbone needs.
INSTALL_HINT = "pip install 'kerastl[hub]'"


class HubPresetError(KerastlError, ValueError):
    """A KerasHub preset that kerastl cannot use; the message is one line."""


class MissingHubError(KerastlError):
    """A KerasHub preset asked for where keras-hub is not installed: not a
    usage error, an install to make; the message is one line."""


@dataclass(frozen=True)
class HubBackbone:
    """One KerasHub preset as a backbone, and the facts a script needs.

    Attributes:
        preset: The preset as given: a name, a handle or a folder.
        name: A short name for titles and file names (`dinov2_small`).
        family: The facts of its backbone class.
        default_size: The preset's image size.
        num_blocks: Transformer blocks, where known without a download (a
            local folder's `config.json`), else None.
        params: Parameters of the backbone, where known.
        description: KerasHub's description of the preset.
    """

    preset: str
    name: str
    family: HubFamily
    default_size: int
    num_blocks: int | None = None
    params: int | None = None
    description: str = ""
    min_size: int = 32

    #: How the templates' words describe its weights.
    pretrained = "a pretrained KerasHub backbone"
    #: The pooling layer of step 6, whose outputs the feature cache keeps.
    pooling_layer = "token_pool"
    #: The layers that take LoRA adapters (`runtime.add_lora`), in words.
    lora_targets = "query and value layers of the top --unfreeze blocks"

    @property
    def source(self) -> str:
        """Where the backbone comes from: `"keras_hub"`."""
        return self.family.source


@functools.cache
def preset_table() -> dict[str, Any]:
    """`HUB_PRESETS_FILE`: the keras-hub version and its image presets."""
    table: dict[str, Any] = json.loads(HUB_PRESETS_FILE.read_text(encoding="utf-8"))
    return table


def presets() -> dict[str, HubBackbone]:
    """Every KerasHub image preset kerastl supports, by name."""
    return {
        name: HubBackbone(
            preset=name,
            name=name,
            family=HUB_FAMILIES[facts["backbone_class"]],
            default_size=facts["image_size"],
            params=facts["params"],
            description=facts["description"],
        )
        for name, facts in preset_table()["presets"].items()
    }


def keras_hub_version() -> str:
    """The keras-hub version whose preset tables `presets()` lists."""
    return str(preset_table()["keras_hub"])


def is_hub_preset(text: str) -> bool:
    """Whether `text` names a KerasHub preset: a name, a handle or a folder."""
    return (
        text in preset_table()["presets"]
        or "://" in text
        or (Path(text) / "config.json").is_file()
    )


def find(text: str) -> HubBackbone:
    """The KerasHub backbone of `--backbone text`, checked to be installed.

    Raises:
        MissingHubError: If keras-hub is not installed.
        HubPresetError: If the preset is not one of a supported image backbone
            class.
    """
    if importlib.util.find_spec("keras_hub") is None:
        raise MissingHubError(
            f"{text} is a KerasHub preset and keras-hub is not installed: "
            f"{INSTALL_HINT}"
        )
    return resolve(text)


def resolve(text: str) -> HubBackbone:
    """The KerasHub backbone `text` names, installed or not (`find` checks).

    Raises:
        HubPresetError: If it is not a preset of a supported image backbone class.
    """
    known = presets()
    if text in known:
        return known[text]
    if "://" in text:
        return _from_handle(text, known)
    return _from_folder(text)


def _from_handle(handle: str, known: dict[str, HubBackbone]) -> HubBackbone:
    """A handle: one of the table's Kaggle handles, or a family named in it."""
    unversioned = re.sub(r"/\d+$", "", handle)
    for preset_name, facts in preset_table()["presets"].items():
        if re.sub(r"/\d+$", "", facts["kaggle_handle"]) == unversioned:
            entry = known[preset_name]
            return HubBackbone(handle, entry.name, entry.family, entry.default_size)
    name = _short_name(re.sub(r"/\d+$", "", handle).rstrip("/").rsplit("/", 1)[-1])
    for family in HUB_FAMILIES.values():  # DINOv2, DINOv3, SigLIP, CLIP before ViT
        if family.name.lower() in handle.lower():
            size = size_in_name(name, family.default_size)
            return HubBackbone(handle, name, family, size)
    raise HubPresetError(
        f"cannot tell the backbone class of {handle} without downloading it; "
        "download the preset into a folder and pass the folder"
    )


def _from_folder(folder: str) -> HubBackbone:
    """A local preset folder: its `config.json` names the class and its sizes."""
    config_file = Path(folder) / "config.json"
    try:
        saved = json.loads(config_file.read_text(encoding="utf-8"))
        class_name, config = saved["class_name"], saved["config"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise HubPresetError(
            f"{config_file} is not a KerasHub preset's config ({error})"
        ) from None
    family = HUB_FAMILIES.get(class_name)
    if family is None:
        raise HubPresetError(
            f"{folder} holds a {class_name}; kerastl takes these KerasHub "
            f"backbones: {', '.join(HUB_FAMILIES)}"
        )
    if family.image_tower:  # the sizes are those of its image tower
        config = config.get(family.image_tower, {}).get("config", {})
    shape = config.get("image_shape") or [family.default_size]
    return HubBackbone(
        preset=str(Path(folder).resolve()),  # the script may run from elsewhere
        name=_short_name(Path(folder).resolve().name),
        family=family,
        default_size=int(shape[0]),
        num_blocks=config.get("num_layers"),
    )


def _short_name(text: str) -> str:
    """`text` as a file name's part: lower case letters, digits and `_`."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "preset"
