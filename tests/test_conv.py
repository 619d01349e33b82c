"""cnn_course.conv against scipy, TensorFlow and Keras, hand-worked examples and every error message."""

from __future__ import annotations

import doctest
import math

import cnn_course.conv as conv_module
import keras
import numpy as np
import pytest
import scipy.signal
import tensorflow as tf  # imported once for the whole module (~5 s); a broken install fails, never skips
from cnn_course.conv import (
    conv2d,
    conv2d_naive,
    conv_transpose2d,
    convolve2d,
    correlate2d,
    im2col,
    output_size,
    pad2d,
)
from hypothesis import given, settings
from hypothesis import strategies as st

FAST = settings(max_examples=100, deadline=None)
SLOW = settings(max_examples=40, deadline=None)  # examples that build a Keras layer


def dilate_kernel(w: np.ndarray, dh: int, dw: int) -> np.ndarray:
    """The kernel with dh-1 / dw-1 zero rows / columns inserted between its taps."""
    kh, kw = w.shape
    dilated = np.zeros((kh + (kh - 1) * (dh - 1), kw + (kw - 1) * (dw - 1)), dtype=w.dtype)
    dilated[::dh, ::dw] = w
    return dilated


def same_padding(n: int, k_eff: int, s: int) -> tuple[int, int]:
    """TensorFlow's SAME padding, written out independently of the package."""
    total = max((math.ceil(n / s) - 1) * s + k_eff - n, 0)
    return total // 2, total - total // 2


@st.composite
def image_and_kernel(draw, *, max_side=9, max_kernel=4, fits=True):
    """A random integer image (H, W) and kernel (kh, kw); with ``fits`` the kernel fits inside."""
    h, w = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    kh = draw(st.integers(1, min(max_kernel, h) if fits else max_kernel))
    kw = draw(st.integers(1, min(max_kernel, w) if fits else max_kernel))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    return rng.integers(-9, 10, (h, w)), rng.integers(-9, 10, (kh, kw))


# ------------------------------------------------------------------ hand-worked examples


def test_symbolic_3x3_with_2x2_example_by_hand():
    # x = [[a b c], [d e f], [g h i]] = 1..9, w = [[p q], [r s]] = [[1 2], [3 4]]:
    # out[0, 0] = a*p + b*q + d*r + e*s = 1*1 + 2*2 + 4*3 + 5*4 = 37, and so on.
    x = np.arange(1, 10).reshape(3, 3)
    w = np.array([[1, 2], [3, 4]])
    np.testing.assert_array_equal(correlate2d(x, w), [[37, 47], [67, 77]])
    # convolution uses w rotated by 180°, [[4 3], [2 1]]: out[0, 0] = 1*4 + 2*3 + 4*2 + 5*1 = 23
    np.testing.assert_array_equal(convolve2d(x, w), [[23, 33], [53, 63]])


def test_sobel_on_a_small_binary_image_by_hand():
    from cnn_course.kernels import sobel_x, sobel_y

    # dark (0) on the left, bright (1) on the right: one vertical edge between columns 1 and 2
    image = np.array([[0, 0, 1, 1, 1]] * 4)
    # every window has identical rows, so the response is (1 + 2 + 1) * (x[c + 2] - x[c])
    np.testing.assert_array_equal(correlate2d(image, sobel_x()), [[4, 4, 0], [4, 4, 0]])
    np.testing.assert_array_equal(correlate2d(image, sobel_y()), np.zeros((2, 3), int))
    # true convolution flips the kernel, and the sign of the edge response with it
    np.testing.assert_array_equal(convolve2d(image, sobel_x()), [[-4, -4, 0], [-4, -4, 0]])
    # zero padding makes the borders look like edges too: the left column sees 0|0 0 -> 0,
    # the right column sees 1 1|0 -> -3 (top/bottom rows) and -4 (middle rows)
    same = correlate2d(image, sobel_x(), padding="same")
    np.testing.assert_array_equal(same[:, -1], [-3, -4, -4, -3])
    np.testing.assert_array_equal(same[1:3, :4], [[0, 4, 4, 0]] * 2)


