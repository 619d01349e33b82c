"""cnn_course.pooling.pool2d against Keras's pooling layers, a worked example and its error messages."""

from __future__ import annotations

import doctest

import cnn_course.pooling as pooling_module
import keras  # imports TensorFlow once for the module; a broken install fails, never skips
import numpy as np
import pytest
from cnn_course.pooling import pool2d
from hypothesis import given, settings
from hypothesis import strategies as st

WORKED = np.array([[1, 2, 5, 6],
                   [3, 4, 7, 8],
                   [9, 9, 0, 0],
                   [9, 9, 0, 4]])


def test_worked_4x4_example_by_hand():
    # the four 2×2 blocks are [1 2 3 4], [5 6 7 8], [9 9 9 9], [0 0 0 4]
    np.testing.assert_array_equal(pool2d(WORKED, 2), [[4, 8], [9, 4]])
    np.testing.assert_array_equal(pool2d(WORKED, 2, mode="avg"), [[2.5, 6.5], [9.0, 1.0]])
    np.testing.assert_array_equal(pool2d(WORKED, 2, mode="min"), [[1, 5], [9, 0]])
    # overlapping 3×3 windows with stride 1: maxima of the four 3×3 corners
    np.testing.assert_array_equal(pool2d(WORKED, 3, stride=1), [[9, 9], [9, 9]])
    np.testing.assert_array_equal(pool2d(WORKED, 3, stride=1, mode="min"), [[0, 0], [0, 0]])
    # a 1×4 window over whole rows, 2×1 over pairs of rows
    np.testing.assert_array_equal(pool2d(WORKED, (1, 4)), [[6], [8], [9], [9]])
    np.testing.assert_array_equal(pool2d(WORKED, (2, 1), mode="avg"), [[2, 3, 6, 7], [9, 9, 0, 2]])


def test_dtypes_and_shapes():
    image = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
    assert pool2d(image, 2).dtype == np.uint8  # max and min keep the dtype
    assert pool2d(image, 2, mode="avg").dtype == np.float64
    assert pool2d(image, 2).shape == (2, 3, 3)  # leftover row and column are dropped ("valid")
    assert pool2d(image[None], 2).shape == (1, 2, 3, 3)
    assert pool2d(image[:, :, 0], 2).shape == (2, 3)
    assert pool2d(image, 3, stride=2).shape == (2, 3, 3)
    assert pool2d(image.astype(np.float32), 2, mode="avg").dtype == np.float32


def test_channels_are_pooled_separately():
    rng = np.random.default_rng(5)
    batch = rng.normal(size=(2, 6, 5, 3))
    pooled = pool2d(batch, (2, 3), stride=(1, 2), mode="avg")
    for n in range(2):
        for c in range(3):
            np.testing.assert_array_equal(pooled[n, :, :, c],
                                          pool2d(batch[n, :, :, c], (2, 3), stride=(1, 2), mode="avg"))


@st.composite
def pooling_case(draw):
    size = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 4), st.integers(1, 4))))
    h, w = draw(st.integers(size[0], 12)), draw(st.integers(size[1], 12))
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return rng.normal(size=(n, h, w, c)).astype(np.float32), size, stride


@settings(max_examples=40, deadline=None)
@given(pooling_case(), st.sampled_from(["max", "avg"]))
def test_pool2d_equals_keras_pooling_layers(case, mode):
    x, size, stride = case
    layer_class = {"max": keras.layers.MaxPooling2D, "avg": keras.layers.AveragePooling2D}[mode]
    expected = keras.ops.convert_to_numpy(layer_class(pool_size=size, strides=stride, padding="valid")(x))
    result = pool2d(x, size, stride, mode=mode)
    assert result.shape == expected.shape
    np.testing.assert_allclose(result, expected, rtol=1e-6, atol=1e-6)


@settings(max_examples=100, deadline=None)
@given(pooling_case())
def test_min_pooling_is_minus_max_pooling_of_minus_x(case):
    x, size, stride = case
    np.testing.assert_array_equal(pool2d(x, size, stride, mode="min"), -pool2d(-x, size, stride, mode="max"))


@settings(max_examples=100, deadline=None)
@given(pooling_case())
def test_pooling_windows_by_hand(case):
    x, size, stride = case
    step = size if stride is None else stride
    result = pool2d(x, size, stride, mode="max")
    out_h, out_w = (x.shape[1] - size[0]) // step[0] + 1, (x.shape[2] - size[1]) // step[1] + 1
    assert result.shape == (x.shape[0], out_h, out_w, x.shape[3])
    i, j = out_h - 1, out_w - 1  # the last window, sliced by hand
    window = x[:, i * step[0]: i * step[0] + size[0], j * step[1]: j * step[1] + size[1], :]
    np.testing.assert_array_equal(result[:, i, j, :], window.max(axis=(1, 2)))
    np.testing.assert_allclose(pool2d(x, size, stride, mode="avg")[:, 0, 0, :],
                               x[:, :size[0], :size[1], :].mean(axis=(1, 2)), rtol=1e-6)


@pytest.mark.parametrize("call, error, message", [
    (lambda: pool2d(np.zeros(4)), ValueError, r"x must have shape \(H, W\), \(H, W, C\) or \(N, H, W, C\)"),
    (lambda: pool2d(np.zeros((1, 2, 3, 4, 5))), ValueError, r"got shape \(1, 2, 3, 4, 5\)"),
    (lambda: pool2d(np.zeros((2, 2)), 3), ValueError, "pooling window of 3×3 does not fit in the 2×2 input"),
    (lambda: pool2d(np.zeros((4, 4)), (1, 5)), ValueError, "pooling window of 1×5 does not fit in the 4×4 input"),
    (lambda: pool2d(np.zeros((4, 4)), mode="mean"), ValueError, "unknown pooling mode 'mean': use 'max', 'avg' or 'min'"),
    (lambda: pool2d(np.zeros((4, 4)), 0), ValueError, "size must be positive, got 0"),
    (lambda: pool2d(np.zeros((4, 4)), 2, stride=0), ValueError, "stride must be positive, got 0"),
    (lambda: pool2d(np.zeros((4, 4)), 2.0), TypeError, r"size must be an int or a pair of ints \(rows, cols\), got 2.0"),
    (lambda: pool2d(np.zeros((4, 4)), 2, stride="2"), TypeError, "stride must be an int or a pair of ints"),
    (lambda: pool2d(np.zeros((0, 4))), ValueError, "x must not be empty"),
    (lambda: pool2d(np.array([["a"]])), TypeError, "x must hold integer or float numbers"),
])
def test_error_messages_name_the_problem(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_docstring_examples_run():
    result = doctest.testmod(pooling_module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 4 and result.failed == 0
