"""Writes `hub_presets.json`: KerasHub's image presets, read from its own tables.

Regenerate it after upgrading keras-hub (the one command that imports it):

    python -m kerastl.hub_presets

Each preset of a backbone class that `families.json` names (`"source":
"keras_hub"`) is written with its class, parameters and description as
KerasHub's preset table gives them, its Kaggle handle, and its image size: the
number in its name (`vit_base_patch16_384_imagenet`), else its family's
`default_size`. The file records the keras-hub version it was read from.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from kerastl.backbones import FAMILY_ENTRIES

#: The table `kerastl.hub` reads; written by `main()`.
HUB_PRESETS_FILE = Path(__file__).with_name("hub_presets.json")


def preset_table(presets_by_class: dict[str, dict[str, Any]], version: str) -> dict:
    """The content of `HUB_PRESETS_FILE`, from KerasHub's preset tables.

    Args:
        presets_by_class: Each backbone class name to its `presets` table
            (KerasHub's `Backbone.presets`: name to `metadata`, `kaggle_handle`).
        version: The keras-hub version the tables come from.
    """
    families = [facts for facts in FAMILY_ENTRIES if facts.get("source") == "keras_hub"]
    table: dict[str, dict[str, Any]] = {}
    for family in families:
        presets = presets_by_class.get(family["backbone_class"], {})
        for name, preset in sorted(presets.items()):
            table[name] = {
                "backbone_class": family["backbone_class"],
                "image_size": size_in_name(name, family["default_size"]),
                "params": preset["metadata"]["params"],
                "description": " ".join(preset["metadata"]["description"].split()),
                "kaggle_handle": preset["kaggle_handle"],
            }
    return {"keras_hub": version, "presets": table}


def size_in_name(name: str, default: int) -> int:
    """The image size a preset's name gives (`vit_base_patch16_384`), else `default`."""
    size = re.search(r"_(\d{3})(?:_|$)", name)
    return int(size.group(1)) if size else default


def installed_table() -> dict:
    """`preset_table` of the installed keras-hub (imports it: seconds)."""
    import keras_hub

    classes = {
        facts["backbone_class"]
        for facts in FAMILY_ENTRIES
        if facts.get("source") == "keras_hub"
    }
    presets = {name: dict(getattr(keras_hub.models, name).presets) for name in classes}
    return preset_table(presets, keras_hub.__version__)


def main() -> None:
    """Writes `HUB_PRESETS_FILE` from the installed keras-hub."""
    table = installed_table()
    HUB_PRESETS_FILE.write_text(json.dumps(table, indent=2) + "\n", encoding="utf-8")
    print(
        f"Wrote {len(table['presets'])} presets of keras-hub {table['keras_hub']} "
        f"to {HUB_PRESETS_FILE}"
    )


if __name__ == "__main__":
    main()
