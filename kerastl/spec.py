"""The validated settings of one generated script: what the templates receive.

`make_spec` checks the options of `kerastl new` as a user typed them and
returns a `Spec` (`kerastl.spec_fields`), whose fields carry their `Option`.
"""

from __future__ import annotations

import re
from typing import Any

from kerastl import backbones, hub
from kerastl.backbones import Backbone
from kerastl.closest_names import closest_names
from kerastl.hub import HubBackbone
from kerastl.option import MODES, TRAINING_MODES, UNFREEZE_MODES, Option
from kerastl.spec_fields import (
    OPTIONS,
    WEIGHTS,
    Spec,
    SpecError,
    Unfreeze,
    default_output,
)
from kerastl.tasks import TASK_NAMES
from kerastl.unfreeze_stages import (
    HUB_DEFAULT_UNFREEZE,
    default_unfreeze,
    unfreeze_stages,
)

__all__ = [
    "HUB_DEFAULT_UNFREEZE",
    "MAX_CLASSES",
    "MAX_IMAGE_SIZE",
    "MODES",
    "OPTIONS",
    "TRAINING_MODES",
    "UNFREEZE_MODES",
    "WEIGHTS",
    "Option",
    "Spec",
    "SpecError",
    "Unfreeze",
    "default_output",
    "default_unfreeze",
    "make_spec",
]

MAX_IMAGE_SIZE = 2048
MAX_CLASSES = 100_000


def make_spec(**options: Any) -> Spec:
    """Validates raw options (as typed by a user) into a `Spec`.

    Args:
        **options: Values for the fields of `Spec` (see `OPTIONS`), as strings
            or already typed; those left out take the option's default.

    Raises:
        SpecError: On the first invalid option, naming it and the valid choices.
        TypeError: For a name that is not an option.
    """
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise TypeError(f"make_spec() got unknown options: {', '.join(unknown)}")
    raw = {name: option.default for name, option in OPTIONS.items()} | options

    mode = _choice("mode", raw["mode"], MODES)
    task = _choice("task", raw["task"], TASK_NAMES)
    entry = _backbone(str(raw["backbone"]))
    weights = _choice("weights", raw["weights"], WEIGHTS)
    size = _optional_integer("image_size", raw["image_size"])
    classes = _optional_integer("num_classes", raw["num_classes"])
    unfreeze = tuple(raw["unfreeze"])

    if mode not in OPTIONS["unfreeze"].modes and unfreeze:
        raise SpecError("unfreeze", "applies to --mode fine-tune and lora only")
    if mode == "lora" and len(unfreeze) > 1:
        raise SpecError(
            "unfreeze", "is given once with --mode lora: the blocks that take adapters"
        )
    if mode == "as-is" and isinstance(entry, HubBackbone):
        raise SpecError(
            "mode",
            f"as-is: {entry.name} is a KerasHub backbone without a classifier; "
            "use --mode feature-extraction, fine-tune or lora",
        )
    if mode == "as-is":
        if size is not None and size != entry.default_size:
            raise SpecError(
                "image_size",
                f"{size}: as-is uses the ImageNet classifier of {entry.name}, "
                f"which takes {entry.default_size} px; leave --image-size out",
            )
        if classes is not None:
            raise SpecError("num_classes", "as-is predicts the 1000 ImageNet classes")
        if task != TASK_NAMES[0]:
            raise SpecError(
                "task", f"{task}: as-is predicts one ImageNet class per image"
            )
    size = entry.default_size if size is None else size
    if not entry.min_size <= size <= MAX_IMAGE_SIZE:
        raise SpecError(
            "image_size",
            f"{size}: {entry.name} takes {entry.min_size} to {MAX_IMAGE_SIZE} px",
        )
    fixed = isinstance(entry, HubBackbone) and entry.family.fixed_size
    if fixed and size != entry.default_size:
        raise SpecError(
            "image_size",
            f"{size}: {entry.name} is an image tower of {entry.default_size} px "
            "(its preset's size, whatever its weights); leave --image-size out",
        )
    if (
        entry.family.imagenet_needs_default_size
        and weights == "imagenet"
        and size != entry.default_size
    ):
        raise SpecError(
            "image_size",
            f"{size}: the ImageNet weights of {entry.name} need {entry.default_size} "
            f"px; use --image-size {entry.default_size} or --weights none",
        )
    if classes is not None and not 2 <= classes <= MAX_CLASSES:
        raise SpecError(
            "num_classes", f"{classes}: a classifier needs 2 to {MAX_CLASSES} classes"
        )
    stages = unfreeze_stages(unfreeze, entry) if mode in UNFREEZE_MODES else ()
    data_dir = raw["data_dir"]
    if data_dir is not None and not data_dir.strip():
        raise SpecError("data_dir", "the path is empty")
    output = raw["output"]
    return Spec(
        mode=mode,
        task=task,
        backbone=entry,
        image_size=size,
        num_classes=classes,
        weights=weights,
        unfreeze=stages,
        data_dir=data_dir,
        output=output if output is not None else default_output(mode, entry.name),
        standalone=bool(raw["standalone"]),
    )


def _backbone(text: str) -> Backbone | HubBackbone:
    """The `keras.applications` backbone or KerasHub preset that `text` names."""
    try:
        if hub.is_hub_preset(text):
            return hub.find(text)
        return backbones.get(text)
    except hub.HubPresetError as error:
        raise SpecError("backbone", str(error)) from None
    except backbones.UnknownBackboneError:
        names = (*backbones.BACKBONES, *hub.presets())
        close = closest_names(text, names)
        hint = f"did you mean: {', '.join(close)}" if close else "run `kerastl list`"
        raise SpecError("backbone", f"unknown backbone {text!r}; {hint}") from None


def _choice(option: str, value: str, choices: tuple[str, ...]) -> str:
    normalized = value.strip().lower().replace("_", "-")
    if normalized in choices:
        return normalized
    close = closest_names(normalized, choices, limit=2, cutoff=0.4)
    hint = (
        f"did you mean {' or '.join(close)}?"
        if close
        else f"choose from {', '.join(choices)}"
    )
    raise SpecError(option, f"{value!r}: {hint}")


def _optional_integer(option: str, value: int | str | None) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    text = str(value).strip()
    if not re.fullmatch(r"[+-]?\d+", text):
        raise SpecError(option, f"{value!r}: not a whole number")
    return int(text)
