"""cnn_course.transfer: frozen base, new head, cached features, fine-tuning with BN frozen.

The real pretrained MobileNetV2 (cnn_course.pretrained, offline weights) is loaded once for
the module and run at 96×96 px on eight scikit-image photos, which keeps every fit to a
second or two. The mechanics of batch normalisation are shown on tiny hand-made networks,
where a test can see the moving statistics move (the contrast that proves the checks can
fail). Expected layer lists are written out by hand from the two published layouts of
MobileNetV2: Keras applications (block_<k>_...) and torchvision (features_<k>_...).
Expected feature-map sizes come from Sandler, Howard, Zhu, Zhmoginov & Chen, "MobileNetV2:
Inverted Residuals and Linear Bottlenecks", CVPR 2018, Table 2.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from benchmark_runner import run_benchmark
from cnn_course import pretrained, transfer
from cnn_course.transfer import (
    cache_features,
    feature_extractor,
    frozen_base_with_head,
    head_on_features,
    unfreeze_top,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage import data

SIZE = 96
LOGITS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

# Sandler et al. 2018, Table 2, at 224×224: the stages' output channels and how much each
# shrinks the image (stride so far). At 96×96 px divide 96 (not 224) by the stride.
#   24 channels: stride 4; 32: stride 8; 96: stride 16; 320: stride 32; conv 1×1 to 1280: stride 32.
STAGE_ENDS = {
    # (Keras layer, torchvision layer): (stride, channels)
    ("block_2_add", "features_3_add"): (4, 24),
    ("block_5_add", "features_6_add"): (8, 32),
    ("block_12_add", "features_13_add"): (16, 96),
    ("block_16_project_BN", "features_17_conv_3"): (32, 320),
}


def _is_torchvision_layout(model) -> bool:
    return any(layer.name.startswith("features_") for layer in model.layers)


def _bn_layers(model):
    return [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]


def _values(weights):
    return [np.array(w) for w in weights]


def _assert_same(before, after):
    assert len(before) == len(after)
    for old, new in zip(before, after, strict=True):
        np.testing.assert_array_equal(old, new)


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def photos():
    """Eight photos at 96×96, scaled to MobileNetV2's [-1, 1] input, and three made-up classes.

    pretrained.preprocess() insists on 224×224, so the same scaling is written out here.
    """
    pictures = [data.chelsea(), data.coffee(), data.astronaut(), data.rocket(),
                data.immunohistochemistry(), data.hubble_deep_field(), data.coins(), data.camera()]
    images = np.stack([pretrained.resize_for_model(p, SIZE) for p in pictures])
    x = images.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    return x, y


@pytest.fixture(scope="module")
def mobilenet():
    """The real pretrained MobileNetV2. Tests that fine-tune load their own copy."""
    return pretrained.mobilenet_v2(verbose=False)


@pytest.fixture(scope="module")
def end_to_end(mobilenet, photos):
    """A head trained for 4 epochs through the frozen base: no shuffling, no dropout."""
    x, y = photos
    keras.utils.set_random_seed(0)
    weights_before = _values(mobilenet.weights)
    model = frozen_base_with_head(mobilenet, 3, dropout=0.0, input_shape=(SIZE, SIZE, 3))
    initial_head = model.get_layer("head").get_weights()
    model.compile(keras.optimizers.Adam(1e-2), LOGITS)
    history = model.fit(x, y, batch_size=4, epochs=4, shuffle=False, verbose=0)
    return {"model": model, "initial_head": initial_head, "weights_before": weights_before,
            "loss": history.history["loss"]}


def tiny_base(blocks=2, size=8):
    """Conv → BN → ReLU per block, named like Keras' MobileNetV2 (block_<k>_...)."""
    inputs = keras.Input((size, size, 3))
    x = inputs
    for k in range(1, blocks + 1):
        x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False, name=f"block_{k}_conv")(x)
        x = keras.layers.BatchNormalization(name=f"block_{k}_BN")(x)
        x = keras.layers.ReLU(name=f"block_{k}_relu")(x)
    return keras.Model(inputs, x, name="tiny_base")


def tiny_data(n=16, size=8, seed=0):
    rng = np.random.default_rng(seed)
    # Mean 3, not 0: the moving mean (initially 0) then has somewhere to move to.
    return rng.normal(3.0, 2.0, (n, size, size, 3)).astype(np.float32), rng.integers(0, 2, n)


