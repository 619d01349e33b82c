"""cnn_course.segmentation: mask scores against scikit-learn and by hand; U-Net and FCN structure,
parameter counts by formula; dense_to_conv against the Dense layer and a brute-force sliding window."""

from __future__ import annotations

import keras  # imports TensorFlow once for the module; a broken install fails, never skips
import numpy as np
import pytest
import tensorflow as tf
from cnn_course.segmentation import dense_to_conv, dice, fcn, iou_score, unet
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import f1_score, jaccard_score

# ----------------------------------------------------------------------------- dice and IoU


def test_hand_worked_masks():
    # truth: a 2×3 block in the top left of a 4×4 image (6 pixels);
    # guess: the same block moved one row down and one column right
    truth = np.array([[1, 1, 1, 0],
                      [1, 1, 1, 0],
                      [0, 0, 0, 0],
                      [0, 0, 0, 0]])
    guess = np.array([[0, 0, 0, 0],
                      [0, 1, 1, 1],
                      [0, 1, 1, 1],
                      [0, 0, 0, 0]])
    # |A| = 6, |B| = 6, A ∩ B = (1,1), (1,2): 2 pixels, A ∪ B = 6 + 6 - 2 = 10
    # IoU = 2/10 = 0.2, Dice = 2·2/(6 + 6) = 1/3 (and 2·0.2/1.2 = 1/3 as the identity says)
    assert iou_score(truth, guess) == pytest.approx(0.2)
    assert dice(truth, guess) == pytest.approx(1 / 3)
    # the scores are symmetric
    assert iou_score(guess, truth) == pytest.approx(0.2)
    # identical masks: 1; disjoint masks: 0
    assert iou_score(truth, truth) == 1.0 and dice(truth, truth) == 1.0
    assert iou_score(truth, 1 - truth) == 0.0 and dice(truth, 1 - truth) == 0.0
    # a guess inside the truth: IoU = |B| / |A| = 2/6, Dice = 2·2/(6 + 2) = 0.5
    inside = np.zeros((4, 4), bool)
    inside[0, :2] = True
    assert iou_score(truth, inside) == pytest.approx(1 / 3)
    assert dice(truth, inside) == pytest.approx(0.5)


def test_empty_masks_score_one_and_one_sided_empty_scores_zero():
    empty = np.zeros((3, 5), np.uint8)
    some = empty.copy()
    some[1, 2] = 1
    assert iou_score(empty, empty) == 1.0 and dice(empty, empty) == 1.0
    assert iou_score(empty, some) == 0.0 and dice(some, empty) == 0.0


def test_per_image_versus_pooled_by_hand():
    # image 0: truth 4 pixels, guess the same 4 pixels -> IoU 1, Dice 1
    # image 1: truth 1 pixel, guess 1 other pixel -> IoU 0, Dice 0
    # pooled: intersection 4, union 4 + 2 = 6 -> IoU 2/3; Dice 2·4/(5 + 5) = 0.8
    truth = np.zeros((2, 3, 3, 1), bool)
    guess = np.zeros_like(truth)
    truth[0, :2, :2] = guess[0, :2, :2] = True
    truth[1, 2, 2] = True
    guess[1, 0, 0] = True
    np.testing.assert_allclose(iou_score(truth, guess, per_image=True), [1.0, 0.0])
    np.testing.assert_allclose(dice(truth, guess, per_image=True), [1.0, 0.0])
    assert iou_score(truth, guess) == pytest.approx(2 / 3)
    assert dice(truth, guess) == pytest.approx(0.8)


masks = st.tuples(st.integers(1, 4), st.integers(1, 9), st.integers(1, 9), st.integers(0, 2**32 - 1),
                  st.floats(0.0, 1.0), st.floats(0.0, 1.0))


