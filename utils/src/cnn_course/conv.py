"""2-D convolution from first principles: reference implementations in numpy.

Conventions used throughout the course (the same as Keras and TensorFlow):

* **Cross-correlation** is what deep-learning libraries call "convolution": the kernel
  slides over the input *without* being flipped,
  ``out[i, j] = sum_{a, b} x[i*s + a*d, j*s + b*d] * w[a, b]``
  (``s`` the stride, ``d`` the dilation, indices into the zero-padded input).
  :func:`correlate2d` computes it; :func:`convolve2d` is the convolution of signal
  processing (kernel rotated by 180°), as in ``scipy.signal.convolve2d``.
* Images are **channels-last**: ``(H, W)`` for one channel, ``(H, W, C)`` or
  ``(N, H, W, C)`` for several; kernels of :func:`conv2d` are ``(kh, kw, Cin, Cout)``,
  exactly the layout of ``keras.layers.Conv2D(...).kernel``.
* ``padding`` is ``"valid"`` (none), ``"same"``, ``"full"``, an int (the same number of
  zero rows and columns on every side) or a pair ``(rows, cols)`` (``rows`` zeros above
  *and* below, ``cols`` zeros left *and* right).

  ``"same"`` follows Keras/TensorFlow: the output has ``ceil(n / s)`` positions along
  an axis of length ``n`` with stride ``s`` (so exactly ``n`` for stride 1), and the
  ``max((out - 1) * s + k_eff - n, 0)`` zeros this needs are split with the odd one at
  the bottom/right. ``"full"`` pads ``k_eff - 1`` zeros on each side, so every position
  where kernel and input overlap at all gives an output.
* ``k_eff = k + (k - 1) * (d - 1)`` is the extent of a kernel of size ``k`` dilated by
  ``d`` (``d - 1`` gaps between its taps).
* Integer inputs give exact integer (``int64``) outputs; otherwise the result has the
  floating dtype of the inputs (``float32`` stays ``float32``, like in Keras).

Two implementations of the multi-channel layer are provided: :func:`conv2d_naive`
(explicit loops over output positions, the version to read) and :func:`conv2d`
(:func:`im2col` + one matrix product, the version to use; far faster).

Backward passes (the gradients that training needs) are :func:`correlate2d_backward` and
:func:`conv2d_backward`; :func:`col2im` is the scatter-add that undoes the layout of
:func:`im2col` and carries the gradient back to the input pixels.

Examples
--------
>>> import numpy as np
>>> from cnn_course.conv import correlate2d, convolve2d, output_size
>>> x = np.arange(16).reshape(4, 4)
>>> w = np.array([[1, 0], [0, -1]])
>>> correlate2d(x, w)
array([[-5, -5, -5],
       [-5, -5, -5],
       [-5, -5, -5]])
>>> convolve2d(x, w)
array([[5, 5, 5],
       [5, 5, 5],
       [5, 5, 5]])
>>> output_size(224, 3, stride=2, padding="same")
112
"""

from __future__ import annotations

import numbers

import numpy as np

from ._checks import numeric_array
from ._geometry import (
    PADDING_WORDS,
    as_pair,
    check_int,
    check_word,
    dilated_size,
    is_int,
    output_length,
    padding_amounts,
)

__all__ = [
    "col2im",
    "conv2d",
    "conv2d_backward",
    "conv2d_naive",
    "conv_transpose2d",
    "convolve2d",
    "correlate2d",
    "correlate2d_backward",
    "im2col",
    "output_size",
    "pad2d",
]

_PAD_MODES = ("constant", "reflect", "symmetric", "edge")


# --------------------------------------------------------------------------- checks


def _as_array(value, name: str) -> np.ndarray:
    """``value`` as an array of numbers; booleans count as the integers 0 and 1."""
    return numeric_array(value, name, booleans=True)


def _check_padding(padding):
    """``"valid"``/``"same"``/``"full"`` (any case) or a ``(rows, cols)`` pair of ints >= 0."""
    if isinstance(padding, str):
        try:
            return check_word(padding, "padding", PADDING_WORDS)
        except ValueError:
            raise ValueError(
                f"unknown padding {padding!r}: use 'valid', 'same', 'full', "
                "an int or a pair of ints (rows, cols)"
            ) from None
    try:
        return as_pair(padding, "padding", minimum=0)
    except TypeError:
        raise TypeError(
            f"padding must be 'valid', 'same', 'full', an int or a pair of ints (rows, cols), "
            f"got {padding!r}"
        ) from None


