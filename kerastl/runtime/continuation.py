"""Whether a saved run can go on: the same model, the same settings, the phases.

A run's state records what its saved weights depend on: a fingerprint of the
model (each layer's name, kind, weight shapes and trainable flag), the settings
the script passes (image size, batch size, classes), and its phases. A rerun
may change the phase in progress and those not yet started; anything else is
refused before training, naming the change and the ways out. The one exception
is training on: a finished run whose last phase gets more epochs.
"""

from dataclasses import asdict

import keras

from .errors import RunMismatchError
from .settings import option_text
from .unfreeze import flat_layers

STATE_FORMAT = 2  # the layout of state.json; another one is refused

_WAYS_OUT = "pass --restart to start that folder over, or choose another --output-dir"


def fingerprint(model: keras.Model) -> dict:
    """What a saved run depends on: the inputs, and each layer's name, kind,
    weight shapes and trainable flag."""
    return {
        "inputs": str(model.input_shape),
        "layers": [
            [
                layer.name,
                type(layer).__name__,
                [list(weight.shape) for weight in layer.weights],
                layer.trainable,
            ]
            for layer in flat_layers(model, with_models=True)
        ],
    }


def _model_change(saved: dict, new: dict) -> str | None:
    if saved["inputs"] != new["inputs"]:
        return f"inputs of shape {saved['inputs']}, not {new['inputs']}"
    old_layers = {layer[0]: layer for layer in saved["layers"]}
    new_layers = {layer[0]: layer for layer in new["layers"]}
    added = [name for name in new_layers if name not in old_layers]
    removed = [name for name in old_layers if name not in new_layers]
    if added or removed:
        parts = [
            f"added {', '.join(added[:3])}" if added else "",
            f"removed {', '.join(removed[:3])}" if removed else "",
        ]
        return "another model (layers " + "; ".join(p for p in parts if p) + ")"
    for name, layer in new_layers.items():
        if old_layers[name] != layer:
            return f"another model (layer {name!r} changed)"
    if saved["layers"] != new["layers"]:
        return "another model (its layers are in another order)"
    return None


def _settings_change(saved: dict, new: dict) -> str | None:
    changes = [
        f"{key} {_short(saved.get(key))} (now {_short(new.get(key))})"
        for key in sorted(saved.keys() | new.keys())
        if saved.get(key) != new.get(key)
    ]
    return ("other settings: " + ", ".join(changes)) if changes else None


def _describe(phase: dict | None) -> str:
    if phase is None:
        return "no such phase"
    return (
        f"{phase['name']!r}: {_epochs(phase['epochs'])} at learning rate "
        f"{phase['learning_rate']:g}"
    )


def _epochs(count: int) -> str:
    return f"{count} epoch" if count == 1 else f"{count} epochs"


def _short(value: object) -> str:
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def continue_run(saved: dict, new: dict, phases: list, *, where: str) -> dict:
    """The saved state of the run in `where`, checked against the new run.

    Args:
        saved: The state the earlier run saved.
        new: The state this run would start with (its model, settings, phases).
        phases: This run's phases.
        where: The output folder, for the messages.

    Returns:
        The saved state, updated to this run's phases (and reopened to train on).

    Raises:
        RunMismatchError: If this run cannot continue the saved one.
    """
    if saved.get("format") != STATE_FORMAT:
        raise RunMismatchError(
            f"{where} holds a run saved by another kerastl version; {_WAYS_OUT}"
        )
    change = _model_change(saved["model"], new["model"]) or _settings_change(
        saved["settings"], new["settings"]
    )
    if change:
        raise RunMismatchError(f"{where} holds a run with {change}; {_WAYS_OUT}")
    completed = saved["completed"]
    done = len(completed)
    finished = done == len(saved["phases"])
    for index, old in enumerate(saved["phases"][:done]):
        phase = phases[index] if index < len(phases) else None
        current = None if phase is None else asdict(phase)
        if current == old:
            continue
        train_on = (
            finished
            and index == done - 1
            and current is not None
            and {**current, "epochs": old["epochs"]} == old
            and current["epochs"] > old["epochs"]
        )
        if current is None or not train_on:
            raise RunMismatchError(
                f"{where} holds a run whose phase {index + 1} finished as "
                f"{_describe(old)}, now {_describe(current)}; {_WAYS_OUT}"
            )
        print(
            f"Training on: phase {old['name']!r} goes from {old['epochs']} "
            f"to {_epochs(current['epochs'])}."
        )
        completed.pop()
        saved["wait"] = 0
    checkpoint = saved["checkpoint"]
    if (
        not finished
        and checkpoint
        and checkpoint["phase"] != (completed[-1]["phase"] if completed else None)
    ):
        in_progress = saved["phases"][done]
        phase = phases[done] if done < len(phases) else None
        if phase is None or (phase.name, phase.unfreeze) != (
            in_progress["name"],
            in_progress["unfreeze"],
        ):
            raise RunMismatchError(
                f"{where} holds a run stopped during phase "
                f"{in_progress['name']!r}, which is no longer the next phase; "
                f"{_WAYS_OUT}"
            )
        if asdict(phase) != in_progress:
            print(
                f"Phase {_describe(asdict(phase))} from now on, "
                f"not {_describe(in_progress)}."
            )
    if finished and len(phases) == done and len(completed) == done:
        last = phases[-1]
        ignored = _ignored_settings(saved.get("training_settings", {}), new)
        print(
            f"The run in {where} finished: nothing to train{ignored}. To train on, "
            f"raise the epochs of its last phase {last.name!r} (now "
            f"{_epochs(last.epochs)}) or add a phase; to start over, pass --restart."
        )
        return {**saved, "phases": new["phases"]}
    return {
        **saved,
        "phases": new["phases"],
        "training_settings": new["training_settings"],
    }


def _ignored_settings(trained: dict, new: dict) -> str:
    """The settings a finished run trained with that this rerun changes, in words."""
    changed = [
        f"{_short(option_text(name, value))} (the run used "
        f"{_short(option_text(name, trained[name]))})"
        for name, value in new["training_settings"].items()
        if name in trained and trained[name] != value
    ]
    if not changed:
        return ""
    return "; " + ", ".join(changed) + " cannot change it"
