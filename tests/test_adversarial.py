"""cnn_course.adversarial: attacks and attribution maps checked against hand computations.

Every expected value is computed here without the module: closed-form gradients of a linear
softmax classifier, central finite differences of tiny networks that compute in float64
(so the differences are accurate to ~1e-9 and any disagreement is the module's), numpy
re-implementations (Grad-CAM) and brute-force loops (occlusion). One test trains a small
network on scikit-image's real LFW subset (faces vs non-faces) for the fooling images, one
runs the course's real MobileNetV2 (marked slow), and one repeats the computations under
Keras' JAX backend in a subprocess when JAX is importable.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from cnn_course import adversarial
from cnn_course.adversarial import (
    fgsm,
    fooling_image,
    grad_cam,
    gradient_sign,
    occlusion_map,
    pgd,
    saliency_map,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SHAPE = (6, 5, 2)  # small images: height ≠ width catches transposed axes
CLASSES = 3


# ----------------------------------------------------------------------------- tiny models


def linear_model(seed=0, shape=SHAPE, classes=CLASSES):
    """Flatten → Dense(softmax) with seeded weights; returns (model, W, b)."""
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=(int(np.prod(shape)), classes))
    bias = rng.normal(size=classes)
    model = keras.Sequential([keras.Input(shape), keras.layers.Flatten(),
                              keras.layers.Dense(classes, activation="softmax")])
    model.set_weights([weights, bias])
    return model, weights, bias


def conv_logits_model(seed=0, shape=SHAPE, classes=CLASSES, dtype="float64"):
    """A tiny functional network that gives logits: conv 3×3 (tanh) → conv 2×2 "conv_last" (ReLU) →
    flatten → dense. In float64 by default, so finite differences of it are accurate."""
    rng = np.random.default_rng(seed)
    inputs = keras.Input(shape, dtype=dtype)
    x = keras.layers.Conv2D(4, 3, activation="tanh", name="conv_first", dtype=dtype)(inputs)
    x = keras.layers.Conv2D(3, 2, activation="relu", name="conv_last", dtype=dtype)(x)
    x = keras.layers.Flatten(dtype=dtype)(x)
    logits = keras.layers.Dense(classes, name="logits", dtype=dtype)(x)
    model = keras.Model(inputs, logits)
    model.set_weights([rng.normal(scale=0.7, size=w.shape) for w in model.get_weights()])
    return model


def with_softmax(logits_model):
    """The same layers followed by a Softmax layer: a model that outputs probabilities."""
    outputs = keras.layers.Softmax(dtype=logits_model.output.dtype)(logits_model.output)
    return keras.Model(logits_model.input, outputs)


def images(seed, count=4, shape=SHAPE, low=0.0, high=1.0):
    return np.random.default_rng(seed).uniform(low, high, size=(count, *shape)).astype(np.float32)


def log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def finite_difference_gradients(function, x, h=1e-4):
    """Central differences of ``function`` (batch → one number per image) at each image of ``x``."""
    x = np.asarray(x, np.float64)
    gradients = np.empty_like(x)
    for n in range(len(x)):
        flat = x[n].ravel()
        steps = np.eye(flat.size) * h
        plus = (flat + steps).reshape(-1, *x.shape[1:])
        minus = (flat - steps).reshape(-1, *x.shape[1:])
        gradients[n] = ((function(plus) - function(minus)) / (2 * h)).reshape(x.shape[1:])
    return gradients


def logits_of(model, x):
    return np.asarray(model(np.asarray(x, np.float64), training=False), np.float64)


# ----------------------------------------------------------------------------- FGSM


def test_fgsm_moves_every_pixel_by_exactly_eps_along_the_closed_form_gradient_sign():
    # Linear softmax classifier: loss = -log softmax(xW + b)_y, so d loss/dx = W (p - onehot(y)).
    model, weights, bias = linear_model(seed=1)
    # Pixels and eps are multiples of 2^-8 and 2^-5, so x ± eps is exact in float32: the
    # perturbation is compared with == (before clipping: clip=None, and a wide range).
    x = (np.random.default_rng(2).integers(0, 256, size=(5, *SHAPE)) / 256).astype(np.float32)
    y = np.array([0, 1, 2, 0, 1])
    eps = 2.0 ** -5
    logits = x.reshape(5, -1).astype(np.float64) @ weights + bias
    p = np.exp(log_softmax(logits))
    gradient = (p - np.eye(CLASSES)[y]) @ weights.T
    assert np.abs(gradient).min() > 1e-4  # no pixel where float32 could get the sign wrong
    expected = np.sign(gradient).reshape(x.shape)
    for clip in (None, (-10.0, 10.0)):
        delta = fgsm(model, x, y, eps, clip=clip) - x
        assert np.abs(delta).max() == eps and np.abs(delta).min() == eps
        np.testing.assert_array_equal(np.sign(delta), expected)
    # Targeted: the step goes down the target's loss, the opposite sign.
    delta = fgsm(model, x, y, eps, targeted=True, clip=None) - x
    np.testing.assert_array_equal(np.sign(delta), -expected)


def test_fgsm_follows_the_sign_of_a_finite_difference_gradient_of_a_conv_net():
    body = conv_logits_model(seed=3)
    model = with_softmax(body)
    x = images(4)
    y = np.array([0, 1, 2, 1])
    onehot = np.eye(CLASSES)[y]

    def loss_of(n):
        return lambda batch: -(log_softmax(logits_of(body, batch)) * onehot[n]).sum(-1)

    fd = np.concatenate([finite_difference_gradients(loss_of(n), x[n:n + 1]) for n in range(len(x))])
    sure = np.abs(fd) > 1e-6  # where the sign is clear (all but a few dead-ReLU pixels)
    assert sure.mean() > 0.5
    eps = 0.03
    delta = fgsm(model, x, y, eps, clip=None) - x
    np.testing.assert_array_equal(np.sign(delta)[sure], np.sign(fd)[sure])
    np.testing.assert_allclose(np.abs(delta)[sure], eps, atol=1e-7)  # float32 rounding of x + eps


def test_fgsm_is_the_gradient_sign_scaled_by_eps_then_clipped():
    model = with_softmax(conv_logits_model(seed=5, dtype="float32"))
    x, y = images(5), np.array([2, 1, 0, 2])
    signs = gradient_sign(model, x, y)
    assert set(np.unique(signs)) <= {-1.0, 0.0, 1.0}
    for eps in (0.01, 0.2):
        np.testing.assert_array_equal(fgsm(model, x, y, eps), np.clip(x + np.float32(eps) * signs, 0, 1))
    np.testing.assert_array_equal(gradient_sign(model, x, y, targeted=True), -signs)
    np.testing.assert_array_equal(gradient_sign(model, x[1], 1), signs[1])


def test_fgsm_clips_to_the_pixel_range_and_keeps_a_single_image_single():
    model, _, _ = linear_model()
    x = images(5, count=1)[0]
    adversarial_image = fgsm(model, x, 1, 0.5)
    assert adversarial_image.shape == x.shape and adversarial_image.dtype == np.float32
    assert adversarial_image.min() >= 0.0 and adversarial_image.max() <= 1.0
    assert {0.0, 1.0} <= set(np.unique(adversarial_image))  # eps 0.5 pushed pixels onto both ends
    np.testing.assert_array_equal(fgsm(model, x, 1, 0.0), x)  # eps 0 changes nothing


def test_fgsm_still_moves_when_the_network_is_certain():
    # Logits ±108: in float32 the probability of class 0 is exactly 1.0 and that of class 1
    # exactly 0.0, so the cross-entropy's gradient is exactly zero, even from the logits
    # (it is softmax(z) - onehot). The module follows the log-odds, which point the same way.
    import tensorflow as tf

    model, _, _ = linear_model(seed=0, shape=(2, 2, 1), classes=2)
    model.set_weights([np.array([[30.0, -30.0]] * 4), np.zeros(2)])
    x = np.full((1, 2, 2, 1), 0.9, np.float32)
    assert model(x).numpy().tolist() == [[1.0, 0.0]]
    images = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(images)
        logits = tf.reshape(images, (1, 4)) @ model.layers[-1].kernel + model.layers[-1].bias
        cross_entropy = -tf.nn.log_softmax(logits)[0, 0]
    assert not np.any(tape.gradient(cross_entropy, images).numpy())  # the contrast: nothing to follow
    delta = fgsm(model, x, 0, 0.1) - x
    np.testing.assert_allclose(delta, -0.1, atol=1e-7)  # every pixel darker: away from class 0


def test_targeted_attacks_raise_the_target_probability():
    model = with_softmax(conv_logits_model(seed=6, dtype="float32"))
    x = images(7, count=8)
    predicted = model.predict(x, verbose=0).argmax(-1)
    target = (predicted + 1) % CLASSES
    before = model.predict(x, verbose=0)[np.arange(8), target]
    after_fgsm = model.predict(fgsm(model, x, target, 0.01, targeted=True), verbose=0)[np.arange(8), target]
    after_pgd = model.predict(pgd(model, x, target, 0.1, 0.02, 10, targeted=True), verbose=0)[np.arange(8), target]
    # Model/image seeds 6+10k, 7+10k for k = 0-4: smallest FGSM gain 0.00015-0.0039, PGD above
    # FGSM by at least 0.04-0.39, untargeted PGD drop at least 0.31-0.66 (test: k = 0).
    assert np.all(after_fgsm > before)
    assert np.all(after_pgd > after_fgsm)
    # ...and the untargeted attack lowers the probability of the true (here: predicted) class.
    true_before = model.predict(x, verbose=0)[np.arange(8), predicted]
    true_after = model.predict(pgd(model, x, predicted, 0.1, 0.02, 10), verbose=0)[np.arange(8), predicted]
    assert np.all(true_after < true_before)


# ----------------------------------------------------------------------------- PGD


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), norm=st.sampled_from(["inf", "2", np.inf, 2]),
       eps=st.floats(0.0, 3.0), step=st.floats(0.01, 2.0), steps=st.integers(1, 4),
       random_start=st.booleans(), targeted=st.booleans(),
       clip=st.sampled_from([(0.0, 1.0), (-1.0, 1.0), (0.0, 255.0)]))
def test_pgd_never_leaves_the_eps_ball_nor_the_pixel_range(seed, norm, eps, step, steps, random_start,
                                                             targeted, clip):
    model = _HYPOTHESIS_MODEL
    x = images(seed, count=3, low=clip[0], high=clip[1])
    y = np.random.default_rng(seed).integers(0, CLASSES, size=3)
    result = pgd(model, x, y, eps, step, steps, norm=norm, random_start=random_start, targeted=targeted,
                 clip=clip, seed=seed)
    assert result.shape == x.shape and result.dtype == np.float32
    assert result.min() >= clip[0] and result.max() <= clip[1]
    delta = (result.astype(np.float64) - x).reshape(3, -1)
    # float32 storage of x + delta rounds by up to half an ulp of the pixel values.
    slack = 2 * np.finfo(np.float32).eps * max(abs(clip[0]), abs(clip[1]))
    if norm in ("inf", np.inf):
        assert np.abs(delta).max() <= eps + slack
    else:
        assert np.linalg.norm(delta, axis=1).max() <= eps + slack * np.sqrt(delta.shape[1])


_HYPOTHESIS_MODEL = with_softmax(conv_logits_model(seed=8, dtype="float32"))


def test_pgd_without_random_start_is_bim_and_its_first_step_is_fgsm():
    model = _HYPOTHESIS_MODEL
    x, y = images(9), np.array([0, 1, 2, 0])
    np.testing.assert_array_equal(pgd(model, x, y, 0.05, 0.05, 1, random_start=False), fgsm(model, x, y, 0.05))
    # The random start is seeded: same seed, same result; another seed, another start.
    first, again, other = (pgd(model, x, y, 0.05, 0.01, 2, seed=s) for s in (0, 0, 1))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_pgd_and_fooling_image_show_progress_only_when_asked(capsys):
    model, _, _ = linear_model(seed=27)
    x = images(28, count=2)
    pgd(model, x, [0, 1], 0.1, 0.02, 3)
    fooling_image(model, 0, steps=3)
    assert capsys.readouterr().out == ""
    pgd(model, x, [0, 1], 0.1, 0.02, 3, verbose=True)
    fooling_image(model, 0, steps=3, verbose=True)
    out = capsys.readouterr().out
    assert "3/3" in out and "loss:" in out and "confidence:" in out


def test_pgd_l2_steps_have_length_step_until_the_ball_is_reached():
    model, _, _ = linear_model(seed=10)
    x = images(11, count=2, low=0.3, high=0.7)  # far from the pixel range's ends
    one_step = pgd(model, x, [0, 1], eps=10.0, step=0.05, steps=1, norm="2", random_start=False) - x
    np.testing.assert_allclose(np.linalg.norm(one_step.reshape(2, -1), axis=1), 0.05, rtol=1e-4)
    many = pgd(model, x, [0, 1], eps=0.08, step=0.05, steps=4, norm="2", random_start=False) - x
    np.testing.assert_allclose(np.linalg.norm(many.reshape(2, -1), axis=1), 0.08, rtol=1e-4)


# ----------------------------------------------------------------------------- the course's MNIST network


def test_attacks_and_grad_cam_work_on_a_uint8_mnist_network():
    # fast_mnist_cnn takes uint8 pixels and rescales inside; the module feeds it float32, so
    # the gradient reaches the pixels and eps can be a fraction of a grey level.
    from cnn_course.models import fast_mnist_cnn

    model = fast_mnist_cnn(seed=0)
    x = np.random.default_rng(12).integers(0, 256, size=(2, 28, 28, 1)).astype(np.uint8)
    delta = fgsm(model, x, [3, 4], 0.5, clip=(0, 255)) - x
    assert np.abs(delta).max() == 0.5 and (np.abs(delta) == 0.5).mean() > 0.9
    cams = grad_cam(model, x, None, "block3_conv")
    assert cams.shape == (2, 28, 28) and cams.max() == 1.0 and cams.min() >= 0.0
    assert saliency_map(model, x[0]).shape == (28, 28)


# ----------------------------------------------------------------------------- attribution maps


def test_saliency_map_equals_finite_differences_of_the_class_logit():
    body = conv_logits_model(seed=13)
    model = with_softmax(body)
    x = images(14, count=3)
    classes = np.array([2, 0, 1])
    fd = np.concatenate([
        finite_difference_gradients(lambda batch, c=c: logits_of(body, batch)[:, c], x[n:n + 1])
        for n, c in enumerate(classes)])
    expected = np.abs(fd).max(axis=-1)
    np.testing.assert_allclose(saliency_map(model, x, classes), expected, atol=1e-6, rtol=1e-5)
    # Default: the predicted class of each image.
    predicted = model.predict(x, verbose=0).argmax(-1)
    np.testing.assert_array_equal(saliency_map(model, x), saliency_map(model, x, predicted))


def test_the_compiled_gradient_equals_the_first_eager_one():
    # Under TensorFlow the first gradient of a model runs eagerly, later ones in a tf.function.
    model = with_softmax(conv_logits_model(seed=25, dtype="float32"))
    x = images(26)
    first, second, third = (saliency_map(model, x, [0, 1, 2, 0]) for _ in range(3))
    np.testing.assert_allclose(second, first, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(third, second)
    state = adversarial._GRADIENTS[adversarial._rewired(model, SHAPE)[0]]
    assert state[("_class_score_objective", True)]["calls"] == 3


def hand_grad_cam(model, x, c):
    """Grad-CAM of ``conv_logits_model`` at "conv_last", computed with numpy only."""
    k1, b1, k2, b2, w, b = model.get_weights()

    def correlate(images, kernel, bias):  # "valid" cross-correlation, channels last
        kh, kw = kernel.shape[:2]
        oh, ow = images.shape[0] - kh + 1, images.shape[1] - kw + 1
        out = np.empty((oh, ow, kernel.shape[-1]))
        for i in range(oh):
            for j in range(ow):
                out[i, j] = np.tensordot(images[i:i + kh, j:j + kw], kernel, axes=3) + bias
        return out

    maps = np.maximum(correlate(np.tanh(correlate(x.astype(np.float64), k1, b1)), k2, b2), 0)
    # logit c = flatten(maps) · w[:, c] + b[c], so d logit_c / d maps = w[:, c] in the maps' shape.
    alpha = w[:, c].reshape(maps.shape).mean(axis=(0, 1))
    return np.maximum(maps @ alpha, 0)


def test_grad_cam_equals_a_hand_computation():
    body = conv_logits_model(seed=15)
    model = with_softmax(body)
    x = images(16, count=4)
    classes_with_evidence = 0
    for c in range(CLASSES):
        expected = np.stack([hand_grad_cam(body, image, c) for image in x])
        assert expected.shape == (4, 3, 2)
        classes_with_evidence += expected.max() > 0
        raw = grad_cam(model, x, c, "conv_last", normalize=False, upsample=False)
        np.testing.assert_allclose(raw, expected, rtol=1e-5, atol=1e-6)
    assert classes_with_evidence >= 2  # not a comparison of zeros with zeros
    # Upsampled bilinearly to the image size, then divided by its largest value.
    from skimage.transform import resize

    n, c = max(((n, c) for n in range(4) for c in range(CLASSES)),
               key=lambda nc: hand_grad_cam(body, x[nc[0]], nc[1]).max())
    full = grad_cam(model, x[n], c, "conv_last")
    expected = resize(hand_grad_cam(body, x[n], c), SHAPE[:2], order=1, mode="edge", anti_aliasing=False)
    np.testing.assert_allclose(full, expected / expected.max(), rtol=1e-5, atol=1e-6)
    assert full.shape == SHAPE[:2] and full.max() == 1.0


def test_grad_cam_inside_a_residual_block_matches_gradient_tape():
    # The layer's output is added to a skip connection from before it: the rest of the
    # network is no model of the layer's output alone. Compared with TensorFlow directly.
    import tensorflow as tf

    inputs = keras.Input((5, 5, 2))
    stem = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="stem")(inputs)
    inner = keras.layers.Conv2D(3, 3, padding="same", name="inner")(stem)
    x = keras.layers.ReLU()(keras.layers.Add()([stem, inner]))
    outputs = keras.layers.Dense(CLASSES, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    model.set_weights([np.random.default_rng(17).normal(size=w.shape) for w in model.get_weights()])
    x = images(18, count=2, shape=(5, 5, 2))
    dense = model.layers[-1]
    probe = keras.Model(inputs, [inner, dense.input])
    with tf.GradientTape() as tape:
        maps, features = probe(x)
        tape.watch(maps)
        # Recompute the part after "inner" from the watched maps: ReLU(stem + maps) → GAP → logits.
        pooled = tf.reduce_mean(tf.nn.relu(model.get_layer("stem")(x) + maps), axis=(1, 2))
        logits = pooled @ dense.kernel + dense.bias
        score = tf.reduce_sum(logits[:, 1])
    alpha = tf.reduce_mean(tape.gradient(score, maps), axis=(1, 2)).numpy()
    expected = np.maximum(np.einsum("nhwk,nk->nhw", maps.numpy(), alpha), 0)
    np.testing.assert_allclose(grad_cam(model, x, 1, "inner", normalize=False), expected, rtol=1e-5, atol=1e-6)


def test_occlusion_map_equals_a_brute_force_loop():
    model = with_softmax(conv_logits_model(seed=19, dtype="float32"))
    x = images(20, count=2)
    patch, stride, fill = (3, 2), (2, 1), 0.5
    result = occlusion_map(model, x, patch, stride, class_index=[1, 2], fill=fill, batch_size=5)
    rows, columns = (SHAPE[0] - 3) // 2 + 1, (SHAPE[1] - 2) // 1 + 1
    assert result.shape == (2, rows, columns)
    for n, c in enumerate([1, 2]):
        clean = float(model(x[n:n + 1])[0, c])
        for i in range(rows):
            for j in range(columns):
                hidden = x[n].copy()
                hidden[i * 2:i * 2 + 3, j:j + 2] = fill
                drop = clean - float(model(hidden[None])[0, c])
                assert abs(result[n, i, j] - drop) < 1e-6, (n, i, j)
    # One image in, one map out; default class: the predicted one.
    predicted = model.predict(x[:1], verbose=0).argmax()
    np.testing.assert_array_equal(occlusion_map(model, x[0], 2, 2), occlusion_map(model, x[:1], 2, 2,
                                                                                  class_index=[predicted])[0])


# ----------------------------------------------------------------------------- fooling images


def test_fooling_image_from_noise_reaches_high_confidence_on_a_trained_face_detector():
    from skimage import data

    keras.utils.set_random_seed(0)
    faces = data.lfw_subset().astype(np.float32)[..., None]  # 100 faces, then 100 non-faces
    order = np.random.default_rng(0).permutation(len(faces))
    x, y = faces[order], (order >= 100).astype(int)  # class 0: face, 1: not a face
    model = keras.Sequential([keras.Input((25, 25, 1)), keras.layers.Conv2D(4, 5, strides=2, activation="relu"),
                              keras.layers.Flatten(), keras.layers.Dense(2, activation="softmax")])
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[:150], y[:150], epochs=20, batch_size=50, verbose=0)
    # Trained: seeds 0-4 gave 0.92-1.00 on the 50 held-out images.
    assert model.evaluate(x[150:], y[150:], verbose=0)[1] >= 0.85
    for target in (0, 1):
        image, confidences = fooling_image(model, target, steps=30, step_size=0.05, seed=0, stop_at=0.99)
        assert image.shape == (25, 25, 1) and image.min() >= 0.0 and image.max() <= 1.0
        # Seeds 0-4 (training and noise): from noise (0.013-0.987) past 0.99 in 1-5 steps, both
        # classes; 10 steps allowed here.
        assert confidences[-1] >= 0.99 and len(confidences) <= 11
        np.testing.assert_allclose(model.predict(image[None], verbose=0)[0, target], confidences[-1], rtol=1e-4)
    # The class the noise is not taken for started low: the climb is real.
    start = [fooling_image(model, t, steps=1, seed=0)[1][0] for t in (0, 1)]
    assert min(start) < 0.5


def test_fooling_image_l2_penalty_keeps_the_image_greyer():
    model, _, _ = linear_model(seed=21)
    free, _ = fooling_image(model, 2, steps=20, step_size=0.05)
    grey, _ = fooling_image(model, 2, steps=20, step_size=0.05, l2=50.0)
    assert np.mean((grey - 0.5) ** 2) < np.mean((free - 0.5) ** 2)


# ----------------------------------------------------------------------------- bad arguments


def test_bad_arguments_raise_errors_that_say_what_to_change():
    model = with_softmax(conv_logits_model(seed=22, dtype="float32"))
    x = images(23, count=2)
    with pytest.raises(ValueError, match=r"eps must be zero or positive \(it is the size of the change, "
                                         r"in pixel units\), got -0.1"):
        fgsm(model, x, [0, 1], -0.1)
    with pytest.raises(ValueError, match=r"unknown norm '1'.*norm='inf'.*norm='2'"):
        pgd(model, x, [0, 1], 0.1, 0.01, 3, norm="1")
    with pytest.raises(ValueError, match=r"no layer named 'conv_lats'; its convolutional layers are "
                                         r"'conv_first', 'conv_last'.*Did you mean 'conv_last'"):
        grad_cam(model, x, 0, "conv_lats")
    with pytest.raises(ValueError, match=r"'flatten.*' gives shape \(None, 18\), not a feature map"):
        grad_cam(model, x, 0, [layer.name for layer in model.layers if "flatten" in layer.name][0])
    with pytest.raises(ValueError, match=r"outside the pixel range clip=\(0.0, 1.0\).*clip=\(-1.0, 1.0\)"):
        fgsm(model, 2 * x - 1, [0, 1], 0.1)
    with pytest.raises(ValueError, match="class numbers from 0 to 2.*got 0..3"):
        fgsm(model, x, [0, 3], 0.1)
    with pytest.raises(ValueError, match=r"one class number per image \(2\)"):
        fgsm(model, x, [0, 1, 2], 0.1)
    with pytest.raises(TypeError, match="integer class numbers"):
        fgsm(model, x, np.eye(3)[:2] * 0.5, 0.1)
    with pytest.raises(ValueError, match=r"batch of images \(N, \*\(6, 5, 2\)\) or one image"):
        saliency_map(model, x[0, 0])
    with pytest.raises(TypeError, match="model must be a Keras model"):
        fgsm(np.eye(3), x, [0, 1], 0.1)
    with pytest.raises(ValueError, match="step must be positive"):
        pgd(model, x, [0, 1], 0.1, 0.0, 3)
    with pytest.raises(ValueError, match="steps must be positive"):
        pgd(model, x, [0, 1], 0.1, 0.01, 0)
    with pytest.raises(ValueError, match=r"patch \(7, 7\) is larger than the images"):
        occlusion_map(model, x, 7, 1)
    with pytest.raises(ValueError, match="target_class must be a class number from 0 to 2"):
        fooling_image(model, 5, steps=3)
    nested = keras.Sequential([model, keras.layers.Identity()])
    with pytest.raises(ValueError, match="'conv_last' is inside the nested model"):
        grad_cam(nested, x, 0, "conv_last")
    with pytest.raises(ValueError, match="cannot take images of shape"):
        fgsm(model, images(24, count=1, shape=(7, 7, 2)), 0, 0.1)


# ----------------------------------------------------------------------------- the JAX backend


def backend_results() -> dict:
    """Every function on fixed tiny models; run under each backend and compared."""
    linear, _, _ = linear_model(seed=30)
    conv = with_softmax(conv_logits_model(seed=31, dtype="float32"))
    x, y = images(32, count=3), np.array([0, 1, 2])
    results = {
        "fgsm": fgsm(linear, x, y, 0.05),
        "pgd_inf": pgd(linear, x, y, 0.1, 0.03, 3, seed=1),
        "pgd_2": pgd(linear, x, y, 0.5, 0.2, 3, norm="2", targeted=True, seed=2),
        "saliency": saliency_map(conv, x, y),
        "grad_cam": grad_cam(conv, x, y, "conv_last", normalize=False, upsample=False),
        "occlusion": occlusion_map(conv, x, 2, 2, class_index=y),
        "fooling": fooling_image(linear, 1, steps=5, step_size=0.05)[1],
    }
    return {name: np.asarray(value, np.float64).tolist() for name, value in results.items()}


@pytest.mark.slow  # a second interpreter with JAX: 28 s with the machine loaded (load average 8)
@pytest.mark.skipif(importlib.util.find_spec("jax") is None,
                    reason="JAX is not installed (pip install 'jax[cpu]' to check the JAX backend)")
def test_the_jax_backend_gives_the_same_results_as_tensorflow():
    script = ("import json, sys; sys.path.insert(0, sys.argv[1]); import keras; "
              "assert keras.backend.backend() == 'jax'; import test_adversarial as t; "
              "print('RESULTS', json.dumps(t.backend_results()))")
    environment = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    run = subprocess.run([sys.executable, "-c", script, str(Path(__file__).parent)], capture_output=True,
                         text=True, env=environment, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    line = next(line for line in run.stdout.splitlines() if line.startswith("RESULTS "))
    under_jax = json.loads(line[len("RESULTS "):])
    under_tensorflow = backend_results()
    for name, expected in under_tensorflow.items():
        np.testing.assert_allclose(under_jax[name], expected, rtol=1e-4, atol=1e-5, err_msg=name)


def test_other_backends_get_a_clear_message(monkeypatch):
    monkeypatch.setattr(keras.backend, "backend", lambda: "torch")
    with pytest.raises(NotImplementedError, match="TensorFlow and JAX backends.*KERAS_BACKEND=tensorflow"):
        adversarial._gradient(None, adversarial._class_score_objective, True, np.zeros(2))


# ----------------------------------------------------------------------------- the real MobileNetV2


@pytest.mark.slow
def test_fgsm_at_one_grey_level_changes_mobilenet_v2s_answer_on_a_photo():
    from cnn_course import pretrained
    from skimage import data

    model = pretrained.mobilenet_v2(verbose=False)
    size = 96  # the convolutional network runs at any size; 96 px keeps the test short
    photo = pretrained.resize_for_model(data.chelsea(), size)
    x = photo.astype(np.float32) / np.float32(127.5) - np.float32(1.0)  # pretrained.preprocess at 96 px
    scores, _ = adversarial._rewired(model, x.shape)
    label = int(scores.predict(x[None], verbose=0)[0].argmax())
    # One grey level of the 0..255 photo is 1/127.5 in MobileNetV2's [-1, 1] units. Measured:
    # the cat (ImageNet 285, Egyptian cat, probability 1.000 at 96 px) becomes 282 (tiger cat)
    # already at half a grey level; coffee, rocket and astronaut change too (at 96 and 128 px).
    eps = 1 / 127.5
    attacked = fgsm(model, x, label, eps, clip=(-1.0, 1.0))
    assert np.abs(attacked - x).max() <= eps * (1 + 1e-6)
    assert int(scores.predict(attacked[None], verbose=0)[0].argmax()) != label
    cam = grad_cam(model, x, label, "features_18_0")
    assert cam.shape == (size, size) and cam.max() == 1.0
    with pytest.raises(ValueError, match="52 convolutional layers.*'features_18_0'"):
        grad_cam(model, x, label, "features_18")
