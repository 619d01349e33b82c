"""cnn_course.images: validation, Gaussian blur, sharpness and PNG encoding on real photos."""

from __future__ import annotations

import io

import numpy as np
import pytest
from cnn_course import data
from cnn_course.images import (
    as_float_image,
    check_image,
    gaussian_blur,
    sharpness,
    shrink,
    to_grayscale,
    to_png_bytes,
    to_rgb,
)
from PIL import Image


@pytest.fixture(scope="module")
def cat():
    return data.load_photo("chelsea")


@pytest.fixture(scope="module")
def cameraman():
    return data.load_photo("camera")


def test_blur_changes_the_photo_and_keeps_shape_and_range(cat):
    blurred = gaussian_blur(cat, 2.0)
    assert blurred.shape == cat.shape
    assert blurred.dtype == np.float64
    assert 0.0 <= blurred.min() and blurred.max() <= 1.0
    assert np.abs(blurred - cat / 255.0).mean() > 0.01


def test_sigma_zero_is_the_identity(cat):
    np.testing.assert_array_equal(gaussian_blur(cat, 0), cat / 255.0)
    floats = cat / 255.0
    result = gaussian_blur(floats, 0.0)
    np.testing.assert_array_equal(result, floats)
    assert result is not floats, "sigma 0 must return a copy, not the caller's array"


def test_blur_keeps_mean_brightness_and_does_not_mix_channels(cat):
    blurred = gaussian_blur(cat, 3.0)
    # Mirrored borders: the Gaussian redistributes brightness but hardly creates or loses any.
    np.testing.assert_allclose(blurred.mean(axis=(0, 1)), (cat / 255.0).mean(axis=(0, 1)), atol=2e-3)
    # A picture that is pure red stays pure red: channels are blurred separately.
    red_only = cat.copy()
    red_only[..., 1:] = 0
    assert np.all(gaussian_blur(red_only, 3.0)[..., 1:] == 0)


def test_blur_matches_a_hand_computed_kernel_in_the_middle():
    # A single bright pixel spreads into the sampled Gaussian exp(-r^2 / (2 sigma^2)), normalised.
    sigma = 1.5
    spike = np.zeros((41, 41))
    spike[20, 20] = 1.0
    blurred = gaussian_blur(spike, sigma)
    offsets = np.arange(-6, 7)
    one_d = np.exp(-(offsets**2) / (2 * sigma**2))
    one_d /= one_d.sum()
    expected = np.outer(one_d, one_d)
    np.testing.assert_allclose(blurred[14:27, 14:27], expected, atol=1e-6)


@pytest.mark.parametrize("photo", ["chelsea", "camera", "coins"])
def test_more_blur_means_less_sharpness_on_real_photos(photo):
    image = data.load_photo(photo)
    values = [sharpness(gaussian_blur(image, s)) for s in np.arange(0, 10.5, 0.5)]
    assert all(a > b for a, b in zip(values[:-1], values[1:], strict=True)), values
    assert values[-1] < 0.05 * values[0]


def test_sharpness_is_zero_for_a_flat_image_and_larger_for_edges():
    flat = np.full((16, 16), 0.3)
    assert sharpness(flat) == 0.0
    edge = np.zeros((16, 16))
    edge[:, 8:] = 1.0
    assert sharpness(edge) > 0.05


def test_sharpness_does_not_depend_on_uint8_vs_float(cameraman):
    assert sharpness(cameraman) == pytest.approx(sharpness(cameraman / 255.0))


def test_png_round_trip_is_exact_for_uint8(cat, cameraman):
    for image in (cat, cameraman):
        decoded = np.asarray(Image.open(io.BytesIO(to_png_bytes(image))))
        np.testing.assert_array_equal(decoded, image)


def test_png_of_a_float_image_rounds_to_uint8(cat):
    decoded = np.asarray(Image.open(io.BytesIO(to_png_bytes(cat / 255.0))))
    np.testing.assert_array_equal(decoded, cat)


def test_as_float_image_scales_by_dtype():
    np.testing.assert_array_equal(as_float_image(np.array([[0, 51, 255]], np.uint8)), [[0, 0.2, 1]])
    np.testing.assert_array_equal(as_float_image(np.array([[65535]], np.uint16)), [[1.0]])
    with pytest.raises(TypeError, match="uint8 or uint16"):
        as_float_image(np.array([[1, 2]], np.int64))


