"""cnn_course.batchnorm against keras.layers.BatchNormalization and tf.GradientTape, a worked
example, numerical gradients and its error messages.

Reference: Ioffe & Szegedy, "Batch Normalization: Accelerating Deep Network Training by
Reducing Internal Covariate Shift", ICML 2015 (Algorithm 1 for the forward pass).
"""

from __future__ import annotations

import keras  # imports TensorFlow once for the module; a broken install fails, never skips
import numpy as np
import pytest
import tensorflow as tf
from cnn_course.batchnorm import BatchNormCache, batch_norm_backward, batch_norm_forward
from hypothesis import given, settings
from hypothesis import strategies as st

# Tolerances against Keras. TensorFlow computes x * inv + (beta - mean * inv) rather than
# (x - mean) * inv, and sums in another order, so only rounding differs: a few ulps of the
# largest value involved. float64: 1e-10 leaves room for that; float32 (about 7 digits):
# 2e-5 relative, 2e-5 absolute on outputs of size ~1-10.
TOL = {np.float64: dict(rtol=1e-10, atol=1e-10), np.float32: dict(rtol=2e-5, atol=2e-5)}

SHAPES = [(6, 3), (2, 4, 5, 3)]  # dense-style (N, C) and conv-style (N, H, W, C)


def random_case(shape, dtype=np.float64, seed=0):
    """x with a different offset and spread per channel, and non-trivial weights/statistics."""
    rng = np.random.default_rng(seed)
    c = shape[-1]
    x = rng.normal(loc=rng.uniform(-3, 3, c), scale=rng.uniform(0.5, 4, c), size=shape)
    gamma, beta = rng.uniform(0.5, 2, c), rng.normal(size=c)
    mean, var = rng.normal(size=c), rng.uniform(0.5, 3, c)
    return tuple(a.astype(dtype) for a in (x, gamma, beta, mean, var))


def keras_layer(gamma, beta, mean, var, *, ndim, momentum, eps):
    layer = keras.layers.BatchNormalization(momentum=momentum, epsilon=eps,
                                            dtype=str(gamma.dtype))
    layer.build((None,) * (ndim - 1) + (gamma.shape[0],))
    layer.set_weights([gamma, beta, mean, var])  # Keras's order
    return layer


# ----------------------------------------------------------------------------- worked example