def test_integer_inputs_give_exact_integer_outputs():
    big = np.full((4, 4), 2**40, dtype=np.int64)
    result = correlate2d(big, np.ones((2, 2), np.int64))
    assert result.dtype == np.int64
    assert (result == 4 * 2**40).all()  # float64 would round (2**40 + 1) sums; ints stay exact
    # uint8 images with a uint8 kernel must not wrap around at 256
    white = np.full((3, 3), 255, np.uint8)
    assert correlate2d(white, np.full((3, 3), 255, np.uint8)).item() == 9 * 255 * 255
    assert conv2d(white[..., None], np.full((3, 3, 1, 1), 255, np.uint8)).item() == 9 * 255 * 255


def test_float32_stays_float32_and_booleans_count_as_integers():
    x = np.ones((4, 4), np.float32)
    assert correlate2d(x, np.ones((2, 2), np.float32)).dtype == np.float32
    assert correlate2d(x > 0, np.ones((2, 2), int)).dtype == np.int64
    assert correlate2d(x > 0, np.ones((2, 2), int))[0, 0] == 4


# ------------------------------------------------------------------ against scipy


@FAST
@given(image_and_kernel(fits=False), st.sampled_from(["valid", "same", "full"]))
def test_correlate2d_equals_scipy(case, mode):
    x, w = case
    if mode == "valid" and (w.shape[0] > x.shape[0] or w.shape[1] > x.shape[1]):
        return  # scipy swaps the arguments then; we raise instead (tested below)
    np.testing.assert_array_equal(correlate2d(x, w, padding=mode), scipy.signal.correlate2d(x, w, mode))


