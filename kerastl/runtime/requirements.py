"""The oldest Keras and TensorFlow the runtime works with, checked before either loads.

`pyproject.toml` repeats these floors (a test keeps the two equal); the check
reads the installed versions from the packages' metadata, without importing
them, so that a script on too old a Keras says so in one line at its start
rather than failing mid-run. The standalone copy (`kerastl_runtime`) carries
this module and checks the user's own Keras and TensorFlow.
"""

import re
import sys
from importlib import metadata

#: The oldest release of each package that the runtime works with.
#: keras 3.15: `keras.optimizers.MultiOptimizer` (--layer-decay), and
#: `CutMix` (3.9), `MixUp` and `RandAugment` (3.8) before it. tensorflow 2.16.1:
#: the first release built for Keras 3, and the oldest CI runs with keras 3.15.
FLOORS = {"keras": "3.15", "tensorflow": "2.16.1"}

#: The distributions that provide TensorFlow's `tensorflow` package.
TENSORFLOW_DISTRIBUTIONS = (
    "tensorflow",
    "tensorflow-cpu",
    "tensorflow-macos",
    "tensorflow-intel",
    "tf-nightly",
)


def unmet_requirement() -> str | None:
    """One line naming the first package that is missing or older than its floor.

    Returns None when Keras and TensorFlow are both new enough.
    """
    for package, floor in FLOORS.items():
        found = installed_version(package)
        requirement = f"{package}>={floor}"
        if found is None:
            return f"kerastl needs {requirement} (not installed): pip install '{requirement}'"
        if release(found) < release(floor):
            return (
                f"kerastl needs {requirement} (found {found}): "
                f"pip install -U '{requirement}'"
            )
    return hub_requirement(_main_source())


#: A script that uses a KerasHub backbone imports keras_hub; only then it is needed.
HUB_FLOOR = "0.32"


def imports_keras_hub(script_source: str) -> bool:
    """Whether a script's source imports keras_hub (a KerasHub backbone)."""
    return bool(re.search(r"^import keras_hub\b", script_source, re.MULTILINE))


def import_keras_hub_if_used() -> None:
    """Imports keras_hub now if the script being run will (inside `quiet_start`:
    its TensorFlow Text prints TensorFlow's start-up lines again)."""
    if imports_keras_hub(_main_source()):
        import keras_hub  # noqa: F401


def hub_requirement(script_source: str) -> str | None:
    """One line if the script imports keras_hub and keras-hub is missing or too old."""
    if not imports_keras_hub(script_source):
        return None
    found = installed_version("keras-hub")
    requirement = f"keras-hub>={HUB_FLOOR}"
    if found is not None and release(found) >= release(HUB_FLOOR):
        return None
    return (
        f"this script uses a KerasHub backbone and needs {requirement} "
        f"({'not installed' if found is None else f'found {found}'}): "
        f"pip install -U '{requirement}'"
    )


def _main_source() -> str:
    """The source of the script being run, or "" (an interactive session)."""
    path = getattr(sys.modules.get("__main__"), "__file__", None)
    try:
        with open(path, encoding="utf-8") as script:  # type: ignore[arg-type]
            return script.read()
    except (OSError, TypeError, UnicodeDecodeError):
        return ""


def installed_version(package: str) -> str | None:
    """The installed version of `package`, from its metadata (not imported)."""
    names = TENSORFLOW_DISTRIBUTIONS if package == "tensorflow" else (package,)
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def release(version: str) -> tuple[int, ...]:
    """The numbers a version begins with: `"3.15.0rc1"` is `(3, 15, 0)`."""
    match = re.match(r"\d+(\.\d+)*", version)
    return tuple(int(part) for part in match.group().split(".")) if match else ()
