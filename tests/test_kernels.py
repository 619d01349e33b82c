"""cnn_course.kernels: what each classic kernel does to real and hand-made images."""

from __future__ import annotations

import doctest

import cnn_course.kernels as kernels_module
import numpy as np
import pytest
from cnn_course import kernels
from cnn_course.conv import convolve2d, correlate2d
from cnn_course.data import load_photo

FIXED = [kernels.sobel_x, kernels.sobel_y, kernels.sharpen, kernels.laplacian, kernels.identity,
         kernels.box_blur, kernels.gaussian]


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A real grayscale photo as floats in [0, 1]."""
    rgb = load_photo("coffee").astype(np.float64) / 255
    return rgb.mean(axis=2)[:120, :160]


@pytest.mark.parametrize("make", FIXED)
def test_every_call_returns_a_fresh_array(make):
    first = make()
    first[...] = 99  # a student overwriting their copy must not change the next one
    assert not (make() == 99).any()


def test_presets_are_read_only_3x3_and_equal_the_functions():
    assert set(kernels.PRESETS) >= {"identity", "box blur", "Gaussian blur", "sharpen", "Laplacian"}
    for name, kernel in kernels.PRESETS.items():
        assert kernel.shape == (3, 3), name
        with pytest.raises(ValueError, match="read-only"):
            kernel[0, 0] = 1
    np.testing.assert_array_equal(kernels.PRESETS["Sobel x (vertical edges)"], kernels.sobel_x())
    np.testing.assert_array_equal(kernels.PRESETS["Sobel y (horizontal edges)"], kernels.sobel_y())
    np.testing.assert_array_equal(kernels.PRESETS["box blur"], kernels.box_blur(3))


def test_sobel_x_responds_to_vertical_edges_with_a_sign_for_the_direction():
    dark_to_bright = np.array([[0, 0, 0, 1, 1, 1]] * 5)  # vertical edge, brighter on the right
    response = correlate2d(dark_to_bright, kernels.sobel_x())
    assert (response[:, 1:3] == 4).all() and (response[:, [0, 3]] == 0).all()
    assert (correlate2d(dark_to_bright[:, ::-1], kernels.sobel_x())[:, 1:3] == -4).all()
    assert not correlate2d(dark_to_bright, kernels.sobel_y()).any()  # no horizontal edge
    # sobel_y is the same detector turned by 90°: brighter further down is positive
    assert (correlate2d(dark_to_bright.T, kernels.sobel_y()) == response.T).all()
    # under true convolution the antisymmetric Sobel kernel changes sign
    assert (convolve2d(dark_to_bright, kernels.sobel_x()) == -response).all()


def test_sobel_on_a_real_photo_finds_the_edges_scipy_finds(photo):
    from scipy import ndimage

    # scipy.ndimage.sobel(axis=1) is the derivative along columns, the same kernel, as a correlation
    ours = correlate2d(photo, kernels.sobel_x(), padding=1)
    reference = ndimage.sobel(photo, axis=1, mode="constant")
    np.testing.assert_allclose(ours, reference, atol=1e-12)


def test_blur_kernels_average_and_keep_brightness(photo):
    for kernel in (kernels.box_blur(5), kernels.gaussian(7, sigma=1.5), kernels.box_blur(1)):
        assert np.isclose(kernel.sum(), 1.0)
        blurred = correlate2d(photo, kernel)
        assert abs(blurred.mean() - photo.mean()) < 0.01  # weights summing to 1 keep the brightness
    box = correlate2d(photo, kernels.box_blur(3))
    np.testing.assert_allclose(box[10, 20], photo[10:13, 20:23].mean())
    # blurring removes fine detail: neighbouring pixels differ less than before
    assert np.abs(np.diff(box, axis=1)).mean() < 0.7 * np.abs(np.diff(photo, axis=1)).mean()


def test_gaussian_follows_the_bell_curve():
    kernel = kernels.gaussian(5, sigma=1.0)
    assert kernel.shape == (5, 5) and np.isclose(kernel.sum(), 1.0)
    np.testing.assert_allclose(kernel, kernel.T)
    np.testing.assert_allclose(kernel, kernel[::-1, ::-1])
    # ratio between the centre and a pixel at distance (1, 2) is exp((1 + 4) / (2 sigma^2))
    assert np.isclose(kernel[2, 2] / kernel[3, 4], np.exp(5 / 2))
    wide = kernels.gaussian(5, sigma=3.0)
    assert wide[0, 0] > kernel[0, 0]  # a larger sigma spreads the weight outwards
    even = kernels.gaussian(4, sigma=1.0)
    assert np.isclose(even.sum(), 1.0) and np.allclose(even[1:3, 1:3], even.max())


def test_identity_sharpen_and_laplacian(photo):
    np.testing.assert_array_equal(correlate2d(photo, kernels.identity(5), padding="same"), photo)
    assert kernels.identity(1).tolist() == [[1]]
    assert kernels.laplacian().sum() == 0 and kernels.sharpen().sum() == 1
    ramp = np.add.outer(np.arange(6), 2 * np.arange(7))  # a linear ramp has no curvature
    assert not correlate2d(ramp, kernels.laplacian()).any()
    np.testing.assert_array_equal(correlate2d(ramp, kernels.sharpen()), ramp[1:-1, 1:-1])
    # sharpening increases the local contrast of a real photo
    inner = photo[1:-1, 1:-1]
    sharpened = correlate2d(photo, kernels.sharpen())
    assert np.abs(np.diff(sharpened, axis=1)).mean() > 1.5 * np.abs(np.diff(inner, axis=1)).mean()


@pytest.mark.parametrize("call, error, message", [
    (lambda: kernels.box_blur(0), ValueError, "size must be positive, got 0"),
    (lambda: kernels.box_blur(2.5), TypeError, "size must be an int, got 2.5"),
    (lambda: kernels.identity(4), ValueError, "size must be odd so that the kernel has a centre pixel, got 4"),
    (lambda: kernels.gaussian(5, sigma=0), ValueError, "sigma must be a positive number of pixels, got 0"),
    (lambda: kernels.gaussian(5, sigma=float("nan")), ValueError, "sigma must be a positive number"),
    (lambda: kernels.gaussian(5, sigma="1"), TypeError, "sigma must be a number, got '1'"),
    (lambda: kernels.gaussian(-3), ValueError, "size must be positive, got -3"),
])
def test_error_messages_name_the_problem(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_docstring_examples_run():
    result = doctest.testmod(kernels_module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 8 and result.failed == 0
