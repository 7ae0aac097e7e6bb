"""Unfreezing helpers on real (small, randomly initialized) keras.applications models."""

import keras
import numpy as np
import pytest

from kerastl import backbones
from kerastl.runtime import (
    BlockRule,
    block_rule_of,
    check_unfreeze_stages,
    compile_checked,
    find_blocks,
    freeze,
    trainable_summary,
    unfreeze,
    unfreeze_all,
    unfreeze_from,
    unfreeze_top_blocks,
    unfreeze_top_layers,
)
from kerastl.runtime.errors import TrainabilityError, UnfreezeError

pytestmark = pytest.mark.slow  # real keras.applications models

SIZE = 32
BACKBONES = ["MobileNetV3Small", "EfficientNetV2B0", "ResNet50V2"]


def build(name: str) -> tuple[keras.Model, keras.Model]:
    """The generated scripts' model: base called with training=False, a float32 head."""
    base = getattr(keras.applications, name)(
        include_top=False, weights=None, input_shape=(SIZE, SIZE, 3)
    )
    base.trainable = False
    inputs = keras.Input((SIZE, SIZE, 3))
    x = base(inputs, training=False)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(3, activation="softmax", dtype="float32")(x)
    return keras.Model(inputs, outputs), base


def fit_once(model: keras.Model) -> None:
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (16, SIZE, SIZE, 3)).astype("float32")
    labels = rng.integers(0, 3, 16)
    model.fit(images, labels, batch_size=8, epochs=1, verbose=0)


def compile_for(model, base, trainable) -> None:
    compile_checked(
        model,
        base,
        trainable,
        optimizer=keras.optimizers.Adam(1e-2),
        loss="sparse_categorical_crossentropy",
    )


@pytest.fixture(scope="module", params=BACKBONES)
def built(request) -> tuple[str, keras.Model, keras.Model]:
    model, base = build(request.param)
    return request.param, model, base


def test_blocks_match_the_registry(built) -> None:
    name, _, base = built
    blocks = find_blocks(base)
    assert len(blocks) == backbones.get(name).num_blocks


