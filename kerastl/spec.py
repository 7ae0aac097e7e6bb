"""The validated settings of one generated script: what the templates receive.

The fields of `Spec` are the options of `kerastl new`, in order: each field's
`Option` (its metadata) says how the option is typed on the command line and
written into the script's header, so adding an option is one field.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from kerastl import __version__, backbones, hub
from kerastl.backbones import Backbone
from kerastl.errors import KerastlError
from kerastl.hub import HubBackbone
from kerastl.shell import shell_join
from kerastl.tasks import TASK_NAMES, TASKS, Task

MODES = ("as-is", "feature-extraction", "fine-tune", "lora")
TRAINING_MODES = ("feature-extraction", "fine-tune", "lora")
UNFREEZE_MODES = ("fine-tune", "lora")  # lora: the blocks that take adapters
WEIGHTS = ("imagenet", "none")
MAX_IMAGE_SIZE = 2048
MAX_CLASSES = 100_000

Unfreeze = int | str  # top blocks, "all", or the first layer to unfreeze


class SpecError(KerastlError, ValueError):
    """A setting that cannot produce a valid script; the message is one line.

    Attributes:
        option: The `Spec` field whose value is wrong, e.g. `"image_size"`.
        detail: What is wrong with it, without the option's name.
    """

    def __init__(self, option: str, detail: str) -> None:
        super().__init__(f"{OPTIONS[option].flags[-1]} {detail}")
        self.option = option
        self.detail = detail


@dataclass(frozen=True)
class Option:
    """How one `Spec` field is typed on the command line and kept in the header.

    Attributes:
        flags: The option's names; the first is the one the regenerate command uses.
        metavar: The value's placeholder in `--help`, or None for a switch.
        help: The `--help` text.
        default: The value when the option is left out, as a user would type it.
        show_default: Whether `--help` prints `default`.
        multiple: Whether the option may be repeated.
        choices: The values shell completion offers, or None.
        modes: The modes whose regenerate command writes the option.
        last: Written after every other option in the regenerate command.
    """

    flags: tuple[str, ...]
    metavar: str | None
    help: str
    default: Any = None
    show_default: bool = False
    multiple: bool = False
    choices: tuple[str, ...] | None = None
    modes: tuple[str, ...] = MODES
    last: bool = False

    @property
    def is_flag(self) -> bool:
        """A switch: present or not, with no value."""
        return self.metavar is None

    def command_args(self, value: object) -> list[str]:
        """The arguments that give `value` (as in the header) on the command line."""
        if value is None or value is False:
            return []
        if value is True:
            return [self.flags[0]]
        values = value if isinstance(value, list) else [value]
        return [arg for item in values for arg in (self.flags[0], str(item))]


def _option(**settings: Any) -> dict[str, Option]:
    """A `Spec` field's metadata: its `Option`."""
    return {"option": Option(**settings)}


