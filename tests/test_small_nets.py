"""The week-4 small networks: shapes, parameter counts worked out by hand, and the TensorFlow layers they rebuild."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from benchmark_runner import run_benchmark
from cnn_course.small_nets import (
    CIFAR_TUTORIAL_VARIANTS,
    LocalResponseNormalization,
    PerImageStandardization,
    cifar_tutorial_net,
    conv_bn_relu,
    small_resnet,
    traffic_sign_net,
)
from hypothesis import given, settings
from hypothesis import strategies as st


# Parameter counts by the textbook formulas (a k×k convolution from c_in to c_out channels has
# k·k·c_in·c_out weights, plus c_out biases if it has them; batch normalisation keeps 4 numbers
# per channel, of which the scale and shift are trained; a dense layer has n_in·n_out + n_out).
def conv(k, c_in, c_out, bias=True):
    return k * k * c_in * c_out + (c_out if bias else 0)


def dense(n_in, n_out):
    return n_in * n_out + n_out


def trainable(model):
    return sum(math.prod(w.shape) for w in model.trainable_weights)


# ----------------------------------------------------------------------------- conv_bn_relu


def test_conv_bn_relu_has_no_convolution_bias():
    inputs = keras.Input((9, 9, 5))
    model = keras.Model(inputs, conv_bn_relu(inputs, 6, 3, strides=2, name="b"))
    conv_layer, bn_layer, relu_layer = model.layers[1:]
    assert [type(layer).__name__ for layer in model.layers[1:]] == ["Conv2D", "BatchNormalization", "ReLU"]
    assert [w.shape for w in conv_layer.weights] == [(3, 3, 5, 6)]  # the kernel only
    assert conv_layer.get_config()["padding"] == "same"
    # 9×9 at stride 2 with "same" padding: ceil(9 / 2) = 5.
    assert model.output_shape == (None, 5, 5, 6)
    # 3·3·5·6 = 270 weights; BN 2·6 = 12 trained (gamma, beta) + 12 statistics.
    assert trainable(model) == conv(3, 5, 6, bias=False) + 2 * 6 == 282
    assert model.count_params() == 282 + 12
    assert (bn_layer.name, relu_layer.name) == ("b_bn", "b_relu")


def test_conv_bn_relu_output_is_relu_of_normalised_convolution():
    # Worked by hand: a 1×1 convolution with weight 2 turns [-1, 0, 3] into [-2, 0, 6]: mean 4/3,
    # variance ((-10/3)² + (-4/3)² + (14/3)²) / 3 = 104/9; batch normalisation in training mode
    # (gamma 1, beta 0) gives (v - 4/3) / sqrt(104/9 + eps), and ReLU cuts the negative ones.
    inputs = keras.Input((1, 3, 1))
    model = keras.Model(inputs, conv_bn_relu(inputs, 1, 1, name="b"))
    model.get_layer("b_conv").set_weights([np.full((1, 1, 1, 1), 2.0)])
    out = model(np.array([-1.0, 0.0, 3.0]).reshape(1, 1, 3, 1), training=True)
    eps = model.get_layer("b_bn").epsilon
    std = math.sqrt(104 / 9 + eps)
    expected = [max(0.0, (v - 4 / 3) / std) for v in (-2.0, 0.0, 6.0)]
    np.testing.assert_allclose(np.asarray(out).ravel(), expected, rtol=1e-5)


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"filters": 0}, ValueError, "filters must be positive, got 0"),
    ({"filters": 2.0}, TypeError, "filters must be a whole number"),
    ({"kernel_size": -3}, ValueError, "kernel_size must be positive"),
    ({"strides": True}, TypeError, "strides must be a whole number"),
    ({"name": 3}, TypeError, "name must be a string"),
])
def test_conv_bn_relu_bad_arguments(kwargs, error, message):
    inputs = keras.Input((8, 8, 3))
    kwargs = {"filters": 4, **kwargs}
    with pytest.raises(error, match=message):
        conv_bn_relu(inputs, **kwargs)


def test_conv_bn_relu_needs_a_feature_map():
    with pytest.raises(ValueError, match=r"4-D feature map .* got shape \(None, 8\)"):
        conv_bn_relu(keras.Input((8,)), 4)


# ----------------------------------------------------------------------------- traffic_sign_net


def traffic_sign_trainable(c_in, c, dense_units, classes):
    """Trainable weights of the lectures' network, layer by layer."""
    total, previous = 0, c_in
    for channels in (c, 2 * c, 4 * c):
        for _ in range(3):
            total += conv(3, previous, channels, bias=False) + 2 * channels  # + gamma, beta
            previous = channels
    return total + dense(4 * c, dense_units) + dense(dense_units, dense_units) + dense(dense_units, classes)