# ----------------------------------------------------------------------------- frozen base


def test_frozen_base_weights_are_bit_identical_after_fit(end_to_end, mobilenet):
    model = end_to_end["model"]
    _assert_same(end_to_end["weights_before"], _values(mobilenet.weights))  # BN statistics included
    assert [w.path for w in model.trainable_weights] == ["logits/kernel", "logits/bias"]
    assert not any(layer.trainable for layer in model.get_layer("base").layers)
    # ... while the head did learn: the loss fell and its weights moved.
    assert end_to_end["loss"][-1] < end_to_end["loss"][0]
    assert not np.allclose(model.get_layer("head").get_weights()[0], end_to_end["initial_head"][0])


def test_head_on_cached_features_equals_head_trained_through_the_frozen_base(end_to_end, mobilenet, photos):
    x, y = photos
    extractor = feature_extractor(mobilenet, input_shape=(SIZE, SIZE, 3))
    features = cache_features(extractor, x, batch_size=4)
    assert features.shape == (8, 1280)

    head = head_on_features(3, 1280, dropout=0.0)
    head.set_weights(end_to_end["initial_head"])  # the same start as the end-to-end head
    head.compile(keras.optimizers.Adam(1e-2), LOGITS)
    history = head.fit(features, y, batch_size=4, epochs=4, shuffle=False, verbose=0)

    # Same features, same batches, same steps: the same head, up to float rounding.
    np.testing.assert_allclose(history.history["loss"], end_to_end["loss"], rtol=1e-4)
    trained = end_to_end["model"].get_layer("head").get_weights()
    for cached, through_base in zip(head.get_weights(), trained, strict=True):
        np.testing.assert_allclose(cached, through_base, rtol=1e-4, atol=1e-5)
    # The head goes back on the base: the full model predicts what the end-to-end one does.
    rebuilt = frozen_base_with_head(mobilenet, head=head, input_shape=(SIZE, SIZE, 3))
    np.testing.assert_allclose(rebuilt.predict(x, verbose=0), end_to_end["model"].predict(x, verbose=0),
                               rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(head.predict(features, verbose=0), end_to_end["model"].predict(x, verbose=0),
                               rtol=1e-4, atol=1e-4)


def test_cache_features_equals_calling_the_extractor(mobilenet, photos):
    x, _ = photos
    extractor = feature_extractor(mobilenet, input_shape=(SIZE, SIZE, 3))
    direct = keras.ops.convert_to_numpy(extractor(x, training=False))
    for batch_size in (3, 32):  # a last batch of 2, and one batch of all
        np.testing.assert_allclose(cache_features(extractor, x, batch_size=batch_size), direct,
                                   rtol=1e-4, atol=1e-4)
    # Row i belongs to image i whatever the batch size.
    np.testing.assert_allclose(cache_features(extractor, x[::-1], batch_size=3), direct[::-1],
                               rtol=1e-4, atol=1e-4)


def test_feature_maps_at_several_depths_have_table_2_shapes(mobilenet):
    torchvision = _is_torchvision_layout(mobilenet)
    for size in (SIZE, 160):
        for names, (stride, channels) in STAGE_ENDS.items():
            name = names[1] if torchvision else names[0]
            side = size // stride
            extractor = feature_extractor(mobilenet, name, pooling=None, input_shape=(size, size, 3))
            assert extractor.output_shape == (None, side, side, channels), name
        # Default: the last feature map, 1280 channels after the final 1×1 convolution.
        assert feature_extractor(mobilenet, input_shape=(size, size, 3)).output_shape == (None, 1280)
        assert feature_extractor(mobilenet, pooling=None,
                                 input_shape=(size, size, 3)).output_shape == (None, size // 32, size // 32, 1280)


def test_pooling_is_the_mean_or_max_of_the_feature_map(mobilenet, photos):
    x, _ = photos
    layer = "features_13_add" if _is_torchvision_layout(mobilenet) else "block_12_add"
    shape = (SIZE, SIZE, 3)
    maps = cache_features(feature_extractor(mobilenet, layer, pooling=None, input_shape=shape), x[:2])
    mean = cache_features(feature_extractor(mobilenet, layer, input_shape=shape), x[:2])
    top = cache_features(feature_extractor(mobilenet, layer, pooling="max", input_shape=shape), x[:2])
    np.testing.assert_allclose(mean, maps.mean(axis=(1, 2)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(top, maps.max(axis=(1, 2)), rtol=1e-6)


def test_the_pretrained_base_still_classifies_at_224(mobilenet):
    # Cutting and rebuilding shares the layers: the ImageNet classifier is unchanged and
    # still calls chelsea an Egyptian cat (class 285), as tests/test_pretrained.py checks.
    extractor = feature_extractor(mobilenet)
    assert extractor.input_shape == (None, 224, 224, 3)
    x = pretrained.preprocess(pretrained.resize_for_model(data.chelsea()))
    assert int(np.argmax(mobilenet.predict(x, verbose=0))) == 285


# Four depths, deliberately not in the base's order: the stem, the ends of two stages, the last map.
SEVERAL_DEPTHS = {
    True: ["features_18_2", "features_6_add", "features_0_2", "features_13_add"],   # torchvision layout
    False: ["out_relu", "block_5_add", "Conv1_relu", "block_12_add"],              # Keras layout
}


@pytest.mark.parametrize("size", [SIZE, 128])
def test_a_list_of_layers_gives_each_single_layer_output_in_the_given_order(mobilenet, photos, size):
    x = photos[0][:4]
    if size != SIZE:
        x = keras.ops.convert_to_numpy(keras.ops.image.resize(x, (size, size)))
    names = SEVERAL_DEPTHS[_is_torchvision_layout(mobilenet)]
    several = feature_extractor(mobilenet, names, input_shape=(size, size, 3))
    together = cache_features(several, x)  # one pass through the base, one array per name
    assert isinstance(together, list) and len(together) == len(names)
    for name, features in zip(names, together, strict=True):
        alone = feature_extractor(mobilenet, name, input_shape=(size, size, 3))
        assert features.shape == (4, alone.output_shape[-1]), name
        np.testing.assert_allclose(features, keras.ops.convert_to_numpy(alone(x, training=False)),
                                   rtol=1e-4, atol=1e-4, err_msg=name)
    # The deepest name needs every layer up to the last map: the base's weights, the same
    # objects, and no new ones (pooling has no weights).
    base_weights = {id(w) for w in mobilenet.weights}
    assert {id(w) for w in several.weights} <= base_weights
    assert several.count_params() == feature_extractor(mobilenet, input_shape=(size, size, 3)).count_params()


def test_a_list_of_layers_keeps_its_order_and_shares_the_layers():
    base = tiny_base(blocks=3)
    names = ["block_3_relu", "block_1_conv", "block_2_BN"]
    several = feature_extractor(base, names, pooling=None, input_shape=(6, 6, 3))
    assert several.output_shape == [(None, 6, 6, 4)] * 3
    x = np.random.default_rng(0).normal(size=(2, 6, 6, 3)).astype(np.float32)
    outputs = several.predict_on_batch(x)
    for name, output in zip(names, outputs, strict=True):
        alone = feature_extractor(base, name, pooling=None, input_shape=(6, 6, 3))
        np.testing.assert_allclose(output, alone.predict_on_batch(x), rtol=1e-5, atol=1e-6, err_msg=name)
    # Pooled: the pooling layers are named after their layers; 'max' is the maximum of each map.
    pooled = feature_extractor(base, names, pooling="max", input_shape=(6, 6, 3))
    assert sorted(layer.name for layer in pooled.layers if "pool" in layer.name) == sorted(f"max_pool_{n}" for n in names)
    for output, maps in zip(pooled.predict_on_batch(x), outputs, strict=True):
        np.testing.assert_allclose(output, maps.max(axis=(1, 2)), rtol=1e-6)
    # Shared layers: the same weight objects, and freezing the base freezes the extractor.
    assert [id(w) for w in several.weights] == [id(w) for w in base.weights]
    base.trainable = False
    assert several.trainable_weights == []
    # A one-name list is the single-name extractor (Keras gives one output, not a list of one).
    assert feature_extractor(base, ("block_2_BN",)).output_shape == feature_extractor(base, "block_2_BN").output_shape


def test_a_list_of_layers_is_checked():
    base = tiny_base()
    with pytest.raises(ValueError, match="layer_name is an empty list"):
        feature_extractor(base, [])
    with pytest.raises(ValueError, match="names 'block_1_BN' more than once"):
        feature_extractor(base, ["block_1_BN", "block_2_relu", "block_1_BN"])
    with pytest.raises(ValueError, match=r"no layer named 'block_2_rleu': did you mean 'block_2_relu'"):
        feature_extractor(base, ["block_1_BN", "block_2_rleu"])
    with pytest.raises(ValueError, match="no layer named 'banana': its last feature maps are .*'block_2_relu'"):
        feature_extractor(base, ("banana",))
    with pytest.raises(TypeError, match=r"must hold layer names \(strings\), got 3"):
        feature_extractor(base, ["block_1_BN", 3])
    with pytest.raises(TypeError, match=r"a string\), a list of names, or None, got 5"):
        feature_extractor(base, 5)
    dense = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Conv2D(2, 1, name="conv"),
                              keras.layers.Flatten(), keras.layers.Dense(2, name="dense")])
    with pytest.raises(ValueError, match=r"layer 'dense' gives shape \(None, 2\), not a feature map"):
        feature_extractor(dense, ["conv", "dense"])
    assert feature_extractor(dense, ["conv", "dense"], pooling=None).output_shape == [(None, 4, 4, 2), (None, 2)]


def test_several_outputs_are_cached_as_a_list_but_not_stored(tmp_path):
    base = tiny_base()
    several = feature_extractor(base, ["block_2_relu", "block_1_relu"])
    images = np.random.default_rng(3).normal(size=(5, 8, 8, 3)).astype(np.float32)
    cached = cache_features(several, images, batch_size=2)
    assert [part.shape for part in cached] == [(5, 4), (5, 4)]
    np.testing.assert_allclose(cached[1], cache_features(feature_extractor(base, "block_1_relu"), images),
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="this extractor has 2 outputs: store each depth"):
        transfer.stored_features(several, images, name="several", cache_dir=tmp_path)


# ----------------------------------------------------------------------------- Keras' layout


@pytest.fixture(scope="module")
def keras_mobilenet():
    """Keras' own MobileNetV2 layout (random weights: nothing to download)."""
    keras.utils.set_random_seed(1)
    return keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3))


