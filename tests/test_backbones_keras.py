"""The registry's facts, checked against real Keras: every backbone is built.

Slow (a few minutes): it builds all 40 bases with `weights=None`, checks
each family's entry of `kerastl/runtime/families.json` (the names of its
models, its block rule, its preprocessing) and `kerastl/block_starts.json`
(rewritten under `--update-golden`), whose counts are the numbers of blocks.
"""

import gc
import json
import re

import keras
import numpy as np
import pytest

from kerastl import backbones
from kerastl.runtime import BlockRule, block_rule_of, find_blocks

pytestmark = pytest.mark.slow
NAMES = list(backbones.BACKBONES)
MODES = {"tf", "caffe", "torch"}
# The first layer of each block, by backbone, as test_facts_match_keras found
# them: test_block_starts_file_matches_keras builds only the ones it missed.
FOUND_BLOCK_STARTS: dict[str, list[str]] = {}


def test_the_registry_holds_every_keras_application() -> None:
    keras_names = {name for name in dir(keras.applications) if name[0].isupper()}
    assert set(NAMES) == keras_names


def build(entry: backbones.Backbone, **kwargs) -> keras.Model:
    keras.backend.clear_session()
    gc.collect()
    return getattr(keras.applications, entry.name)(weights=None, **kwargs)


def block_starts(blocks: dict) -> list[str]:
    """The first layer of each block of `find_blocks`, in order."""
    return [layers[0].name for layers in blocks.values()]


@pytest.mark.parametrize("name", NAMES)
def test_facts_match_keras(name: str) -> None:
    entry = backbones.BACKBONES[name]
    constructor = getattr(keras.applications, name)
    assert constructor.__module__.rsplit(".", 1)[1] == entry.module
    assert hasattr(getattr(keras.applications, entry.module), "preprocess_input")

    size = entry.min_size
    base = build(entry, include_top=False, input_shape=(size, size, 3))
    assert base.output_shape[-1] == entry.feature_dim
    assert base.count_params() == entry.params

    # The family table (kerastl/runtime/families.json) names this model's family
    # alone, and the runtime recognises the model by its name as that family.
    named = [
        family.name
        for family in backbones.FAMILIES.values()
        if re.search(family.model_names, base.name, re.IGNORECASE)
    ]
    assert named == [entry.family.name], base.name
    family = entry.family
    assert block_rule_of(base) == BlockRule(family.block_pattern, family.unnamed_layers)
    blocks = find_blocks(base)  # the block rule recognised from the model
    assert len(blocks) == entry.num_blocks
    FOUND_BLOCK_STARTS[name] = block_starts(blocks)
    order = [
        key
        for layer in base.layers[1:]
        for key, layers in blocks.items()
        if layer in layers
    ]
    runs = [
        key for index, key in enumerate(order) if index == 0 or order[index - 1] != key
    ]
    if entry.family.name != "NASNet":  # NASNet cells read their inputs' inputs
        assert runs == list(blocks), "a block is split in two"
    last_seen = {key: index for index, key in enumerate(order)}
    assert sorted(blocks, key=last_seen.get) == list(blocks), "blocks out of order"

    with pytest.raises(ValueError):
        build(entry, include_top=False, input_shape=(size - 1, size - 1, 3))

    assert classifier_size(entry) == entry.default_size
    del base


def classifier_size(entry: backbones.Backbone) -> int:
    """The input size of the backbone's ImageNet classifier, as Keras gives it.

    Asked for that classifier at another size, Keras names the size it expects
    before it loads (or downloads) anything. MobileNetV3 builds its classifier
    for any size and loads 224-pixel weights.
    """
    if entry.family.name == "MobileNetV3":
        classifier = build(entry, include_top=True)
        assert classifier.output_shape == (None, 1000)
        return classifier.input_shape[1] or 224
    constructor = getattr(keras.applications, entry.name)
    with pytest.raises(ValueError, match=r"should be \((\d+), \1, 3\)") as error:
        constructor(weights="imagenet", include_top=True, input_shape=(33, 33, 3))
    return int(re.search(r"should be \((\d+),", str(error.value)).group(1))


@pytest.mark.parametrize("name", NAMES)
def test_preprocessing_rule_matches_keras(name: str) -> None:
    entry = backbones.BACKBONES[name]
    pixels = np.random.default_rng(0).uniform(0, 255, (1, 4, 4, 3)).astype("float32")
    module = getattr(keras.applications, entry.module)
    processed = np.array(module.preprocess_input(pixels.copy()))
    rule = entry.family.preprocessing
    if rule == "built-in":
        np.testing.assert_array_equal(processed, pixels)  # the model rescales itself
    else:
        assert rule in MODES
        expected = keras.applications.imagenet_utils.preprocess_input(
            pixels.copy(), mode=rule
        )
        np.testing.assert_allclose(processed, np.array(expected), rtol=1e-6)


def test_block_starts_file_matches_keras(update_golden: bool) -> None:
    """`kerastl/block_starts.json` holds the first layer of every block, in order.

    `pytest tests/test_backbones_keras.py -k block_starts --update-golden`
    rewrites it from real Keras.
    """
    actual: dict[str, list[str]] = {}
    for name, entry in backbones.BACKBONES.items():
        if name not in FOUND_BLOCK_STARTS:
            size = entry.min_size
            base = build(entry, include_top=False, input_shape=(size, size, 3))
            FOUND_BLOCK_STARTS[name] = block_starts(find_blocks(base))
        actual[name] = FOUND_BLOCK_STARTS[name]
        assert len(actual[name]) == entry.num_blocks, name
    if update_golden:
        backbones.BLOCK_STARTS_FILE.write_text(json.dumps(actual, indent=2) + "\n")
    assert json.loads(backbones.BLOCK_STARTS_FILE.read_text()) == actual
