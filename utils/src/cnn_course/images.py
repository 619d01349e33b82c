"""Small helpers for single images: validation, colour and size, Gaussian blur, sharpness, PNG bytes.

The course's convention (the same as scikit-image's) is that an image is either

* ``uint8`` with values 0..255, or
* floating point with values in [0, 1],

shaped ``(H, W)`` (grayscale) or ``(H, W, C)`` with ``C`` = 1, 3 (RGB) or 4 (RGBA).
Functions that compute something return float64 images in [0, 1], so no precision
is lost to rounding between steps; :func:`to_png_bytes` turns either kind into a
picture for display. A float image with values outside [0, 1] (for instance 0..255
floats) is refused rather than guessed at.

Preparing a photo for a widget or a model is done here, once: :func:`to_grayscale`,
:func:`to_rgb` and :func:`shrink` (skimage's ``rgb2gray`` and ``downscale_local_mean``).

Examples
--------
>>> import numpy as np
>>> from cnn_course.images import gaussian_blur, sharpness
>>> checkerboard = (np.indices((32, 32)).sum(axis=0) % 2).astype(float)
>>> blurred = gaussian_blur(checkerboard, sigma=2.0)
>>> bool(sharpness(blurred) < sharpness(checkerboard))
True
"""

from __future__ import annotations

import io
import math
import numbers

import numpy as np

from ._geometry import is_int

__all__ = [
    "as_float_image",
    "check_image",
    "check_sigma",
    "gaussian_blur",
    "sharpness",
    "shrink",
    "to_grayscale",
    "to_png_bytes",
    "to_rgb",
]

_CHANNEL_COUNTS = (1, 3, 4)
# Filtering can leave float values a hair outside [0, 1]; more than this is a wrong scale.
_ROUND_OFF = 1e-6


def check_image(image, name: str = "image") -> np.ndarray:
    """Return ``image`` as a numpy array after checking that it is a valid image.

    Parameters
    ----------
    image : array_like
        ``(H, W)`` or ``(H, W, C)`` with ``C`` in (1, 3, 4); integer or float values.
    name : str
        What to call the argument in error messages.

    Returns
    -------
    numpy.ndarray
        The same data (not copied when ``image`` already is an array).

    Raises
    ------
    TypeError
        If the values are not numbers (e.g. strings, booleans or complex numbers).
    ValueError
        If the shape is not that of an image or a float image holds NaN/inf.

    Examples
    --------
    >>> check_image(np.zeros((4, 5, 3), np.uint8)).shape
    (4, 5, 3)
    """
    array = np.asarray(image)
    if array.dtype == bool or not (
        np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
    ):
        raise TypeError(
            f"{name} must hold integer or float pixel values, got dtype {array.dtype}"
        )
    channels_ok = array.ndim == 3 and array.shape[2] in _CHANNEL_COUNTS
    if not (array.ndim == 2 or channels_ok):
        raise ValueError(
            f"{name} must have shape (H, W) for grayscale or (H, W, C) with C in "
            f"{_CHANNEL_COUNTS} channels, got shape {array.shape}"
        )
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise ValueError(f"{name} must be at least 1x1 pixels, got shape {array.shape}")
    if np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def as_float_image(image) -> np.ndarray:
    """Convert an image to float64 with values in [0, 1].

    ``uint8`` values are divided by 255, ``uint16`` by 65535; float images must already
    be in [0, 1] and are returned as float64 (round-off of up to 1e-6 outside is clipped).

    Raises
    ------
    ValueError
        If a float image has values outside [0, 1], e.g. 0..255 stored as floats: say
        what the values mean by converting first (``image.astype(np.uint8)`` or
        ``image / 255``).
    TypeError
        For integer types other than uint8 and uint16 (their range is ambiguous).

    Examples
    --------
    >>> as_float_image(np.array([[0, 255]], np.uint8))
    array([[0., 1.]])
    >>> as_float_image(np.array([[0.0, 200.0]]))
    Traceback (most recent call last):
    ...
    ValueError: float images must have values in [0, 1], got 0..200; for 0..255 values use image.astype(np.uint8) or image / 255
    """
    array = check_image(image)
    if np.issubdtype(array.dtype, np.floating):
        low, high = float(array.min()), float(array.max())
        if low < -_ROUND_OFF or high > 1 + _ROUND_OFF:
            raise ValueError(
                f"float images must have values in [0, 1], got {low:.3g}..{high:.3g}; "
                "for 0..255 values use image.astype(np.uint8) or image / 255"
            )
        return np.clip(array.astype(np.float64), 0.0, 1.0)
    if array.dtype == np.uint8:
        return array / 255.0
    if array.dtype == np.uint16:
        return array / 65535.0
    raise TypeError(
        f"integer images must be uint8 or uint16, got {array.dtype}; "
        "convert yourself, e.g. image.astype(float) / image.max()"
    )