def test_rebuilt_at_96_px_equals_keras_own_mobilenet_at_96_px(keras_mobilenet):
    # Keras builds MobileNetV2 for any size divisible by 32 with the same layers and weight
    # shapes; copying the 224-px weights into its 96-px network is the reference.
    reference = keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=(SIZE, SIZE, 3))
    by_name = {layer.name: layer for layer in keras_mobilenet.layers}
    for layer in reference.layers:
        if layer.weights:
            layer.set_weights(by_name[layer.name].get_weights())
    rebuilt = feature_extractor(keras_mobilenet, pooling=None, input_shape=(SIZE, SIZE, 3))
    x = np.random.default_rng(2).uniform(-1, 1, (2, SIZE, SIZE, 3)).astype(np.float32)
    expected = reference.predict(x, verbose=0)
    assert expected.shape == (2, 3, 3, 1280)
    np.testing.assert_allclose(cache_features(rebuilt, x), expected, rtol=1e-4, atol=1e-4)


def test_unfreeze_top_on_keras_layout(keras_mobilenet):
    convs = [layer.name for layer in keras_mobilenet.layers
             if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D))]
    assert len(convs) == 52  # stem, 2 in the first block, 3 in each of 16 others, last 1×1
    assert unfreeze_top(keras_mobilenet, 2) == [
        "block_15_expand", "block_15_depthwise", "block_15_project",
        "block_16_expand", "block_16_depthwise", "block_16_project", "Conv_1"]
    assert unfreeze_top(keras_mobilenet, 17) == convs  # the whole base, classifier excluded
    assert not keras_mobilenet.get_layer("predictions").trainable
    assert not any(layer.trainable for layer in _bn_layers(keras_mobilenet))
    assert unfreeze_top(keras_mobilenet, 0) == []
    assert keras_mobilenet.trainable_weights == []