@settings(max_examples=60, deadline=None)
@given(masks)
def test_random_masks_against_scikit_learn_and_the_identity(case):
    n, height, width, seed, p_true, p_pred = case
    rng = np.random.default_rng(seed)
    truth = rng.random((n, height, width)) < p_true
    guess = rng.random((n, height, width)) < p_pred
    # scikit-learn's Jaccard and F1 of the flattened pixels; zero_division=1.0 is our empty-vs-empty rule
    expected_iou = jaccard_score(truth.ravel(), guess.ravel(), zero_division=1.0)
    expected_dice = f1_score(truth.ravel(), guess.ravel(), zero_division=1.0)
    assert iou_score(truth, guess) == pytest.approx(expected_iou, abs=1e-12)
    assert dice(truth.astype(np.float32), guess.astype(np.int64)) == pytest.approx(expected_dice, abs=1e-12)
    iou = iou_score(truth, guess, per_image=True)
    assert iou.shape == (n,)
    np.testing.assert_allclose(dice(truth, guess, per_image=True), 2 * iou / (1 + iou), atol=1e-12)
    for i in range(n):
        assert iou[i] == pytest.approx(jaccard_score(truth[i].ravel(), guess[i].ravel(), zero_division=1.0))


@pytest.mark.parametrize(("truth", "guess", "error", "words"), [
    (np.zeros((2, 3)), np.zeros((3, 2)), ValueError, "same shape"),
    (np.zeros((2, 2)), np.full((2, 2), 0.7), ValueError, "threshold probabilities first"),
    (np.array(["a", "b"]), np.zeros(2), TypeError, "0/1 or True/False"),
    ("mask", np.zeros(2), TypeError, "string"),
])
def test_bad_masks_give_clear_errors(truth, guess, error, words):
    for score in (dice, iou_score):
        with pytest.raises(error, match=words):
            score(truth, guess)


def test_per_image_needs_a_batch():
    with pytest.raises(ValueError, match=r"batch of masks \(N, H, W\)"):
        dice(np.zeros(4), np.zeros(4), per_image=True)
    with pytest.raises(TypeError, match="per_image must be True or False"):
        iou_score(np.zeros((1, 4)), np.zeros((1, 4)), per_image="yes")


# ----------------------------------------------------------------------------- U-Net


def unet_parameter_count(channels, depth, base, classes, upsampling="transpose", batch_norm=False):
    """The parameters of the U-Net as counted from its description, level by level."""
    def conv(k, c_in, c_out, bias=True):
        return k * k * c_in * c_out + (c_out if bias else 0)

    def two_convs(c_in, c_out):
        if batch_norm:  # no bias; gamma, beta, moving mean and variance per channel
            return conv(3, c_in, c_out, False) + conv(3, c_out, c_out, False) + 2 * 4 * c_out
        return conv(3, c_in, c_out) + conv(3, c_out, c_out)

    filters = [base * 2**level for level in range(depth + 1)]
    total, c_in = 0, channels
    for level in range(depth + 1):  # contracting path and bottom
        total += two_convs(c_in, filters[level])
        c_in = filters[level]
    for level in reversed(range(depth)):  # expanding path
        up_kernel = 2 if upsampling == "transpose" else 3
        total += conv(up_kernel, filters[level + 1], filters[level])
        total += two_convs(2 * filters[level], filters[level])  # skip concatenated: twice the channels
    return total + conv(1, base, classes)


def test_unet_parameters_hand_counted_small_configuration():
    # input 1 channel, depth 2, base 2 filters, 1 class (filters 2, 4, 8):
    # down0: 9·1·2+2 = 20,  9·2·2+2 = 38   -> 58
    # down1: 9·2·4+4 = 76,  9·4·4+4 = 148  -> 224
    # bottom: 9·4·8+8 = 296, 9·8·8+8 = 584 -> 880
    # up1: transpose 2·2·8·4+4 = 132, 9·8·4+4 = 292, 9·4·4+4 = 148 -> 572
    # up0: transpose 2·2·4·2+2 = 34,  9·4·2+2 = 74,  9·2·2+2 = 38  -> 146
    # 1×1 output: 2·1+1 = 3.  Total 58+224+880+572+146+3 = 1883
    assert unet((16, 16, 1), depth=2, base_filters=2).count_params() == 1883
    assert unet_parameter_count(1, 2, 2, 1) == 1883


