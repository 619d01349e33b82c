"""Backward passes of cnn_course.conv and cnn_course.pooling against TensorFlow, numerical gradients and a worked example."""

from __future__ import annotations

import cnn_course.conv as conv_module
import cnn_course.pooling as pooling_module
import keras
import numpy as np
import pytest
import tensorflow as tf  # imported once for the whole module (~5 s); a broken install fails, never skips
from cnn_course.conv import (
    col2im,
    conv2d,
    conv2d_backward,
    convolve2d,
    correlate2d,
    correlate2d_backward,
    im2col,
)
from cnn_course.pooling import pool2d, pool2d_backward
from hypothesis import given, settings
from hypothesis import strategies as st

FAST = settings(max_examples=60, deadline=None)
WITH_TF = settings(max_examples=50, deadline=None)


def numerical_gradient(f, x, eps=1e-6):
    """Central differences of the scalar function f at x (float64), one entry at a time."""
    x = np.array(x, dtype=np.float64)
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        saved = x[index]
        x[index] = saved + eps
        above = f(x)
        x[index] = saved - eps
        below = f(x)
        x[index] = saved
        grad[index] = (above - below) / (2 * eps)
    return grad


def relative_error(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-300)


def tf_conv(x, w, stride, padding, dilation):
    """Our conv2d arguments in TensorFlow; an int or pair padding becomes tf.pad + "VALID".

    tf.nn.convolution, not tf.nn.conv2d: the latter's CPU gradient refuses dilation > 1.
    """
    if not isinstance(padding, str):
        rows, cols = (padding, padding) if isinstance(padding, int) else padding
        x = tf.pad(x, [[0, 0], [rows, rows], [cols, cols], [0, 0]])
        padding = "valid"
    return tf.nn.convolution(x, w, strides=stride, padding=padding.upper(), dilations=dilation)


def tf_conv2d_gradients(x, w, b, grad_out, stride, padding, dilation):
    """dL/dx, dL/dw, dL/db of L = sum((conv(x, w) + b) * grad_out), by tf.GradientTape, float64."""
    x_var, w_var, b_var = (tf.Variable(np.asarray(a, dtype=np.float64)) for a in (x, w, b))
    with tf.GradientTape() as tape:
        out = tf_conv(x_var, w_var, stride, padding, dilation) + b_var
        loss = tf.reduce_sum(out * grad_out)
    return [g.numpy() for g in tape.gradient(loss, [x_var, w_var, b_var])]


# ------------------------------------------------------------------ the worked 3×3 / 2×2 example


def test_worked_3x3_input_2x2_kernel_by_hand():
    x = np.arange(1, 10).reshape(3, 3)  # 1 2 3 / 4 5 6 / 7 8 9
    w = np.array([[1, 2], [3, 4]])
    g = np.array([[1, -1], [2, 3]])    # dL/dy for the four outputs
    grad_x, grad_w = correlate2d_backward(x, w, g)
    # dL/dw[k, l] = sum_ij g[i, j] * x[i + k, j + l]: every weight touched all four positions
    expected_w = np.array([[sum(g[i, j] * x[i + row, j + col] for i in range(2) for j in range(2))
                            for col in range(2)] for row in range(2)])
    # w00 met x00, x01, x10, x11: 1*1 - 1*2 + 2*4 + 3*5 = 22
    assert grad_w[0, 0] == 1 * 1 - 1 * 2 + 2 * 4 + 3 * 5 == 22
    np.testing.assert_array_equal(grad_w, expected_w)
    np.testing.assert_array_equal(grad_w, [[22, 27], [37, 42]])
    # dL/dx: the centre pixel met all four weights (w11 at y00, w10 at y01, w01 at y10, w00 at y11)
    assert grad_x[1, 1] == 1 * 4 + (-1) * 3 + 2 * 2 + 3 * 1 == 8
    np.testing.assert_array_equal(grad_x, [[1, 1, -2], [5, 8, 2], [6, 17, 12]])
    assert grad_x.dtype == grad_w.dtype == np.int64  # integers in, exact integers out
    # the same numbers from TensorFlow's autodiff
    tf_x, tf_w, tf_b = tf_conv2d_gradients(x[None, :, :, None], w[:, :, None, None], np.zeros(1),
                                           g[None, :, :, None], (1, 1), "valid", (1, 1))
    np.testing.assert_array_equal(tf_x[0, :, :, 0], grad_x)
    np.testing.assert_array_equal(tf_w[:, :, 0, 0], grad_w)
    assert tf_b[0] == g.sum()


