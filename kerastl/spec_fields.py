"""`Spec`: the fields of one generated script, each carrying its `Option`.

The fields of `Spec` are the options of `kerastl new`, in order: each field's
`Option` (its metadata) says how the option is typed on the command line and
written into the script's header, so adding an option is one field.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from kerastl import __version__, backbones
from kerastl.backbones import Backbone
from kerastl.errors import KerastlError
from kerastl.hub import HubBackbone
from kerastl.option import MODES, TRAINING_MODES, UNFREEZE_MODES, Option
from kerastl.shell import shell_join
from kerastl.tasks import TASK_NAMES, TASKS, Task

WEIGHTS = ("imagenet", "none")

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