# ----------------------------------------------------------------------------- fine-tuning


def test_fine_tuning_moves_the_top_convolutions_but_no_bn_statistics(photos):
    x, y = photos
    base = pretrained.mobilenet_v2(verbose=False)  # its own copy: fine-tuning changes it
    model = frozen_base_with_head(base, 3, dropout=0.0, input_shape=(SIZE, SIZE, 3))
    trainable = unfreeze_top(model, 2)
    if _is_torchvision_layout(base):
        expected = ["features_16_conv_0_0", "features_16_conv_1_0", "features_16_conv_2",
                    "features_17_conv_0_0", "features_17_conv_1_0", "features_17_conv_2", "features_18_0"]
        below = "features_15_conv_2"  # the block below the top two: stays frozen
    else:
        expected = ["block_15_expand", "block_15_depthwise", "block_15_project",
                    "block_16_expand", "block_16_depthwise", "block_16_project", "Conv_1"]
        below = "block_14_project"
    assert trainable == expected
    inner = model.get_layer("base")
    now_trainable = sorted(layer.name for layer in inner.layers if layer.trainable and layer.trainable_weights)
    assert now_trainable == sorted(expected)
    assert not any(layer.trainable for layer in _bn_layers(inner))
    # Trainable weights: 7 kernels (no biases before BN) and the head's kernel and bias.
    assert len(model.trainable_weights) == 9

    bn_before = _values(w for layer in _bn_layers(inner) for w in layer.weights)
    below_before = _values(inner.get_layer(below).weights)
    top_before = _values(inner.get_layer(name).weights[0] for name in expected)
    model.compile(keras.optimizers.Adam(1e-3), LOGITS)
    model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)

    _assert_same(below_before, _values(inner.get_layer(below).weights))
    _assert_same(bn_before, _values(w for layer in _bn_layers(inner) for w in layer.weights))
    for name, old in zip(expected, top_before, strict=True):
        assert not np.array_equal(old, inner.get_layer(name).weights[0]), f"{name} did not learn"


