"""The 1000 ImageNet class names, in the order of the model's outputs: Keras' index, or an offline copy.

Credits: Keras' ``imagenet_class_index.json``; offline, ``imagenet_classes.js`` from the npm
package ``@tensorflow-models/mobilenet`` 2.1.1 (Apache-2.0, Google LLC), installed by
``tools/fetch_offline_assets.sh``.
"""

from __future__ import annotations

import ast
import json
import os
import re
import sys
from pathlib import Path

from .._sources import load_first_working
from ._shared import NUM_CLASSES, WeightsUnavailableError, models_dir

__all__ = ["ASSETS_ENV_VAR", "CLASS_NAMES_JS", "imagenet_class_names", "parse_imagenet_classes_js",
           "parse_keras_class_index"]

# The same file and hash that keras.applications.imagenet_utils.decode_predictions uses.
_KERAS_CLASS_INDEX_URL = "https://storage.googleapis.com/download.tensorflow.org/data/imagenet_class_index.json"
_KERAS_CLASS_INDEX_MD5 = "c2c37ea517e94d9795004a39431a14cb"
CLASS_NAMES_JS = "imagenet_classes.js"
ASSETS_ENV_VAR = "CNN_COURSE_ASSETS"

_class_names_cache: dict[str, list[str]] = {}


def imagenet_class_names(*, cache_dir=None, verbose: bool = True) -> list[str]:
    """The 1000 ImageNet class names, in the order of the model's outputs.

    Each name is the class's first synonym, e.g. index 281 -> ``'tabby'``,
    285 -> ``'Egyptian cat'``, 967 -> ``'espresso'``.

    Sources, in order: Keras' ``imagenet_class_index.json`` (downloaded once into
    ``<cache>/models``, checked against Keras' MD5); offline, ``imagenet_classes.js``
    from the npm package ``@tensorflow-models/mobilenet`` found in ``$CNN_COURSE_ASSETS``
    or ``<sys.prefix>/share/cnn_course/`` (``tools/fetch_offline_assets.sh`` puts it there).

    Raises
    ------
    WeightsUnavailableError
        If neither source is available; the message says how to fix it.

    Examples
    --------
    >>> names = imagenet_class_names(verbose=False)  # doctest: +SKIP
    >>> len(names), names[967]  # doctest: +SKIP
    (1000, 'espresso')
    """
    key = str(models_dir(cache_dir))
    if key in _class_names_cache:
        return list(_class_names_cache[key])
    # Looked up at call time, so that a test can replace either source.
    names = load_first_working(
        "ImageNet class names",
        [
            ("Keras download", lambda: _class_names_from_keras(cache_dir)),
            (f"offline {CLASS_NAMES_JS} from the npm package @tensorflow-models/mobilenet", _class_names_offline),
        ],
        fail=WeightsUnavailableError,
        how_to_fix="run `make setup` (or `bash tools/fetch_offline_assets.sh <venv folder>`), "
        f"or set {ASSETS_ENV_VAR} to a folder holding {CLASS_NAMES_JS}, or connect to the internet "
        "so that Keras can download imagenet_class_index.json.",
        verbose=verbose,
    )
    _class_names_cache[key] = names
    return list(names)


def _checked_names(names, where) -> list[str]:
    if len(names) != NUM_CLASSES or not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"{where} does not hold {NUM_CLASSES} class names")
    return names


def _class_names_from_keras(cache_dir=None):
    import keras

    path = keras.utils.get_file(
        "imagenet_class_index.json", _KERAS_CLASS_INDEX_URL,
        cache_dir=None if cache_dir is None else str(cache_dir), cache_subdir="models",
        file_hash=_KERAS_CLASS_INDEX_MD5,
    )
    return parse_keras_class_index(Path(path).read_text()), path


def parse_keras_class_index(text: str) -> list[str]:
    """Names from Keras' ``{"0": ["n01440764", "tench"], ...}``, underscores as spaces.

    Examples
    --------
    >>> index = {str(i): [f"n{i:08d}", f"class_{i}"] for i in range(1000)}
    >>> parse_keras_class_index(json.dumps(index))[:2]
    ['class 0', 'class 1']
    """
    index = json.loads(text)
    names = [index[str(i)][1].replace("_", " ") for i in range(min(len(index), NUM_CLASSES))]
    return _checked_names(names if len(index) == NUM_CLASSES else [], "imagenet_class_index.json")


def _class_names_offline():
    folders = []
    if os.environ.get(ASSETS_ENV_VAR):
        folders.append(Path(os.environ[ASSETS_ENV_VAR]))
    folders.append(Path(sys.prefix) / "share" / "cnn_course")
    for folder in folders:
        path = folder / CLASS_NAMES_JS
        if path.is_file():
            return parse_imagenet_classes_js(path.read_text(encoding="utf-8")), str(path)
    raise FileNotFoundError(f"{CLASS_NAMES_JS} not found in {', '.join(map(str, folders))}")


# One entry of the JS object: `123: 'text' + 'more text',` (single- or double-quoted pieces).
_JS_STRING = r"'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\""
_JS_ENTRY = re.compile(rf"(?m)^\s*(\d+)\s*:\s*((?:(?:{_JS_STRING})\s*\+?\s*)+),?\s*$")


def parse_imagenet_classes_js(text: str) -> list[str]:
    """Names from ``imagenet_classes.js`` (``{0: 'tench, Tinca tinca', ...}``), first synonym each.

    The file is read as text, never executed: each entry is matched with a regular
    expression and its quoted pieces are decoded with :func:`ast.literal_eval`.

    Examples
    --------
    >>> js = "{\\n" + "".join(f"  {i}: 'name {i}, ' +\\n    'synonym',\\n" for i in range(1000)) + "};"
    >>> parse_imagenet_classes_js(js)[:2]
    ['name 0', 'name 1']
    """
    start = text.find("IMAGENET_CLASSES")
    body = text[start:] if start >= 0 else text
    names: dict[int, str] = {}
    for match in _JS_ENTRY.finditer(body):
        pieces = re.findall(_JS_STRING, match.group(2))
        full_name = "".join(ast.literal_eval(piece) for piece in pieces)
        names[int(match.group(1))] = full_name.split(",")[0].strip()
    ordered = [names.get(i, "") for i in range(NUM_CLASSES)] if len(names) == NUM_CLASSES else []
    return _checked_names(ordered, CLASS_NAMES_JS)