@FAST
@given(image_and_kernel(fits=False), st.sampled_from(["valid", "same", "full"]))
def test_convolve2d_equals_scipy(case, mode):
    x, w = case
    if mode == "valid" and (w.shape[0] > x.shape[0] or w.shape[1] > x.shape[1]):
        return
    ours = convolve2d(x, w, padding=mode)
    expected = scipy.signal.convolve2d(x, w, mode)
    if mode == "same" and (w.shape[0] % 2 == 0 or w.shape[1] % 2 == 0):
        # scipy's "same" convolution puts the odd zero of an even kernel top/left, Keras's
        # bottom/right: both are windows of the "full" result, one pixel apart (documented).
        full = scipy.signal.convolve2d(x, w, "full")
        (h, width), (kh, kw) = x.shape, w.shape
        np.testing.assert_array_equal(ours, full[kh // 2: kh // 2 + h, kw // 2: kw // 2 + width])
        np.testing.assert_array_equal(expected, full[(kh - 1) // 2: (kh - 1) // 2 + h,
                                                     (kw - 1) // 2: (kw - 1) // 2 + width])
    else:
        np.testing.assert_array_equal(ours, expected)


@FAST
@given(image_and_kernel(), st.integers(0, 3), st.integers(0, 3))
def test_integer_padding_equals_scipy_on_a_zero_padded_input(case, rows, cols):
    x, w = case
    padded = np.pad(x, ((rows, rows), (cols, cols)))
    np.testing.assert_array_equal(correlate2d(x, w, padding=(rows, cols)),
                                  scipy.signal.correlate2d(padded, w, "valid"))
    if rows == cols:
        np.testing.assert_array_equal(correlate2d(x, w, padding=rows), correlate2d(x, w, padding=(rows, rows)))


# ------------------------------------------------------------------ stride and dilation


@FAST
@given(image_and_kernel(), st.integers(1, 3), st.integers(1, 3),
       st.sampled_from(["valid", "full", 1, (2, 0)]))
def test_stride_is_subsampling_of_the_stride_1_output(case, sh, sw, padding):
    x, w = case
    dense = correlate2d(x, w, padding=padding)
    np.testing.assert_array_equal(correlate2d(x, w, stride=(sh, sw), padding=padding), dense[::sh, ::sw])
    np.testing.assert_array_equal(convolve2d(x, w, stride=(sh, sw), padding=padding),
                                  convolve2d(x, w, padding=padding)[::sh, ::sw])


@FAST
@given(image_and_kernel(max_side=12, max_kernel=3), st.integers(1, 3), st.integers(1, 3),
       st.sampled_from(["valid", "same", "full", 2]))
def test_dilation_equals_a_kernel_with_zeros_between_taps(case, dh, dw, padding):
    x, w = case
    wide = dilate_kernel(w, dh, dw)
    if padding == "valid" and (wide.shape[0] > x.shape[0] or wide.shape[1] > x.shape[1]):
        with pytest.raises(ValueError, match="dilated to"):
            correlate2d(x, w, dilation=(dh, dw), padding=padding)
        return
    if padding == 2 and (wide.shape[0] > x.shape[0] + 4 or wide.shape[1] > x.shape[1] + 4):
        return
    np.testing.assert_array_equal(correlate2d(x, w, dilation=(dh, dw), padding=padding),
                                  correlate2d(x, wide, padding=padding))


@FAST
@given(image_and_kernel(), st.integers(1, 4), st.integers(1, 4))
def test_same_padding_with_stride_is_tensorflows_rule(case, sh, sw):
    x, w = case
    (h, width), (kh, kw) = x.shape, w.shape
    rows, cols = same_padding(h, kh, sh), same_padding(width, kw, sw)
    expected = correlate2d(np.pad(x, (rows, cols)), w)[::sh, ::sw]
    result = correlate2d(x, w, stride=(sh, sw), padding="same")
    assert result.shape == (math.ceil(h / sh), math.ceil(width / sw))
    np.testing.assert_array_equal(result, expected)


@FAST
@given(image_and_kernel(max_side=10, max_kernel=3), st.integers(1, 3), st.integers(1, 3),
       st.sampled_from(["VALID", "SAME"]), st.data())
def test_correlate2d_equals_tf_nn_conv2d(case, sh, sw, padding, data):
    x, w = case
    # tf.nn.conv2d refuses stride > 1 together with dilation > 1 (on CPU), so draw one or the other
    dilation = (1, 1) if (sh, sw) != (1, 1) else (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    k_eff = (w.shape[0] + (w.shape[0] - 1) * (dilation[0] - 1), w.shape[1] + (w.shape[1] - 1) * (dilation[1] - 1))
    if padding == "VALID" and (k_eff[0] > x.shape[0] or k_eff[1] > x.shape[1]):
        return
    expected = tf.nn.conv2d(x[None, :, :, None].astype(np.float64), w[:, :, None, None].astype(np.float64),
                            strides=(1, sh, sw, 1), padding=padding, dilations=(1, *dilation, 1)).numpy()[0, :, :, 0]
    result = correlate2d(x, w, stride=(sh, sw), padding=padding.lower(), dilation=dilation)
    np.testing.assert_array_equal(result, expected)  # integer-valued sums are exact in float64


# ------------------------------------------------------------------ conv2d


@st.composite
def conv2d_case(draw):
    n, cin, cout = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 4))
    h, w = draw(st.integers(1, 10)), draw(st.integers(1, 10))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    padding = draw(st.sampled_from(["valid", "same"]))
    if draw(st.booleans()):  # Keras forbids stride > 1 with dilation > 1
        stride, dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3))), (1, 1)
    else:
        stride, dilation = (1, 1), (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    if padding == "valid":
        h = max(h, kh + (kh - 1) * (dilation[0] - 1))
        w = max(w, kw + (kw - 1) * (dilation[1] - 1))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.normal(size=(n, h, w, cin)).astype(np.float32)
    kernel = rng.normal(size=(kh, kw, cin, cout)).astype(np.float32)
    bias = rng.normal(size=cout).astype(np.float32)
    return x, kernel, bias, stride, padding, dilation


@SLOW
@given(conv2d_case())
def test_conv2d_equals_keras_conv2d(case):
    x, kernel, bias, stride, padding, dilation = case
    layer = keras.layers.Conv2D(kernel.shape[3], kernel.shape[:2], strides=stride, padding=padding,
                                dilation_rate=dilation)
    layer.build(x.shape)
    layer.set_weights([kernel, bias])
    result = conv2d(x, kernel, bias, stride=stride, padding=padding, dilation=dilation)
    if result.shape[2] == 1 and stride[1] > 1:
        # TF 2.21's oneDNN float32 CPU kernel returns only the bias for every image after
        # the first when the output is 1 column wide and the column stride is > 1 (float64
        # and TF_ENABLE_ONEDNN_OPTS=0 are right); one image at a time it is right.
        expected = np.concatenate([keras.ops.convert_to_numpy(layer(image[None])) for image in x])
    else:
        expected = keras.ops.convert_to_numpy(layer(x))
    assert result.shape == expected.shape
    assert result.dtype == np.float32
    np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-5)