class _Geometry:
    """Everything about how a kernel slides over an input of spatial shape (H, W)."""

    def __init__(self, in_hw, kernel_hw, stride, padding, dilation, *, what="kernel"):
        self.kh, self.kw = kernel_hw
        self.sh, self.sw = as_pair(stride, "stride", minimum=1)
        self.dh, self.dw = as_pair(dilation, "dilation", minimum=1)
        padding = _check_padding(padding)
        self.keh, self.kew = dilated_size(self.kh, self.dh), dilated_size(self.kw, self.dw)
        h, w = in_hw
        rows = padding[0] if isinstance(padding, tuple) else padding
        cols = padding[1] if isinstance(padding, tuple) else padding
        self.pad_rows = padding_amounts(h, self.keh, self.sh, rows)
        self.pad_cols = padding_amounts(w, self.kew, self.sw, cols)
        hp, wp = h + sum(self.pad_rows), w + sum(self.pad_cols)
        if self.keh > hp or self.kew > wp:
            dilated = (f" (dilated to {self.keh}×{self.kew})"
                       if (self.keh, self.kew) != (self.kh, self.kw) else "")
            padded = f" padded to {hp}×{wp}" if what == "kernel" else ""  # pooling never pads
            raise ValueError(f"{what} of {self.kh}×{self.kw}{dilated} does not fit in the {h}×{w} input{padded}")
        self.out_h = output_length(h, self.keh, self.sh, *self.pad_rows)
        self.out_w = output_length(w, self.kew, self.sw, *self.pad_cols)

    def pad(self, x4: np.ndarray) -> np.ndarray:
        """Zero-pad the spatial axes of an (N, H, W, C) array."""
        if self.pad_rows == (0, 0) and self.pad_cols == (0, 0):
            return x4
        return np.pad(x4, ((0, 0), self.pad_rows, self.pad_cols, (0, 0)))


def _result_dtype(*arrays: np.ndarray):
    """int64 when every input is integer (exact sums, no uint8 overflow), else the float type."""
    if all(np.issubdtype(a.dtype, np.integer) for a in arrays):
        return np.dtype(np.int64)
    return np.result_type(*arrays)


def _check_single_channel(x, w):
    x = _as_array(x, "x")
    w = _as_array(w, "w")
    if x.ndim != 2:
        hint = " (use conv2d for images with channels)" if x.ndim in (3, 4) else ""
        raise ValueError(f"x must be a single-channel image of shape (H, W), got shape {x.shape}{hint}")
    if w.ndim != 2:
        raise ValueError(f"w must be a 2-D kernel of shape (kh, kw), got shape {w.shape}")
    if 0 in x.shape or 0 in w.shape:
        raise ValueError(f"x and w must not be empty, got shapes {x.shape} and {w.shape}")
    return x, w


def _check_multi_channel(x, w, b):
    """Validate conv2d arguments; return x as (N, H, W, Cin), w, b and whether x had a batch axis."""
    x = _as_array(x, "x")
    w = _as_array(w, "w")
    if x.ndim not in (3, 4):
        hint = " (add a channel axis: x[..., None])" if x.ndim == 2 else ""
        raise ValueError(
            f"x must have shape (N, H, W, Cin) or (H, W, Cin) (channels last), got shape {x.shape}{hint}"
        )
    if w.ndim != 4:
        raise ValueError(f"w must have shape (kh, kw, Cin, Cout), got shape {w.shape}")
    if 0 in x.shape or 0 in w.shape:
        raise ValueError(f"x and w must not be empty, got shapes {x.shape} and {w.shape}")
    if x.shape[-1] != w.shape[2]:
        raise ValueError(
            f"x has {x.shape[-1]} input channels but w expects {w.shape[2]} "
            f"(w has shape (kh, kw, Cin, Cout) = {w.shape})"
        )
    if b is not None:
        b = _as_array(b, "b")
        if b.shape != (w.shape[3],):
            raise ValueError(
                f"b must have shape (Cout,) = ({w.shape[3]},), one bias per output channel, got shape {b.shape}"
            )
    batched = x.ndim == 4
    return (x if batched else x[None]), w, b, batched


# --------------------------------------------------------------------------- public API


def output_size(n, k, *, stride=1, padding="valid", dilation=1) -> int:
    """Number of output positions along one axis of length ``n`` for a kernel of size ``k``.

    Taught in ``course/week2_convolution/03_padding_stride_dilation.ipynb``.

    ``floor((n + p_total - k_eff) / s) + 1`` with ``k_eff = k + (k - 1)(d - 1)`` and
    ``p_total`` the zeros added on both sides: 0 for ``"valid"``, ``2 * (k_eff - 1)`` for
    ``"full"``, ``2 * p`` for an int ``p``; ``"same"`` gives ``ceil(n / s)``.

    Parameters
    ----------
    n, k : int
        Input length and kernel size (both positive).
    stride, dilation : int
        Positive step between output positions and between kernel taps.
    padding : {"valid", "same", "full"} or int
        Zero padding; an int adds that many zeros on *each* side.

    Returns
    -------
    int

    Raises
    ------
    ValueError
        If the (dilated) kernel is longer than the padded input, or an argument is out of range.

    Examples
    --------
    >>> output_size(28, 3)
    26
    >>> output_size(28, 3, padding="same"), output_size(28, 3, padding="full")
    (28, 30)
    >>> output_size(7, 3, stride=2, padding=1), output_size(7, 3, dilation=2)
    (4, 3)
    """
    n, k = check_int(n, "n", minimum=1), check_int(k, "k", minimum=1)
    for value, name in ((stride, "stride"), (dilation, "dilation")):
        check_int(value, name, hint=" (output_size works along one axis)")
    if not (isinstance(padding, str) or is_int(padding)):
        raise TypeError(
            f"padding must be 'valid', 'same', 'full' or an int (output_size works along one axis), "
            f"got {padding!r}"
        )
    geometry = _Geometry((n, 1), (k, 1), (stride, 1), padding, (dilation, 1))
    return geometry.out_h