def test_traffic_sign_net_parameters_of_the_lecture_setting():
    model = traffic_sign_net()
    # Convolutions (no biases): stage 1: 3·3·3·32 = 864, 2 × 3·3·32·32 = 18,432;
    # stage 2: 3·3·32·64 = 18,432, 2 × 3·3·64·64 = 73,728; stage 3: 3·3·64·128 = 73,728,
    # 2 × 3·3·128·128 = 294,912: 480,096 in all. BN: 2·(3·32 + 3·64 + 3·128) = 1,344 trained.
    # Dense: 128·100 + 100 = 12,900; 100·100 + 100 = 10,100; 100·43 + 43 = 4,343.
    assert trainable(model) == 480_096 + 1_344 + 12_900 + 10_100 + 4_343 == 508_783
    assert trainable(model) == traffic_sign_trainable(3, 32, 100, 43)
    assert model.count_params() == 508_783 + 1_344  # + the BN moving means and variances
    assert model.output_shape == (None, 43)


@pytest.mark.parametrize(("input_shape", "classes", "c", "units"), [
    ((28, 28, 1), 10, 8, 64),
    ((48, 40, 3), 43, 16, 100),
])
def test_traffic_sign_net_parameters_other_settings(input_shape, classes, c, units):
    model = traffic_sign_net(input_shape=input_shape, classes=classes, base_channels=c, dense_units=units)
    assert trainable(model) == traffic_sign_trainable(input_shape[2], c, units, classes)
    assert model.output_shape == (None, classes)


def test_traffic_sign_net_layout():
    model = traffic_sign_net(base_channels=8, dropout=0.3)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [layer.filters for layer in convs] == [8] * 3 + [16] * 3 + [32] * 3
    assert all(layer.kernel_size == (3, 3) and not layer.use_bias for layer in convs)
    # 32×32 → pool → 16×16 → pool → 8×8; then global average pooling.
    assert [layer.output.shape[1] for layer in convs] == [32] * 3 + [16] * 3 + [8] * 3
    pools = [layer for layer in model.layers if isinstance(layer, keras.layers.MaxPooling2D)]
    assert [layer.pool_size for layer in pools] == [(2, 2), (2, 2)]
    assert [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)] == [0.3, 0.3]
    assert [layer.units for layer in model.layers if isinstance(layer, keras.layers.Dense)] == [100, 100, 43]
    assert model.layers[-1].get_config()["activation"] == "linear"  # logits


def test_traffic_sign_net_runs_on_pixel_values():
    model = traffic_sign_net(input_shape=(16, 16, 3), classes=5, base_channels=4, dense_units=8)
    images = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3)).astype(np.uint8)
    logits = np.asarray(model(images, training=False))
    assert logits.shape == (2, 5) and np.isfinite(logits).all()


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"classes": 1}, ValueError, "classes must be at least 2"),
    ({"base_channels": 0}, ValueError, "base_channels must be positive"),
    ({"dense_units": 2.5}, TypeError, "dense_units must be a whole number"),
    ({"dropout": 1.0}, ValueError, r"dropout must be a rate in \[0, 1\), got 1.0"),
    ({"dropout": "half"}, TypeError, "dropout must be a number"),
    ({"input_shape": (32, 32)}, ValueError, r"3 numbers .* got 2: \(32, 32\)"),
    ({"input_shape": (3, 32, 3)}, ValueError, "at least 4×4 pixels, got 3×32"),
    ({"input_shape": "32x32"}, TypeError, "input_shape must be a tuple"),
    ({"input_shape": (32, 32, 0)}, ValueError, "the channels in input_shape must be positive"),
])
def test_traffic_sign_net_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        traffic_sign_net(**kwargs)