@pytest.mark.parametrize(("channels", "depth", "base", "classes", "upsampling", "batch_norm"), [
    (1, 1, 3, 1, "transpose", False),
    (3, 3, 4, 5, "transpose", False),
    (2, 2, 5, 2, "bilinear", False),
    (1, 2, 4, 1, "transpose", True),
    (1, 4, 64, 2, "transpose", False),  # the paper's configuration
])
def test_unet_parameters_match_the_formula(channels, depth, base, classes, upsampling, batch_norm):
    model = unet((None, None, channels), depth, base, classes, upsampling=upsampling, batch_norm=batch_norm)
    assert model.count_params() == unet_parameter_count(channels, depth, base, classes, upsampling, batch_norm)


@pytest.mark.parametrize(("size", "depth"), [((16, 16), 4), ((32, 48), 3), ((8, 24), 2), ((64, 16), 4)])
def test_unet_output_has_the_input_size(size, depth):
    model = unet((*size, 2), depth=depth, base_filters=2, classes=3)
    assert model.output_shape == (None, *size, 3)
    probabilities = model(np.random.default_rng(0).random((1, *size, 2), dtype=np.float32))
    np.testing.assert_allclose(np.asarray(probabilities).sum(axis=-1), 1.0, rtol=1e-5)  # softmax


def test_unet_any_size_with_none():
    model = unet((None, None, 1), depth=2, base_filters=2)
    for size in ((8, 12), (20, 32)):
        out = np.asarray(model(np.zeros((1, *size, 1), np.float32)))
        assert out.shape == (1, *size, 1)
        assert ((out > 0) & (out < 1)).all()  # sigmoid


def test_unet_skip_connections_and_doubling_channels():
    depth, base = 3, 4
    model = unet((32, 32, 1), depth=depth, base_filters=base)
    concatenations = [layer for layer in model.layers if isinstance(layer, keras.layers.Concatenate)]
    assert len(concatenations) == depth
    for level in range(depth):
        size, filters = 32 // 2**level, base * 2**level
        features = model.get_layer(f"down{level}_relu2").output
        assert tuple(features.shape) == (None, size, size, filters)  # channels double per level
        skip = model.get_layer(f"up{level}_skip")
        # the skip joins the contracting path's map with the upsampled one, same size, twice the channels
        assert any(tensor is features for tensor in skip.input)
        assert tuple(skip.output.shape) == (None, size, size, 2 * filters)
    bottom = model.get_layer("bottom_relu2").output
    assert tuple(bottom.shape) == (None, 4, 4, base * 2**depth)


def test_unet_bad_sizes_say_which_sizes_work():
    with pytest.raises(ValueError, match=r"divisible by 16, got 100: .*96 or 112"):
        unet((100, 96, 1), depth=4)
    with pytest.raises(ValueError, match=r"width divisible by 4, got 2: .*such as 4"):
        unet((8, 2, 1), depth=2)
    with pytest.raises(ValueError, match=r"\(height, width, channels\)"):
        unet((32, 32), depth=2)
    with pytest.raises(ValueError, match="unknown upsampling 'nearest'"):
        unet((32, 32, 1), upsampling="nearest")
    with pytest.raises(ValueError, match="depth must be positive"):
        unet((32, 32, 1), depth=0)
    with pytest.raises(TypeError, match="base_filters must be an int"):
        unet((32, 32, 1), base_filters=2.5)


# ----------------------------------------------------------------------------- FCN


@pytest.mark.parametrize(("factor", "upsampling"), [(2, "transpose"), (8, "transpose"), (16, "bilinear"),
                                                    (4, "bilinear")])
