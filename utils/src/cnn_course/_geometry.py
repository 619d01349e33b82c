"""How a window slides along an axis: the rules that convolution, pooling, receptive fields and
the widgets share (private; the public functions document them for students).

One place for

* reading an int or a ``(rows, cols)`` pair (:func:`as_pair`, :func:`check_int`): Python and
  numpy integers are accepted, booleans are not (``True`` is not a stride);
* reading a word such as a padding or a pooling mode (:func:`check_word`): upper and lower case
  are the same word everywhere (``"SAME"`` is ``"same"``, ``"MAX"`` is ``"max"``);
* the span of a dilated kernel, ``k + (k - 1)(d - 1)`` (:func:`dilated_size`);
* the zeros each padding adds before and after an axis (:func:`padding_amounts`), with the
  Keras/TensorFlow rule for ``"same"`` (:func:`same_padding`), and the resulting output length
  (:func:`output_length`).

Examples
--------
>>> as_pair(3, "stride", minimum=1), as_pair((1, 2), "stride", minimum=1)
((3, 3), (1, 2))
>>> dilated_size(3, 2)
5
>>> same_padding(5, 2, 1)  # the odd zero goes after (bottom/right)
(0, 1)
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = [
    "PADDING_WORDS",
    "as_pair",
    "check_int",
    "check_word",
    "dilated_size",
    "is_int",
    "output_length",
    "padding_amounts",
    "same_padding",
]

PADDING_WORDS = ("valid", "same", "full")


def is_int(value) -> bool:
    """True for Python and numpy integers, False for booleans (``True`` is not a size)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _lower_bound_text(minimum: int) -> str:
    return {1: "positive", 0: "zero or more"}.get(minimum, f"at least {minimum}")


def check_int(value, name: str, *, minimum: int | None = None, hint: str = "") -> int:
    """``value`` as a Python int, at least ``minimum``; TypeError/ValueError naming ``name``.

    Examples
    --------
    >>> check_int(np.int64(4), "k", minimum=1)
    4
    >>> check_int(True, "k")
    Traceback (most recent call last):
    ...
    TypeError: k must be an int, got True
    """
    if not is_int(value):
        raise TypeError(f"{name} must be an int{hint}, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be {_lower_bound_text(minimum)}, got {value!r}")
    return int(value)


def as_pair(value, name: str, *, minimum: int) -> tuple[int, int]:
    """An int, or a pair of ints ``(rows, cols)``, as a pair of Python ints each >= ``minimum``.

    Examples
    --------
    >>> as_pair(np.int64(2), "dilation", minimum=1)
    (2, 2)
    >>> as_pair((2, 0), "stride", minimum=1)
    Traceback (most recent call last):
    ...
    ValueError: stride must be positive, got (2, 0)
    >>> as_pair(1.5, "stride", minimum=1)
    Traceback (most recent call last):
    ...
    TypeError: stride must be an int or a pair of ints (rows, cols), got 1.5
    """
    if is_int(value):
        values = (int(value), int(value))
    elif (isinstance(value, (tuple, list, np.ndarray)) and np.ndim(value) == 1 and len(value) == 2
          and all(is_int(v) for v in value)):
        values = (int(value[0]), int(value[1]))
    else:
        raise TypeError(f"{name} must be an int or a pair of ints (rows, cols), got {value!r}")
    if min(values) < minimum:
        shown = value if is_int(value) else values
        raise ValueError(f"{name} must be {_lower_bound_text(minimum)}, got {shown!r}")
    return values


def check_word(value, name: str, choices) -> str:
    """``value`` in lower case, if it is one of ``choices`` (compared without case).

    Examples
    --------
    >>> check_word("SAME", "padding", PADDING_WORDS)
    'same'
    >>> check_word("middle", "padding", PADDING_WORDS)
    Traceback (most recent call last):
    ...
    ValueError: unknown padding 'middle': use 'valid', 'same' or 'full'
    """
    options = ", ".join(map(repr, choices[:-1])) + f" or {choices[-1]!r}" if len(choices) > 1 else repr(choices[0])
    if not isinstance(value, str):
        raise TypeError(f"{name} must be one of {options}, got {value!r}")
    word = value.strip().lower()
    if word not in choices:
        raise ValueError(f"unknown {name} {value!r}: use {options}")
    return word


def dilated_size(k: int, d: int) -> int:
    """Span of a kernel of ``k`` taps with ``d - 1`` gaps between neighbouring taps."""
    return k + (k - 1) * (d - 1)


def same_padding(n: int, k_eff: int, stride: int) -> tuple[int, int]:
    """Zeros (before, after) that Keras/TensorFlow's ``"same"`` adds to an axis of length ``n``.

    Just enough for ``ceil(n / stride)`` outputs; an odd zero goes after (bottom/right).
    """
    out = -(-n // stride)  # ceil(n / stride)
    total = max((out - 1) * stride + k_eff - n, 0)
    return total // 2, total - total // 2


def padding_amounts(n: int, k_eff: int, stride: int, padding) -> tuple[int, int]:
    """Zeros (before, after) along one axis; ``padding`` is a checked word or an int >= 0."""
    if padding == "valid":
        return 0, 0
    if padding == "full":
        return k_eff - 1, k_eff - 1
    if padding == "same":
        return same_padding(n, k_eff, stride)
    return padding, padding


def output_length(n: int, k_eff: int, stride: int, before: int, after: int) -> int:
    """How many windows of span ``k_eff`` fit, ``stride`` apart, in the padded axis (may be < 1)."""
    return (n + before + after - k_eff) // stride + 1