def pad2d(x, padding, *, mode="constant", value=0):
    """Pad the two spatial axes of an image.

    Taught in ``course/week2_convolution/03_padding_stride_dilation.ipynb``.

    Parameters
    ----------
    x : array_like
        ``(H, W)``, ``(H, W, C)`` or ``(N, H, W, C)``; only H and W are padded.
    padding : int, (int, int) or ((int, int), (int, int))
        An int pads every side equally; ``(rows, cols)`` pads ``rows`` above and below and
        ``cols`` left and right; ``((top, bottom), (left, right))`` sets each side.
    mode : {"constant", "reflect", "symmetric", "edge"}
        ``"constant"`` fills with ``value`` (zero padding by default); ``"reflect"``
        mirrors without repeating the border pixel (``c b | a b c``), ``"symmetric"``
        mirrors including it (``b a | a b c``), ``"edge"`` repeats the border pixel.
    value : int or float
        Fill value for ``mode="constant"``. The result's dtype can hold it (an integer
        image padded with 0.5 becomes float).

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> x = np.array([[1, 2, 3]])
    >>> pad2d(x, (0, 2))
    array([[0, 0, 1, 2, 3, 0, 0]])
    >>> pad2d(x, (0, 2), mode="reflect")
    array([[3, 2, 1, 2, 3, 2, 1]])
    >>> pad2d(x, (0, 2), mode="symmetric")
    array([[2, 1, 1, 2, 3, 3, 2]])
    >>> pad2d(x, ((1, 0), (0, 1)), value=9)
    array([[9, 9, 9, 9],
           [1, 2, 3, 9]])
    """
    x = _as_array(x, "x")
    if x.ndim not in (2, 3, 4):
        raise ValueError(f"x must have shape (H, W), (H, W, C) or (N, H, W, C), got shape {x.shape}")
    mode = check_word(mode, "padding mode", _PAD_MODES)
    if isinstance(padding, (tuple, list)) and len(padding) == 2 and all(
        isinstance(p, (tuple, list)) for p in padding
    ):
        sides = tuple(as_pair(p, "padding", minimum=0) for p in padding)
    else:
        try:
            rows, cols = as_pair(padding, "padding", minimum=0)
        except TypeError:
            raise TypeError(
                "padding must be an int, a pair (rows, cols) or ((top, bottom), (left, right)), "
                f"got {padding!r}"
            ) from None
        sides = ((rows, rows), (cols, cols))
    spatial = 1 if x.ndim == 4 else 0
    widths = [(0, 0)] * x.ndim
    widths[spatial], widths[spatial + 1] = sides
    if mode == "constant":
        if not isinstance(value, numbers.Real) or isinstance(value, bool):
            raise TypeError(f"value must be a number, got {value!r}")
        fits = np.issubdtype(x.dtype, np.floating) or (
            float(value).is_integer() and np.can_cast(np.min_scalar_type(value), x.dtype))
        dtype = x.dtype if fits else np.dtype(np.float64)
        return np.pad(x.astype(dtype, copy=False), widths, mode="constant", constant_values=value)
    if value != 0:
        raise ValueError(f"value is only used with mode='constant', not with mode={mode!r}")
    return np.pad(x, widths, mode=mode)


def im2col(x, kh, kw, *, stride=1, padding="valid", dilation=1):
    """Gather every (kh × kw) window of ``x`` into one row, so a convolution is a matrix product.

    Taught in ``course/week2_convolution/07_making_it_fast.ipynb``.

    Layout of the result: for ``x`` of shape ``(N, H, W, C)`` the result has shape
    ``(N, out_h, out_w, kh * kw * C)``, and ``result[n, i, j]`` is the window under output
    position ``(i, j)`` flattened in ``(kh, kw, C)`` order (row of the kernel, then column,
    then channel). Because that is also the order of ``w.reshape(kh * kw * C, Cout)`` for a
    kernel ``w`` of shape ``(kh, kw, C, Cout)``,
    ``im2col(x, kh, kw) @ w.reshape(-1, Cout)`` is the convolution. ``(H, W, C)`` gives
    ``(out_h, out_w, kh * kw * C)`` and ``(H, W)`` gives ``(out_h, out_w, kh * kw)``.

    Parameters
    ----------
    x : array_like
        ``(H, W)``, ``(H, W, C)`` or ``(N, H, W, C)``.
    kh, kw : int
        Kernel height and width.
    stride, padding, dilation
        As in :func:`correlate2d`; the padding is with zeros.

    Returns
    -------
    numpy.ndarray
        A new array (a copy; the windows overlap in ``x``, so it is bigger than ``x``).

    Examples
    --------
    >>> x = np.arange(9).reshape(3, 3)
    >>> im2col(x, 2, 2)[0, 1]  # the window under output (0, 1)
    array([1, 2, 4, 5])
    >>> im2col(x, 2, 2).reshape(-1, 4) @ np.array([1, 0, 0, -1])  # same as correlate2d
    array([-4, -4, -4, -4])
    """
    x = _as_array(x, "x")
    if x.ndim not in (2, 3, 4):
        raise ValueError(f"x must have shape (H, W), (H, W, C) or (N, H, W, C), got shape {x.shape}")
    kh, kw = check_int(kh, "kh", minimum=1), check_int(kw, "kw", minimum=1)
    x4 = x if x.ndim == 4 else x[None] if x.ndim == 3 else x[None, :, :, None]
    if 0 in x4.shape:
        raise ValueError(f"x must not be empty, got shape {x.shape}")
    geometry = _Geometry(x4.shape[1:3], (kh, kw), stride, padding, dilation)
    patches = _patches(geometry.pad(x4), geometry)
    return patches if x.ndim == 4 else patches[0]