def test_top_blocks_unfreeze_whole_blocks_and_no_batchnorm(built) -> None:
    _, _, base = built
    blocks = find_blocks(base)
    trainable = unfreeze_top_blocks(base, 2)
    top = [layer for key in list(blocks)[-2:] for layer in blocks[key]]
    expected = [
        layer for layer in top if not isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert trainable == expected
    assert {layer.name for layer in base.layers if layer.trainable} == {
        layer.name for layer in expected
    }
    for layer in base.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            assert not layer.trainable
    # A block is all on or all off.
    for layers in blocks.values():
        states = {
            layer.trainable
            for layer in layers
            if layer.weights and not isinstance(layer, keras.layers.BatchNormalization)
        }
        assert len(states) <= 1


def test_train_batchnorm_is_explicit(built) -> None:
    _, _, base = built
    trainable = unfreeze_all(base, train_batchnorm=True)
    assert any(
        isinstance(layer, keras.layers.BatchNormalization) for layer in trainable
    )
    assert not any(
        isinstance(layer, keras.layers.BatchNormalization)
        for layer in unfreeze_all(base)
    )


def test_top_layers_from_and_dispatch(built) -> None:
    _, _, base = built
    last = [layer for layer in base.layers[-5:]]
    assert unfreeze_top_layers(base, 5) == [
        layer
        for layer in last
        if not isinstance(layer, keras.layers.BatchNormalization)
    ]
    start = base.layers[-7].name
    assert unfreeze_from(base, start)[0].name in {
        base.layers[-7].name,
        base.layers[-6].name,
    }
    block = list(find_blocks(base).values())[-2][0].name  # a block's first layer
    assert unfreeze(base, block) == unfreeze_from(base, block)
    assert unfreeze(base, None) == freeze(base) == []
    assert not base.trainable
    assert unfreeze(base, "all") == unfreeze_all(base)
    assert unfreeze(base, 1) == unfreeze_top_blocks(base, 1)


def test_bad_requests_are_named(built) -> None:
    _, _, base = built
    with pytest.raises(ValueError, match="has no layer 'no_such_layer'"):
        unfreeze_from(base, "no_such_layer")
    inside = list(find_blocks(base).values())[-2][1].name  # not a block's first
    with pytest.raises(ValueError, match=f"{inside!r} does not start a block"):
        unfreeze(base, inside)
    with pytest.raises(ValueError, match="blocks; cannot unfreeze 999"):
        unfreeze_top_blocks(base, 999)
    with pytest.raises(ValueError, match="matches the block pattern"):
        find_blocks(base, BlockRule(r"^(nothing_like_this)_"))


def test_batchnorm_statistics_do_not_move_during_fine_tuning() -> None:
    model, base = build("MobileNetV3Small")  # 34 BatchNormalization layers
    batchnorms = [
        layer
        for layer in base.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    before = [np.array(w) for layer in batchnorms for w in layer.non_trainable_weights]
    convolution = base.get_layer("conv_1")
    kernel_before = np.array(convolution.kernel)
    compile_for(model, base, unfreeze_all(base))
    fit_once(model)
    after = [np.array(w) for layer in batchnorms for w in layer.non_trainable_weights]
    assert all(np.array_equal(a, b) for a, b in zip(before, after))
    assert not np.allclose(kernel_before, np.array(convolution.kernel))


def test_trainability_changes_only_take_effect_through_a_recompile() -> None:
    model, base = build("MobileNetV3Small")
    compile_for(model, base, freeze(base))
    fit_once(model)
    convolution = base.get_layer("conv_1")
    kernel = np.array(convolution.kernel)
    trainable = unfreeze_top_blocks(base, 1)
    fit_once(model)  # not recompiled: Keras still trains the head only
    assert np.array_equal(kernel, np.array(convolution.kernel))
    compile_for(model, base, trainable)
    fit_once(model)
    assert not np.allclose(kernel, np.array(convolution.kernel))


def test_compile_checked_catches_trainability_changed_behind_its_back() -> None:
    model, base = build("ResNet50V2")
    trainable = unfreeze_top_blocks(base, 1)
    base.get_layer("conv2_block1_1_conv").trainable = True
    with pytest.raises(
        TrainabilityError, match="unexpected \\['conv2_block1_1_conv'\\]"
    ):
        compile_for(model, base, trainable)
    base.get_layer("conv2_block1_1_conv").trainable = False
    base.get_layer("post_bn").trainable = True
    with pytest.raises(TrainabilityError, match="post_bn"):
        compile_for(model, base, trainable)


def test_compile_checked_wants_a_trainable_head() -> None:
    model, base = build("MobileNetV3Small")
    model.layers[-1].trainable = False
    with pytest.raises(TrainabilityError, match="head has no trainable weights"):
        compile_for(model, base, freeze(base))


def test_trainable_summary_reports_layers_parameters_and_batchnorm() -> None:
    model, base = build("MobileNetV3Small")
    compile_for(model, base, freeze(base))
    summary = trainable_summary(model)
    head_params = 576 * 3 + 3
    assert summary.splitlines()[0].startswith(
        f"trainable parameters: {head_params:,} of "
    )
    assert "BatchNormalization layers that train: 0 of 34" in summary
    compile_for(model, base, unfreeze_top_blocks(base, 2))
    summary = trainable_summary(model)
    assert "expanded_conv_10" in summary
    assert "BatchNormalization layers that train: 0 of 34" in summary


def test_stages_are_checked_before_training_without_changing_anything() -> None:
    _, base = build("ResNet50V2")
    before = [layer.trainable for layer in base.layers]
    check_unfreeze_stages(base, [2, "conv5_block1_preact_bn", "all"])
    assert [layer.trainable for layer in base.layers] == before and not base.trainable
    with pytest.raises(UnfreezeError, match="did you mean conv5_block1_preact_bn"):
        check_unfreeze_stages(base, [2, "conv5_block1_1_conv"])
    with pytest.raises(UnfreezeError, match="has no layer 'conv5_blok1'"):
        check_unfreeze_stages(base, [2, "conv5_blok1"])
    with pytest.raises(UnfreezeError, match="16 blocks; cannot unfreeze 17"):
        check_unfreeze_stages(base, [17])
    assert [layer.trainable for layer in base.layers] == before


def test_the_family_is_recognised_by_name_or_by_layer_names(built) -> None:
    name, _, base = built
    rule = block_rule_of(base)
    assert len(find_blocks(base, rule)) == backbones.get(name).num_blocks
    renamed = keras.Model(base.inputs, base.outputs, name="my_base")
    blocks = {
        key: [layer.name for layer in layers]
        for key, layers in find_blocks(base).items()
    }
    assert {
        key: [layer.name for layer in layers]
        for key, layers in find_blocks(renamed).items()
    } == blocks  # the layer names still tell


def test_an_unknown_model_is_named() -> None:
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(inputs), name="mine")
    with pytest.raises(UnfreezeError, match="'mine' is not a keras.applications model"):
        unfreeze_top_blocks(model, 1)
    custom = BlockRule(r"^(head)$")
    assert [
        layer.name for layer in unfreeze_top_blocks(model, 1, block_rule=custom)
    ] == ["head"]
