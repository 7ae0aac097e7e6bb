"""Learning-rate schedules for the fine-tuning phases."""

import keras

#: The schedules of the fine-tuning stages: a warm-up then a cosine decay
#: (`warmup_cosine`), or the rate divided by 5 when val_loss stalls.
LR_SCHEDULES = ("cosine", "plateau")


def warmup_cosine(
    learning_rate: float, total_steps: int, warmup_fraction: float = 0.1
) -> keras.optimizers.schedules.LearningRateSchedule:
    """A linear warm-up to `learning_rate`, then a cosine decay to zero.

    Args:
        learning_rate: Peak learning rate, reached at the end of the warm-up.
        total_steps: Training steps of the phase (epochs x steps per epoch).
        warmup_fraction: Share of the steps spent warming up.
    """
    warmup_steps = max(1, int(total_steps * warmup_fraction))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=learning_rate / 10,
        decay_steps=max(1, total_steps - warmup_steps),
        warmup_target=learning_rate,
        warmup_steps=warmup_steps,
    )
