"""Reading the model's output: the most likely ImageNet classes of each image, with their names."""

from __future__ import annotations

import numbers

import numpy as np

from ._shared import NUM_CLASSES
from .class_names import imagenet_class_names

__all__ = ["decode"]


def decode(probabilities, top: int = 5, *, class_names=None) -> list[list[tuple[int, str, float]]]:
    """The ``top`` most likely ImageNet classes of each image, most likely first.

    Parameters
    ----------
    probabilities : array_like
        ``(N, 1000)`` model outputs, e.g. ``model.predict(preprocess(images))``.
    top : int
        How many classes to list per image (1..1000).
    class_names : list of str, optional
        The 1000 names; default :func:`imagenet_class_names`.

    Returns
    -------
    list of list of (int, str, float)
        For each image, ``top`` tuples ``(class index, name, probability)``.

    Examples
    --------
    >>> p = np.zeros((1, 1000)); p[0, 967] = 0.9; p[0, 504] = 0.1
    >>> decode(p, top=2, class_names=[f"class {i}" for i in range(1000)])
    [[(967, 'class 967', 0.9), (504, 'class 504', 0.1)]]
    """
    scores = np.asarray(probabilities)
    if scores.ndim != 2 or scores.shape[1] != NUM_CLASSES:
        hint = " (one image? use probabilities[None])" if scores.shape == (NUM_CLASSES,) else ""
        raise ValueError(f"expected probabilities of shape (N, {NUM_CLASSES}), got {scores.shape}{hint}")
    if not (np.issubdtype(scores.dtype, np.floating) or np.issubdtype(scores.dtype, np.integer)):
        raise TypeError(f"expected numeric probabilities, got dtype {scores.dtype}")
    if isinstance(top, bool) or not isinstance(top, numbers.Integral) or not 1 <= top <= NUM_CLASSES:
        raise ValueError(f"top must be a whole number from 1 to {NUM_CLASSES}, got {top!r}")
    if class_names is None:
        class_names = imagenet_class_names(verbose=False)
    elif len(class_names) != NUM_CLASSES:
        raise ValueError(f"class_names must have {NUM_CLASSES} entries, got {len(class_names)}")
    results = []
    for row in scores:
        best = np.argsort(-row, kind="stable")[:top]
        results.append([(int(i), str(class_names[i]), float(row[i])) for i in best])
    return results
