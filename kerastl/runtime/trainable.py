"""What trains: compile and check the trainable weights, and say which they are.

A change of `trainable` only takes effect when the model is compiled again
(keras-team/keras#6405): `compile_checked` recompiles and verifies the
trainable weights.
"""

import keras

from .errors import TrainabilityError


def compile_checked(
    model: keras.Model,
    base: keras.Model,
    trainable_layers: list[keras.layers.Layer],
    **compile_kwargs,
) -> None:
    """Compiles `model`, then checks that exactly the intended weights will train.

    Trainability changes take effect only at compile time, so every change goes
    through here. The trainable weights of the base must be exactly those of
    `trainable_layers`, and the head (everything outside the base) must train.

    Args:
        model: The full model.
        base: The base model inside it.
        trainable_layers: The layers of `base` returned by an unfreeze helper.
        **compile_kwargs: Passed to `model.compile`.

    Raises:
        TrainabilityError: On any difference, naming the layers concerned.
    """
    model.compile(**compile_kwargs)
    base_weights = {id(weight) for weight in base.weights}
    wanted = {
        id(weight): layer.name
        for layer in trainable_layers
        for weight in layer.weights
        if weight.trainable
    }
    actual = {
        id(weight) for weight in model.trainable_weights if id(weight) in base_weights
    }
    if actual != wanted.keys():
        owners = {
            id(weight): layer.name for layer in base.layers for weight in layer.weights
        }
        extra = sorted({owners.get(key, "?") for key in actual - wanted.keys()})
        missing = sorted({wanted[key] for key in wanted.keys() - actual})
        raise TrainabilityError(
            f"trainable weights differ from what was asked: unexpected {extra}, missing {missing}"
        )
    if len(model.trainable_weights) == len(actual):
        raise TrainabilityError("the head has no trainable weights")


def trainable_summary(model: keras.Model) -> str:
    """Describes which layers and parameters of `model` will train.

    A layer is named by its weights' path (`conv_1`, or a KerasHub block's
    `encoder/layers_1/attention/query`): a layer nested in a block whose
    adapters train (LoRA) is named, not the block.
    """
    trainable_params = sum(int(keras.ops.size(w)) for w in model.trainable_weights)
    total_params = sum(int(keras.ops.size(w)) for w in model.weights)
    trained = list(dict.fromkeys(map(_owner, model.trainable_weights)))
    with_weights = set(map(_owner, model.weights))
    batchnorm = [
        layer
        for layer in flat_layers(model)
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    trainable_bn = sum(layer.trainable for layer in batchnorm)
    share = 100 * trainable_params / max(total_params, 1)
    lines = [
        f"trainable parameters: {trainable_params:,} of {total_params:,} ({share:.1f}%)",
        f"layers with weights that train: {len(trained)} of {len(with_weights)}",
        f"BatchNormalization layers that train: {trainable_bn} of {len(batchnorm)}",
    ]
    if trained:
        shown = trained if len(trained) <= 6 else [*trained[:3], "...", *trained[-3:]]
        lines.append("trainable: " + ", ".join(shown))
    return "\n".join(lines)


def _owner(weight) -> str:
    """The path of the layer that holds `weight` (its own path, less its name)."""
    path = getattr(weight, "path", weight.name)
    return path.rpartition("/")[0] or path


def flat_layers(
    model: keras.Model, *, with_models: bool = False
) -> list[keras.layers.Layer]:
    """Layers of `model`, each nested model replaced by its own layers.

    Args:
        model: The model.
        with_models: Keep each nested model too, just before its layers.
    """
    layers = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            if with_models:
                layers.append(layer)
            layers.extend(flat_layers(layer, with_models=with_models))
        else:
            layers.append(layer)
    return layers