def test_stride_1_valid_gradients_are_a_full_convolution_and_a_correlation():
    rng = np.random.default_rng(1)
    for _ in range(20):
        h, width, kh, kw = rng.integers(3, 9), rng.integers(3, 9), rng.integers(1, 4), rng.integers(1, 4)
        x = rng.integers(-5, 6, size=(h, width))
        w = rng.integers(-5, 6, size=(kh, kw))
        g = rng.integers(-5, 6, size=correlate2d(x, w).shape)
        grad_x, grad_w = correlate2d_backward(x, w, g)
        np.testing.assert_array_equal(grad_x, convolve2d(g, w, padding="full"))
        np.testing.assert_array_equal(grad_x, correlate2d(g, w[::-1, ::-1], padding="full"))
        np.testing.assert_array_equal(grad_w, correlate2d(x, g))


# ------------------------------------------------------------------ against TensorFlow


@st.composite
def conv_case(draw):
    n, cin, cout = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    padding = draw(st.sampled_from(["valid", "same", 0, 1, 2, (1, 0), (0, 2)]))
    if draw(st.booleans()):  # TensorFlow refuses stride > 1 together with dilation > 1
        stride, dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3))), (1, 1)
    else:
        stride, dilation = (1, 1), (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    pad_rows, pad_cols = (0, 0) if isinstance(padding, str) else (
        (padding, padding) if isinstance(padding, int) else padding)
    min_h = kh + (kh - 1) * (dilation[0] - 1) - 2 * pad_rows
    min_w = kw + (kw - 1) * (dilation[1] - 1) - 2 * pad_cols
    h, width = draw(st.integers(max(min_h, 1), 10)), draw(st.integers(max(min_w, 1), 10))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.normal(size=(n, h, width, cin))
    w = rng.normal(size=(kh, kw, cin, cout))
    return x, w, stride, padding, dilation, rng


@WITH_TF
@given(conv_case())
def test_conv2d_backward_equals_tf_gradient_tape(case):
    # float64 throughout: TF 2.21's oneDNN float32 kernel has a known bug for some shapes (see test_conv)
    x, w, stride, padding, dilation, rng = case
    out = conv2d(x, w, stride=stride, padding=padding, dilation=dilation)
    grad_out = rng.normal(size=out.shape)
    grad_x, grad_w, grad_b = conv2d_backward(x, w, grad_out, stride=stride, padding=padding, dilation=dilation)
    tf_x, tf_w, tf_b = tf_conv2d_gradients(x, w, np.zeros(w.shape[3]), grad_out, stride, padding, dilation)
    assert grad_x.shape == x.shape and grad_w.shape == w.shape and grad_b.shape == (w.shape[3],)
    np.testing.assert_allclose(grad_x, tf_x, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(grad_w, tf_w, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(grad_b, tf_b, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(grad_b, grad_out.sum(axis=(0, 1, 2)))


@WITH_TF
@given(conv_case())
def test_correlate2d_backward_equals_tf_on_one_channel(case):
    x, w, stride, padding, dilation, rng = case
    image, kernel = x[0, :, :, 0], w[:, :, 0, 0]
    grad_out = rng.normal(size=correlate2d(image, kernel, stride=stride, padding=padding, dilation=dilation).shape)
    grad_x, grad_w = correlate2d_backward(image, kernel, grad_out, stride=stride, padding=padding, dilation=dilation)
    tf_x, tf_w, _ = tf_conv2d_gradients(image[None, :, :, None], kernel[:, :, None, None], np.zeros(1),
                                        grad_out[None, :, :, None], stride, padding, dilation)
    np.testing.assert_allclose(grad_x, tf_x[0, :, :, 0], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(grad_w, tf_w[:, :, 0, 0], rtol=1e-10, atol=1e-10)


def test_conv2d_backward_equals_keras_conv2d_layer_in_float32():
    # The layer students use, float32, on shapes clear of the oneDNN one-column bug.
    rng = np.random.default_rng(7)
    x = rng.normal(size=(4, 12, 11, 3)).astype(np.float32)
    for strides, padding, dilation in [((1, 1), "valid", (1, 1)), ((2, 2), "same", (1, 1)),
                                       ((1, 1), "same", (2, 2)), ((2, 1), "valid", (1, 1))]:
        layer = keras.layers.Conv2D(5, (3, 2), strides=strides, padding=padding, dilation_rate=dilation)
        layer.build(x.shape)
        x_var = tf.Variable(x)
        with tf.GradientTape() as tape:
            out = layer(x_var)
            loss = 0.5 * tf.reduce_sum(out ** 2)   # so dL/dout = out
        tf_x, tf_w, tf_b = tape.gradient(loss, [x_var, layer.kernel, layer.bias])
        kernel = keras.ops.convert_to_numpy(layer.kernel)
        grad_x, grad_w, grad_b = conv2d_backward(x, kernel, out.numpy(), stride=strides, padding=padding,
                                                 dilation=dilation)
        assert grad_x.dtype == grad_w.dtype == grad_b.dtype == np.float32
        for ours, theirs in ((grad_x, tf_x), (grad_w, tf_w), (grad_b, tf_b)):
            theirs = keras.ops.convert_to_numpy(theirs)
            np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4 * np.abs(theirs).max())


# ------------------------------------------------------------------ numerical gradients


@pytest.mark.parametrize("stride, padding, dilation", [
    (1, "valid", 1), (2, "same", 1), (1, "same", 2), ((2, 3), 1, 1), (1, (0, 2), (2, 1)), (3, "valid", 1),
])
def test_conv2d_backward_equals_central_differences(stride, padding, dilation):
    rng = np.random.default_rng(3)
    x, w, b = rng.normal(size=(2, 7, 6, 2)), rng.normal(size=(3, 2, 2, 3)), rng.normal(size=3)
    upstream = rng.normal(size=conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation).shape)

    def loss(x_, w_, b_):
        return np.sum(conv2d(x_, w_, b_, stride=stride, padding=padding, dilation=dilation) * upstream)

    grad_x, grad_w, grad_b = conv2d_backward(x, w, upstream, stride=stride, padding=padding, dilation=dilation)
    assert relative_error(grad_x, numerical_gradient(lambda v: loss(v, w, b), x)) < 1e-7
    assert relative_error(grad_w, numerical_gradient(lambda v: loss(x, v, b), w)) < 1e-7
    assert relative_error(grad_b, numerical_gradient(lambda v: loss(x, w, v), b)) < 1e-7


def test_correlate2d_backward_equals_central_differences_for_a_squared_loss():
    rng = np.random.default_rng(4)
    x, w = rng.normal(size=(6, 5)), rng.normal(size=(2, 3))
    target = rng.normal(size=correlate2d(x, w, stride=(1, 2), padding="same").shape)

    def loss(x_, w_):  # L = ½ Σ (y - target)², so dL/dy = y - target
        return 0.5 * np.sum((correlate2d(x_, w_, stride=(1, 2), padding="same") - target) ** 2)

    upstream = correlate2d(x, w, stride=(1, 2), padding="same") - target
    grad_x, grad_w = correlate2d_backward(x, w, upstream, stride=(1, 2), padding="same")
    assert relative_error(grad_x, numerical_gradient(lambda v: loss(v, w), x)) < 1e-7
    assert relative_error(grad_w, numerical_gradient(lambda v: loss(x, v), w)) < 1e-7


def test_a_wrong_gradient_fails_the_check():
    # The check above can fail: a kernel-flip mistake in grad_x is caught.
    rng = np.random.default_rng(5)
    x, w = rng.normal(size=(5, 5)), rng.normal(size=(3, 3))
    upstream = rng.normal(size=(3, 3))
    numeric = numerical_gradient(lambda v: np.sum(correlate2d(v, w) * upstream), x)
    wrong = correlate2d(upstream, w, padding="full")  # forgot to flip the kernel
    assert relative_error(wrong, numeric) > 0.1
    assert relative_error(correlate2d_backward(x, w, upstream)[0], numeric) < 1e-7


# ------------------------------------------------------------------ col2im and shapes


@FAST
@given(st.integers(1, 2), st.integers(1, 8), st.integers(1, 8), st.integers(1, 3), st.integers(1, 3),
       st.integers(1, 3), st.integers(1, 3), st.sampled_from(["valid", "same", "full", 1]),
       st.integers(0, 2**32 - 1))
def test_col2im_is_the_transpose_of_im2col(n, h, width, c, kh, kw, stride, padding, seed):
    if padding == "valid" and (kh > h or kw > width):
        return
    rng = np.random.default_rng(seed)
    x = rng.integers(-4, 5, size=(n, h, width, c))
    windows = im2col(x, kh, kw, stride=stride, padding=padding)
    p = rng.integers(-4, 5, size=windows.shape)
    back = col2im(p, x.shape, kh, kw, stride=stride, padding=padding)
    assert back.shape == x.shape
    assert np.sum(windows * p) == np.sum(x * back)  # <im2col(x), p> = <x, col2im(p)>, exactly


def test_col2im_counts_how_often_each_pixel_is_used():
    covered = col2im(np.ones(im2col(np.zeros((4, 5)), 2, 3, stride=1).shape), (4, 5), 2, 3)
    np.testing.assert_array_equal(covered, [[1, 2, 3, 2, 1], [2, 4, 6, 4, 2], [2, 4, 6, 4, 2], [1, 2, 3, 2, 1]])
    # stride 2 along the rows of a 5-row image: the last row is in no window
    covered = col2im(np.ones(im2col(np.zeros((5, 3, 2)), 2, 1, stride=(2, 1)).shape), (5, 3, 2), 2, 1,
                     stride=(2, 1))
    np.testing.assert_array_equal(covered[:, 0, 0], [1, 1, 1, 1, 0])


def test_unbatched_and_integer_inputs():
    rng = np.random.default_rng(6)
    x, w = rng.integers(-3, 4, size=(5, 5, 2)), rng.integers(-3, 4, size=(2, 2, 2, 3))
    g = rng.integers(-3, 4, size=conv2d(x, w).shape)
    grad_x, grad_w, grad_b = conv2d_backward(x, w, g)
    batched = conv2d_backward(x[None], w, g[None])
    np.testing.assert_array_equal(grad_x, batched[0][0])
    np.testing.assert_array_equal(grad_w, batched[1])
    assert grad_x.shape == x.shape and grad_x.dtype == grad_w.dtype == grad_b.dtype == np.int64
    # multi-channel backward = the sum over channel pairs of single-channel backward passes
    for c in range(2):
        for o in range(3):
            gx, gw = correlate2d_backward(x[:, :, c], w[:, :, c, o], g[:, :, o])
            np.testing.assert_array_equal(grad_w[:, :, c, o], gw)
    expected_x = sum(correlate2d_backward(x[:, :, 0], w[:, :, 0, o], g[:, :, o])[0] for o in range(3))
    np.testing.assert_array_equal(grad_x[:, :, 0], expected_x)


# ------------------------------------------------------------------ pooling


def distinct_values(rng, shape):
    """Random values without ties inside any window: a random permutation, as float32."""
    return rng.permutation(int(np.prod(shape))).reshape(shape).astype(np.float32) / 7


def tf_pool_gradient(layer, x, grad_out):
    x_var = tf.Variable(x)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x_var) * grad_out)
    return tape.gradient(loss, x_var).numpy()


@WITH_TF
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 4), st.integers(1, 4),
       st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))), st.data())