# ----------------------------------------------------------------------------- CIFAR-10 tutorial


def test_cifar_tutorial_reference_matches_the_tutorials_count():
    # TensorFlow's "Convolutional Neural Networks" tutorial (tensorflow.org, 2016) says its
    # CIFAR-10 model "contains 1,068,298 learnable parameters" (24×24 crops). By hand:
    # conv1 5·5·3·64 + 64 = 4,864; conv2 5·5·64·64 + 64 = 102,464; 24 → 12 → 6 after two
    # stride-2 poolings, so local3 6·6·64·384 + 384 = 885,120; local4 384·192 + 192 = 73,920;
    # logits 192·10 + 10 = 1,930.
    model = cifar_tutorial_net([(5, 64), (5, 64)], input_shape=(24, 24, 3))
    assert model.count_params() == 4_864 + 102_464 + 885_120 + 73_920 + 1_930 == 1_068_298
    assert [layer.name for layer in model.layers[2:8]] == ["conv1", "pool1", "norm1", "conv2", "norm2", "pool2"]


def cifar_tutorial_parameters(convs, size=32, c_in=3, classes=10):
    total = 0
    for kernel, filters in convs:
        total += conv(kernel, c_in, filters)
        c_in, size = filters, math.ceil(size / 2)  # 3×3 pooling, stride 2, "same"
    return total + dense(size * size * c_in, 384) + dense(384, 192) + dense(192, classes)


@pytest.mark.parametrize("name", list(CIFAR_TUTORIAL_VARIANTS))
def test_cifar_tutorial_variants_parameters(name):
    convs = CIFAR_TUTORIAL_VARIANTS[name]["convs"]
    model = cifar_tutorial_net(convs)
    assert model.count_params() == trainable(model) == cifar_tutorial_parameters(convs)
    assert model.output_shape == (None, 10)


def test_cifar_tutorial_variants_are_the_lectures_table():
    # The lecture's table: reference 5×5·64 → 5×5·64 86.1 % after 12 h; after 2 h:
    # 5×5·64 78.7 %, 5×5·256 79.6 %, 7×7·128 → 5×5·64 → 3×3·64 81.7 %, 5×5·256 → 5×5·128 → 3×3·64 81.9 %.
    table = {tuple(v["convs"]): (v["lecture_accuracy"], v["lecture_hours"]) for v in CIFAR_TUTORIAL_VARIANTS.values()}
    assert table == {((5, 64), (5, 64)): (0.861, 12), ((5, 64),): (0.787, 2), ((5, 256),): (0.796, 2),
                     ((7, 128), (5, 64), (3, 64)): (0.817, 2), ((5, 256), (5, 128), (3, 64)): (0.819, 2)}


def test_cifar_tutorial_32x32_reference_by_hand():
    # 32 → 16 → 8: local3 has 8·8·64·384 + 384 = 1,573,248 parameters.
    model = cifar_tutorial_net([(5, 64), (5, 64)])
    assert model.count_params() == 4_864 + 102_464 + 1_573_248 + 73_920 + 1_930 == 1_756_426


def test_cifar_tutorial_without_lrn_has_the_same_weights():
    with_lrn, without = cifar_tutorial_net([(5, 64)]), cifar_tutorial_net([(5, 64)], lrn=False)
    assert with_lrn.count_params() == without.count_params()
    assert not any(isinstance(layer, LocalResponseNormalization) for layer in without.layers)