def test_floats_outside_the_unit_range_are_refused_not_passed_through(cat):
    # 0..255 stored as floats: the docstrings promise [0, 1] results, so these are refused
    # (they used to come back unchanged, and gaussian_blur returned values up to 255).
    as_floats = cat.astype(float)
    message = r"float images must have values in \[0, 1\], got 0\.\.2[0-9]+; for 0\.\.255 values use"
    for function in (as_float_image, lambda image: gaussian_blur(image, 2.0), sharpness):
        with pytest.raises(ValueError, match=message):
            function(as_floats)
    with pytest.raises(ValueError, match=r"got -0\.5\.\.0\.5"):
        gaussian_blur(np.array([[-0.5, 0.5]]), 1.0)
    # Round-off from filtering (a hair outside [0, 1]) is clipped, not refused.
    nearly = np.array([[-1e-9, 0.5, 1 + 1e-9]])
    np.testing.assert_array_equal(as_float_image(nearly), [[0.0, 0.5, 1.0]])
    blurred = gaussian_blur(cat, 3.0)
    assert 0 <= blurred.min() and blurred.max() <= 1


def test_colour_conversions_are_scikit_images():
    from skimage.color import rgb2gray

    np.testing.assert_allclose(to_grayscale(data.load_photo("coffee")), rgb2gray(data.load_photo("coffee")), atol=1e-12)
    # The weights, read back from pure red, green and blue pixels.
    primaries = np.eye(3, dtype=np.uint8)[None] * 255
    np.testing.assert_allclose(to_grayscale(primaries)[0], [0.2125, 0.7154, 0.0721])
    rgba = np.dstack([data.load_photo("coffee"), np.zeros(data.load_photo("coffee").shape[:2], np.uint8)])
    np.testing.assert_array_equal(to_grayscale(rgba), to_grayscale(data.load_photo("coffee")))
    camera = data.load_photo("camera")
    np.testing.assert_array_equal(to_grayscale(camera[..., None]), camera / 255.0)
    rgb = to_rgb(camera)
    assert rgb.shape == (*camera.shape, 3)
    np.testing.assert_array_equal(rgb[..., 0], rgb[..., 2])
    np.testing.assert_array_equal(to_rgb(rgba), data.load_photo("coffee") / 255.0)


def test_shrink_averages_whole_blocks_and_drops_the_leftover_edge():
    from skimage.transform import downscale_local_mean

    cat = data.load_photo("chelsea")  # 300×451 -> factor 3 for 160 pixels: 100×150, last column dropped
    small = shrink(cat, 160)
    assert small.shape == (100, 150, 3)
    by_hand = (cat[:, :450] / 255.0).reshape(100, 3, 150, 3, 3).mean(axis=(1, 3))
    np.testing.assert_allclose(small, by_hand, atol=1e-12)
    np.testing.assert_allclose(small, downscale_local_mean(cat[:, :450] / 255.0, (3, 3, 1)))
    camera = data.load_photo("camera")
    np.testing.assert_array_equal(shrink(camera, 512), camera / 255.0)  # fits already
    assert shrink(camera, 511).shape == (256, 256)
    with pytest.raises(ValueError, match="max_side must be a positive int, got 0"):
        shrink(camera, 0)


@pytest.mark.parametrize(
    "bad_sigma, error, message",
    [
        (-1, ValueError, "sigma must be a finite number >= 0"),
        (float("nan"), ValueError, "sigma must be a finite number >= 0"),
        (float("inf"), ValueError, "sigma must be a finite number >= 0"),
        ("2", TypeError, "sigma must be a number of pixels, got str"),
        (True, TypeError, "sigma must be a number of pixels, got bool"),
        (None, TypeError, "sigma must be a number of pixels, got NoneType"),
    ],
)
def test_bad_sigma_is_rejected_with_a_clear_message(cat, bad_sigma, error, message):
    with pytest.raises(error, match=message):
        gaussian_blur(cat, bad_sigma)


@pytest.mark.parametrize(
    "bad_image, error, message",
    [
        (np.zeros(10), ValueError, r"shape \(H, W\) for grayscale .* got shape \(10,\)"),
        (np.zeros((4, 4, 2)), ValueError, r"got shape \(4, 4, 2\)"),
        (np.zeros((2, 4, 4, 3)), ValueError, r"got shape \(2, 4, 4, 3\)"),
        (np.zeros((0, 4)), ValueError, "at least 1x1 pixels"),
        (np.full((3, 3), np.nan), ValueError, "NaN or infinite"),
        (np.zeros((3, 3), bool), TypeError, "integer or float pixel values, got dtype bool"),
        ([["a", "b"]], TypeError, "integer or float pixel values"),
    ],
)
def test_bad_images_are_rejected_with_a_clear_message(bad_image, error, message):
    with pytest.raises(error, match=message):
        gaussian_blur(bad_image, 1.0)
    with pytest.raises(error, match=message):
        sharpness(bad_image)
    with pytest.raises(error, match=message):
        check_image(bad_image)


def test_png_rejects_float_values_outside_the_unit_range(cat):
    with pytest.raises(ValueError, match=r"values in \[0, 1\] to be shown, got 0..[0-9]+"):
        to_png_bytes(cat.astype(float))
