"""Where downloaded data and weights are cached, and how a cached file is checked.

Examples
--------
>>> from cnn_course.cache import keras_cache_dir
>>> (keras_cache_dir() / "datasets").is_absolute()
True
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

__all__ = ["keras_cache_dir", "sha256_of"]


def keras_cache_dir() -> Path:
    """The folder Keras caches downloads in: ``$KERAS_HOME``, else ``~/.keras``."""
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras").expanduser()


def sha256_of(path) -> str:
    """SHA-256 of a file as a hex string, read in 1 MiB blocks (weights files are large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