@FAST
@given(conv2d_case(), st.booleans())
def test_conv2d_naive_equals_conv2d_exactly_on_integers(case, batched):
    x, kernel, bias, stride, padding, dilation = case
    x, kernel, bias = (np.round(a * 4).astype(np.int64) for a in (x, kernel, bias))
    x = x if batched else x[0]
    fast = conv2d(x, kernel, bias, stride=stride, padding=padding, dilation=dilation)
    naive = conv2d_naive(x, kernel, bias, stride=stride, padding=padding, dilation=dilation)
    assert fast.dtype == naive.dtype == np.int64
    assert fast.ndim == (4 if batched else 3)
    np.testing.assert_array_equal(fast, naive)


@FAST
@given(image_and_kernel(), st.sampled_from(["valid", "same", "full", (1, 2)]), st.integers(1, 2))
def test_conv2d_with_one_channel_is_correlate2d(case, padding, stride):
    x, w = case
    np.testing.assert_array_equal(
        conv2d(x[:, :, None], w[:, :, None, None], stride=stride, padding=padding)[:, :, 0],
        correlate2d(x, w, stride=stride, padding=padding))


def test_conv2d_sums_the_per_channel_correlations_and_adds_the_bias():
    rng = np.random.default_rng(7)
    x, w, b = rng.integers(-5, 5, (6, 7, 3)), rng.integers(-5, 5, (3, 2, 3, 2)), np.array([10, -20])
    result = conv2d(x, w, b, padding="same", stride=2)
    for out_channel in range(2):
        expected = sum(correlate2d(x[:, :, c], w[:, :, c, out_channel], padding="same", stride=2)
                       for c in range(3)) + b[out_channel]
        np.testing.assert_array_equal(result[:, :, out_channel], expected)


# ------------------------------------------------------------------ im2col and pad2d


@FAST
@given(conv2d_case())
def test_im2col_rows_are_windows_in_kh_kw_c_order(case):
    x, kernel, _, stride, padding, dilation = case
    kh, kw, cin, cout = kernel.shape
    patches = im2col(x, kh, kw, stride=stride, padding=padding, dilation=dilation)
    n, out_h, out_w, length = patches.shape
    assert length == kh * kw * cin
    assert (out_h, out_w) == tuple(output_size(size, k, stride=s, padding=padding, dilation=d)
                                   for size, k, s, d in zip(x.shape[1:3], (kh, kw), stride, dilation, strict=True))
    np.testing.assert_allclose(patches @ kernel.reshape(-1, cout),
                               conv2d(x, kernel, stride=stride, padding=padding, dilation=dilation), rtol=1e-5,
                               atol=1e-5)
    # the last window, taken by hand from the zero-padded input
    rows = same_padding(x.shape[1], kh + (kh - 1) * (dilation[0] - 1), stride[0]) if padding == "same" else (0, 0)
    cols = same_padding(x.shape[2], kw + (kw - 1) * (dilation[1] - 1), stride[1]) if padding == "same" else (0, 0)
    padded = np.pad(x, ((0, 0), rows, cols, (0, 0)))
    top, left = (out_h - 1) * stride[0], (out_w - 1) * stride[1]
    window = padded[-1, top: top + (kh - 1) * dilation[0] + 1: dilation[0],
                    left: left + (kw - 1) * dilation[1] + 1: dilation[1], :]
    np.testing.assert_array_equal(patches[-1, -1, -1], window.ravel())


def test_im2col_of_single_channel_and_unbatched_images():
    x = np.arange(12).reshape(3, 4)
    patches = im2col(x, 2, 2)
    assert patches.shape == (2, 3, 4)
    np.testing.assert_array_equal(patches[1, 2], [6, 7, 10, 11])
    np.testing.assert_array_equal(im2col(x[:, :, None], 2, 2), patches)
    np.testing.assert_array_equal(im2col(x[None, :, :, None], 2, 2)[0], patches)


@pytest.mark.parametrize("mode", ["constant", "reflect", "symmetric", "edge"])
@pytest.mark.parametrize("padding, widths", [(1, ((1, 1), (1, 1))), ((2, 0), ((2, 2), (0, 0))),
                                             (((0, 1), (2, 1)), ((0, 1), (2, 1)))])
