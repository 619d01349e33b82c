"""2-D pooling (max, average, min) in numpy, equal to Keras's pooling layers with ``padding="valid"``.

A pooling window of ``size`` slides over each channel separately with step ``stride``
(by default ``stride = size``: windows side by side, not overlapping) and is replaced by
its maximum, mean or minimum. Only windows that fit entirely inside the input are used
("valid" pooling), so the output has ``(H - size) // stride + 1`` rows.
:func:`pool2d_backward` sends a gradient back through the same windows.

Examples
--------
>>> import numpy as np
>>> from cnn_course.pooling import pool2d
>>> x = np.array([[1, 2, 5, 6],
...               [3, 4, 7, 8],
...               [9, 9, 0, 0],
...               [9, 9, 0, 4]])
>>> pool2d(x, 2)
array([[4, 8],
       [9, 4]])
>>> pool2d(x, 2, mode="avg")
array([[2.5, 6.5],
       [9. , 1. ]])
"""

from __future__ import annotations

import numpy as np

from ._geometry import as_pair, check_word
from .conv import _as_array, _Geometry, _patches, _scatter_patches

__all__ = ["pool2d", "pool2d_backward"]

_MODES = ("max", "avg", "min")


def pool2d(x, size=2, stride=None, mode="max"):
    """Max, average or min pooling over the spatial axes of a channels-last image.

    Taught in ``course/week3_building_blocks/03_pooling_dense_dropout_softmax.ipynb``.

    Parameters
    ----------
    x : array_like
        ``(H, W)`` single channel, ``(H, W, C)`` or ``(N, H, W, C)``; every channel is
        pooled on its own.
    size : int or (int, int)
        Window height and width.
    stride : int or (int, int), optional
        Step between windows; defaults to ``size``.
    mode : {"max", "avg", "min"}
        What to keep of each window. ``"avg"`` returns floats; ``"max"``/``"min"`` keep
        the input's dtype.

    Returns
    -------
    numpy.ndarray
        The input's shape with H and W replaced by ``(H - size) // stride + 1`` and
        ``(W - size) // stride + 1``; equal to ``keras.layers.MaxPooling2D`` /
        ``AveragePooling2D(pool_size=size, strides=stride, padding="valid")``.

    Raises
    ------
    ValueError
        Wrong number of dimensions, window larger than the input, non-positive size or
        stride, unknown mode.
    TypeError
        Non-numeric input or size/stride that are not ints.

    Examples
    --------
    >>> x = np.arange(16).reshape(4, 4)
    >>> pool2d(x, size=3, stride=1, mode="min")
    array([[0, 1],
           [4, 5]])
    >>> pool2d(np.zeros((8, 28, 28, 16)), 2).shape
    (8, 14, 14, 16)
    """
    array, x4, geometry, mode = _pooling_setup(x, size, stride, mode)
    per_channel = _windows(x4, geometry)
    reduce = {"max": np.max, "avg": np.mean, "min": np.min}[mode]
    pooled = reduce(per_channel, axis=3)
    return _unbatch(pooled, array.ndim)


def _pooling_setup(x, size, stride, mode):
    """Check pooling arguments; return x as an array, as (N, H, W, C), the window geometry and the mode."""
    array = _as_array(x, "x")
    if array.ndim not in (2, 3, 4):
        raise ValueError(
            f"x must have shape (H, W), (H, W, C) or (N, H, W, C) (channels last), got shape {array.shape}"
        )
    if 0 in array.shape:
        raise ValueError(f"x must not be empty, got shape {array.shape}")
    mode = check_word(mode, "pooling mode", _MODES)
    window = as_pair(size, "size", minimum=1)
    step = window if stride is None else as_pair(stride, "stride", minimum=1)
    x4 = array if array.ndim == 4 else array[None] if array.ndim == 3 else array[None, :, :, None]
    geometry = _Geometry(x4.shape[1:3], window, step, "valid", 1, what="pooling window")
    return array, x4, geometry, mode


def _windows(x4: np.ndarray, geometry) -> np.ndarray:
    """(N, out_h, out_w, size_h * size_w, C): each window's pixels in row-major order, per channel."""
    patches = _patches(x4, geometry)  # (N, out_h, out_w, size_h * size_w * C), (rows, cols, C) order
    return patches.reshape(patches.shape[:3] + (geometry.kh * geometry.kw, x4.shape[3]))