def test_pool2d_backward_equals_keras_pooling_layers(n, c, ph, pw, stride, data):
    h, width = data.draw(st.integers(ph, 10)), data.draw(st.integers(pw, 10))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = distinct_values(rng, (n, h, width, c))
    for mode, layer_class in (("max", keras.layers.MaxPooling2D), ("avg", keras.layers.AveragePooling2D)):
        grad_out = rng.normal(size=pool2d(x, (ph, pw), stride, mode).shape).astype(np.float32)
        expected = tf_pool_gradient(layer_class((ph, pw), strides=stride, padding="valid"), x, grad_out)
        result = pool2d_backward(x, grad_out, (ph, pw), stride, mode)
        assert result.shape == x.shape and result.dtype == np.float32
        np.testing.assert_allclose(result, expected, rtol=1e-6, atol=1e-6)


def test_max_pool_ties_go_to_the_first_maximum_like_tensorflow():
    x = np.array([[5, 5], [5, 1]], dtype=np.float32)
    np.testing.assert_array_equal(pool2d_backward(x, [[1.0]]), [[1, 0], [0, 0]])
    np.testing.assert_array_equal(pool2d_backward(np.array([[1, 5], [5, 5]]), [[3]]), [[0, 3], [0, 0]])
    np.testing.assert_array_equal(pool2d_backward(np.array([[1, 0], [0, 0]]), [[3]], mode="min"), [[0, 3], [0, 0]])
    # TensorFlow's CPU kernel breaks ties the same way (many ties: values from {0, 1, 2})
    rng = np.random.default_rng(8)
    for size, stride in ((2, None), (3, 1), (2, 1), (3, 2)):
        x = rng.integers(0, 3, size=(2, 7, 6, 3)).astype(np.float32)
        grad_out = rng.normal(size=pool2d(x, size, stride).shape).astype(np.float32)
        expected = tf_pool_gradient(keras.layers.MaxPooling2D(size, strides=stride), x, grad_out)
        np.testing.assert_allclose(pool2d_backward(x, grad_out, size, stride), expected, rtol=1e-6, atol=1e-6)