def _patches(padded: np.ndarray, g: _Geometry) -> np.ndarray:
    """(N, out_h, out_w, kh*kw*C) windows of an already padded (N, Hp, Wp, C) array."""
    n, _, _, c = padded.shape
    # One strided slice per kernel tap (kh*kw Python steps, not one per output pixel):
    # tap (a, b) sees input pixel (i*s + a*d, j*s + b*d) at output (i, j).
    taps = [
        padded[:, a * g.dh: a * g.dh + (g.out_h - 1) * g.sh + 1: g.sh,
               b * g.dw: b * g.dw + (g.out_w - 1) * g.sw + 1: g.sw, :]
        for a in range(g.kh)
        for b in range(g.kw)
    ]
    return np.stack(taps, axis=3).reshape(n, g.out_h, g.out_w, g.kh * g.kw * c)


def correlate2d(x, w, *, stride=1, padding="valid", dilation=1):
    """2-D cross-correlation of a single-channel image: what Keras calls a convolution.

    Taught in ``course/week2_convolution/01_cross_correlation_and_flipping.ipynb``.

    ``out[i, j] = sum_{a, b} xp[i*s_r + a*d_r, j*s_c + b*d_c] * w[a, b]``, where ``xp`` is
    ``x`` zero-padded according to ``padding``.

    Parameters
    ----------
    x : array_like, shape (H, W)
        Image (integers or floats; booleans count as 0/1).
    w : array_like, shape (kh, kw)
        Kernel.
    stride : int or (int, int)
        Step between output positions, ``(rows, cols)``.
    padding : {"valid", "same", "full"}, int or (int, int)
        Zero padding: see the module docstring. ``"same"`` is Keras/TensorFlow's: output
        ``ceil(H / s)`` × ``ceil(W / s)``, the odd padding zero (even kernel sizes) at the
        bottom/right. For stride 1 all three words give the same result as
        ``scipy.signal.correlate2d`` with that ``mode``.
    dilation : int or (int, int)
        Spacing between kernel taps (1 = ordinary convolution).

    Returns
    -------
    numpy.ndarray, shape (out_h, out_w)
        ``int64`` for integer inputs (exact), else float. Sizes: :func:`output_size`.

    Raises
    ------
    ValueError
        Wrong number of dimensions, kernel larger than the padded input, non-positive
        stride or dilation, unknown padding.
    TypeError
        Non-numeric inputs or arguments of the wrong type.

    Examples
    --------
    >>> x = np.array([[1, 2, 3],
    ...               [4, 5, 6],
    ...               [7, 8, 9]])
    >>> w = np.array([[1, 0],
    ...               [0, 2]])
    >>> correlate2d(x, w)  # e.g. top-left: 1*1 + 2*0 + 4*0 + 5*2
    array([[11, 14],
           [20, 23]])
    >>> correlate2d(x, w, padding="same")
    array([[11, 14,  3],
           [20, 23,  6],
           [ 7,  8,  9]])
    >>> correlate2d(np.arange(25).reshape(5, 5), np.ones((2, 2), int), stride=2)
    array([[12, 20],
           [52, 60]])
    """
    x, w = _check_single_channel(x, w)
    dtype = _result_dtype(x, w)
    geometry = _Geometry(x.shape, w.shape, stride, padding, dilation)
    patches = _patches(geometry.pad(x.astype(dtype, copy=False)[None, :, :, None]), geometry)
    return patches[0] @ w.astype(dtype, copy=False).reshape(-1)