def _unbatch(array4: np.ndarray, ndim: int) -> np.ndarray:
    """Drop the batch/channel axes that an input with ``ndim`` dimensions did not have."""
    return array4 if ndim == 4 else array4[0] if ndim == 3 else array4[0, :, :, 0]


def pool2d_backward(x, grad_out, size=2, stride=None, mode="max"):
    """Backward pass of :func:`pool2d`: the gradient with respect to its input.

    Taught in ``course/week3_building_blocks/04_backprop_through_convolution.ipynb``.

    ``grad_out`` is ``dL/dout`` for ``out = pool2d(x, size, stride, mode)``; the result is
    ``dL/dx``. Pooling has no weights, so this is the only gradient.

    * ``"max"`` (and ``"min"``): the output of a window *is* one of its pixels, so the whole
      gradient of that output goes to that pixel and the others get zero. When several pixels
      share the maximum, the **first** one in row-major order (top row first, left to right)
      gets it all, like ``numpy.argmax``. Small changes of a non-maximal pixel do not change
      the output, which is why their gradient is zero.
    * ``"avg"``: every pixel of a window counts ``1 / (size_h * size_w)``, so each receives that
      share of the window's gradient.
    * Overlapping windows (``stride < size``): a pixel in several windows receives the **sum**
      of what each window sends it. Pixels in no window (rows/columns that "valid" pooling
      drops) get zero.

    Parameters
    ----------
    x : array_like
        The forward input, ``(H, W)``, ``(H, W, C)`` or ``(N, H, W, C)``.
    grad_out : array_like
        The shape of ``pool2d(x, size, stride, mode)``.
    size, stride, mode
        As in :func:`pool2d`.

    Returns
    -------
    numpy.ndarray, the shape of ``x``
        Float for ``"avg"``; for ``"max"``/``"min"`` the dtype of ``grad_out`` (``int64`` for
        integers).

    Raises
    ------
    ValueError
        As :func:`pool2d`, and if ``grad_out`` does not have the forward output's shape.

    Examples
    --------
    >>> x = np.array([[1, 2, 5, 6],
    ...               [3, 4, 7, 8],
    ...               [9, 0, 0, 1],
    ...               [2, 3, 2, 4]])
    >>> pool2d_backward(x, [[10, 20], [30, 40]])  # each gradient goes to its window's maximum
    array([[ 0,  0,  0,  0],
           [ 0, 10,  0, 20],
           [30,  0,  0,  0],
           [ 0,  0,  0, 40]])
    >>> pool2d_backward(x, [[4, 8], [12, 16]], mode="avg")  # ... or is shared by all four
    array([[1., 1., 2., 2.],
           [1., 1., 2., 2.],
           [3., 3., 4., 4.],
           [3., 3., 4., 4.]])
    """
    array, x4, geometry, mode = _pooling_setup(x, size, stride, mode)
    grad_out = _as_array(grad_out, "grad_out")
    out_shape4 = (x4.shape[0], geometry.out_h, geometry.out_w, x4.shape[3])
    expected = _unbatch(np.empty(out_shape4, dtype=np.uint8), array.ndim).shape
    if grad_out.shape != expected:
        raise ValueError(
            f"grad_out must have the shape of pool2d's output for x of shape {array.shape}, "
            f"{expected}, got shape {grad_out.shape}"
        )
    grad4 = grad_out.reshape(out_shape4)
    per_channel = _windows(x4, geometry)                      # (N, out_h, out_w, window, C)
    window_size = geometry.kh * geometry.kw
    if mode == "avg":
        dtype = grad_out.dtype if np.issubdtype(grad_out.dtype, np.floating) else np.dtype(np.float64)
        share = grad4.astype(dtype, copy=False) / window_size
        grad_windows = np.broadcast_to(share[:, :, :, None, :], per_channel.shape)
    else:
        dtype = grad_out.dtype if np.issubdtype(grad_out.dtype, np.floating) else np.dtype(np.int64)
        # argmax/argmin return the first extreme in the window's row-major order: the tie rule.
        winner = (np.argmax if mode == "max" else np.argmin)(per_channel, axis=3)
        grad_windows = np.zeros(per_channel.shape, dtype)
        np.put_along_axis(grad_windows, winner[:, :, :, None, :], grad4.astype(dtype)[:, :, :, None, :], axis=3)
    grad_patches = np.ascontiguousarray(grad_windows).reshape(out_shape4[:3] + (window_size * x4.shape[3],))
    grad_x = _scatter_patches(grad_patches, geometry, x4.shape[1:3], dtype)
    return _unbatch(grad_x, array.ndim)