def test_overlapping_windows_add_up_and_dropped_pixels_get_zero():
    x = np.array([[0, 1, 0, 0],
                  [1, 9, 1, 0],
                  [0, 1, 0, 0]])
    # 2×2 windows with stride 1: the 9 is the maximum of all four windows that contain it
    grad = pool2d_backward(x[:, :3], np.ones((2, 2)), size=2, stride=1)
    np.testing.assert_array_equal(grad, [[0, 0, 0], [0, 4, 0], [0, 0, 0]])
    # avg: each pixel gets 1/4 from every window it is in; the last column is in no window of stride 2
    grad = pool2d_backward(x[:2], np.ones((1, 1)) * 4, size=(2, 3), stride=2, mode="avg")
    np.testing.assert_allclose(grad, [[2 / 3, 2 / 3, 2 / 3, 0], [2 / 3, 2 / 3, 2 / 3, 0]])
    counts = pool2d_backward(np.ones((4, 4)), np.full((2, 2), 4.0), size=3, stride=1, mode="avg") * 9 / 4
    np.testing.assert_allclose(counts, [[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]])


def test_pool2d_backward_is_the_numerical_gradient():
    rng = np.random.default_rng(9)
    x = rng.normal(size=(2, 6, 7, 2))  # random floats: no ties, the max is differentiable
    for mode in ("max", "avg", "min"):
        upstream = rng.normal(size=pool2d(x, 3, 2, mode).shape)
        numeric = numerical_gradient(lambda v, m=mode, u=upstream: np.sum(pool2d(v, 3, 2, m) * u), x)
        assert relative_error(pool2d_backward(x, upstream, 3, 2, mode), numeric) < 1e-7