def test_worked_example_by_hand():
    # x = [[1, 2],        channel 0: values 1, 3 -> mean 2, variance ((-1)² + 1²) / 2 = 1
    #      [3, 6]]        channel 1: values 2, 6 -> mean 4, variance ((-2)² + 2²) / 2 = 4
    # gamma = 1, beta = 0, eps = 1e-3:
    # out = [[(1 - 2) / sqrt(1 + eps), (2 - 4) / sqrt(4 + eps)],
    #        [(3 - 2) / sqrt(1 + eps), (6 - 4) / sqrt(4 + eps)]]
    # Every step before the last division is exact in binary (small integers, then
    # sqrt(var + eps) rounds once), and ±1, ±2 times 1/s is the same float as ±1/s, ±2/s,
    # so the result is compared for exact equality.
    # Moving averages from (0, 1) with momentum 0.99:
    # mean = 0.99 * 0 + 0.01 * (2, 4) = (0.02, 0.04); var = 0.99 * 1 + 0.01 * (1, 4) = (1, 1.03)
    x = np.array([[1, 2], [3, 6]])
    out, mean, var, cache = batch_norm_forward(x, np.ones(2), np.zeros(2), np.zeros(2),
                                               np.ones(2), training=True)
    s0, s1 = np.sqrt(1 + 1e-3), np.sqrt(4 + 1e-3)
    np.testing.assert_array_equal(out, [[-1 / s0, -2 / s1], [1 / s0, 2 / s1]])
    np.testing.assert_allclose(mean, [0.02, 0.04], rtol=1e-15)
    np.testing.assert_allclose(var, [1.0, 1.03], rtol=1e-15)
    assert out.dtype == np.float64  # integer input is computed in float64

    # Backward with dout = [[1, 0], [0, 0]]: in channel 0, x_hat = (-k, k), k = 1/s0, so
    # dbeta = 1, dgamma = -k and dx = (1/s0) / 2 * (2 * (1, 0) - 1 - (-k, k) * (-k))
    #                                = (1/s0) / 2 * (1 - k², k² - 1),   with 1 - k² = eps/(1 + eps).
    # With two examples a channel only has one degree of freedom left, so nearly all the
    # gradient is removed. Channel 1 receives nothing.
    dx, dgamma, dbeta = batch_norm_backward(np.array([[1.0, 0.0], [0.0, 0.0]]), cache)
    k = 1 / s0
    left = (1 / s0) / 2 * (1e-3 / (1 + 1e-3))
    np.testing.assert_allclose(dx, [[left, 0.0], [-left, 0.0]], rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(dgamma, [-k, 0.0], rtol=1e-15)
    np.testing.assert_array_equal(dbeta, [1.0, 0.0])


def test_inference_mode_by_hand():
    # running mean 1, running var 3.75, eps 0.25: sqrt(3.75 + 0.25) = 2, so
    # out = gamma * (x - 1) / 2 + beta = 3 * (x - 1) / 2 - 1 for x = 3, 5, -1: 2, 5, -4
    x = np.array([[3.0], [5.0], [-1.0]])
    out, mean, var, cache = batch_norm_forward(x, [3.0], [-1.0], [1.0], [3.75],
                                               training=False, eps=0.25)
    np.testing.assert_array_equal(out, [[2.0], [5.0], [-4.0]])
    np.testing.assert_array_equal(mean, [1.0])
    np.testing.assert_array_equal(var, [3.75])
    # the layer is out = 1.5 * x - 2.5, so dx = 1.5 * dout; x_hat = (1, 2, -1)
    dx, dgamma, dbeta = batch_norm_backward(np.array([[1.0], [2.0], [4.0]]), cache)
    np.testing.assert_array_equal(dx, [[1.5], [3.0], [6.0]])
    np.testing.assert_array_equal(dgamma, [1 + 4 - 4.0])
    np.testing.assert_array_equal(dbeta, [7.0])


# ----------------------------------------------------------------------------- against Keras


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("training", [True, False])
def test_forward_equals_keras(shape, dtype, training):
    x, gamma, beta, mean, var = random_case(shape, dtype, seed=len(shape))
    momentum, eps = 0.9, 1e-2
    layer = keras_layer(gamma, beta, mean, var, ndim=len(shape), momentum=momentum, eps=eps)
    expected = keras.ops.convert_to_numpy(layer(x, training=training))
    out, new_mean, new_var, _ = batch_norm_forward(x, gamma, beta, mean, var,
                                                   training=training, momentum=momentum, eps=eps)
    assert out.dtype == dtype and new_mean.dtype == dtype and new_var.dtype == dtype
    np.testing.assert_allclose(out, expected, **TOL[dtype])
    np.testing.assert_allclose(new_mean, keras.ops.convert_to_numpy(layer.moving_mean), **TOL[dtype])
    np.testing.assert_allclose(new_var, keras.ops.convert_to_numpy(layer.moving_variance),
                               **TOL[dtype])
    if not training:
        np.testing.assert_array_equal(new_mean, mean)
        np.testing.assert_array_equal(new_var, var)


def test_keras_moving_variance_uses_the_biased_batch_variance():
    # Why the module divides by m, not m - 1: Keras's moving variance after one step from 0
    # with momentum 0 is exactly the batch variance, and it is numpy's ddof=0 one.
    x = np.array([[1.0], [2.0], [6.0]])  # biased variance 42/9 = 4.667, unbiased 7
    layer = keras_layer(np.ones(1), np.zeros(1), np.zeros(1), np.zeros(1), ndim=2,
                        momentum=0.0, eps=1e-3)
    layer(x, training=True)
    keras_var = keras.ops.convert_to_numpy(layer.moving_variance)
    np.testing.assert_allclose(keras_var, [42 / 9], rtol=1e-12)
    _, _, ours, _ = batch_norm_forward(x, [1.0], [0.0], [0.0], [0.0], training=True, momentum=0.0)
    np.testing.assert_allclose(ours, keras_var, rtol=1e-12)


def test_several_training_steps_follow_keras():
    x, gamma, beta, mean, var = random_case((5, 2, 2, 4), seed=11)
    layer = keras_layer(gamma, beta, mean, var, ndim=4, momentum=0.5, eps=1e-3)
    for step in range(3):
        batch = x * (step + 1) - step  # other statistics at every step
        layer(batch, training=True)
        _, mean, var, _ = batch_norm_forward(batch, gamma, beta, mean, var, training=True,
                                             momentum=0.5)
    np.testing.assert_allclose(mean, keras.ops.convert_to_numpy(layer.moving_mean), **TOL[np.float64])
    np.testing.assert_allclose(var, keras.ops.convert_to_numpy(layer.moving_variance),
                               **TOL[np.float64])


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("training", [True, False])
def test_backward_equals_gradient_tape(shape, training):
    x, gamma, beta, mean, var = random_case(shape, seed=20 + len(shape))
    weights = np.random.default_rng(3).normal(size=shape)  # L = sum(weights * out), dL/dout = weights
    layer = keras_layer(gamma, beta, mean, var, ndim=len(shape), momentum=0.99, eps=1e-3)
    x_tf = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x_tf)
        loss = tf.reduce_sum(tf.constant(weights) * layer(x_tf, training=training))
    expected = tape.gradient(loss, [x_tf, layer.gamma.value, layer.beta.value])
    _, _, _, cache = batch_norm_forward(x, gamma, beta, mean, var, training=training)
    assert cache.training is training
    for ours, theirs in zip(batch_norm_backward(weights, cache), expected, strict=True):
        np.testing.assert_allclose(ours, theirs.numpy(), **TOL[np.float64])


