"""Learning rates by block: layer-wise decay down the base model.

timm's `--layer-decay` and fastai's discriminative learning rates train the
top of a pretrained network faster than its bottom, whose features are the
most general. Here the head and the top block of the base train at the
phase's rate and each block below at `factor` times the rate of the block
above it, through Keras's own `MultiOptimizer`: one optimizer per block, so a
saved model loads with plain `keras.models.load_model`.
"""

from collections.abc import Callable

import keras

from .blocks import BlockRule, find_blocks


def layer_decay(
    make_optimizer: Callable[[float], keras.optimizers.Optimizer],
    learning_rate: float,
    base_model: keras.Model,
    factor: float,
    *,
    block_rule: BlockRule | None = None,
) -> keras.optimizers.Optimizer:
    """An optimizer whose learning rate falls by `factor` per block down the base.

    Call it once the phase's layers are unfrozen: only trainable blocks get an
    optimizer of their own. Prints one line: the rates of the top and the
    lowest trained block.

    Args:
        make_optimizer: Makes the optimizer of one learning rate (with the
            phase's schedule, if any).
        learning_rate: The rate of the head and of the top block.
        base_model: The base model; its blocks are `find_blocks`'s.
        factor: Each block's rate over the rate of the block above it; 1
            gives one optimizer for all.
        block_rule: How the base's layers form blocks (default: its family's).

    Returns:
        `make_optimizer(learning_rate)` when `factor` is 1 or no block of the
        base trains, else a `keras.optimizers.MultiOptimizer`.
    """
    if factor == 1:
        return make_optimizer(learning_rate)
    head = make_optimizer(learning_rate)
    by_variable: dict[str, keras.optimizers.Optimizer] = {}
    trained: list[tuple[str, float]] = []
    blocks = list(find_blocks(base_model, block_rule).items())
    for depth, (name, layers) in enumerate(reversed(blocks)):
        variables = [v for layer in layers for v in layer.trainable_variables]
        if not variables:
            continue
        rate = learning_rate * factor**depth
        optimizer = make_optimizer(rate)
        by_variable.update({variable.path: optimizer for variable in variables})
        trained.append((name, rate))
    if not trained:
        return head
    (top, top_rate), (lowest, lowest_rate) = trained[0], trained[-1]
    print(
        f"Layer decay {factor:g}: the head and the top block ({top}) train at "
        f"{top_rate:.3g}, the lowest trained block ({lowest}) at {lowest_rate:.3g}"
    )
    return keras.optimizers.MultiOptimizer(
        keras.optimizers.OptimizerMap(head, by_variable)
    )