def test_pool2d_backward_shapes_and_dtypes():
    x = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
    g = np.ones((2, 3, 3), dtype=int)
    assert pool2d_backward(x, g).shape == (5, 7, 3) and pool2d_backward(x, g).dtype == np.int64
    assert pool2d_backward(x, g, mode="avg").dtype == np.float64
    assert pool2d_backward(x[None], g[None]).shape == (1, 5, 7, 3)
    assert pool2d_backward(x[:, :, 0], g[:, :, 0]).shape == (5, 7)
    # the gradient is conserved: max sends each window's value to one pixel, avg spreads it
    assert pool2d_backward(x, g).sum() == pool2d_backward(x, g, mode="avg").sum() == g.sum()


# ------------------------------------------------------------------ errors a student sees

X2, W2 = np.zeros((4, 4)), np.ones((3, 3))
BATCH, WEIGHTS = np.zeros((2, 5, 5, 3)), np.zeros((3, 3, 3, 4))


@pytest.mark.parametrize("call, error, message", [
    (lambda: correlate2d_backward(X2, W2, np.zeros((3, 3))), ValueError,
     r"grad_out must have the shape of the forward output, \(out_h, out_w\) = \(2, 2\), got shape \(3, 3\)"),
    (lambda: correlate2d_backward(X2, W2, np.zeros((2, 2)), padding="same"), ValueError,
     r"\(out_h, out_w\) = \(4, 4\), got shape \(2, 2\)"),
    (lambda: correlate2d_backward(np.zeros((4, 4, 1)), W2, np.zeros((2, 2))), ValueError,
     r"x must be a single-channel image of shape \(H, W\)"),
    (lambda: correlate2d_backward(X2, W2, "grad"), TypeError, "grad_out must be an array of numbers"),
    (lambda: conv2d_backward(BATCH, WEIGHTS, np.zeros((2, 3, 3))), ValueError,
     r"grad_out must have the shape of the forward output, \(N, out_h, out_w, Cout\) = \(2, 3, 3, 4\), "
     r"got shape \(2, 3, 3\)"),
    (lambda: conv2d_backward(BATCH[0], WEIGHTS, np.zeros((2, 3, 3, 4))), ValueError,
     r"\(out_h, out_w, Cout\) = \(3, 3, 4\), got shape \(2, 3, 3, 4\)"),
    (lambda: conv2d_backward(BATCH, WEIGHTS, np.zeros((2, 2, 2, 4)), stride=2, padding="same"), ValueError,
     r"\(N, out_h, out_w, Cout\) = \(2, 3, 3, 4\), got shape \(2, 2, 2, 4\)"),
    (lambda: conv2d_backward(BATCH, np.zeros((3, 3, 1, 4)), np.zeros((2, 3, 3, 4))), ValueError,
     "x has 3 input channels but w expects 1"),
    (lambda: conv2d_backward(BATCH, WEIGHTS, np.zeros((2, 3, 3, 4)), stride=0), ValueError,
     "stride must be positive, got 0"),
    (lambda: col2im(np.zeros((2, 2, 4)), (3, 3), 2, 2, stride=2), ValueError,
     r"patches must have the shape im2col gives for an input of shape \(3, 3\), \(1, 1, 4\), got shape \(2, 2, 4\)"),
    (lambda: col2im(np.zeros((2, 2, 4)), (3, -3), 2, 2), ValueError, r"input_shape must be \(H, W\)"),
    (lambda: col2im(np.zeros((2, 2, 4)), (3, 3), 2, 0), ValueError, "kw must be positive, got 0"),
    (lambda: pool2d_backward(X2, np.zeros((4, 4))), ValueError,
     r"grad_out must have the shape of pool2d's output for x of shape \(4, 4\), \(2, 2\), got shape \(4, 4\)"),
    (lambda: pool2d_backward(np.zeros((1, 6, 6, 2)), np.zeros((1, 2, 2, 2)), size=2, stride=1), ValueError,
     r"\(1, 5, 5, 2\), got shape \(1, 2, 2, 2\)"),
    (lambda: pool2d_backward(X2, np.zeros((2, 2)), mode="median"), ValueError, "unknown pooling mode 'median'"),
    (lambda: pool2d_backward(X2, np.zeros((1, 1)), size=5), ValueError, "pooling window of 5×5 does not fit"),
    (lambda: pool2d_backward(X2, [["a", "b"]]), TypeError, "grad_out must hold integer or float numbers"),
])
def test_error_messages_name_the_problem(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_new_functions_are_exported():
    assert {"col2im", "conv2d_backward", "correlate2d_backward"} <= set(conv_module.__all__)
    assert "pool2d_backward" in pooling_module.__all__
