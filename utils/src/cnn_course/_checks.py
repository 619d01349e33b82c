"""Argument checks shared by the modules of ``cnn_course`` (private).

Each check raises ``TypeError`` or ``ValueError`` with a message that names the argument and
says what was expected, so a student sees what to change rather than a numpy or Keras error.
"""

from __future__ import annotations

import numpy as np


def check_positive_int(value, what: str) -> int:
    """``value`` if it is a whole number > 0 (``True``/``False`` are refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be a whole number, got {value!r} ({type(value).__name__})")
    if value <= 0:
        raise ValueError(f"{what} must be positive, got {value}")
    return value


def numeric_array(value, name: str, *, booleans: bool = False) -> np.ndarray:
    """``value`` as an array of ints or floats.

    With ``booleans=True`` a boolean array counts as the integers 0 and 1; otherwise it is
    refused like strings, objects and complex numbers.
    """
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be an array of numbers, got the string {value!r}")
    try:
        array = np.asarray(value)
    except ValueError as error:  # ragged nested lists
        raise ValueError(f"{name} must be a rectangular array of numbers: {error}") from None
    if booleans and array.dtype == bool:
        return array.astype(np.int64)
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise TypeError(
            f"{name} must hold integer or float numbers, got dtype {array.dtype}"
            + (" (complex numbers are not supported)" if np.issubdtype(array.dtype, np.complexfloating)
               else "")
        )
    return array