def test_cifar_tutorial_weight_decay_is_the_tutorials():
    # The tutorial adds wd · tf.nn.l2_loss(w) = 0.004 · sum(w²) / 2 for local3 and local4.
    model = cifar_tutorial_net([(3, 4)], input_shape=(8, 8, 3))
    model(np.zeros((1, 8, 8, 3), np.float32))
    expected = sum(0.004 * float(np.sum(np.square(model.get_layer(name).kernel.numpy()))) / 2
                   for name in ("local3", "local4"))
    np.testing.assert_allclose(float(sum(np.asarray(loss) for loss in model.losses)), expected, rtol=1e-5)


def test_cifar_tutorial_saves_and_loads(tmp_path):
    model = cifar_tutorial_net([(3, 4)], input_shape=(8, 8, 3), classes=3)
    images = np.random.default_rng(1).integers(0, 256, (2, 8, 8, 3)).astype(np.float32)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(np.asarray(loaded(images)), np.asarray(model(images)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("convs", "kwargs", "error", "message"), [
    ([], {}, ValueError, "non-empty list of"),
    ("5x64", {}, ValueError, "non-empty list of"),
    ([(5,)], {}, ValueError, r"convs\[0\] must be a pair"),
    ([(5, 64), (0, 64)], {}, ValueError, r"the kernel size of convs\[1\] must be positive"),
    ([(5, 64.0)], {}, TypeError, r"the number of filters of convs\[0\] must be a whole number"),
    ([(5, 64)], {"classes": 0}, ValueError, "classes must be positive"),
    ([(5, 64)], {"input_shape": (32, 32, 3, 1)}, ValueError, "got 4"),
])
def test_cifar_tutorial_bad_arguments(convs, kwargs, error, message):
    with pytest.raises(error, match=message):
        cifar_tutorial_net(convs, **kwargs)


# ----------------------------------------------------------------------------- the two layers against TensorFlow

feature_maps = st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 12), st.integers(0, 2**31 - 1))


@settings(max_examples=25, deadline=None)
@given(shape=feature_maps, depth_radius=st.integers(0, 5), alpha=st.floats(1e-4, 1.0),
       beta=st.floats(0.25, 1.0), bias=st.floats(0.5, 2.0))
def test_lrn_equals_tensorflow(shape, depth_radius, alpha, beta, bias):
    *dims, seed = shape
    x = np.random.default_rng(seed).normal(size=(2, *dims)).astype(np.float32)
    ours = LocalResponseNormalization(depth_radius, bias=bias, alpha=alpha, beta=beta)(x)
    reference = tf.nn.local_response_normalization(x, depth_radius=depth_radius, bias=bias, alpha=alpha, beta=beta)
    np.testing.assert_allclose(np.asarray(ours), reference.numpy(), rtol=1e-5, atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(shape=feature_maps, scale=st.sampled_from([0.0, 1.0, 255.0]))
def test_per_image_standardization_equals_tensorflow(shape, scale):
    *dims, seed = shape
    x = (np.random.default_rng(seed).random(size=(3, *dims)) * scale).astype(np.float32)  # scale 0: uniform images
    ours = PerImageStandardization()(x)
    np.testing.assert_allclose(np.asarray(ours), tf.image.per_image_standardization(x).numpy(), rtol=1e-4, atol=1e-5)


def test_lrn_rejects_a_negative_radius():
    with pytest.raises(ValueError, match="depth_radius must be a whole number >= 0, got -1"):
        LocalResponseNormalization(-1)


# ----------------------------------------------------------------------------- small_resnet


def bn(c):
    return 4 * c  # scale, shift, moving mean, moving variance


def test_small_resnet_parameters_equal_the_hand_count():
    # widths 16, 32, 64, one block per stage, grey input; convolutions without bias (BN follows).
    stem = conv(3, 1, 16, bias=False) + bn(16)
    stage1 = 2 * (conv(3, 16, 16, bias=False) + bn(16))
    stage2 = conv(3, 16, 32, bias=False) + conv(3, 32, 32, bias=False) + 2 * bn(32) + conv(1, 16, 32, bias=False) + bn(32)
    stage3 = conv(3, 32, 64, bias=False) + conv(3, 64, 64, bias=False) + 2 * bn(64) + conv(1, 32, 64, bias=False) + bn(64)
    assert small_resnet().count_params() == stem + stage1 + stage2 + stage3 + dense(64, 10) == 78_426
    # The plain network: the same convolutions, no projections.
    plain = conv(3, 1, 16, bias=False) + bn(16) + 2 * (conv(3, 16, 16, bias=False) + bn(16)) \
        + conv(3, 16, 32, bias=False) + conv(3, 32, 32, bias=False) + 2 * bn(32) \
        + conv(3, 32, 64, bias=False) + conv(3, 64, 64, bias=False) + 2 * bn(64) + dense(64, 10)
    assert small_resnet(residual=False).count_params() == plain
    # Without batch normalisation every convolution has its bias.
    no_bn = conv(3, 1, 16) + 2 * conv(3, 16, 16) + conv(3, 16, 32) + conv(3, 32, 32) + conv(1, 16, 32) \
        + conv(3, 32, 64) + conv(3, 64, 64) + conv(1, 32, 64) + dense(64, 10)
    assert small_resnet(batch_norm=False).count_params() == no_bn


def test_small_resnet_depth_names_and_shapes():
    model = small_resnet(input_shape=(32, 32, 3), widths=(8, 16, 32, 64), blocks_per_stage=2)
    assert model.name == "resnet18_bn" and model.output_shape == (None, 10)
    assert sum(isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)) for layer in model.layers
               if "projection" not in layer.name) == 18
    assert model.get_layer("stage4_block2_relu").output.shape == (None, 4, 4, 64)
    assert small_resnet(residual=False, batch_norm=False).name == "plain8"
    assert not any(isinstance(layer, keras.layers.Add) for layer in small_resnet(residual=False).layers)