def convolve2d(x, w, *, stride=1, padding="valid", dilation=1):
    """2-D convolution (signal-processing sense): cross-correlation with ``w`` rotated by 180°.

    Taught in ``course/week2_convolution/01_cross_correlation_and_flipping.ipynb``.

    ``convolve2d(x, w, ...) == correlate2d(x, w[::-1, ::-1], ...)``; the arguments are those
    of :func:`correlate2d`. With ``"valid"`` and ``"full"`` padding it equals
    ``scipy.signal.convolve2d``, and so does ``"same"`` for odd kernel sizes. For an even
    kernel size ``"same"`` keeps the Keras rule (odd padding zero at the bottom/right of the
    input), while scipy's ``convolve2d(mode="same")`` puts it at the top/left, so the two
    outputs are shifted by one pixel along that axis.

    Examples
    --------
    >>> x = np.array([[0, 0, 0],
    ...               [0, 1, 0],
    ...               [0, 0, 0]])
    >>> w = np.array([[1, 2],
    ...               [3, 4]])
    >>> convolve2d(x, w, padding="full")  # an impulse reproduces the kernel
    array([[0, 0, 0, 0],
           [0, 1, 2, 0],
           [0, 3, 4, 0],
           [0, 0, 0, 0]])
    >>> correlate2d(x, w, padding="full")  # ... correlation gives it rotated by 180°
    array([[0, 0, 0, 0],
           [0, 4, 3, 0],
           [0, 2, 1, 0],
           [0, 0, 0, 0]])
    """
    x, w = _check_single_channel(x, w)
    return correlate2d(x, w[::-1, ::-1], stride=stride, padding=padding, dilation=dilation)


def conv2d(x, w, b=None, *, stride=1, padding="valid", dilation=1):
    """Multi-channel 2-D convolution layer forward pass (fast: :func:`im2col` + one matrix product).

    Taught in
    ``course/week2_convolution/04_channels_and_shapes.ipynb`` and ``course/week2_convolution/07_making_it_fast.ipynb``.

    Computes what ``keras.layers.Conv2D`` computes (cross-correlation, channels last)::

        out[n, i, j, o] = b[o] + sum_{a, b, c} xp[n, i*s + a*d, j*s + b*d, c] * w[a, b, c, o]

    Parameters
    ----------
    x : array_like
        ``(N, H, W, Cin)`` or a single image ``(H, W, Cin)``.
    w : array_like, shape (kh, kw, Cin, Cout)
        Kernel, in the layout of ``Conv2D(...).kernel``.
    b : array_like, shape (Cout,), optional
        Bias, one per output channel.
    stride, padding, dilation
        As in :func:`correlate2d` (``"valid"`` and ``"same"`` are Keras's; ``"full"``, ints
        and pairs are also accepted).

    Returns
    -------
    numpy.ndarray
        ``(N, out_h, out_w, Cout)``, or ``(out_h, out_w, Cout)`` when ``x`` had no batch axis.

    Raises
    ------
    ValueError
        Wrong shapes (``x`` not 3-/4-D, ``w`` not 4-D, ``Cin`` of ``x`` and ``w`` differ,
        ``b`` not ``(Cout,)``), kernel larger than the padded input, bad stride/dilation/padding.
    TypeError
        Non-numeric inputs or arguments of the wrong type.

    Examples
    --------
    >>> rgb = np.ones((4, 4, 3))
    >>> w = np.ones((3, 3, 3, 2))          # two filters summing 3x3x3 windows
    >>> conv2d(rgb, w, b=[0.0, 1.0]).shape
    (2, 2, 2)
    >>> conv2d(rgb, w, b=[0.0, 1.0])[0, 0]
    array([27., 28.])
    >>> conv2d(rgb[None], w, padding="same").shape
    (1, 4, 4, 2)
    """
    x4, w, b, batched = _check_multi_channel(x, w, b)
    dtype = _result_dtype(x4, w, *(() if b is None else (b,)))
    kh, kw, _, cout = w.shape
    geometry = _Geometry(x4.shape[1:3], (kh, kw), stride, padding, dilation)
    patches = _patches(geometry.pad(x4.astype(dtype, copy=False)), geometry)
    # (N*out_h*out_w, kh*kw*Cin) @ (kh*kw*Cin, Cout): one BLAS call for float inputs.
    rows = patches.reshape(-1, patches.shape[-1])
    out = (rows @ w.astype(dtype, copy=False).reshape(-1, cout)).reshape(patches.shape[:3] + (cout,))
    if b is not None:
        out += b.astype(dtype, copy=False)
    return out if batched else out[0]