# ----------------------------------------------------------------------------- numerical gradient


def relative_error(a, b):
    """||a - b|| / (||a|| + ||b||): scale-free, and defined when one gradient is ~0."""
    return np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-300)


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 2, 2)])
@pytest.mark.parametrize("training", [True, False])
def test_backward_passes_central_difference_check(shape, training):
    x, gamma, beta, mean, var = random_case(shape, seed=30 + len(shape))
    weights = np.random.default_rng(4).normal(size=shape)

    def loss(x, gamma, beta):
        out = batch_norm_forward(x, gamma, beta, mean, var, training=training)[0]
        return np.sum(weights * out)

    def numerical(which):
        args = [x, gamma, beta]
        grad = np.zeros_like(args[which])
        h = 1e-5
        for index in np.ndindex(grad.shape):
            plus = [a.copy() for a in args]
            minus = [a.copy() for a in args]
            plus[which][index] += h
            minus[which][index] -= h
            grad[index] = (loss(*plus) - loss(*minus)) / (2 * h)
        return grad

    _, _, _, cache = batch_norm_forward(x, gamma, beta, mean, var, training=training)
    for which, analytic in enumerate(batch_norm_backward(weights, cache)):
        assert relative_error(analytic, numerical(which)) < 1e-6, ("x", "gamma", "beta")[which]


# ----------------------------------------------------------------------------- properties