def test_a_residual_block_with_zero_weights_passes_its_input_on():
    # With the block's convolutions zeroed, h = relu(f(h) + h) = relu(h): the shortcut carries it.
    model = small_resnet(widths=(4,), batch_norm=False)
    stem = keras.Model(model.input, model.get_layer("stem_relu").output)
    block = keras.Model(model.input, model.get_layer("stage1_block1_relu").output)
    for layer in model.layers:
        if layer.name.startswith("stage1_block1_") and layer.weights:
            layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
    images = np.random.default_rng(0).integers(0, 256, size=(2, 28, 28, 1)).astype("float32")
    np.testing.assert_allclose(block.predict(images, verbose=0), stem.predict(images, verbose=0), atol=1e-6)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"widths": ()}, TypeError, "widths must be a non-empty list"),
    ({"widths": (16, 0)}, ValueError, "each entry of widths must be positive"),
    ({"blocks_per_stage": 0}, ValueError, "blocks_per_stage must be positive"),
    ({"residual": 1}, TypeError, "residual must be True or False"),
    ({"classes": 1}, ValueError, "classes must be at least 2"),
    ({"input_shape": (2, 2, 1), "widths": (4, 8, 16)}, ValueError, "at least 4×4 pixels"),
])
def test_small_resnet_bad_arguments_say_what_is_wrong(kwargs, error, message):
    with pytest.raises(error, match=message):
        small_resnet(**kwargs)


@pytest.mark.slow
def test_fashion_benchmark_quick_mode_prints_json_last_line():
    # The benchmark's code path (data split, one-cycle training, timing, test once, JSON), not its
    # figures: one epoch on 2,000 images reaches no target.
    lines, result = run_benchmark("fashion_time_to_accuracy.py", "--quick", "--networks", "plain", "resnet_bn")
    assert result["target"] == 0.93 and result["recipe"]["quick"] is True
    assert list(result["networks"]) == ["plain", "resnet_bn"]
    for name, figures in result["networks"].items():
        assert figures["epochs_run"] == 1 and figures["seconds_to_target"] is None, name
        assert 0 <= figures["test_accuracy"] <= 1 and figures["training_seconds"] > 0, name
        assert any(line.startswith(f"  {name} epoch 1:") for line in lines), name
    assert result["networks"]["plain"]["parameters"] < result["networks"]["resnet_bn"]["parameters"]
    assert any("validation 6000 (held out from the training set)" in line for line in lines)