def test_pad2d_pads_only_the_spatial_axes_like_numpy(mode, padding, widths):
    rng = np.random.default_rng(3)
    x = rng.integers(0, 255, (2, 4, 5, 3)).astype(np.uint8)
    np.testing.assert_array_equal(pad2d(x, padding, mode=mode), np.pad(x, ((0, 0), *widths, (0, 0)), mode=mode))
    np.testing.assert_array_equal(pad2d(x[0], padding, mode=mode), np.pad(x[0], (*widths, (0, 0)), mode=mode))
    np.testing.assert_array_equal(pad2d(x[0, :, :, 0], padding, mode=mode), np.pad(x[0, :, :, 0], widths, mode=mode))


def test_pad2d_constant_value_and_dtype():
    x = np.array([[1, 2], [3, 4]], np.uint8)
    assert pad2d(x, 1, value=255).dtype == np.uint8
    np.testing.assert_array_equal(pad2d(x, 1, value=7)[0], [7, 7, 7, 7])
    half = pad2d(x, 1, value=0.5)  # must not be truncated to 0 in a uint8 array
    assert half.dtype == np.float64 and half[0, 0] == 0.5 and half[1, 1] == 1
    assert pad2d(x.astype(np.float32), 1, value=0.5).dtype == np.float32


# ------------------------------------------------------------------ transposed convolution


@SLOW
@given(image_and_kernel(max_side=6), st.integers(1, 4), st.integers(1, 4))
def test_conv_transpose2d_equals_keras_conv2d_transpose(case, sh, sw):
    x, w = (a.astype(np.float32) for a in case)
    layer = keras.layers.Conv2DTranspose(1, w.shape, strides=(sh, sw), padding="valid", use_bias=False)
    layer.build((1, *x.shape, 1))
    layer.set_weights([w[:, :, None, None]])  # Keras's kernel layout (kh, kw, Cout, Cin), not flipped
    expected = keras.ops.convert_to_numpy(layer(x[None, :, :, None]))[0, :, :, 0]
    result = conv_transpose2d(x, w, stride=(sh, sw))
    out_h, out_w = (x.shape[0] - 1) * sh + w.shape[0], (x.shape[1] - 1) * sw + w.shape[1]
    assert result.shape == (out_h, out_w)
    # when the stride exceeds the kernel, Keras appends zero rows/columns (documented)
    assert expected.shape == ((x.shape[0] - 1) * sh + max(w.shape[0], sh), (x.shape[1] - 1) * sw + max(w.shape[1], sw))
    np.testing.assert_allclose(result, expected[:out_h, :out_w], rtol=1e-5, atol=1e-5)
    assert not expected[out_h:].any() and not expected[:, out_w:].any()


@FAST
@given(image_and_kernel(max_side=5), st.integers(1, 3))
def test_conv_transpose2d_is_the_transpose_of_strided_correlation(case, stride):
    # <correlate2d(z, w), y> == <z, conv_transpose2d(y, w)> for every z, y: the defining property
    y, w = case
    rng = np.random.default_rng(int(abs(y).sum()))
    z = rng.integers(-9, 10, ((y.shape[0] - 1) * stride + w.shape[0], (y.shape[1] - 1) * stride + w.shape[1]))
    assert correlate2d(z, w, stride=stride).shape == y.shape
    assert np.sum(correlate2d(z, w, stride=stride) * y) == np.sum(z * conv_transpose2d(y, w, stride=stride))


# ------------------------------------------------------------------ output_size


@SLOW
@given(st.integers(1, 20), st.integers(1, 5), st.integers(1, 4), st.integers(1, 3),
       st.sampled_from(["valid", "same"]))
def test_output_size_equals_keras_output_shapes(n, k, stride, dilation, padding):
    if stride > 1 and dilation > 1:
        dilation = 1  # Keras forbids the combination
    k_eff = k + (k - 1) * (dilation - 1)
    if padding == "valid" and k_eff > n:
        with pytest.raises(ValueError, match="does not fit"):
            output_size(n, k, stride=stride, padding=padding, dilation=dilation)
        return
    conv_layer = keras.layers.Conv2D(1, (k, 1), strides=(stride, 1), padding=padding, dilation_rate=(dilation, 1))
    produced = keras.ops.shape(conv_layer(np.zeros((1, n, 1, 1), np.float32)))[1]
    assert output_size(n, k, stride=stride, padding=padding, dilation=dilation) == produced
    if dilation == 1 and padding == "valid":
        pool_layer = keras.layers.MaxPooling2D((k, 1), strides=(stride, 1))
        assert output_size(n, k, stride=stride) == keras.ops.shape(pool_layer(np.zeros((1, n, 1, 1))))[1]