@st.composite
def training_case(draw):
    ndim = draw(st.integers(2, 4))
    shape = tuple(draw(st.integers(1, 4)) for _ in range(ndim - 1)) + (draw(st.integers(1, 4)),)
    if np.prod(shape[:-1]) == 1:
        shape = (2,) + shape[1:]
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    c = shape[-1]
    offset = draw(st.floats(-100, 100))
    spread = draw(st.floats(0.1, 100))
    x = offset + spread * rng.normal(size=shape)
    gamma = rng.uniform(-3, 3, c)
    beta = rng.uniform(-3, 3, c)
    eps = draw(st.sampled_from([1e-5, 1e-3, 0.1]))
    return x, gamma, beta, eps


@settings(max_examples=25, deadline=None)
@given(training_case())
def test_training_output_has_mean_beta_and_std_gamma(case):
    x, gamma, beta, eps = case
    out, _, _, _ = batch_norm_forward(x, gamma, beta, np.zeros_like(gamma), np.ones_like(gamma),
                                      training=True, eps=eps)
    axes = tuple(range(x.ndim - 1))
    # mean(x_hat) is 0 up to rounding of x - mean, which is relative to |x| / std(x)
    tolerance = 1e-12 * (1 + np.abs(gamma) * np.abs(x).max(axis=axes) / np.sqrt(x.var(axis=axes) + eps))
    assert np.all(np.abs(out.mean(axis=axes) - beta) <= tolerance)
    # std of x_hat is sqrt(var / (var + eps)): 1 up to eps, never more.
    var = x.var(axis=axes)
    np.testing.assert_allclose(out.std(axis=axes), np.abs(gamma) * np.sqrt(var / (var + eps)),
                               rtol=1e-9, atol=1e-12)
    assert np.all(out.std(axis=axes) <= np.abs(gamma) * (1 + 1e-12))


@settings(max_examples=25, deadline=None)
@given(training_case())
def test_training_gradient_ignores_shifts_and_almost_ignores_scaling(case):
    # Adding the same constant to a whole channel does not change the training output, so
    # per channel sum(dx) = 0. Scaling a channel about its mean changes the output only
    # through eps: from dx = gamma * inv / m * (m * dout - dbeta - x_hat * dgamma) and
    # sum(x_hat) = 0, sum(x_hat²) = m * var / (var + eps),
    #     sum(dx * x_hat) = gamma * inv * dgamma * eps / (var + eps),
    # which is 0 when eps = 0.
    x, gamma, beta, eps = case
    _, _, _, cache = batch_norm_forward(x, gamma, beta, np.zeros_like(gamma), np.ones_like(gamma),
                                        training=True, eps=eps)
    dout = np.random.default_rng(0).normal(size=x.shape)
    dx, dgamma, _ = batch_norm_backward(dout, cache)
    axes = tuple(range(x.ndim - 1))
    size = np.abs(dout).sum(axis=axes) * np.abs(gamma) * cache.inv_std * (1 + np.abs(cache.x_hat).max())
    assert np.all(np.abs(dx.sum(axis=axes)) <= 1e-9 * size)
    var = x.var(axis=axes)
    expected = gamma * cache.inv_std * dgamma * eps / (var + eps)
    assert np.all(np.abs((dx * cache.x_hat).sum(axis=axes) - expected) <= 1e-9 * size)


# ----------------------------------------------------------------------------- arrays, dtypes


@pytest.mark.parametrize("training", [True, False])
def test_inputs_are_not_modified(training):
    args = random_case((3, 2, 2, 2), seed=5)
    copies = [a.copy() for a in args]
    out, new_mean, new_var, cache = batch_norm_forward(*args, training=training)
    for original, copy in zip(args, copies, strict=True):
        np.testing.assert_array_equal(original, copy)
    assert not np.shares_memory(new_mean, args[3]) and not np.shares_memory(new_var, args[4])
    dout = np.ones_like(out)
    batch_norm_backward(dout, cache)
    np.testing.assert_array_equal(dout, np.ones_like(out))


@pytest.mark.parametrize(("dtype", "expected"), [(np.float16, np.float32), (np.float32, np.float32),
                                                 (np.float64, np.float64), (np.int64, np.float64)])