def conv2d_naive(x, w, b=None, *, stride=1, padding="valid", dilation=1):
    """The same as :func:`conv2d`, written as explicit loops over output positions.

    Taught in ``course/week2_convolution/07_making_it_fast.ipynb``.

    The version to read: for every image ``n`` and output position ``(i, j)`` take the
    ``kh × kw × Cin`` window of the padded input, multiply it with every filter and sum.
    It gives the same numbers as :func:`conv2d` but is many times slower (one Python step
    per output pixel instead of one matrix product); ``benchmarks/conv_speed.py`` times both.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x, w = rng.normal(size=(2, 6, 6, 3)), rng.normal(size=(3, 3, 3, 4))
    >>> np.allclose(conv2d_naive(x, w, stride=2, padding="same"), conv2d(x, w, stride=2, padding="same"))
    True
    """
    x4, w, b, batched = _check_multi_channel(x, w, b)
    dtype = _result_dtype(x4, w, *(() if b is None else (b,)))
    kh, kw, _, cout = w.shape
    g = _Geometry(x4.shape[1:3], (kh, kw), stride, padding, dilation)
    padded = g.pad(x4.astype(dtype, copy=False))
    w = w.astype(dtype, copy=False)
    out = np.zeros((x4.shape[0], g.out_h, g.out_w, cout), dtype)
    for n in range(x4.shape[0]):
        for i in range(g.out_h):
            for j in range(g.out_w):
                top, left = i * g.sh, j * g.sw
                # Every d-th pixel of the dilated extent: exactly kh × kw taps.
                window = padded[n, top: top + g.keh: g.dh, left: left + g.kew: g.dw, :]
                out[n, i, j, :] = np.sum(window[:, :, :, None] * w, axis=(0, 1, 2))
    if b is not None:
        out += b.astype(dtype, copy=False)
    return out if batched else out[0]


def conv_transpose2d(x, w, *, stride=1):
    """Transposed convolution of a single-channel image ("scatter-add", no padding).

    Taught in ``course/week2_convolution/05_transposed_convolution.ipynb``.

    Every input pixel ``x[i, j]`` adds a copy of the kernel scaled by it, ``x[i, j] * w``,
    to the output at ``(i * s_r, j * s_c)``; overlapping copies are summed. The output has
    shape ``((H - 1) * s_r + kh, (W - 1) * s_c + kw)``: the smallest input from which a
    ``"valid"`` :func:`correlate2d` with the same kernel and stride produces ``(H, W)``.
    The transposed convolution maps back to that size, not back to the values: it is the
    transpose of that correlation (as a linear map), not its inverse.

    It equals ``keras.layers.Conv2DTranspose(1, (kh, kw), strides=s, padding="valid")``
    with kernel ``w[:, :, None, None]`` (the kernel is *not* flipped), except that Keras
    appends ``s - kh`` zero rows (``s - kw`` columns) when the stride exceeds the kernel.

    Parameters
    ----------
    x : array_like, shape (H, W)
    w : array_like, shape (kh, kw)
    stride : int or (int, int)

    Returns
    -------
    numpy.ndarray, shape ((H - 1) * s_r + kh, (W - 1) * s_c + kw)

    Examples
    --------
    >>> conv_transpose2d(np.array([[1, 2]]), np.array([[1, 1, 1]]), stride=2)
    array([[1, 1, 3, 2, 2]])
    >>> conv_transpose2d(np.array([[1]]), np.array([[1, 2], [3, 4]]))  # one pixel: the kernel
    array([[1, 2],
           [3, 4]])
    """
    x, w = _check_single_channel(x, w)
    sh, sw = as_pair(stride, "stride", minimum=1)
    dtype = _result_dtype(x, w)
    x = x.astype(dtype, copy=False)
    (h, width), (kh, kw) = x.shape, w.shape
    out = np.zeros(((h - 1) * sh + kh, (width - 1) * sw + kw), dtype)
    # Loop over kernel taps (kh*kw steps); each adds the whole scaled input, spread by the stride.
    for a in range(kh):
        for b in range(kw):
            out[a: a + (h - 1) * sh + 1: sh, b: b + (width - 1) * sw + 1: sw] += x * w[a, b]
    return out


# --------------------------------------------------------------------------- backward passes


def _scatter_patches(patches: np.ndarray, g: _Geometry, in_hw, dtype) -> np.ndarray:
    """Add every window of ``patches`` (N, out_h, out_w, kh*kw*C) back onto an (N, H, W, C) image.

    The exact reverse of :func:`_patches`: where windows overlap their values are summed,
    and the zeros that the forward pass padded on are cut off again at the end.
    """
    n, _, _, length = patches.shape
    c = length // (g.kh * g.kw)
    h, w = in_hw
    top, left = g.pad_rows[0], g.pad_cols[0]
    padded = np.zeros((n, h + sum(g.pad_rows), w + sum(g.pad_cols), c), dtype)
    taps = patches.reshape(n, g.out_h, g.out_w, g.kh, g.kw, c)
    # One strided slice per kernel tap, as in _patches, but adding instead of reading.
    for a in range(g.kh):
        for b in range(g.kw):
            padded[:, a * g.dh: a * g.dh + (g.out_h - 1) * g.sh + 1: g.sh,
                   b * g.dw: b * g.dw + (g.out_w - 1) * g.sw + 1: g.sw, :] += taps[:, :, :, a, b, :]
    return padded[:, top: top + h, left: left + w, :]