@FAST
@given(st.integers(1, 30), st.integers(1, 6), st.integers(1, 4), st.integers(1, 3),
       st.sampled_from(["valid", "same", "full", 0, 1, 2, 3]))
def test_output_size_matches_the_formula_and_correlate2d(n, k, stride, dilation, padding):
    k_eff = k + (k - 1) * (dilation - 1)
    if padding == "same":
        expected = math.ceil(n / stride)
    else:
        per_side = {"valid": 0, "full": k_eff - 1}.get(padding, padding)
        expected = (n + 2 * per_side - k_eff) // stride + 1
    if expected < 1:
        with pytest.raises(ValueError, match="does not fit"):
            output_size(n, k, stride=stride, padding=padding, dilation=dilation)
        return
    assert output_size(n, k, stride=stride, padding=padding, dilation=dilation) == expected
    result = correlate2d(np.ones((n, 2)), np.ones((k, 1)), stride=(stride, 1), padding=(
        padding if isinstance(padding, str) else (padding, 0)), dilation=(dilation, 1))
    assert result.shape[0] == expected


def test_output_size_examples():
    assert output_size(28, 3) == 26
    assert output_size(28, 5, padding="same") == 28
    assert output_size(28, 3, padding="full") == 30
    assert output_size(224, 7, stride=2, padding=3) == 112
    assert output_size(32, 3, dilation=2) == 28


# ------------------------------------------------------------------ errors a student sees

IMAGE, KERNEL = np.zeros((4, 4)), np.ones((3, 3))
BATCH, WEIGHTS = np.zeros((1, 5, 5, 3)), np.zeros((3, 3, 3, 2))


