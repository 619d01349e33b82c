"""cnn_course.widgets: the pure view functions and the widget objects, without a browser.

tests/test_browser.py drives the same widget in JupyterLab in a real browser.
"""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from cnn_course import data
from cnn_course.images import gaussian_blur, sharpness
from cnn_course.widgets import BlurExplorer, Frame, blur_explorer, blur_view
from cnn_course.widgets.blur import MAX_BLUR_SIGMA
from PIL import Image

CAPTION = re.compile(
    r"σ = (?P<sigma>\d+\.\d) px · sharpness (?P<now>\d+\.\d{4}) "
    r"\((?P<percent>\d+)% of the original (?P<original>\d+\.\d{4})\)"
)


def decode_png(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))


def parse_caption(caption: str) -> dict[str, float]:
    match = CAPTION.fullmatch(caption)
    assert match, f"caption has an unexpected form: {caption!r}"
    return {key: float(value) for key, value in match.groupdict().items()}


@pytest.fixture(scope="module")
def cat():
    return data.load_photo("chelsea")


# ----------------------------------------------------------------------------- blur_view


def test_blur_view_shows_the_blurred_photo_and_its_numbers(cat):
    frame = blur_view(cat, 2.5)
    assert isinstance(frame, Frame)
    shown = decode_png(frame.png)
    expected = np.round(gaussian_blur(cat, 2.5) * 255).astype(np.uint8)
    np.testing.assert_array_equal(shown, expected)

    numbers = parse_caption(frame.caption)
    assert numbers["sigma"] == 2.5
    assert numbers["now"] == pytest.approx(sharpness(gaussian_blur(cat, 2.5)), abs=6e-5)
    assert numbers["original"] == pytest.approx(sharpness(cat), abs=6e-5)
    # The caption's numbers are rounded, so their ratio matches the percentage to within 1.
    assert abs(numbers["percent"] - 100 * numbers["now"] / numbers["original"]) <= 1


def test_blur_view_at_sigma_zero_shows_the_photo_unchanged(cat):
    frame = blur_view(cat, 0)
    np.testing.assert_array_equal(decode_png(frame.png), cat)
    assert parse_caption(frame.caption)["percent"] == 100


def test_blur_view_uses_a_given_original_sharpness(cat):
    frame = blur_view(cat, 1.0, original_sharpness=1.0)
    assert parse_caption(frame.caption)["original"] == 1.0


def test_blur_view_handles_a_flat_image_without_dividing_by_zero():
    frame = blur_view(np.full((8, 8), 0.5), 3.0)
    assert parse_caption(frame.caption) == {"sigma": 3.0, "now": 0.0, "percent": 100, "original": 0.0}


def test_blur_view_rejects_bad_input(cat):
    with pytest.raises(ValueError, match="sigma must be a finite number >= 0"):
        blur_view(cat, -0.5)
    with pytest.raises(ValueError, match=r"got shape \(5,\)"):
        blur_view(np.zeros(5), 1.0)


# ----------------------------------------------------------------------------- the widget


def test_widget_starts_on_the_requested_photo_unblurred(cat):
    explorer = blur_explorer()
    assert isinstance(explorer, BlurExplorer)
    assert explorer.photo_dropdown.value == "chelsea"
    assert tuple(explorer.photo_dropdown.options) == data.PHOTOS
    assert (explorer.sigma_slider.min, explorer.sigma_slider.max) == (0.0, MAX_BLUR_SIGMA)
    assert explorer.sigma_slider.step == 0.5
    np.testing.assert_array_equal(decode_png(explorer.picture.value), cat)
    assert explorer.caption.value.startswith("σ = 0.0 px")
    # The controls, the picture and the caption are all on screen.
    assert explorer.picture in explorer.children and explorer.caption in explorer.children


def test_moving_the_slider_updates_picture_and_caption(cat):
    explorer = blur_explorer(photo="chelsea")
    before_png, before_caption = explorer.picture.value, explorer.caption.value

    explorer.sigma_slider.value = 4.0

    assert explorer.picture.value != before_png
    assert explorer.caption.value != before_caption
    np.testing.assert_array_equal(decode_png(explorer.picture.value), decode_png(blur_view(cat, 4.0).png))
    numbers = parse_caption(explorer.caption.value)
    assert numbers["sigma"] == 4.0 and numbers["percent"] < 20


def test_more_blur_in_the_widget_shows_lower_sharpness():
    explorer = blur_explorer(photo="coins")
    readings = []
    for sigma in (0.0, 1.0, 2.5, 5.0, 10.0):
        explorer.sigma_slider.value = sigma
        readings.append(parse_caption(explorer.caption.value)["now"])
    assert readings == sorted(readings, reverse=True) and len(set(readings)) == len(readings)


def test_choosing_another_photo_shows_it_with_the_same_blur():
    explorer = blur_explorer(photo="chelsea", sigma=2.0)
    explorer.photo_dropdown.value = "camera"
    shown = decode_png(explorer.picture.value)
    camera = data.load_photo("camera")
    assert shown.shape == camera.shape
    np.testing.assert_array_equal(shown, decode_png(blur_view(camera, 2.0).png))


def test_widget_accepts_your_own_image():
    own = (np.indices((40, 60)).sum(axis=0) % 2 * 255).astype(np.uint8)
    explorer = blur_explorer(own, sigma=1.0)
    assert explorer.photo_dropdown.value == "(your image)"
    assert explorer.photo_dropdown.options[1:] == data.PHOTOS
    np.testing.assert_array_equal(decode_png(explorer.picture.value), decode_png(blur_view(own, 1.0).png))


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"photo": "kitten"}, ValueError, "unknown photo 'kitten'; choose one of: astronaut"),
        ({"sigma": -1}, ValueError, "sigma must be a finite number >= 0"),
        ({"sigma": 11}, ValueError, "sigma must be at most 10.0 for this widget"),
        ({"image": np.zeros((4, 4, 4))}, ValueError, r"grayscale \(H, W\) or RGB \(H, W, 3\)"),
        ({"image": np.zeros(7)}, ValueError, r"got shape \(7,\)"),
    ],
)
def test_widget_rejects_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        blur_explorer(**kwargs)