def test_a_trainable_bn_layer_in_training_mode_does_move_its_statistics():
    # The contrast: without the precautions the same fit changes the moving statistics,
    # so the checks of the other tests can fail.
    keras.utils.set_random_seed(0)
    x, y = tiny_data()
    base = tiny_base()
    inputs = keras.Input((8, 8, 3))
    outputs = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(base(inputs)))  # training mode in fit
    plain = keras.Model(inputs, outputs)
    before = _values(base.get_layer("block_1_BN").weights)
    plain.compile(keras.optimizers.Adam(1e-2), LOGITS)
    plain.fit(x, y, batch_size=8, epochs=1, verbose=0)
    gamma, beta, moving_mean, moving_variance = _values(base.get_layer("block_1_BN").weights)
    assert not np.allclose(moving_mean, before[2])
    assert not np.allclose(moving_variance, before[3])


def test_unfrozen_tiny_base_learns_while_bn_stays_put():
    keras.utils.set_random_seed(0)
    x, y = tiny_data()
    base = tiny_base()
    model = frozen_base_with_head(base, 2, dropout=0.0)
    assert unfreeze_top(model, 2) == ["block_1_conv", "block_2_conv"]
    bn_before = _values(w for layer in _bn_layers(base) for w in layer.weights)
    conv_before = _values(base.get_layer("block_1_conv").weights)
    model.compile(keras.optimizers.Adam(1e-2), LOGITS)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    _assert_same(bn_before, _values(w for layer in _bn_layers(base) for w in layer.weights))
    assert not np.allclose(conv_before[0], base.get_layer("block_1_conv").weights[0])


