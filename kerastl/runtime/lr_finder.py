"""The learning-rate range test (Leslie Smith's, as fastai's `lr_find` runs it).

From the model as a phase would start, the learning rate grows exponentially
from `start` to `end` over at most `steps` batches, one step each, until the
smoothed loss passes `diverge` times its lowest; then the model's variables
go back exactly as they were (its optimizer is never used). The suggestion
follows fastai's "valley" rule (https://docs.fast.ai/callback.schedule.html):
the longest stretch over which the smoothed loss keeps falling, two thirds of
the way down it, the first tenth of the steps left out.
"""

import math
from typing import TYPE_CHECKING

import keras
import numpy as np
import tensorflow as tf

from . import files
from .common.plots import agg_figure
from .epochs import training_epoch
from .errors import RangeTestDone, ScriptError
from .report_plots import save_png
from .trainable import trainable_summary

if TYPE_CHECKING:
    from .run import Run
    from .run_start import Phase

START, END, STEPS, DIVERGE = 1e-7, 10.0, 100, 4.0
SMOOTHING = 0.98  # of the loss's moving average, debiased as fastai's


def lr_range_test(
    model: keras.Model,
    train_data: tf.data.Dataset,
    *,
    start: float = START,
    end: float = END,
    steps: int = STEPS,
    diverge: float = DIVERGE,
) -> tuple[list[float], list[float]]:
    """Trains `model` one batch per rate, then restores every variable of it.

    The compiled model's loss and the class of its optimizer are used, with a
    fresh optimizer whose rate grows by a constant factor each step; the
    model's own optimizer and its state are untouched.

    Returns:
        `(rates, smoothed_losses)`, one pair per step taken.
    """
    if model.distribute_strategy.num_replicas_in_sync > 1:
        raise ScriptError(
            "the learning-rate finder runs on one device: add --strategy none"
        )
    saved = [variable.numpy() for variable in model.variables]
    epoch = training_epoch()
    saved_epoch = int(epoch.numpy())
    growth = (end / start) ** (1 / max(steps - 1, 1))
    optimizer = _plain_optimizer(model.optimizer, start, growth)
    loss_fn = keras.losses.get(model.loss)
    variables = model.trainable_variables

    @tf.function
    def step(images, labels):
        with tf.GradientTape() as tape:
            loss = loss_fn(labels, model(images, training=True))
        optimizer.apply(tape.gradient(loss, variables), variables)
        return loss

    rates: list[float] = []
    losses: list[float] = []
    average, best = 0.0, math.inf
    try:
        batches = iter(train_data.repeat())
        for index in range(steps):
            images, labels = next(batches)[:2]
            loss = float(step(images, labels))
            average = SMOOTHING * average + (1 - SMOOTHING) * loss
            smoothed = average / (1 - SMOOTHING ** (index + 1))
            if not math.isfinite(smoothed):
                break
            rates.append(start * growth**index)
            losses.append(smoothed)
            best = min(best, smoothed)
            if smoothed > diverge * best:
                break
    finally:
        for variable, value in zip(model.variables, saved, strict=True):
            variable.assign(value)
        epoch.assign(saved_epoch)
    return rates, losses


def range_test_of(run: "Run", phase: "Phase", train_data: tf.data.Dataset) -> None:
    """`Run.fit` with `find_lr`: the range test of the phase it names.

    A phase before that one must have trained (it is skipped); for that one,
    the test runs from the weights the phase would start with, prints the
    suggested rate, draws `lr_find.png` and raises `RangeTestDone`.

    Raises:
        ScriptError: If a phase before it has not trained in the run's folder.
        RangeTestDone: Once the test ran.
    """
    if phase.name != run.find_lr:
        if not run.is_complete(phase):
            raise ScriptError(
                f"--find-lr {run.find_lr} starts from the weights the phases "
                f"before it end with, and {phase.name!r} has not trained in "
                f"{run.output_dir}: run it first, without --find-lr"
            )
        return
    run.restore(phase)
    print(f"Learning-rate range test of phase {phase.name!r}:")
    print(trainable_summary(run.model))
    rates, losses = lr_range_test(run.trained_model, train_data)
    suggested = suggested_rate(rates, losses)
    picture = plot_lr_find(
        files.join(run.write_dir, "lr_find.png"), rates, losses, suggested
    )
    print(
        f"{len(rates)} steps from {rates[0]:.1g} to {rates[-1]:.2g}"
        + (f"; drawn in {picture}" if picture else "")
    )
    print(f"suggested learning rate: {suggested:.2g}")
    raise RangeTestDone(f"suggested learning rate: {suggested:.2g}")


def suggested_rate(rates: list[float], losses: list[float]) -> float:
    """fastai's "valley": two thirds down the longest run of falling losses."""
    skip = len(losses) // 10
    rates, losses = rates[skip:], losses[skip:]
    if len(losses) < 3:
        raise ScriptError(
            f"the loss diverged after {len(losses) + skip} steps of the range "
            "test: no learning rate to suggest (is the data or the model broken?)"
        )
    count = len(losses)
    longest = [1] * count  # the longest falling run ending at each step
    start = end = 0
    for i in range(1, count):
        for j in range(i):
            if losses[i] < losses[j] and longest[i] < longest[j] + 1:
                longest[i] = longest[j] + 1
            if longest[end] < longest[i]:
                end = i
                start = end - longest[end]
    sections = (end - start) / 3
    return float(rates[start + int(sections) + int(sections / 2)])


def plot_lr_find(
    path: str, rates: list[float], losses: list[float], suggested: float
) -> str | None:
    """Draws the loss against the learning rate, the suggestion marked."""
    figure = agg_figure(path, (6.4, 4.2))
    if figure is None:
        return None
    axes = figure.add_subplot()
    axes.plot(rates, losses, color="tab:blue")
    axes.set_xscale("log")
    axes.set_xlabel("learning rate")
    axes.set_ylabel("training loss (smoothed)")
    index = int(np.argmin(np.abs(np.log(np.array(rates)) - math.log(suggested))))
    axes.plot([suggested], [losses[index]], "o", color="tab:red")
    axes.annotate(
        f"suggested: {suggested:.2g}",
        (suggested, losses[index]),
        textcoords="offset points",
        xytext=(8, 8),
        color="tab:red",
    )
    axes.grid(True, which="both", alpha=0.3)
    return save_png(figure, path, "Learning-rate range test")


def _plain_optimizer(
    optimizer: keras.optimizers.Optimizer, start: float, growth: float
) -> keras.optimizers.Optimizer:
    """A new optimizer of the model's optimizer's class (the first inside a
    loss scaler or `MultiOptimizer`), without EMA, its rate growing each step."""
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    if isinstance(inner, keras.optimizers.MultiOptimizer):
        inner = inner.optimizers[-1]  # the head's
    config = inner.get_config()
    config.update(
        learning_rate=keras.optimizers.schedules.ExponentialDecay(
            start, decay_steps=1, decay_rate=growth
        ),
        use_ema=False,
    )
    return type(inner).from_config(config)
