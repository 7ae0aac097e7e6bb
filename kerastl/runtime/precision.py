"""Mixed precision: 16-bit computation where the hardware gains from it.

Keras's mixed policies compute in float16 or bfloat16 and keep the variables
in float32. Set the policy before the model is built: each layer takes the
global policy when it is created. The scripts' output layer asks for float32
itself, so predictions and the loss stay float32; under `mixed_float16`,
`Model.compile` wraps the optimizer in a `LossScaleOptimizer`, whose scale is
part of the optimizer state that the run's checkpoints save and restore.
"""

import keras
import tensorflow as tf

from .errors import ScriptError

PRECISION_CHOICES = ("auto", "off", "float16", "bfloat16")

_POLICIES = {"off": "float32", "float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}

# Tensor Cores, which make float16 fast, came with compute capability 7.0 (Volta).
_TENSOR_CORES = (7, 0)


def set_mixed_precision(choice: str) -> str:
    """Sets Keras's global dtype policy for `choice` and prints it, with why.

    Args:
        choice: "auto" (float16 on GPUs with Tensor Cores, bfloat16 on a TPU,
            off otherwise), "off", "float16" or "bfloat16".

    Returns:
        The policy's name: "float32", "mixed_float16" or "mixed_bfloat16".

    Raises:
        ScriptError: If `choice` is not one of `PRECISION_CHOICES`.
    """
    if choice not in PRECISION_CHOICES:
        raise ScriptError(
            f"mixed precision must be one of {', '.join(PRECISION_CHOICES)}, "
            f"not {choice!r}"
        )
    reason = "as asked"
    if choice == "auto":
        choice, reason = auto_precision()
    policy = _POLICIES[choice]
    keras.config.set_dtype_policy(policy)
    print(f"Precision: {policy} ({reason})")
    return policy


def auto_precision() -> tuple[str, str]:
    """What "auto" chooses on this machine: `(choice, reason)`."""
    if tf.config.list_logical_devices("TPU"):
        return "bfloat16", "auto: a TPU computes fastest in bfloat16"
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "off", "auto: no GPU or TPU, and most CPUs are slower in 16 bits"
    capabilities = [
        tf.config.experimental.get_device_details(gpu).get("compute_capability")
        for gpu in gpus
    ]
    if all(capability and capability >= _TENSOR_CORES for capability in capabilities):
        return "float16", (
            f"auto: GPU compute capability {min(capabilities)[0]}.{min(capabilities)[1]}"
            " has Tensor Cores"
        )
    return "off", "auto: a GPU without Tensor Cores gains little from float16"