@pytest.mark.parametrize("call, error, message", [
    (lambda: correlate2d(np.zeros((4, 4, 3)), KERNEL), ValueError,
     r"x must be a single-channel image of shape \(H, W\), got shape \(4, 4, 3\) \(use conv2d"),
    (lambda: correlate2d(IMAGE, np.ones(3)), ValueError, r"w must be a 2-D kernel of shape \(kh, kw\), got shape \(3,\)"),
    (lambda: convolve2d(np.zeros(5), KERNEL), ValueError, r"x must be a single-channel image"),
    (lambda: correlate2d(IMAGE, np.ones((5, 5)), dilation=2), ValueError,
     "kernel of 5×5 \\(dilated to 9×9\\) does not fit in the 4×4 input padded to 4×4"),
    (lambda: correlate2d(IMAGE, np.ones((7, 2)), padding=1), ValueError,
     "kernel of 7×2 does not fit in the 4×4 input padded to 6×6"),
    (lambda: correlate2d(IMAGE, KERNEL, stride=0), ValueError, "stride must be positive, got 0"),
    (lambda: correlate2d(IMAGE, KERNEL, stride=(1, -2)), ValueError, r"stride must be positive, got \(1, -2\)"),
    (lambda: correlate2d(IMAGE, KERNEL, dilation=0), ValueError, "dilation must be positive, got 0"),
    (lambda: correlate2d(IMAGE, KERNEL, stride=1.5), TypeError, r"stride must be an int or a pair of ints \(rows, cols\)"),
    (lambda: correlate2d(IMAGE, KERNEL, dilation=(1, 2, 3)), TypeError, "dilation must be an int or a pair"),
    (lambda: correlate2d(IMAGE, KERNEL, padding="half"), ValueError,
     "unknown padding 'half': use 'valid', 'same', 'full', an int or a pair of ints"),
    (lambda: correlate2d(IMAGE, KERNEL, padding=-1), ValueError, "padding must be zero or more, got -1"),
    (lambda: correlate2d(IMAGE, KERNEL, padding=1.0), TypeError, "padding must be 'valid', 'same', 'full', an int"),
    (lambda: correlate2d(np.array([["a", "b"]]), KERNEL), TypeError, "x must hold integer or float numbers, got dtype <U1"),
    (lambda: correlate2d(IMAGE, KERNEL.astype(complex)), TypeError, "complex numbers are not supported"),
    (lambda: correlate2d("image", KERNEL), TypeError, "x must be an array of numbers, got the string 'image'"),
    (lambda: correlate2d(IMAGE, [[1, 2], [3]]), ValueError, "w must be a rectangular array of numbers"),
    (lambda: correlate2d(np.zeros((0, 4)), KERNEL), ValueError, "must not be empty"),
    (lambda: conv2d(IMAGE, WEIGHTS), ValueError,
     r"x must have shape \(N, H, W, Cin\) or \(H, W, Cin\) \(channels last\), got shape \(4, 4\) \(add a channel axis"),
    (lambda: conv2d(BATCH, KERNEL), ValueError, r"w must have shape \(kh, kw, Cin, Cout\), got shape \(3, 3\)"),
    (lambda: conv2d(BATCH, np.zeros((3, 3, 1, 2))), ValueError,
     r"x has 3 input channels but w expects 1 \(w has shape \(kh, kw, Cin, Cout\) = \(3, 3, 1, 2\)\)"),
    (lambda: conv2d(BATCH, WEIGHTS, np.zeros(3)), ValueError,
     r"b must have shape \(Cout,\) = \(2,\), one bias per output channel, got shape \(3,\)"),
    (lambda: conv2d_naive(BATCH, WEIGHTS, np.zeros((2, 1))), ValueError, r"b must have shape \(Cout,\) = \(2,\)"),
    (lambda: conv2d(BATCH, np.zeros((6, 6, 3, 2))), ValueError, "kernel of 6×6 does not fit in the 5×5 input"),
    (lambda: conv2d(BATCH, WEIGHTS, stride=(2, 0)), ValueError, "stride must be positive"),
    (lambda: conv2d(BATCH, WEIGHTS, padding="SAMEISH"), ValueError, "unknown padding 'SAMEISH'"),
    (lambda: conv2d(BATCH, WEIGHTS, np.array(["a", "b"])), TypeError, "b must hold integer or float numbers"),
    (lambda: output_size(0, 3), ValueError, "n must be positive, got 0"),
    (lambda: output_size(5, 0), ValueError, "k must be positive, got 0"),
    (lambda: output_size(5.0, 3), TypeError, "n must be an int, got 5.0"),
    (lambda: output_size(5, 3, stride=(1, 2)), TypeError, "stride must be an int \\(output_size works along one axis\\)"),
    (lambda: output_size(4, 3, dilation=2), ValueError, "kernel of 3×1 \\(dilated to 5×1\\) does not fit in the 4×1"),
    (lambda: output_size(5, 3, stride=-1), ValueError, "stride must be positive, got"),
    (lambda: output_size(5, 3, padding="circular"), ValueError, "unknown padding 'circular'"),
    (lambda: output_size(5, 3, padding=(1, 1)), TypeError, "padding must be 'valid', 'same', 'full' or an int"),
    (lambda: im2col(np.zeros(4), 2, 2), ValueError, r"x must have shape \(H, W\), \(H, W, C\) or \(N, H, W, C\)"),
    (lambda: im2col(IMAGE, 0, 2), ValueError, "kh must be positive, got 0"),
    (lambda: im2col(IMAGE, 2, 2.5), TypeError, "kw must be an int, got 2.5"),
    (lambda: im2col(IMAGE, 5, 2), ValueError, "kernel of 5×2 does not fit in the 4×4 input padded to 4×4"),
    (lambda: pad2d(np.zeros(3), 1), ValueError, r"x must have shape \(H, W\), \(H, W, C\) or \(N, H, W, C\)"),
    (lambda: pad2d(IMAGE, 1, mode="wrap"), ValueError, "unknown padding mode 'wrap'"),
    (lambda: pad2d(IMAGE, -1), ValueError, "padding must be zero or more"),
    (lambda: pad2d(IMAGE, "same"), TypeError, r"padding must be an int, a pair \(rows, cols\) or"),
    (lambda: pad2d(IMAGE, 1, value="white"), TypeError, "value must be a number, got 'white'"),
    (lambda: pad2d(IMAGE, 1, mode="reflect", value=1), ValueError, "value is only used with mode='constant'"),
    (lambda: conv_transpose2d(np.zeros((2, 2, 1)), KERNEL), ValueError, "x must be a single-channel image"),
    (lambda: conv_transpose2d(IMAGE, KERNEL, stride=0), ValueError, "stride must be positive, got 0"),
])
def test_error_messages_name_the_problem(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_docstring_examples_run():
    result = doctest.testmod(conv_module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 10 and result.failed == 0