def to_rgb(image) -> np.ndarray:
    """A float64 ``(H, W, 3)`` RGB copy in [0, 1]: grey is repeated in all three channels, alpha dropped.

    Examples
    --------
    >>> to_rgb(np.array([[0, 255]], np.uint8))[0, 1]
    array([1., 1., 1.])
    """
    pixels = as_float_image(image)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.shape[2] == 1:
        return np.repeat(pixels, 3, axis=2)
    return pixels[:, :, :3]  # RGB, or RGBA without its alpha channel


def to_grayscale(image) -> np.ndarray:
    """A float64 ``(H, W)`` grayscale copy in [0, 1] (alpha dropped).

    Colour images are converted with ``skimage.color.rgb2gray``: the weighted sum
    ``0.2125 R + 0.7154 G + 0.0721 B``, scikit-image's rounding of the ITU-R BT.709 luma
    weights (0.2126, 0.7152, 0.0722): green looks brightest to the eye, blue darkest.

    Examples
    --------
    >>> to_grayscale(np.array([[[255, 0, 0], [0, 255, 0]]], np.uint8)).round(4)
    array([[0.2125, 0.7154]])
    """
    pixels = as_float_image(image)
    if pixels.ndim == 2:
        return pixels
    if pixels.shape[2] == 1:
        return pixels[:, :, 0]
    from skimage.color import rgb2gray

    return rgb2gray(pixels[:, :, :3])


