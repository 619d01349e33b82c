"""What the parts of :mod:`cnn_course.pretrained` share: sizes, the error, where weights are cached."""

from __future__ import annotations

from pathlib import Path

from ..cache import keras_cache_dir

__all__ = ["IMAGE_SIZE", "NUM_CLASSES", "WeightsUnavailableError", "models_dir"]

IMAGE_SIZE = 224
NUM_CLASSES = 1000


class WeightsUnavailableError(RuntimeError):
    """No source of pretrained weights (or class names) worked; the message says how to fix it."""


def models_dir(cache_dir=None) -> Path:
    """``<cache_dir or $KERAS_HOME or ~/.keras>/models``: where Keras keeps downloaded weights."""
    root = Path(cache_dir).expanduser() if cache_dir is not None else keras_cache_dir()
    return root / "models"