def col2im(patches, input_shape, kh, kw, *, stride=1, padding="valid", dilation=1):
    """Scatter-add windows back onto an image: the transpose of :func:`im2col`.

    Taught in ``course/week3_building_blocks/04_backprop_through_convolution.ipynb``.

    ``im2col`` copies every input pixel into each window that covers it; ``col2im`` goes the
    other way and *adds* the entries of every window back onto the pixel they came from, so a
    pixel covered by several windows receives the sum of their entries (padding positions are
    dropped). It is not the inverse of ``im2col`` but its transpose as a linear map:
    ``sum(im2col(x, ...) * p) == sum(x * col2im(p, x.shape, ...))`` for all ``x`` and ``p``.
    That is exactly what the backward pass of a convolution needs: the gradient of a pixel is
    the sum of the gradients of all the window entries it was copied to.

    Parameters
    ----------
    patches : array_like
        Windows in the layout :func:`im2col` returns: ``(N, out_h, out_w, kh * kw * C)`` for
        ``input_shape`` ``(N, H, W, C)``, ``(out_h, out_w, kh * kw * C)`` for ``(H, W, C)``,
        ``(out_h, out_w, kh * kw)`` for ``(H, W)``.
    input_shape : tuple of int
        Shape of the image the windows were taken from.
    kh, kw, stride, padding, dilation
        As in :func:`im2col`.

    Returns
    -------
    numpy.ndarray, shape ``input_shape``

    Examples
    --------
    >>> ones = np.ones((2, 2, 4))            # four 2×2 windows of a 3×3 image, all ones
    >>> col2im(ones, (3, 3), 2, 2)           # how many windows cover each pixel
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]])
    """
    patches = _as_array(patches, "patches")
    if not (isinstance(input_shape, (tuple, list)) and len(input_shape) in (2, 3, 4)
            and all(is_int(v) and v > 0 for v in input_shape)):
        raise ValueError(
            f"input_shape must be (H, W), (H, W, C) or (N, H, W, C) with positive sizes, got {input_shape!r}"
        )
    kh, kw = check_int(kh, "kh", minimum=1), check_int(kw, "kw", minimum=1)
    shape = tuple(int(v) for v in input_shape)
    shape4 = shape if len(shape) == 4 else (1, *shape) if len(shape) == 3 else (1, *shape, 1)
    g = _Geometry(shape4[1:3], (kh, kw), stride, padding, dilation)
    expected4 = (shape4[0], g.out_h, g.out_w, kh * kw * shape4[3])
    expected = expected4 if len(shape) == 4 else expected4[1:]
    if patches.shape != expected:
        raise ValueError(
            f"patches must have the shape im2col gives for an input of shape {shape}, "
            f"{expected}, got shape {patches.shape}"
        )
    dtype = _result_dtype(patches)
    image = _scatter_patches(patches.reshape(expected4).astype(dtype, copy=False), g, shape4[1:3], dtype)
    return image.reshape(shape)


def _check_grad_out(grad_out, expected: tuple, layout: str) -> np.ndarray:
    grad_out = _as_array(grad_out, "grad_out")
    if grad_out.shape != expected:
        raise ValueError(
            f"grad_out must have the shape of the forward output, {layout} = {expected}, "
            f"got shape {grad_out.shape}"
        )
    return grad_out


def _backward(x4, w4, grad4, g: _Geometry, dtype):
    """Gradients of the layer (N, H, W, Cin) * (kh, kw, Cin, Cout) for upstream gradient grad4."""
    kh, kw, cin, cout = w4.shape
    patches = _patches(g.pad(x4.astype(dtype, copy=False)), g)       # (N, out_h, out_w, kh*kw*Cin)
    rows = patches.reshape(-1, kh * kw * cin)                         # one row per output position
    upstream = grad4.astype(dtype, copy=False).reshape(-1, cout)      # dL/dout, same rows
    # Each weight met one entry of every window: its gradient sums over all positions (one product).
    grad_w = (rows.T @ upstream).reshape(kh, kw, cin, cout)
    grad_b = upstream.sum(axis=0)
    # Each window entry got dL/dout times its weight; entries copied from the same pixel add up.
    grad_patches = upstream @ w4.astype(dtype, copy=False).reshape(-1, cout).T
    grad_x = _scatter_patches(grad_patches.reshape(patches.shape), g, x4.shape[1:3], dtype)
    return grad_x, grad_w, grad_b