def shrink(image, max_side: int) -> np.ndarray:
    """Shrink an image by the smallest whole factor that makes both sides at most ``max_side``.

    Each new pixel is the mean of a ``factor × factor`` block (``skimage.transform.
    downscale_local_mean``), so pixels stay square and nothing is blurred across blocks;
    rows and columns left over at the bottom/right (fewer than ``factor``) are dropped.
    An image that already fits is returned as float64 unchanged.

    Parameters
    ----------
    image : array_like
        ``(H, W)`` or ``(H, W, C)`` image (uint8, uint16 or float in [0, 1]).
    max_side : int
        Largest allowed height or width, at least 1.

    Returns
    -------
    numpy.ndarray
        float64 in [0, 1], ``(H // factor, W // factor[, C])``.

    Examples
    --------
    >>> shrink(np.zeros((512, 300)), 256).shape
    (256, 150)
    >>> shrink(np.arange(16, dtype=float).reshape(4, 4) / 15, 2) * 15
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    """
    if not is_int(max_side) or max_side < 1:
        raise ValueError(f"max_side must be a positive int, got {max_side!r}")
    pixels = as_float_image(image)
    factor = math.ceil(max(pixels.shape[:2]) / max_side)
    if factor <= 1:
        return pixels
    from skimage.transform import downscale_local_mean

    height, width = (pixels.shape[0] // factor) * factor, (pixels.shape[1] // factor) * factor
    blocks = (factor, factor) + (1,) * (pixels.ndim - 2)
    return downscale_local_mean(pixels[:height, :width], blocks)


def check_sigma(sigma) -> float:
    """Return ``sigma`` as a float after checking it is a finite number of pixels >= 0.

    Examples
    --------
    >>> check_sigma(2)
    2.0
    """
    if isinstance(sigma, bool) or not isinstance(sigma, numbers.Real):
        raise TypeError(f"sigma must be a number of pixels, got {type(sigma).__name__}")
    sigma = float(sigma)
    if not math.isfinite(sigma) or sigma < 0:
        raise ValueError(f"sigma must be a finite number >= 0 (in pixels), got {sigma}")
    return sigma


def gaussian_blur(image, sigma: float) -> np.ndarray:
    """Blur an image with a Gaussian of standard deviation ``sigma`` pixels.

    Taught in
    ``course/00_start_here.ipynb`` and ``course/week1_why_convolutions/02_invariance_and_equivariance.ipynb``.

    Each colour channel is blurred separately (colours are not mixed); borders are
    handled by mirroring the image, so the edges do not darken.

    Parameters
    ----------
    image : array_like
        ``(H, W)`` or ``(H, W, C)``, uint8 or float in [0, 1].
    sigma : float
        Standard deviation of the Gaussian in pixels, ``>= 0``; 0 leaves the
        image unchanged.

    Returns
    -------
    numpy.ndarray
        float64 image in [0, 1] with the shape of ``image``.

    Examples
    --------
    >>> spike = np.zeros((9, 9)); spike[4, 4] = 1.0
    >>> blurred = gaussian_blur(spike, 1.0)
    >>> round(float(blurred.sum()), 6), bool(blurred[4, 4] < 1)
    (1.0, True)
    """
    sigma = check_sigma(sigma)
    array = as_float_image(image)
    if sigma == 0:
        return array.copy()
    from scipy import ndimage  # scipy comes with scikit-image

    # Blur along height and width only: sigma 0 along the channel axis.
    sigmas = (sigma, sigma) + (0,) * (array.ndim - 2)
    return ndimage.gaussian_filter(array, sigma=sigmas, mode="reflect")


def sharpness(image) -> float:
    """Mean absolute Laplacian of an image: large for crisp edges and fine texture.

    Taught in ``course/00_start_here.ipynb``.

    The Laplacian (sum of second derivatives) responds to rapid changes in
    brightness, so blurring an image lowers this number. It is computed on the
    [0, 1] scale, per channel, and averaged over all pixels and channels.

    Examples
    --------
    >>> sharpness(np.full((8, 8), 0.5))
    0.0
    """
    array = as_float_image(image)
    from scipy import ndimage

    if array.ndim == 2:
        laplacian = ndimage.laplace(array, mode="reflect")
    else:
        laplacian = np.stack(
            [ndimage.laplace(array[..., c], mode="reflect") for c in range(array.shape[2])],
            axis=-1,
        )
    return float(np.mean(np.abs(laplacian)))


def to_png_bytes(image) -> bytes:
    """Encode an image (uint8, or float in [0, 1]) as PNG bytes, e.g. for ``ipywidgets.Image``.

    Raises
    ------
    ValueError
        If a float image has values outside [0, 1] (rescale it first).

    Examples
    --------
    >>> to_png_bytes(np.zeros((2, 2), np.uint8))[:4]
    b'\\x89PNG'
    """
    array = check_image(image)
    if np.issubdtype(array.dtype, np.floating):
        low, high = float(array.min()), float(array.max())
        # Allow tiny round-off outside [0, 1] from filtering; anything more is a bug upstream.
        if low < -1e-6 or high > 1 + 1e-6:
            raise ValueError(
                f"float images must have values in [0, 1] to be shown, got {low:.3g}..{high:.3g}; "
                "rescale first, e.g. (image - image.min()) / (image.max() - image.min())"
            )
        array = np.round(np.clip(array, 0, 1) * 255).astype(np.uint8)
    elif array.dtype != np.uint8:
        array = (as_float_image(array) * 255).round().astype(np.uint8)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    from PIL import Image  # Pillow comes with matplotlib and scikit-image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()
