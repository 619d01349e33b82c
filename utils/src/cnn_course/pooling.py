"""2-D pooling (max, average, min) in numpy, equal to Keras's pooling layers with ``padding="valid"``.

A pooling window of ``size`` slides over each channel separately with step ``stride``
(by default ``stride = size``: windows side by side, not overlapping) and is replaced by
its maximum, mean or minimum. Only windows that fit entirely inside the input are used
("valid" pooling), so the output has ``(H - size) // stride + 1`` rows.

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

from .conv import _as_array, _Geometry, _pair, _patches

__all__ = ["pool2d"]

_MODES = ("max", "avg", "min")


def pool2d(x, size=2, stride=None, mode="max"):
    """Max, average or min pooling over the spatial axes of a channels-last image.

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
    array = _as_array(x, "x")
    if array.ndim not in (2, 3, 4):
        raise ValueError(
            f"x must have shape (H, W), (H, W, C) or (N, H, W, C) (channels last), got shape {array.shape}"
        )
    if 0 in array.shape:
        raise ValueError(f"x must not be empty, got shape {array.shape}")
    if mode not in _MODES:
        raise ValueError(f"unknown pooling mode {mode!r}: use 'max', 'avg' or 'min'")
    window = _pair(size, "size", minimum=1)
    step = window if stride is None else _pair(stride, "stride", minimum=1)
    x4 = array if array.ndim == 4 else array[None] if array.ndim == 3 else array[None, :, :, None]
    geometry = _Geometry(x4.shape[1:3], window, step, "valid", 1, what="pooling window")
    patches = _patches(x4, geometry)  # (N, out_h, out_w, size_h * size_w * C), (rows, cols, C) order
    per_channel = patches.reshape(patches.shape[:3] + (window[0] * window[1], x4.shape[3]))
    reduce = {"max": np.max, "avg": np.mean, "min": np.min}[mode]
    pooled = reduce(per_channel, axis=3)
    return pooled if array.ndim == 4 else pooled[0] if array.ndim == 3 else pooled[0, :, :, 0]