def test_dtype_follows_keras_rule(dtype, expected):
    x = np.array([[1, 2], [3, 5], [4, 4]], dtype=dtype)
    out, mean, var, cache = batch_norm_forward(x, np.ones(2), np.zeros(2), np.zeros(2), np.ones(2),
                                               training=True)
    assert out.dtype == mean.dtype == var.dtype == expected
    assert batch_norm_backward(np.ones((3, 2)), cache)[0].dtype == expected


def test_single_image_batch_is_fine_in_training_mode():
    # (1, H, W, C): each channel has H * W values, enough for a variance
    x = np.arange(8.0).reshape(1, 2, 2, 2)
    out, _, _, _ = batch_norm_forward(x, np.ones(2), np.zeros(2), np.zeros(2), np.ones(2),
                                      training=True)
    np.testing.assert_allclose(out.mean(axis=(0, 1, 2)), 0, atol=1e-12)


@pytest.mark.parametrize("training", [True, False])
def test_cache_holds_what_the_docstring_says(training):
    x, gamma, beta, mean, var = random_case((3, 2, 4), seed=8)
    out, _, _, cache = batch_norm_forward(x, gamma, beta, mean, var, training=training, eps=0.1)
    assert isinstance(cache, BatchNormCache) and cache.training is training
    used_mean, used_var = (x.mean(axis=(0, 1)), x.var(axis=(0, 1))) if training else (mean, var)
    np.testing.assert_allclose(cache.inv_std, 1 / np.sqrt(used_var + 0.1), rtol=1e-14)
    np.testing.assert_allclose(cache.x_hat, (x - used_mean) * cache.inv_std, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(cache.gamma, gamma)
    np.testing.assert_allclose(out, gamma * cache.x_hat + beta, rtol=1e-14, atol=1e-14)


def test_batch_of_one_is_fine_in_inference_mode():
    out, _, _, _ = batch_norm_forward([[2.0, 3.0]], np.ones(2), np.zeros(2), [1.0, 1.0],
                                      [0.75, 3.75], training=False, eps=0.25)
    np.testing.assert_array_equal(out, [[1.0, 1.0]])


# ----------------------------------------------------------------------------- error messages

GOOD = dict(x=np.ones((4, 3)) * np.arange(4)[:, None], gamma=np.ones(3), beta=np.zeros(3),
            running_mean=np.zeros(3), running_var=np.ones(3))


def call(**changes):
    arguments = {**GOOD, "training": True, **changes}
    return batch_norm_forward(arguments.pop("x"), arguments.pop("gamma"), arguments.pop("beta"),
                              arguments.pop("running_mean"), arguments.pop("running_var"),
                              **arguments)


@pytest.mark.parametrize(("changes", "error", "words"), [
    (dict(x=np.ones(3)), ValueError, r"at least two axes.*\(N, C\).*got shape \(3,\)"),
    (dict(x=np.zeros((0, 3))), ValueError, r"must not be empty.*\(0, 3\)"),
    (dict(gamma=np.ones(2)), ValueError, r"gamma must have shape \(3,\).*got shape \(2,\)"),
    (dict(beta=np.ones((1, 3))), ValueError, r"beta must have shape \(3,\).*got shape \(1, 3\)"),
    (dict(running_mean=1.0), ValueError, r"running_mean must have shape \(3,\).*got shape \(\)"),
    (dict(running_var=np.ones(4)), ValueError, r"running_var must have shape \(3,\).*\(4,\)"),
    (dict(running_var=np.array([1.0, -0.5, 1.0])), ValueError, r"running_var.*cannot be negative"),
    (dict(momentum=1.5), ValueError, r"momentum must be between 0 and 1, got 1.5"),
    (dict(momentum=-0.1), ValueError, r"momentum must be between 0 and 1, got -0.1"),
    (dict(eps=0.0), ValueError, r"eps must be a positive.*got 0.0"),
    (dict(eps=-1e-3), ValueError, r"eps must be a positive.*got -0.001"),
    (dict(eps=float("inf")), ValueError, r"eps must be a positive \(finite\)"),
    (dict(x=np.ones((1, 3))), ValueError,
     r"more than one value per channel.*\(1, 3\).*variance is 0.*equal beta"),
    (dict(x=np.ones((1, 1, 1, 3))), ValueError, r"more than one value per channel"),
    (dict(x=np.array([[1.0, np.nan, 0], [0, 0, 0]])), ValueError, r"x must hold finite.*1 value"),
    (dict(gamma=np.array([1.0, np.inf, 1.0])), ValueError, r"gamma must hold finite.*NaN or infinite"),
    (dict(beta=np.array([np.nan] * 3)), ValueError, r"beta must hold finite.*3 value"),
    (dict(running_mean=np.array([0, 0, -np.inf])), ValueError, r"running_mean must hold finite"),
    (dict(running_var=np.array([0, np.nan, 1])), ValueError, r"running_var must hold finite"),
    (dict(x=np.array([[1e30] * 3, [-1e30] * 3], dtype=np.float32)), ValueError,
     r"too large for float32.*overflow"),
    (dict(x=[[1, 2], [3]]), ValueError, r"x must be a rectangular array"),
    (dict(x=np.array([["a", "b"], ["c", "d"]])), TypeError, r"x must hold integer or float.*dtype <U1"),
    (dict(x="abc"), TypeError, r"x must be an array of numbers, got the string"),
    (dict(x=np.ones((2, 3), dtype=complex)), TypeError, r"x must hold integer or float.*complex"),
    (dict(x=np.ones((2, 3), dtype=bool)), TypeError, r"x must hold integer or float.*bool"),
    (dict(gamma=np.array(["1", "1", "1"])), TypeError, r"gamma must hold integer or float"),
    (dict(training="yes"), TypeError, r"training must be True or False, got 'yes'"),
    (dict(training=None), TypeError, r"training must be True or False, got None"),
    (dict(momentum="0.9"), TypeError, r"momentum must be a number, got '0.9'"),
    (dict(eps=None), TypeError, r"eps must be a number, got None"),
])
def test_forward_error_messages(changes, error, words):
    with pytest.raises(error, match=words):
        call(**changes)


def test_training_is_required():
    with pytest.raises(TypeError, match="training"):
        batch_norm_forward(GOOD["x"], GOOD["gamma"], GOOD["beta"], GOOD["running_mean"],
                           GOOD["running_var"])


def test_momentum_ends_are_allowed():
    # momentum 1 keeps the old averages, 0 replaces them with the batch statistics
    _, mean, var, _ = call(momentum=1)
    np.testing.assert_array_equal(mean, GOOD["running_mean"])
    np.testing.assert_array_equal(var, GOOD["running_var"])
    _, mean, var, _ = call(momentum=0)
    np.testing.assert_allclose(mean, GOOD["x"].mean(axis=0))
    np.testing.assert_allclose(var, GOOD["x"].var(axis=0))


@pytest.mark.parametrize(("dout", "cache", "error", "words"), [
    (np.ones((4, 2)), None, ValueError, r"dout must have the shape of the forward input x, \(4, 3\), got \(4, 2\)"),
    (np.full((4, 3), np.inf), None, ValueError, r"dout must hold finite.*12 value"),
    (np.array([["a"] * 3] * 4), None, TypeError, r"dout must hold integer or float"),
    (np.ones((4, 3)), (1, 2, 3), TypeError, r"cache must be the fourth value returned by batch_norm_forward, got tuple"),
])
def test_backward_error_messages(dout, cache, error, words):
    if cache is None:
        cache = call()[3]
    with pytest.raises(error, match=words):
        batch_norm_backward(dout, cache)