@dataclass(frozen=True)
class Spec:
    """Everything that decides the content of one generated script.

    Rendering is a pure function of a `Spec` and the templates.

    Attributes:
        mode: One of `MODES`.
        task: One of `kerastl.tasks.TASK_NAMES` (training modes only).
        backbone: The registry entry of the backbone.
        image_size: Input height and width in pixels.
        num_classes: Number of classes, or None to count them in the data.
        weights: The script's default `--weights`: `"imagenet"` or `"none"`.
        unfreeze: Fine-tuning stages, in order (fine-tune mode); lora mode:
            one, the blocks that take adapters.
        data_dir: The script's default data folder (or images, as-is), if any.
        output: The output path as given, recorded in the header.
        standalone: Copy the runtime beside the script so it needs only Keras.
    """

    mode: str = field(
        metadata=_option(
            flags=("--mode",),
            metavar="MODE",
            help=" | ".join(MODES),
            default="fine-tune",
            show_default=True,
            choices=MODES,
        )
    )
    task: str = field(
        metadata=_option(
            flags=("--task",),
            metavar="TASK",
            help=(
                "single-label: one class per image | multi-label: any number, "
                "a sigmoid per class"
            ),
            default=TASK_NAMES[0],
            show_default=True,
            choices=TASK_NAMES,
            modes=TRAINING_MODES,
        )
    )
    backbone: Backbone | HubBackbone = field(
        metadata=_option(
            flags=("--backbone",),
            metavar="NAME",
            help=(
                "Any keras.applications model, case-insensitive, or a KerasHub "
                "preset: a name, an hf:// or kaggle:// handle, or a folder "
                "(see `kerastl list`)."
            ),
            default="EfficientNetV2B0",
            show_default=True,
            choices=tuple(backbones.BACKBONES),
        )
    )
    image_size: int = field(
        metadata=_option(
            flags=("--image-size",),
            metavar="N",
            help="Input size in pixels.  [default: the backbone's native size]",
            modes=TRAINING_MODES,
        )
    )
    num_classes: int | None = field(
        metadata=_option(
            flags=("--num-classes",),
            metavar="N",
            help="Number of classes.  [default: counted in the data]",
            modes=TRAINING_MODES,
        )
    )
    weights: str = field(
        metadata=_option(
            flags=("--weights",),
            metavar="WEIGHTS",
            help=(
                "The script's default --weights: "
                + " | ".join(WEIGHTS)
                + "; the script's --weights also takes a weights file "
                "(KerasHub: imagenet is the preset's own weights, and it takes "
                "any preset of the architecture)."
            ),
            default="imagenet",
            show_default=True,
            choices=WEIGHTS,
        )
    )
    unfreeze: tuple[Unfreeze, ...] = field(
        metadata=_option(
            flags=("--unfreeze",),
            metavar="STAGE",
            help=(
                "A fine-tuning stage: top N blocks, 'all', or the layer that starts a "
                "block. Repeat for gradual unfreezing. With --mode lora, once: the "
                "blocks that take adapters.  [default: the top quarter of the blocks]"
            ),
            default=(),
            multiple=True,
            modes=UNFREEZE_MODES,
        )
    )
    data_dir: str | None = field(
        metadata=_option(
            flags=("--data-dir",),
            metavar="PATH",
            help="The script's default data folder (as-is: images).",
        )
    )
    output: str = field(
        metadata=_option(
            flags=("-o", "--output"),
            metavar="FILE",
            help="File to write.  [default: train_<backbone>_<mode>.py]",
            last=True,
        )
    )
    standalone: bool = field(
        metadata=_option(
            flags=("--standalone",),
            metavar=None,
            help="Copy kerastl.runtime beside the script, as kerastl_runtime/.",
            default=False,
        )
    )

    @property
    def template_name(self) -> str:
        """The template that renders this mode."""
        return self.mode.replace("-", "_") + ".py.jinja"

    @property
    def task_facts(self) -> Task:
        """What the task writes into the script (`kerastl.tasks`)."""
        return TASKS[self.task]

    @property
    def slug(self) -> str:
        """A short name for files and folders: `efficientnetv2b0_fine_tune`."""
        return f"{self.backbone.name.lower()}_{self.mode.replace('-', '_')}"

    def options(self) -> dict[str, object]:
        """The full resolved options, recorded as data in the script's header."""
        return {"kerastl": __version__} | {
            name: _header_value(getattr(self, name)) for name in OPTIONS
        }

    def command(self) -> str:
        """The `kerastl new` command that regenerates this script, on one line."""
        values = self.options()
        args = ["kerastl", "new"]
        for name, option in sorted(OPTIONS.items(), key=lambda item: item[1].last):
            if self.mode in option.modes:
                args += option.command_args(values[name])
        return shell_join(args)

    def run_command(self) -> str:
        """How to run the script, on one line."""
        args = ["python", self.output]
        if self.data_dir is None:
            args += _placeholder(self.mode)
        return shell_join(args)


#: The options of `kerastl new`, in order: `Spec`'s fields and their metadata.
OPTIONS: dict[str, Option] = {
    spec_field.name: spec_field.metadata["option"]
    for spec_field in dataclasses.fields(Spec)
}


def _header_value(value: object) -> object:
    if isinstance(value, Backbone):
        return value.name
    if isinstance(value, HubBackbone):
        return value.preset
    if isinstance(value, tuple):
        return list(value)
    return value


def _placeholder(mode: str) -> list[str]:
    return ["--images", "IMAGES"] if mode == "as-is" else ["--data-dir", "DATA_DIR"]


def default_output(mode: str, backbone_name: str) -> str:
    """The default file name: `train_<backbone>_<mode>.py`, `predict_<backbone>.py`."""
    name = backbone_name.lower()
    if mode == "as-is":
        return f"predict_{name}.py"
    return f"train_{name}_{mode.replace('-', '_')}.py"


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
    stages = _unfreeze_stages(unfreeze, entry) if mode in UNFREEZE_MODES else ()
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


#: KerasHub presets' blocks are unknown without a download: a quarter of 12,
#: the depth of ViT-S and ViT-B, is the default stage.
HUB_DEFAULT_UNFREEZE = 3


def default_unfreeze(backbone: Backbone | HubBackbone) -> int:
    """Default fine-tuning stage: the top quarter of the blocks, at least one."""
    if backbone.num_blocks is None:
        return HUB_DEFAULT_UNFREEZE
    return max(1, round(backbone.num_blocks / 4))


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
        close = backbones.closest_names(text, names)
        hint = f"did you mean: {', '.join(close)}" if close else "run `kerastl list`"
        raise SpecError("backbone", f"unknown backbone {text!r}; {hint}") from None


def _unfreeze_stages(
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
    close = backbones.closest_names(value, starts)
    hint = (
        f"did you mean {' or '.join(close)}?"
        if close
        else f"give the first layer of a block: {starts[0]} ... {starts[-1]}"
    )
    raise SpecError(
        "unfreeze", f"{value!r} does not start a block of {backbone.name}; {hint}"
    )


def _choice(option: str, value: str, choices: tuple[str, ...]) -> str:
    normalized = value.strip().lower().replace("_", "-")
    if normalized in choices:
        return normalized
    close = backbones.closest_names(normalized, choices, limit=2, cutoff=0.4)
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