def test_training_false_alone_does_not_protect_bn_statistics_in_keras_3():
    # Why unfreeze_top keeps BN layers frozen rather than relying on training=False: in
    # Keras 3 fit calls the whole model with training=True, which replaces the
    # training=False written into the functional graph (keras/src/models/functional.py,
    # operation_fn), so a trainable BN layer inside the base updates its statistics anyway.
    # If a later Keras honours training=False here, this test fails: then the module's
    # description of the mechanism should be updated.
    keras.utils.set_random_seed(0)
    x, y = tiny_data()
    base = tiny_base()
    model = frozen_base_with_head(base, 2, dropout=0.0)
    model.get_layer("base").trainable = True  # by hand: BN layers trainable too
    before = _values(base.get_layer("block_1_BN").weights)
    model.compile(keras.optimizers.Adam(1e-2), LOGITS)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    after = _values(base.get_layer("block_1_BN").weights)
    assert not np.allclose(before[2], after[2])  # moving mean
    assert not np.allclose(before[0], after[0])  # gamma
    # Called directly without a training argument, the training=False in the graph holds:
    # the same output as in inference mode, not the batch-statistics output of training mode.
    direct = keras.ops.convert_to_numpy(model(x))
    np.testing.assert_allclose(direct, keras.ops.convert_to_numpy(model(x, training=False)), rtol=1e-6)
    assert not np.allclose(direct, keras.ops.convert_to_numpy(model(x, training=True)), rtol=1e-3)


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 5).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n))), st.booleans())
def test_unfreeze_top_picks_exactly_the_top_blocks(case, torchvision_names):
    n, k = case
    inputs = keras.Input((6, 6, 2))
    stem = "features_0_0" if torchvision_names else "Conv1"
    x = keras.layers.Conv2D(2, 1, name=stem)(inputs)
    for b in range(1, n + 1):
        prefix = f"features_{b}_conv" if torchvision_names else f"block_{b}"
        x = keras.layers.Conv2D(2, 1, name=f"{prefix}_0_0" if torchvision_names else f"{prefix}_expand")(x)
        x = keras.layers.BatchNormalization(name=f"{prefix}_1" if torchvision_names else f"{prefix}_BN")(x)
    top = f"features_{n + 1}_0" if torchvision_names else "Conv_1"
    x = keras.layers.Conv2D(2, 1, name=top)(x)
    base = keras.Model(inputs, keras.layers.Dense(3, name="classifier")(keras.layers.Flatten()(x)))
    block_convs = [[f"features_{b}_conv_0_0" if torchvision_names else f"block_{b}_expand"]
                   for b in range(1, n + 1)]
    block_convs[0].insert(0, stem)  # the stem belongs to the first block
    block_convs[-1].append(top)  # the last 1×1 convolution to the last block
    expected = [name for block in block_convs[n - k:] for name in block]
    assert unfreeze_top(base, k) == expected
    assert sorted(layer.name for layer in base.layers if layer.trainable_weights and layer.trainable) == sorted(expected)


# ----------------------------------------------------------------------------- head


def test_head_layers_and_parameter_counts():
    head = head_on_features(4, 10, dropout=0.5)
    assert [layer.name for layer in head.layers] == ["features", "dropout", "logits"]
    assert head.count_params() == 10 * 4 + 4
    linear = head_on_features(4, 10, dropout=0.0)
    assert [layer.name for layer in linear.layers] == ["features", "logits"]
    deep = head_on_features(2, 6, hidden=3, dropout=0.0)
    assert deep.count_params() == (6 * 3 + 3) + (3 * 2 + 2)
    assert deep.get_layer("hidden").activation is keras.activations.relu


def test_frozen_base_with_head_is_not_compiled_and_takes_the_new_size():
    base = tiny_base(size=8)
    model = frozen_base_with_head(base, 5, input_shape=(12, 12, 3))
    assert not model.compiled
    assert model.input_shape == (None, 12, 12, 3) and model.output_shape == (None, 5)
    assert model.get_layer("head").get_layer("dropout").rate == pytest.approx(0.2)


def test_cache_features_shows_a_progress_bar_only_when_asked_or_long(capsys):
    extractor = keras.Sequential([keras.Input((2, 2, 1)), keras.layers.GlobalAveragePooling2D()])
    images = np.zeros((12, 2, 2, 1), np.float32)
    cache_features(extractor, images, batch_size=4)  # 3 batches: quiet
    assert capsys.readouterr().out == ""
    cache_features(extractor, images, batch_size=4, progress=True)
    assert "3/3" in capsys.readouterr().out
    cache_features(extractor, images, batch_size=1)  # 12 batches: a bar
    assert "12/12" in capsys.readouterr().out


# ----------------------------------------------------------------------------- messages


