"""Private Keras names the runtime relies on, each looked up through `private()`.

Keras offers no public way to read an optimizer's moving averages (`--ema`),
to draw a layer's augmentation from a given key (exact resume), or to train
one model under another strategy (multi-worker). The runtime reaches into
Keras there; where a Keras release drops or renames such a name, the user gets
one line naming the name and the Keras version, not an AttributeError mid-run.
"""

import importlib
from typing import Any

import keras

from .errors import ScriptError


class KerasInternalsError(ScriptError):
    """This Keras lacks a private name that the runtime relies on."""


def private(owner: Any, name: str, *, purpose: str) -> Any:
    """`owner.name`, a private attribute of Keras, or a one-line error without it.

    Args:
        owner: A Keras object, class or module.
        name: The attribute's name, e.g. `"_var_key"`.
        purpose: What needs it, for the message, e.g. `"--ema"`.

    Raises:
        KerasInternalsError: This Keras has no such attribute.
    """
    try:
        return getattr(owner, name)
    except AttributeError:
        where = getattr(owner, "__name__", None) or type(owner).__name__
        raise KerasInternalsError(missing(f"{where}.{name}", purpose)) from None


def private_module(name: str, *, purpose: str) -> Any:
    """The private Keras module `name` (`"keras.src...."`), or a one-line error."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise KerasInternalsError(missing(name, purpose)) from None


def missing(what: str, purpose: str) -> str:
    """The line that says which private name this Keras lacks, and what to do."""
    version = keras.version()
    major_minor = ".".join(version.split(".")[:2])
    return (
        f"{purpose} relies on Keras's private {what}, which keras {version} "
        f"does not have: pip install 'keras<{major_minor}' until kerastl supports it"
    )


# The kinds of objects whose attribute skipsets Keras's saving computes.
_SAVEABLE_KINDS = (
    "Layer",
    "Functional",
    "Sequential",
    "Operation",
    "Optimizer",
    "Metric",
    "Loss",
)


def reuse_saving_skipsets() -> None:
    """Lets Keras's saving and loading reuse the attributes they skip per kind.

    Keras 3 caches them under `saving_attr_skipset_*` but reads
    `saving_attr_skiplist_*`, so every save or load of weights builds a
    throwaway `Layer()` per layer it walks: a third of a checkpoint's time.
    This stores each skipset where it is read, for the calling thread (Keras's
    global state is per thread) and again after a `clear_session()`.
    Only an optimization: without these private names it does nothing.
    """
    try:
        from keras.src.backend.common import global_state
        from keras.src.saving.saving_lib import get_attr_skipset
    except ImportError:
        return
    for kind in _SAVEABLE_KINDS:
        key = f"saving_attr_skiplist_{kind}"
        if global_state.get_global_attribute(key) is None:
            global_state.set_global_attribute(key, get_attr_skipset(kind))