def test_fcn_output_has_the_input_size(factor, upsampling):
    size = (2 * factor, 3 * factor)
    model = fcn((*size, 3), classes=4, downsampling=factor, base_filters=2, upsampling=upsampling)
    assert model.output_shape == (None, *size, 4)
    assert tuple(model.get_layer("scores").output.shape) == (None, 2, 3, 4)
    pools = [layer for layer in model.layers if isinstance(layer, keras.layers.MaxPooling2D)]
    assert len(pools) == int(np.log2(factor))
    out = np.asarray(model(np.random.default_rng(1).random((2, *size, 3), dtype=np.float32)))
    np.testing.assert_allclose(out.sum(axis=-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("factor", [4, 8])
def test_fcn_transposed_convolution_starts_as_bilinear_upsampling(factor):
    # Away from the border (factor/2 pixels, where zero padding differs from TensorFlow's edge
    # clamping) the initial transposed convolution equals tf.image.resize's bilinear resize.
    model = fcn((None, None, 1), classes=3, downsampling=factor, base_filters=2)
    scores = np.random.default_rng(factor).normal(size=(2, 5, 6, 3)).astype(np.float32)
    upsampled = np.asarray(model.get_layer("upsample")(scores))
    expected = tf.image.resize(scores, (5 * factor, 6 * factor), "bilinear").numpy()
    border = factor // 2
    np.testing.assert_allclose(upsampled[:, border:-border, border:-border],
                               expected[:, border:-border, border:-border], atol=1e-5)


def test_fcn_bad_arguments():
    with pytest.raises(ValueError, match="downsampling must be one of 2, 4, 8, 16, 32, got 6"):
        fcn((48, 48, 1), 2, downsampling=6)
    with pytest.raises(ValueError, match=r"height divisible by 8, got 20: .*16 or 24"):
        fcn((20, 24, 1), 2)
    with pytest.raises(ValueError, match="classes must be positive"):
        fcn((16, 16, 1), 0)


# ----------------------------------------------------------------------------- dense_to_conv


def flatten_dense_model(k, channels, units, seed):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((k, k, channels)), keras.layers.Flatten(),
                              keras.layers.Dense(units, activation="relu")])
    # random biases too (Keras starts them at zero, which would hide a forgotten bias)
    dense = model.layers[-1]
    dense.bias.assign(np.random.default_rng(seed).normal(size=units).astype(np.float32))
    return model, dense


@settings(max_examples=8, deadline=None)
@given(st.integers(1, 4), st.integers(1, 3), st.integers(1, 4), st.integers(0, 3), st.integers(0, 1000))
def test_dense_to_conv_equals_the_dense_layer_and_slides_over_larger_inputs(k, channels, units, extra, seed):
    model, dense = flatten_dense_model(k, channels, units, seed)
    conv = dense_to_conv(dense, (k, k, channels))
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2, k, k, channels)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(conv(x))[:, 0, 0], np.asarray(model(x)), rtol=1e-5, atol=1e-5)
    # on a larger input: a (extra+1)×(extra+2) map, each position the Dense layer on its window
    big = rng.normal(size=(1, k + extra, k + extra + 1, channels)).astype(np.float32)
    scores = np.asarray(conv(big))
    assert scores.shape == (1, extra + 1, extra + 2, units)
    for row in range(extra + 1):
        for col in range(extra + 2):
            window = big[:, row:row + k, col:col + k]
            np.testing.assert_allclose(scores[:, row, col], np.asarray(model(window)), rtol=1e-5, atol=1e-5)


def test_dense_to_conv_rectangular_window_by_hand():
    # A 1×2×1 map [a, b] flattened, one unit with weights (2, -1) and bias 1: 2a - b + 1.
    # On the row [1, 3, 5]: windows (1, 3) -> 2 - 3 + 1 = 0 and (3, 5) -> 6 - 5 + 1 = 2.
    dense = keras.layers.Dense(1)
    dense.build((None, 2))
    dense.set_weights([np.array([[2.0], [-1.0]], np.float32), np.array([1.0], np.float32)])
    conv = dense_to_conv(dense, (1, 2, 1))
    out = np.asarray(conv(np.array([1.0, 3.0, 5.0], np.float32).reshape(1, 1, 3, 1)))
    np.testing.assert_allclose(out.ravel(), [0.0, 2.0])


def test_dense_to_conv_bad_arguments():
    dense = keras.layers.Dense(3)
    with pytest.raises(ValueError, match="not built yet"):
        dense_to_conv(dense, (2, 2, 1))
    dense.build((None, 8))
    with pytest.raises(ValueError, match=r"reads 8 inputs, but a flattened 3×3×1 map has 9"):
        dense_to_conv(dense, (3, 3, 1))
    with pytest.raises(ValueError, match=r"\(rows, cols, channels\)"):
        dense_to_conv(dense, (8,))
    with pytest.raises(TypeError, match="must be a keras.layers.Dense"):
        dense_to_conv(keras.layers.Conv2D(2, 3), (2, 2, 2))