def test_errors_speak_the_students_language():
    base = tiny_base()
    extractor = feature_extractor(base)
    with pytest.raises(ValueError, match=r"one image of shape \(8, 8, 3\).*images\[None\]"):
        cache_features(extractor, np.zeros((8, 8, 3)))
    with pytest.raises(ValueError, match=r"expected images of shape \(N, 8, 8, 3\), got \(2, 9, 9, 3\)"):
        cache_features(extractor, np.zeros((2, 9, 9, 3)))
    with pytest.raises(ValueError, match="images is empty"):
        cache_features(extractor, np.zeros((0, 8, 8, 3)))
    with pytest.raises(TypeError, match="images must hold integer or float numbers"):
        cache_features(extractor, np.full((1, 8, 8, 3), "a"))
    with pytest.raises(ValueError, match="classes must be at least 2.*got 1"):
        frozen_base_with_head(base, 1)
    with pytest.raises(ValueError, match="classes must be at least 2"):
        head_on_features(0, 10)
    with pytest.raises(TypeError, match="needs classes"):
        frozen_base_with_head(base)
    with pytest.raises(ValueError, match="dropout .* less than 1, got 1.0"):
        head_on_features(2, 10, dropout=1.0)
    with pytest.raises(ValueError, match=r"no layer named 'block_2_rleu': did you mean 'block_2_relu'"):
        feature_extractor(base, "block_2_rleu")
    with pytest.raises(ValueError, match="no layer named 'banana': its last feature maps are .*'block_2_relu'"):
        feature_extractor(base, "banana")
    with pytest.raises(ValueError, match="unknown pooling 'mean'"):
        feature_extractor(base, pooling="mean")
    with pytest.raises(ValueError, match="has 1 channel.*takes 3; only the height and width can change"):
        feature_extractor(base, input_shape=(8, 8, 1))
    with pytest.raises(TypeError, match=r"input_shape must be \(height, width, channels\)"):
        feature_extractor(base, input_shape=96)
    with pytest.raises(TypeError, match="base must be a Keras model, got ndarray"):
        feature_extractor(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="blocks must be between 0 and 2 .* got -1"):
        unfreeze_top(base, -1)
    with pytest.raises(ValueError, match="blocks must be between 0 and 2 .* got 3"):
        unfreeze_top(base, 3)
    with pytest.raises(TypeError, match="blocks must be an int"):
        unfreeze_top(base, True)
    plain = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Conv2D(2, 3, name="conv")])
    with pytest.raises(ValueError, match="found no MobileNetV2 blocks.*block_<k>_"):
        unfreeze_top(plain, 1)
    with pytest.raises(ValueError, match=r"the head must take the base's pooled features, shape \(None, 4\); it takes \(None, 7\)"):
        frozen_base_with_head(base, head=head_on_features(2, 7))
    dense = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Flatten(), keras.layers.Dense(2, name="dense")])
    with pytest.raises(ValueError, match="no layer whose output is a feature map"):
        feature_extractor(dense)
    with pytest.raises(ValueError, match=r"layer 'dense' gives shape \(None, 2\), not a feature map"):
        feature_extractor(dense, "dense")
    vectors = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    unbuilt = keras.Sequential([keras.layers.Conv2D(2, 3)])
    with pytest.raises(TypeError, match="starts with keras.Input.*has no known input"):
        feature_extractor(unbuilt)
    with pytest.raises(ValueError, match=r"base must take images \(batch, height, width, channels\)"):
        feature_extractor(vectors)


@pytest.mark.slow
def test_inference_speed_benchmark_quick_mode_prints_json_last_line():
    # The benchmark's code path (real photos at four sizes through feature_extractor, timing, JSON),
    # not its figures (timing is never asserted).
    lines, result = run_benchmark("mobilenet_inference_speed.py", "--quick")
    assert list(result["sizes"]) == ["96", "128", "160", "224"] and result["images"] == 8
    for size, row in result["sizes"].items():
        assert row["images_per_second"] > 0 and row["pixel_ratio"] == round((224 / int(size)) ** 2, 2), size
        assert any(line.startswith(f"{int(size):4d} px:") for line in lines), size
    assert result["sizes"]["224"]["speedup_vs_224"] == 1.0


# --- features kept on disk between notebooks ------------------------------------------------


def _pooling_extractor(scale=1.0):
    inputs = keras.Input((4, 4, 2))
    x = keras.layers.Conv2D(3, 1, use_bias=False, kernel_initializer=keras.initializers.Constant(scale))(inputs)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))


def test_stored_features_are_computed_once_and_read_back(tmp_path, capsys):
    extractor = _pooling_extractor()
    images = np.random.default_rng(0).random((5, 4, 4, 2)).astype("float32")
    first = transfer.stored_features(extractor, images, name="demo", cache_dir=tmp_path)
    assert "computed and stored" in capsys.readouterr().out
    np.testing.assert_array_equal(first, transfer.cache_features(extractor, images))
    files = sorted(p.name for p in (tmp_path / "cnn_course_features").iterdir())
    assert len(files) == 2 and files[0].startswith("demo-") and files[1] == files[0] + ".sha256"

    # The second call must not run the extractor: one that would give other numbers proves it.
    calls = []
    original = extractor.predict
    extractor.predict = lambda *a, **k: calls.append(1) or original(*a, **k)
    again = transfer.stored_features(extractor, images, name="demo", cache_dir=tmp_path)
    assert "read from" in capsys.readouterr().out and not calls
    np.testing.assert_array_equal(again, first)


