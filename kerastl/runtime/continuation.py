"""Whether a saved run can go on: the same model, the same settings, the phases.

A run's state records what its saved weights depend on: a fingerprint of the
model (each layer's name, kind, weight shapes and trainable flag), the settings
the script passes (image size, batch size, classes), and its phases. A rerun
may change the phase in progress and those not yet started; anything else is
refused before training, naming the change and the ways out. The one exception
is training on: a finished run whose last phase gets more epochs.

Keras names a layer the script left unnamed after its class and a counter of
the process (`dense`, then `dense_1`...): the same model built twice in one
process (a notebook cell run again) gets other names. The fingerprint numbers
those names within the model instead, as a new process would, so a rerun in
the same process continues its run while a real edit is still caught.
"""

import re
from dataclasses import asdict, replace

import keras

from .errors import RunMismatchError
from .run_state import STATE_FORMAT, RunState
from .settings import option_text
from .trainable import flat_layers

__all__ = ["STATE_FORMAT", "continue_run", "fingerprint"]

_WAYS_OUT = "pass --restart to start that folder over, or choose another --output-dir"


def fingerprint(model: keras.Model) -> dict:
    """What a saved run depends on: the inputs, and each layer's name, kind,
    weight shapes and trainable flag (names Keras made up, numbered in the
    model)."""
    return {
        "inputs": str(model.input_shape),
        "layers": _numbered(
            [
                [
                    layer.name,
                    type(layer).__name__,
                    [list(weight.shape) for weight in layer.weights],
                    layer.trainable,
                ]
                for layer in flat_layers(model, with_models=True)
            ]
        ),
    }


def _snake_case(class_name: str) -> str:
    """The name Keras gives a layer of this class before its counter."""
    name = re.sub(r"\W+", "", class_name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _numbered(layers: list[list]) -> list[list]:
    """The layers, each name Keras made up (`rescaling_3`) numbered anew in the
    model's order (`rescaling`, `rescaling_1`...), as a new process names them.

    Idempotent, so it also reads the fingerprints of earlier kerastl versions.
    """
    counts: dict[str, int] = {}
    numbered = []
    for name, kind, *rest in layers:
        base = _snake_case(kind)
        if re.fullmatch(rf"{re.escape(base)}(_\d+)?", name):
            count = counts.get(base, 0)
            counts[base] = count + 1
            name = f"{base}_{count}" if count else base
        numbered.append([name, kind, *rest])
    return numbered


def _model_change(saved: dict, new: dict) -> str | None:
    if saved["inputs"] != new["inputs"]:
        return f"inputs of shape {saved['inputs']}, not {new['inputs']}"
    saved_layers, new_layers = _numbered(saved["layers"]), _numbered(new["layers"])
    old_layers = {layer[0]: layer for layer in saved_layers}
    new_named = {layer[0]: layer for layer in new_layers}
    added = [name for name in new_named if name not in old_layers]
    removed = [name for name in old_layers if name not in new_named]
    if added or removed:
        parts = [
            f"added {', '.join(added[:3])}" if added else "",
            f"removed {', '.join(removed[:3])}" if removed else "",
        ]
        return "another model (layers " + "; ".join(p for p in parts if p) + ")"
    for name, layer in new_named.items():
        if old_layers[name] != layer:
            return f"another model (layer {name!r} changed)"
    if saved_layers != new_layers:
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


def continue_run(saved: dict, new: RunState, phases: list, *, where: str) -> RunState:
    """The saved state of the run in `where`, checked against the new run.

    Args:
        saved: The JSON of the state the earlier run saved.
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
    state = RunState.from_json(saved)
    change = _model_change(state.model, new.model) or _settings_change(
        state.settings, new.settings
    )
    if change:
        raise RunMismatchError(f"{where} holds a run with {change}; {_WAYS_OUT}")
    done = len(state.completed)
    finished = done == len(state.phases)
    _check_finished_phases(state, phases, finished, where)  # may reopen the last
    _check_phase_in_progress(state, phases, finished, where)
    if finished and len(phases) == done and len(state.completed) == done:
        last = phases[-1]
        ignored = _ignored_settings(state.training_settings, new)
        print(
            f"The run in {where} finished: nothing to train{ignored}. To train on, "
            f"raise the epochs of its last phase {last.name!r} (now "
            f"{_epochs(last.epochs)}) or add a phase; to start over, pass --restart."
        )
        return replace(state, phases=new.phases)
    changed = _changed_settings(state.training_settings, new)
    if changed:  # the epochs trained so far keep the old ones
        print(f"Changed from now on: {', '.join(changed)}; run.json records the new.")
    return replace(state, phases=new.phases, training_settings=new.training_settings)


def _check_finished_phases(
    state: RunState, phases: list, finished: bool, where: str
) -> None:
    """Refuses a change of a finished phase, but for more epochs of the last
    phase of a finished run: that one reopens (`state` then trains on)."""
    done = len(state.completed)
    for index, old in enumerate(state.phases[:done]):
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
        state.completed.pop()
        state.wait = 0


def _check_phase_in_progress(
    state: RunState, phases: list, finished: bool, where: str
) -> None:
    """Refuses a run whose phase in progress is no longer the next one; says
    which of its settings change from now on."""
    completed, checkpoint = state.completed, state.checkpoint
    if (
        finished
        or not checkpoint
        or checkpoint["phase"] == (completed[-1]["phase"] if completed else None)
    ):
        return
    done = len(completed)
    in_progress = state.phases[done]
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


def _ignored_settings(trained: dict, new: RunState) -> str:
    """The settings a finished run trained with that this rerun changes, in words."""
    changed = _changed_settings(trained, new)
    return "; " + ", ".join(changed) + " cannot change it" if changed else ""


def _changed_settings(trained: dict, new: RunState) -> list[str]:
    """Each setting the run trained with that this rerun changes, in words."""
    return [
        f"{_short(option_text(name, value))} (the run used "
        f"{_short(option_text(name, trained[name]))})"
        for name, value in new.training_settings.items()
        if name in trained and trained[name] != value
    ]
