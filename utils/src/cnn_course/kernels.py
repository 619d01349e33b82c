"""Classic hand-made image kernels (filters) for the convolution demonstrations.

Every kernel is returned by a function, as a **new** array each call, so changing the
array you got (``k = sobel_x(); k[1, 1] = 9``) cannot change what other code gets.
Integer kernels are ``int64`` (so integer images give exact integer results); averaging
kernels are ``float64``.

All kernels are meant for **cross-correlation** (:func:`cnn_course.conv.correlate2d`,
``keras.layers.Conv2D``, ``tf.nn.conv2d``): the kernel is laid over the image as printed.
The symmetric ones (blurs, sharpen, Laplacian, identity) give the same result under true
convolution; the Sobel kernels change sign there (rotating them by 180° negates them).

Examples
--------
>>> import numpy as np
>>> from cnn_course.conv import correlate2d
>>> from cnn_course.kernels import sobel_x
>>> step = np.array([[0, 0, 1, 1]] * 3)  # dark on the left, bright on the right
>>> correlate2d(step, sobel_x())
array([[4, 4]])
"""

from __future__ import annotations

import numbers

import numpy as np

from ._geometry import check_int

__all__ = ["PRESETS", "box_blur", "gaussian", "identity", "laplacian", "sharpen", "sobel_x", "sobel_y"]


def _check_size(size, name: str = "size", *, odd: bool = False) -> int:
    size = check_int(size, name, minimum=1)
    if odd and size % 2 == 0:
        raise ValueError(f"{name} must be odd so that the kernel has a centre pixel, got {size}")
    return int(size)


def sobel_x() -> np.ndarray:
    """Sobel kernel for changes along x (left→right): it finds **vertical** edges.

    Taught in ``course/week2_convolution/02_sobel_edges.ipynb``.

    With cross-correlation the response is positive where the image gets brighter from
    left to right and negative where it gets darker. The kernel is a derivative
    ``[-1, 0, 1]`` along the columns times a smoothing ``[1, 2, 1]`` along the rows.

    Examples
    --------
    >>> sobel_x()
    array([[-1,  0,  1],
           [-2,  0,  2],
           [-1,  0,  1]])
    """
    return np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.int64)


def sobel_y() -> np.ndarray:
    """Sobel kernel for changes along y (top→bottom): it finds **horizontal** edges.

    Taught in ``course/week2_convolution/02_sobel_edges.ipynb``.

    With cross-correlation the response is positive where the image gets brighter from
    top to bottom (row index increasing). It is the transpose of :func:`sobel_x`.

    Examples
    --------
    >>> sobel_y()
    array([[-1, -2, -1],
           [ 0,  0,  0],
           [ 1,  2,  1]])
    """
    return sobel_x().T.copy()


def box_blur(size: int = 3) -> np.ndarray:
    """``size × size`` averaging kernel: every weight ``1 / size²`` (weights sum to 1).

    Examples
    --------
    >>> box_blur(2)
    array([[0.25, 0.25],
           [0.25, 0.25]])
    """
    size = _check_size(size)
    return np.full((size, size), 1.0 / size**2)


def sharpen() -> np.ndarray:
    """3×3 sharpening kernel: the identity plus a negative Laplacian (weights sum to 1).

    Examples
    --------
    >>> sharpen()
    array([[ 0, -1,  0],
           [-1,  5, -1],
           [ 0, -1,  0]])
    """
    return identity(3) - laplacian()


def laplacian() -> np.ndarray:
    """3×3 Laplacian (sum of second derivatives along x and y); weights sum to 0.

    Zero on flat regions and on linear ramps, large at edges, lines and corners.

    Examples
    --------
    >>> laplacian()
    array([[ 0,  1,  0],
           [ 1, -4,  1],
           [ 0,  1,  0]])
    """
    return np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=np.int64)


def identity(size: int = 3) -> np.ndarray:
    """``size × size`` kernel that leaves an image unchanged (a 1 at the centre; ``size`` odd).

    Examples
    --------
    >>> identity(3)
    array([[0, 0, 0],
           [0, 1, 0],
           [0, 0, 0]])
    """
    size = _check_size(size, odd=True)
    kernel = np.zeros((size, size), dtype=np.int64)
    kernel[size // 2, size // 2] = 1
    return kernel


def gaussian(size: int = 5, sigma: float = 1.0) -> np.ndarray:
    """``size × size`` Gaussian blur kernel, sampled at the pixel centres and scaled to sum to 1.

    Parameters
    ----------
    size : int
        Width and height in pixels; odd sizes are centred on a pixel, even sizes between
        the four middle pixels.
    sigma : float
        Standard deviation in pixels (positive); ``size ≈ 6 * sigma`` keeps almost all of
        the bell curve.

    Examples
    --------
    >>> k = gaussian(5, sigma=1.0)
    >>> k.shape, round(float(k.sum()), 12), bool(k[2, 2] == k.max())
    ((5, 5), 1.0, True)
    >>> np.round(gaussian(3, sigma=0.5), 3)
    array([[0.011, 0.084, 0.011],
           [0.084, 0.619, 0.084],
           [0.011, 0.084, 0.011]])
    """
    size = _check_size(size)
    if not isinstance(sigma, numbers.Real) or isinstance(sigma, bool):
        raise TypeError(f"sigma must be a number, got {sigma!r}")
    if not (np.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a positive number of pixels, got {sigma}")
    offsets = np.arange(size) - (size - 1) / 2
    profile = np.exp(-(offsets**2) / (2.0 * float(sigma) ** 2))
    kernel = np.outer(profile, profile)
    return kernel / kernel.sum()


def _read_only(kernel: np.ndarray) -> np.ndarray:
    kernel.setflags(write=False)
    return kernel


#: 3×3 kernels by name, for the convolution explorer. The arrays are read-only; call
#: ``PRESETS[name].copy()`` for one you can edit.
PRESETS: dict[str, np.ndarray] = {
    "identity": _read_only(identity(3)),
    "box blur": _read_only(box_blur(3)),
    "Gaussian blur": _read_only(gaussian(3, sigma=0.85)),
    "sharpen": _read_only(sharpen()),
    "Sobel x (vertical edges)": _read_only(sobel_x()),
    "Sobel y (horizontal edges)": _read_only(sobel_y()),
    "Laplacian": _read_only(laplacian()),
}
