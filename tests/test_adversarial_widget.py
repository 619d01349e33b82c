"""The ε explorer: plain functions, the view and the widget object (no browser)."""

from __future__ import annotations

import io
import time

import keras
import numpy as np
import pytest
from cnn_course import adversarial
from cnn_course.widgets.adversarial import (
    CHANGED_COLOUR,
    EpsilonExplorer,
    epsilon_explorer,
    epsilon_view,
    grey_level,
    magnified_perturbation,
    perturb,
)
from PIL import Image

NAMES = ["ant", "bee", "cat", "dog", "eel", "fox", "gnu"]


def decode_png(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


@pytest.fixture(scope="module")
def tiny():
    """A seeded 7-class convolutional classifier of 12×12 RGB images in [-1, 1], and one image."""
    keras.utils.set_random_seed(3)
    model = keras.Sequential([
        keras.Input((12, 12, 3)),
        keras.layers.Conv2D(4, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(len(NAMES), activation="softmax"),
    ])
    image = np.random.default_rng(0).uniform(-1, 1, (12, 12, 3)).astype(np.float32)
    return model, image


def predict(model, image) -> np.ndarray:
    return keras.ops.convert_to_numpy(model(image[None], training=False))[0]


def test_perturb_adds_eps_times_the_direction_and_clips():
    rng = np.random.default_rng(1)
    image = rng.uniform(-1, 1, (5, 6, 3)).astype(np.float32)
    direction = rng.choice([-1.0, 0.0, 1.0], image.shape).astype(np.float32)
    result = perturb(image, direction, 0.3)
    np.testing.assert_allclose(result, np.clip(image + 0.3 * direction, -1, 1), atol=1e-7)
    assert result.dtype == np.float32 and result.min() >= -1 and result.max() <= 1
    np.testing.assert_array_equal(perturb(image, direction, 0.0), image)
    unclipped = np.abs(image + 0.3 * direction) <= 1
    np.testing.assert_allclose(np.abs(result - image)[unclipped & (direction != 0)], 0.3, atol=1e-6)


def test_grey_level_is_one_255th_of_the_range():
    assert grey_level((0, 255)) == 1.0
    assert grey_level((-1.0, 1.0)) == pytest.approx(2 / 255)
    assert grey_level((0.0, 1.0)) == pytest.approx(1 / 255)


def test_magnified_perturbation_is_the_perturbation_scaled():
    rng = np.random.default_rng(2)
    eps = 0.02
    delta = rng.uniform(-eps, eps, (4, 4, 3)).astype(np.float32)
    shown = magnified_perturbation(delta, eps)
    np.testing.assert_allclose(shown, 0.5 + delta / (2 * eps), atol=1e-6)
    np.testing.assert_allclose((shown - 0.5) * 2 * eps, delta, atol=1e-7)  # undone by the same scale
    assert shown.min() >= 0 and shown.max() <= 1
    np.testing.assert_array_equal(magnified_perturbation(np.zeros(3), 0.0), [0.5, 0.5, 0.5])


def test_the_view_shows_the_models_top5_on_the_perturbed_image(tiny):
    model, image = tiny
    label = int(predict(model, image).argmax())
    direction = adversarial.gradient_sign(model, image, label, clip=(-1.0, 1.0))
    for levels in (0.5, 4.0, 30.0):
        eps = levels * grey_level((-1.0, 1.0))
        frame = epsilon_view(model, image, direction, eps, class_names=NAMES)
        attacked = adversarial.fgsm(model, image, label, eps, clip=(-1.0, 1.0))
        np.testing.assert_allclose(frame.adversarial, attacked, atol=1e-6)  # the same image as fgsm
        probabilities = predict(model, attacked)
        expected = np.argsort(-probabilities, kind="stable")[:5]
        assert [index for index, _, _ in frame.top] == expected.tolist()
        assert [name for _, name, _ in frame.top] == [NAMES[i] for i in expected]
        np.testing.assert_allclose([p for _, _, p in frame.top], probabilities[expected], rtol=1e-5)
        np.testing.assert_allclose(frame.perturbation, frame.adversarial - image, atol=1e-7)
        assert np.abs(frame.perturbation).max() <= eps * (1 + 1e-5)
        assert frame.caption.startswith(f"ε = {levels:.2f} grey levels")
        assert f"'{frame.top[0][1]}' {100 * frame.top[0][2]:.1f} %" in frame.caption
        picture = decode_png(frame.png)
        assert picture.shape[0] >= 12 and picture.shape[1] > 3 * 12


def test_eps_zero_gives_the_clean_prediction(tiny):
    model, image = tiny
    clean = predict(model, image)
    frame = epsilon_view(model, image, np.ones_like(image), 0.0, class_names=NAMES)
    np.testing.assert_array_equal(frame.adversarial, image)
    assert frame.top == frame.clean_top
    assert [index for index, _, _ in frame.top] == np.argsort(-clean, kind="stable")[:5].tolist()
    assert "changed" not in frame.caption


def test_a_changed_top_class_is_said_and_drawn_in_red():
    model = keras.Sequential([keras.Input((1, 2, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(2, activation="softmax")])
    model.set_weights([np.array([[1.0, -1.0], [-1.0, 1.0]]), np.zeros(2)])
    image = np.array([[[0.625], [0.375]]])
    same = epsilon_view(model, image, [[[-1.0], [1.0]]], 0.1, clip=(0.0, 1.0), class_names=["a", "b"])
    flipped = epsilon_view(model, image, [[[-1.0], [1.0]]], 0.25, clip=(0.0, 1.0), class_names=["a", "b"])
    assert same.top[0][1] == "a" and "changed" not in same.caption
    assert flipped.top[0][1] == "b" and flipped.caption.endswith("the top class changed")
    red = np.array([int(CHANGED_COLOUR[i:i + 2], 16) for i in (1, 3, 5)])

    def reddish(png):
        return int(np.sum(np.all(np.abs(decode_png(png).astype(int) - red) <= 40, axis=-1)))

    assert reddish(flipped.png) > reddish(same.png)


@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda m, x: epsilon_view(m, x, np.ones_like(x), -0.1), ValueError, "eps must be a finite number >= 0"),
    (lambda m, x: epsilon_view(m, x, np.ones_like(x), "0.1"), TypeError, "eps must be a number"),
    (lambda m, x: epsilon_view(m, x, np.ones((12, 12, 1)), 0.1), ValueError, "direction must have the image's shape"),
    (lambda m, x: epsilon_view(m, x * 3, np.ones_like(x), 0.1), ValueError, r"outside the pixel range clip=\(-1.0"),
    (lambda m, x: epsilon_view(m, x[..., 0], np.ones_like(x), 0.1), ValueError, "must be one image"),
    (lambda m, x: epsilon_view(m, x, np.ones_like(x), 0.1, clip=(1, -1)), ValueError, "low < high"),
    (lambda m, x: epsilon_view(m, x, np.ones_like(x), 0.1, class_names=["a"]), ValueError, "list of 7 names"),
    (lambda m, x: epsilon_view("model", x, np.ones_like(x), 0.1), TypeError, "must be a Keras model"),
    (lambda m, x: epsilon_explorer(m, x, label=7), ValueError, r"class number 0..6"),
    (lambda m, x: epsilon_explorer(None, x), TypeError, "must be a Keras model"),
    (lambda m, x: epsilon_explorer(m, x, targeted=True), ValueError, "targeted explorer needs label"),
    (lambda m, x: epsilon_explorer(m, x, levels=20, max_levels=8), ValueError, "between 0 and max_levels"),
    (lambda m, x: epsilon_explorer(m, x, max_levels=0), ValueError, "max_levels must be > 0"),
])
def test_bad_arguments_give_clear_errors(tiny, call, error, message):
    model, image = tiny
    with pytest.raises(error, match=message):
        call(model, image)


def test_the_widget_follows_its_slider(tiny):
    model, image = tiny
    explorer = epsilon_explorer(model, image, class_names=NAMES, levels=0.0)
    assert isinstance(explorer, EpsilonExplorer)
    assert "cnn-course-epsilon" in explorer._dom_classes
    label = int(predict(model, image).argmax())
    np.testing.assert_array_equal(explorer.direction,
                                  adversarial.gradient_sign(model, image, label, clip=(-1.0, 1.0)))
    assert explorer.frame.top == explorer.frame.clean_top  # ε = 0
    before_png, before_caption = explorer.picture.value, explorer.caption.value
    explorer.eps_slider.value = 8.0
    assert explorer.eps == pytest.approx(8 * 2 / 255)
    assert explorer.picture.value != before_png and explorer.caption.value != before_caption
    assert explorer.caption.value == explorer.frame.caption
    assert explorer.caption.value.startswith("ε = 8.00 grey levels")
    expected = epsilon_view(model, image, explorer.direction, explorer.eps, class_names=NAMES)
    assert explorer.frame.top == expected.top
    assert explorer.seconds > 0
    targeted = epsilon_explorer(model, image, 2, class_names=NAMES, targeted=True, levels=0.0)
    np.testing.assert_array_equal(targeted.direction,
                                  adversarial.gradient_sign(model, image, 2, targeted=True, clip=(-1.0, 1.0)))


@pytest.mark.slow
def test_mobilenet_v2_at_160_px_updates_fast_and_shows_its_own_top5():
    """The real network at the notebook's size: latency printed (never asserted), top-5 checked."""
    from cnn_course import pretrained
    from cnn_course.data import load_photo
    from cnn_course.transfer import feature_extractor

    base = pretrained.mobilenet_v2(verbose=False)
    size = 160
    model = feature_extractor(base, base.layers[-1].name, pooling=None, input_shape=(size, size, 3))
    x = pretrained.preprocess(pretrained.resize_for_model(load_photo("chelsea"), size), size=size)[0]
    names = pretrained.imagenet_class_names(verbose=False)
    started = time.perf_counter()
    explorer = epsilon_explorer(model, x, class_names=names, levels=0.0)
    setup = time.perf_counter() - started
    clean = model.predict(x[None], verbose=0)
    assert [index for index, _, _ in explorer.frame.top] == [i for i, _, _ in pretrained.decode(clean)[0]]
    seconds = []
    for levels in (0.25, 0.5, 1.0, 2.0, 4.0, 8.0):
        explorer.eps_slider.value = levels
        seconds.append(explorer.seconds)
        expected = pretrained.decode(model.predict(explorer.frame.adversarial[None], verbose=0),
                                     class_names=names)[0]
        assert [index for index, _, _ in explorer.frame.top] == [index for index, _, _ in expected]
    print(f"ε explorer, MobileNetV2 at {size} px: set-up {setup:.2f} s, update "
          f"{min(seconds):.3f}-{max(seconds):.3f} s (median {np.median(seconds):.3f} s)")