def correlate2d_backward(x, w, grad_out, *, stride=1, padding="valid", dilation=1):
    """Gradients of :func:`correlate2d` with respect to the image and the kernel.

    Taught in ``course/week3_building_blocks/04_backprop_through_convolution.ipynb``.

    Given ``grad_out[i, j] = dL/dout[i, j]`` (the *upstream* gradient of some loss ``L``
    with respect to the output of ``correlate2d(x, w, ...)``), returns ``dL/dx`` and ``dL/dw``.
    For stride 1, dilation 1 and ``"valid"`` padding::

        dL/dw[k, l] = sum_{i, j} grad_out[i, j] * x[i + k, j + l]   = correlate2d(x, grad_out)
        dL/dx       = convolve2d(grad_out, w, padding="full")       (the kernel flipped)

    A weight is used at every output position, so its gradient is a sum over all of them.
    Strides, dilation and padding are handled by :func:`im2col` / :func:`col2im`; the
    gradient of padding zeros is dropped.

    Parameters
    ----------
    x : array_like, shape (H, W)
    w : array_like, shape (kh, kw)
    grad_out : array_like, shape (out_h, out_w)
        The shape of ``correlate2d(x, w, ...)``.
    stride, padding, dilation
        As in :func:`correlate2d`.

    Returns
    -------
    grad_x : numpy.ndarray, shape (H, W)
    grad_w : numpy.ndarray, shape (kh, kw)
        ``int64`` if all inputs are integers (exact), else float.

    Raises
    ------
    ValueError
        As :func:`correlate2d`, and if ``grad_out`` does not have the forward output's shape.

    Examples
    --------
    >>> x = np.array([[1, 2, 3],
    ...               [4, 5, 6],
    ...               [7, 8, 9]])
    >>> w = np.array([[1, 0],
    ...               [0, 2]])
    >>> grad_x, grad_w = correlate2d_backward(x, w, np.ones((2, 2), int))  # L = sum of the outputs
    >>> grad_w  # each weight: the sum of the four pixels it met
    array([[12, 16],
           [24, 28]])
    >>> grad_x
    array([[1, 1, 0],
           [1, 3, 2],
           [0, 2, 2]])
    """
    x, w = _check_single_channel(x, w)
    g = _Geometry(x.shape, w.shape, stride, padding, dilation)
    grad_out = _check_grad_out(grad_out, (g.out_h, g.out_w), "(out_h, out_w)")
    dtype = _result_dtype(x, w, grad_out)
    grad_x, grad_w, _ = _backward(x[None, :, :, None], w[:, :, None, None], grad_out[None, :, :, None], g, dtype)
    return grad_x[0, :, :, 0], grad_w[:, :, 0, 0]


def conv2d_backward(x, w, grad_out, *, stride=1, padding="valid", dilation=1):
    """Backward pass of :func:`conv2d`: gradients for the input, the kernel and the bias.

    Taught in ``course/week3_building_blocks/04_backprop_through_convolution.ipynb``.

    With ``grad_out = dL/dout`` for ``out = conv2d(x, w, b, ...)``:

    * ``grad_w[a, b, c, o] = sum_{n, i, j} xp[n, i*s + a*d, j*s + b*d, c] * grad_out[n, i, j, o]``:
      a correlation of the (padded) input with the upstream gradient, summed over the batch;
      computed as one matrix product ``im2col(x)^T @ grad_out``.
    * ``grad_x``: every window entry receives ``grad_out[n, i, j, :] @ w[a, b, c, :]``, and
      :func:`col2im` adds the entries that came from the same pixel. For stride 1 this is a
      "full" convolution of ``grad_out`` with the kernel (rotated by 180°, channels swapped).
      Gradients that land on padding are dropped.
    * ``grad_b[o] = sum_{n, i, j} grad_out[n, i, j, o]``: the bias is added at every position.

    The bias does not change any of the three, so it is not an argument.

    Parameters
    ----------
    x : array_like
        ``(N, H, W, Cin)`` or ``(H, W, Cin)``, as given to :func:`conv2d`.
    w : array_like, shape (kh, kw, Cin, Cout)
    grad_out : array_like
        The shape of the forward output: ``(N, out_h, out_w, Cout)`` (``(out_h, out_w, Cout)``
        when ``x`` has no batch axis).
    stride, padding, dilation
        As in :func:`conv2d`.

    Returns
    -------
    grad_x : numpy.ndarray, the shape of ``x``
    grad_w : numpy.ndarray, shape (kh, kw, Cin, Cout)
    grad_b : numpy.ndarray, shape (Cout,)

    Raises
    ------
    ValueError
        As :func:`conv2d`, and if ``grad_out`` does not have the forward output's shape.
    TypeError
        Non-numeric inputs or arguments of the wrong type.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x, w = rng.normal(size=(2, 5, 5, 3)), rng.normal(size=(3, 3, 3, 4))
    >>> out = conv2d(x, w, stride=2, padding="same")
    >>> grad_x, grad_w, grad_b = conv2d_backward(x, w, np.ones_like(out), stride=2, padding="same")
    >>> grad_x.shape, grad_w.shape, grad_b
    ((2, 5, 5, 3), (3, 3, 3, 4), array([18., 18., 18., 18.]))
    """
    x4, w, _, batched = _check_multi_channel(x, w, None)
    kh, kw, _, cout = w.shape
    g = _Geometry(x4.shape[1:3], (kh, kw), stride, padding, dilation)
    if batched:
        expected, layout = (x4.shape[0], g.out_h, g.out_w, cout), "(N, out_h, out_w, Cout)"
    else:
        expected, layout = (g.out_h, g.out_w, cout), "(out_h, out_w, Cout)"
    grad_out = _check_grad_out(grad_out, expected, layout)
    dtype = _result_dtype(x4, w, grad_out)
    grad_x, grad_w, grad_b = _backward(x4, w, grad_out if batched else grad_out[None], g, dtype)
    return (grad_x if batched else grad_x[0]), grad_w, grad_b
