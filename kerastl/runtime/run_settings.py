"""The settings of the run, declared once for every training script.

A generated script declares its recipe (the data, the model, its training)
in a `Settings` dataclass that extends `RunSettings`, as Hugging Face's
example scripts extend `TrainingArguments`:

    @dataclass(frozen=True)
    class Settings(runtime.RunSettings):
        output_dir: str = runtime.run_setting("output_dir", "runs/resnet50_fine_tune")
        epochs: int = runtime.setting(10, "epochs of the head", minimum=0)

Every field here is an option of the script like the recipe's own
(`--output-dir`, `--restart`, `--export`...), listed in `--help` under "the
run", recorded in `run.json` and shown by `kerastl compare`. To change one of
their defaults, pass the option, or redeclare the field in the script's
`Settings` with `run_setting(name, default)`, which keeps its help and checks
(or with a whole `setting(...)`, to change those too). A redeclared field
keeps its place among the run's settings.
"""

import dataclasses
from typing import Any, ClassVar

from .cache import CACHE_CHOICES
from .distribute import STRATEGIES
from .export import EXPORT_FORMATS, QUANTIZATIONS, export_format
from .platforms import VERTEX_AI_CHECKPOINT_DIR
from .precision import PRECISION_CHOICES
from .settings import setting
from .tta import TTA_CHOICES


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """Where the run goes, how it starts, what it reports and ships, and the
    hardware it runs on: none of it is the recipe."""

    settings_title: ClassVar[str] = "the run"
    settings_description: ClassVar[str] = (
        "Declared in runtime.RunSettings: to change a default, pass the option "
        "or redeclare the field in the script's Settings "
        '(seed: int = runtime.run_setting("seed", 42)).'
    )

    # Where it goes and how it starts.
    output_dir: str = setting(
        "runs/run",
        "the run's folder (a local path or a URL: gs://...)",
        output=True,
        trains=False,
        environment=VERTEX_AI_CHECKPOINT_DIR,
    )
    restart: bool = setting(False, "delete the run in --output-dir first", trains=False)
    seed: int = setting(1337, "seed of the split, shuffles and weights")
    find_lr: str | None = setting(
        None,
        "test learning rates for a phase instead of training (alone: head)",
        bare="head",
        metavar="PHASE",
        trains=False,
    )
    # What it reports and ships.
    tta: str = setting(
        "auto",
        "the report also averages each image with its mirror image "
        "(auto: when the training images were flipped, not with --no-augment)",
        choices=TTA_CHOICES,
        bare="on",
        trains=False,
    )
    export: tuple[str, ...] = setting(
        (),
        "also export the shipped model",
        parse=export_format,
        choices=EXPORT_FORMATS,
        trains=False,
    )
    quantize: str = setting(
        "none",
        "the weights of the tflite export",
        choices=QUANTIZATIONS,
        trains=False,
        needs={"export": "tflite"},
        off="none",
    )
    # Speed and hardware.
    cache: str = setting(
        "auto", "where decoded images are kept", choices=CACHE_CHOICES, trains=False
    )
    mixed_precision: str = setting(
        "auto",
        "16-bit compute (auto: on GPUs and TPUs that gain)",
        choices=PRECISION_CHOICES,
    )
    jit_compile: bool = setting(
        False, "compile the training steps with XLA (measure: it often helps on a GPU)"
    )
    strategy: str = setting(
        "auto",
        "tf.distribute strategy (auto: mirrored on several GPUs)",
        choices=STRATEGIES,
    )
    tpu: str | None = setting(
        None,
        "the TPU's name or address",
        trains=False,
        needs={"strategy": "tpu"},
    )


def run_setting(name: str, default: Any) -> Any:
    """The field `name` of `RunSettings` with another default, to redeclare
    in a script's `Settings`: its help and checks stay.

    Args:
        name: A field of `RunSettings`, such as `"output_dir"`.
        default: The script's default.

    Raises:
        KeyError: If `RunSettings` has no field `name`.
    """
    fields = {field.name: field for field in dataclasses.fields(RunSettings)}
    if name not in fields:
        raise KeyError(f"RunSettings has no setting {name!r}: {', '.join(fields)}")
    if isinstance(default, list):  # a dataclass default must not be mutable
        default = tuple(default)
    return dataclasses.field(default=default, metadata=fields[name].metadata)