def test_stored_features_follow_the_weights_and_the_images(tmp_path):
    images = np.random.default_rng(1).random((3, 4, 4, 2)).astype("float32")
    a = transfer.stored_features(_pooling_extractor(1.0), images, name="x", cache_dir=tmp_path, verbose=False)
    b = transfer.stored_features(_pooling_extractor(2.0), images, name="x", cache_dir=tmp_path, verbose=False)
    np.testing.assert_allclose(b, 2 * a, rtol=1e-6)          # other weights: computed again, not read
    c = transfer.stored_features(_pooling_extractor(1.0), images[::-1], name="x", cache_dir=tmp_path, verbose=False)
    np.testing.assert_array_equal(c, a[::-1])                # other images: computed again
    assert len(list((tmp_path / "cnn_course_features").glob("x-*.npy"))) == 3


def test_a_damaged_feature_file_is_never_used(tmp_path, capsys):
    extractor = _pooling_extractor()
    images = np.random.default_rng(2).random((4, 4, 4, 2)).astype("float32")
    right = transfer.stored_features(extractor, images, name="d", cache_dir=tmp_path, verbose=False)
    stored, = (tmp_path / "cnn_course_features").glob("d-*.npy")
    damaged = right.copy()
    damaged[0, 0] += 1
    np.save(stored, damaged)                                   # same name, other content, old checksum
    again = transfer.stored_features(extractor, images, name="d", cache_dir=tmp_path)
    assert "computed and stored" in capsys.readouterr().out
    np.testing.assert_array_equal(again, right)
    np.testing.assert_array_equal(np.load(stored), right)      # the damaged file was replaced


@pytest.mark.parametrize("name", ["", "a/b", "../up", "with space", "x" * 65, 3])
def test_stored_features_refuse_names_that_are_not_plain_labels(tmp_path, name):
    with pytest.raises(ValueError, match="name must be a short label"):
        transfer.stored_features(_pooling_extractor(), np.zeros((1, 4, 4, 2), "float32"), name=name,
                                 cache_dir=tmp_path)


# --- grey images into a colour base -----------------------------------------------------------


def test_grey_image_extractor_equals_resize_repeat_preprocess_by_hand():
    base = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(5, 3, name="conv"),
                             keras.layers.ReLU(name="relu")])
    extractor = transfer.grey_image_extractor(base, 32)
    images = np.random.default_rng(3).integers(0, 256, (4, 28, 28, 1), dtype=np.uint8)
    upsampled = keras.layers.Resizing(32, 32)(images.astype("float32")).numpy()
    by_hand = np.repeat(upsampled, 3, axis=-1) / 127.5 - 1.0
    expected = base.predict(by_hand, verbose=0).mean(axis=(1, 2))
    np.testing.assert_allclose(extractor.predict(images, verbose=0), expected, rtol=1e-5, atol=1e-5)
    assert extractor.input_shape == (None, 28, 28, 1) and extractor.output_shape == (None, 5)
    assert len(extractor.weights) == len(base.weights)  # shares the base, adds nothing


def test_grey_image_extractor_has_the_layers_of_the_step_by_step_version():
    # Week 5's notebooks 4 and 6 build it step by step; the same layer types give the same
    # fingerprint, so their stored features are found again.
    base = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(2, 3, name="conv")])
    features = transfer.feature_extractor(base, input_shape=(32, 32, 3))
    grey = keras.Input((28, 28, 1))
    x = keras.layers.Resizing(32, 32)(grey)
    x = keras.layers.Concatenate()([x, x, x])
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(x)
    by_hand = keras.Model(grey, features(x))
    images = np.zeros((2, 28, 28, 1), np.uint8)
    assert transfer._fingerprint(by_hand, images) == transfer._fingerprint(
        transfer.grey_image_extractor(base, 32), images)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"size": 4}, "size must be at least 8"),
    ({"size": 32, "image_shape": (28, 28, 3)}, r"image_shape must be \(height, width, 1\)"),
    ({"size": 32, "image_shape": (28, 28)}, r"image_shape must be \(height, width, 1\)"),
])
def test_grey_image_extractor_rejects_bad_sizes(kwargs, message):
    base = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(2, 3)])
    with pytest.raises(ValueError, match=message):
        transfer.grey_image_extractor(base, **kwargs)
