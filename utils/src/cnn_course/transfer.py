"""Transfer learning: a pretrained network as a frozen base, a new head, fine-tuning.

Week 5's recipe, in three steps:

1. **Features.** A network trained on ImageNet computes, in its convolutional layers,
   features that are useful far beyond ImageNet's classes; early layers hold general
   features (edges, colours), late layers more task-specific ones (Yosinski, Clune,
   Bengio & Lipson, "How transferable are features in deep neural networks?", NeurIPS
   2014). :func:`feature_extractor` cuts a network at one layer (or at several, in one
   pass) and pools its feature map.
2. **A new head on a frozen base.** :func:`frozen_base_with_head` keeps the pretrained
   weights fixed and trains only a small classifier on top. Because the base does not
   change, its features can be computed once (:func:`cache_features`) and the head
   (:func:`head_on_features`) trained on them in seconds; the trained head then goes back
   on the base, and the result is the model one would have got by training end to end.
3. **Fine-tuning.** :func:`unfreeze_top` lets the top blocks of the base learn again,
   with a small learning rate, while every batch-normalisation layer stays frozen.

Batch normalisation needs care in both steps. In training mode a BatchNormalization
layer normalises with the statistics of the current batch and moves its stored
("moving") mean and variance towards them. A small data set of new images would drag
those ImageNet statistics somewhere else and change every feature the base computes.
So every BN layer of the base stays frozen, even when the blocks around it are
unfrozen: Keras 3 runs a non-trainable BatchNormalization layer in inference mode
(stored statistics, never updated), and its scale and shift cannot move either. The
base is also called with ``training=False``, as the Keras guide "Transfer learning &
fine-tuning" (F. Chollet) does; but in Keras 3 (checked with 3.15) ``fit`` calls the
whole model with ``training=True``, and that replaces the ``training=False`` written
into a functional model, so it is the frozen BN layers that do the work.

The course's pretrained network is :func:`cnn_course.pretrained.mobilenet_v2`. Its
convolutional part works at any input size, so every builder here takes an
``input_shape`` (e.g. ``(96, 96, 3)``, much cheaper on a laptop than 224×224); inputs
are the [-1, 1] floats of :func:`cnn_course.pretrained.preprocess`. Heads give
*logits* (no softmax): compile with
``keras.losses.SparseCategoricalCrossentropy(from_logits=True)``.

Examples
--------
A tiny base, named like MobileNetV2's blocks (``block_<k>_...``):

>>> import keras
>>> from cnn_course.transfer import frozen_base_with_head, unfreeze_top
>>> inputs = keras.Input((16, 16, 3))
>>> x = inputs
>>> for k in (1, 2):
...     x = keras.layers.Conv2D(4, 3, use_bias=False, name=f"block_{k}_conv")(x)
...     x = keras.layers.BatchNormalization(name=f"block_{k}_BN")(x)
>>> base = keras.Model(inputs, x)
>>> model = frozen_base_with_head(base, 3, dropout=0.0)
>>> [layer.name for layer in model.layers], model.output_shape
(['image', 'base', 'head'], (None, 3))
>>> [weight.path for weight in model.trainable_weights]  # only the new head learns
['logits/kernel', 'logits/bias']
>>> unfreeze_top(model, 1)  # block 2's convolution learns again, its BN layer does not
['block_2_conv']
"""

from __future__ import annotations

import difflib
import hashlib
import math
import numbers
import os
import re
from pathlib import Path

import numpy as np

from ._checks import numeric_array
from ._geometry import check_int, is_int
from .cache import keras_cache_dir, sha256_of

__all__ = [
    "cache_features",
    "feature_extractor",
    "frozen_base_with_head",
    "grey_image_extractor",
    "head_on_features",
    "stored_features",
    "unfreeze_top",
]

POOLINGS = ("avg", "max", None)

# How the two MobileNetV2 layouts name the layers of their inverted-residual blocks.
# Keras applications: expanded_conv_* (block 0), block_1_* ... block_16_*; stem Conv1,
# bn_Conv1, Conv1_relu; last 1x1 convolution Conv_1, Conv_1_bn, out_relu.
# torchvision (cnn_course.pretrained's offline weights): features_0_* (stem),
# features_1_conv_* ... features_17_conv_* (blocks), features_18_* (last 1x1 convolution).
_KERAS_BLOCK = re.compile(r"^block_(\d+)_")
_KERAS_FIRST_BLOCK = re.compile(r"^expanded_conv(_|$)")
_KERAS_STEM = ("Conv1", "Conv1_pad", "bn_Conv1", "Conv1_relu")
_KERAS_TOP = ("Conv_1", "Conv_1_bn", "out_relu")
_TORCH_BLOCK = re.compile(r"^features_(\d+)_conv_")
_TORCH_OTHER = re.compile(r"^features_(\d+)_")

# Above this many batches cache_features shows Keras' progress bar (a few seconds of work).
_PROGRESS_BAR_BATCHES = 10


# ----------------------------------------------------------------------------- checks


def _check_model(model, name: str):
    import keras

    if not isinstance(model, keras.Model):
        raise TypeError(f"{name} must be a Keras model, got {type(model).__name__}")
    return model


def _output_count(model) -> int:
    """How many outputs ``model`` gives (1 for a model whose outputs Keras does not know yet)."""
    try:
        return max(1, len(model.outputs or ()))
    except (AttributeError, ValueError):
        return 1


def _check_input_shape(input_shape, channels) -> tuple:
    if (not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3
            or not all(is_int(side) for side in input_shape)):
        raise TypeError(
            f"input_shape must be (height, width, channels), three whole numbers such as "
            f"(96, 96, 3), got {input_shape!r}"
        )
    height, width, given_channels = (int(side) for side in input_shape)
    if min(height, width, given_channels) < 1:
        raise ValueError(f"input_shape must hold positive sizes, got {tuple(input_shape)}")
    if channels is not None and given_channels != channels:
        raise ValueError(
            f"input_shape {tuple(input_shape)} has {given_channels} channel(s), but the base "
            f"takes {channels}; only the height and width can change"
        )
    return height, width, given_channels


def _check_classes(classes) -> int:
    classes = check_int(classes, "classes")
    if classes < 2:
        raise ValueError(
            f"classes must be at least 2 (a classifier chooses between classes), got {classes}; "
            "for a yes/no problem use classes=2"
        )
    return classes


def _check_dropout(dropout) -> float:
    if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real):
        raise TypeError(f"dropout must be a number between 0 and 1, got {dropout!r}")
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(
            f"dropout is the fraction of features dropped while training: it must be at least 0 "
            f"and less than 1, got {dropout!r}"
        )
    return float(dropout)


# ----------------------------------------------------------------------------- the graph


def _trace(base, input_shape=None):
    """Run ``base``'s layers (the same layer objects) on a new input; (inputs, outputs, names).

    ``outputs`` maps each layer's name to its output tensor in the new graph and ``names``
    lists the layers in the order they run. Re-running the layers, rather than reading
    ``layer.output``, is what lets the input size change: a convolution works at any size,
    only the input layer insists on one. Because the layers are shared, their weights and
    ``trainable`` flags are those of ``base``.
    """
    import keras

    _check_model(base, "base")
    try:
        original_inputs = base.inputs
    except (AttributeError, ValueError):
        original_inputs = None
    if not original_inputs:
        raise TypeError(
            f"base must be a functional or Sequential Keras model that starts with keras.Input, "
            f"so that its layers can be followed; {base.name!r} ({type(base).__name__}) has no "
            "known input"
        )
    if len(original_inputs) != 1:
        raise ValueError(f"base must take one input (a batch of images), {base.name!r} takes "
                         f"{len(original_inputs)}")
    base_shape = tuple(original_inputs[0].shape[1:])
    if len(base_shape) != 3:
        raise ValueError(
            f"base must take images (batch, height, width, channels), {base.name!r} takes input "
            f"of shape {(None, *base_shape)}"
        )
    shape = base_shape if input_shape is None else _check_input_shape(input_shape, base_shape[-1])
    inputs = keras.Input(shape, name="image")

    outputs, names = {}, []

    def remember(layer, *args, **kwargs):
        result = layer(*args, **kwargs)
        if layer.name not in outputs:  # a layer used twice: its first use counts
            outputs[layer.name] = result
            names.append(layer.name)
        return result

    if isinstance(base, keras.Sequential):
        x = inputs
        for layer in base.layers:
            x = remember(layer, x)
    else:
        structure = [inputs] if isinstance(base.input, (list, tuple)) else inputs
        # clone_function returns each layer itself: nothing is copied, the graph is re-run.
        keras.models.clone_model(base, input_tensors=structure, clone_function=lambda layer: layer,
                                 call_function=remember)
    return inputs, outputs, names


def _unknown_layer_message(name, names, outputs) -> str:
    close = difflib.get_close_matches(str(name), names, n=3, cutoff=0.6)
    maps = [n for n in names if len(outputs[n].shape) == 4]
    if close:
        hint = f"did you mean {', '.join(map(repr, close))}?"
    else:
        shown = ", ".join(map(repr, maps[-4:]))
        hint = f"its last feature maps are {shown}" if maps else "it has no feature maps"
    return (f"the base has no layer named {name!r}: {hint} "
            f"({len(names)} layers in all; [layer.name for layer in base.layers] lists them)")


def _layer_names(layer_name, names, outputs):
    """The layers to read: a list of names, or None for "the last feature map"; checked against ``names``."""
    if layer_name is None or isinstance(layer_name, str):
        requested = [layer_name]
    elif isinstance(layer_name, (list, tuple)):
        requested = list(layer_name)
        if not requested:
            raise ValueError("layer_name is an empty list: give at least one layer name, e.g. "
                             "[layer.name for layer in base.layers][-1]")
        for item in requested:
            if not isinstance(item, str):
                raise TypeError(f"layer_name must hold layer names (strings), got {item!r} in {layer_name!r}")
        repeated = sorted({item for item in requested if requested.count(item) > 1})
        if repeated:
            raise ValueError(f"layer_name names {', '.join(map(repr, repeated))} more than once: each "
                             "layer gives one output, so list it once")
    else:
        raise TypeError(f"layer_name must be a layer's name (a string), a list of names, or None, "
                        f"got {layer_name!r}")
    for item in requested:
        if item is not None and item not in outputs:
            raise ValueError(_unknown_layer_message(item, names, outputs))
    return requested


def _extractor(base, layer_name, pooling, input_shape, name):
    import keras

    if pooling is not None and not isinstance(pooling, str):
        raise TypeError(f"pooling must be 'avg', 'max' or None, got {pooling!r}")
    if pooling not in POOLINGS:
        raise ValueError(f"unknown pooling {pooling!r}: use 'avg' (global average), 'max' or None "
                         "(the whole feature map)")
    inputs, outputs, names = _trace(base, input_shape)
    requested = _layer_names(layer_name, names, outputs)
    several = isinstance(layer_name, (list, tuple))
    results = []
    for item in requested:
        if item is None:
            maps = [n for n in names if len(outputs[n].shape) == 4]
            if not maps:
                raise ValueError(f"base {base.name!r} has no layer whose output is a feature map "
                                 "(batch, height, width, channels)")
            item = maps[-1]
        x = outputs[item]
        if pooling is not None:
            if len(x.shape) != 4:
                raise ValueError(
                    f"layer {item!r} gives shape {tuple(x.shape)}, not a feature map (batch, "
                    "height, width, channels) that can be pooled: pick a convolutional layer, or "
                    "use pooling=None"
                )
            pool = keras.layers.GlobalAveragePooling2D if pooling == "avg" else keras.layers.GlobalMaxPooling2D
            # One pooling layer per output; with several outputs each is named after its layer.
            x = pool(name=f"{pooling}_pool_{item}" if several else f"{pooling}_pool")(x)
        results.append(x)
    return keras.Model(inputs, results if several else results[0], name=name)


# ----------------------------------------------------------------------------- features


def feature_extractor(base, layer_name=None, pooling="avg", *, input_shape=None):
    """A model from the base's input to one layer's output (or several), pooled to one vector per image.

    Parameters
    ----------
    base : keras.Model
        A functional or Sequential model, e.g. :func:`cnn_course.pretrained.mobilenet_v2`.
    layer_name : str or list of str, optional
        The layer whose output to take. Default: the last layer whose output is a feature
        map ``(batch, height, width, channels)``, i.e. the last convolutional features
        before the classifier (``out_relu`` or ``features_18_2`` in MobileNetV2). Earlier
        layers give more general, lower-level features. A list (or tuple) of names gives
        one model with one output per name, in that order: one pass through the base
        computes the features of every depth, where separate extractors would run the
        first layers once each.
    pooling : {"avg", "max", None}
        Global average (or max) pooling turns an ``(H, W, C)`` feature map into ``C``
        numbers per image; ``None`` keeps the whole map.
    input_shape : (int, int, int), optional
        ``(height, width, channels)`` of the images the extractor takes, if not the base's
        own (e.g. ``(96, 96, 3)`` for a MobileNetV2 built for 224×224: its layers work at
        any size). Channels cannot change.

    Returns
    -------
    keras.Model
        Output ``(None, channels)`` with pooling, ``(None, h, w, channels)`` without; with a
        list of names, a list of such outputs (``predict`` returns a list of arrays; Keras
        gives a list of one name a single output, like the name alone). The pooling layers
        are named ``avg_pool`` (or ``max_pool``), with a list ``avg_pool_<layer name>``. It
        **shares** the base's layers: same weights (it adds none), and freezing one freezes
        the other.

    Notes
    -----
    At another input size the layers are run again, unchanged. For torchvision's layout
    (padding 1 on every side) that is exactly MobileNetV2 at that size. Keras' own
    MobileNetV2 chose the padding of its stride-2 layers for 224×224 (one pixel at the
    bottom/right); that is what it would choose for any side divisible by 32 (96, 128,
    160, ...), so prefer such sizes.

    Examples
    --------
    >>> import keras
    >>> base = keras.Sequential([keras.Input((16, 16, 3)),
    ...                          keras.layers.Conv2D(4, 3, strides=2, name="conv_a"),
    ...                          keras.layers.Conv2D(8, 3, name="conv_b")])
    >>> feature_extractor(base).output_shape  # conv_b's 5x5x8 map, averaged
    (None, 8)
    >>> feature_extractor(base, "conv_a", pooling=None).output_shape
    (None, 7, 7, 4)
    >>> feature_extractor(base, pooling=None, input_shape=(32, 32, 3)).output_shape
    (None, 13, 13, 8)
    >>> both = feature_extractor(base, ["conv_b", "conv_a"])  # one pass, two outputs, in this order
    >>> both.output_shape
    [(None, 8), (None, 4)]
    >>> len(both.weights) == len(base.weights)  # the base's own weights, no new ones
    True
    """
    return _extractor(base, layer_name, pooling, input_shape, name="feature_extractor")


def grey_image_extractor(base, size: int, *, image_shape=(28, 28, 1)):
    """Pooled features of small grey uint8 images (MNIST, Fashion-MNIST) from a colour base like MobileNetV2.

    The model upsamples each image to ``size`` × ``size`` (bilinear), copies the grey channel
    into red, green and blue, scales 0…255 to −1…1 (what :func:`cnn_course.pretrained.preprocess`
    does for MobileNetV2) and returns the base's last feature map averaged: the extractor of
    week 5's notebooks 4 and 6, where it is built step by step.

    Parameters
    ----------
    base : keras.Model
        A model that takes ``(height, width, 3)`` images in [−1, 1].
    size : int
        Side of the upsampled image the base sees (at least 8; multiples of 32 suit MobileNetV2).
    image_shape : (int, int, 1)
        Shape of one grey input image.

    Returns
    -------
    keras.Model
        Input ``(None, *image_shape)`` grey values 0…255, output ``(None, channels)``. It shares
        the base's layers and weights. Its layers (and so its feature-cache fingerprint in
        :func:`stored_features`) are those of the step-by-step version.

    Examples
    --------
    >>> import keras
    >>> base = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 3, name="conv")])
    >>> extractor = grey_image_extractor(base, 32)
    >>> extractor.input_shape, extractor.output_shape
    ((None, 28, 28, 1), (None, 4))
    """
    import keras

    size = check_int(size, "size", minimum=8)
    image_shape = tuple(image_shape)
    if len(image_shape) != 3 or image_shape[2] != 1 or not all(is_int(n) and n > 0 for n in image_shape):
        raise ValueError(f"image_shape must be (height, width, 1) for grey images, got {image_shape}")
    features = feature_extractor(base, input_shape=(size, size, 3))
    grey = keras.Input(image_shape, name="grey_image")
    x = keras.layers.Resizing(size, size, name="upsample")(grey)
    x = keras.layers.Concatenate(name="grey_to_rgb")([x, x, x])  # R = G = B
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="to_minus1_1")(x)
    return keras.Model(grey, features(x), name="grey_image_features")


def cache_features(extractor, images, *, batch_size: int = 32, progress=None) -> np.ndarray:
    """The extractor's output for every image, computed once, as a NumPy array.

    A frozen base computes the same features in every epoch, so computing them once and
    training only the head on them (:func:`head_on_features`) gives the same head in a
    fraction of the time.

    Parameters
    ----------
    extractor : keras.Model
        Usually :func:`feature_extractor`'s model.
    images : numpy.ndarray
        ``(N, height, width, channels)``, prepared as the base expects (for MobileNetV2:
        floats in [-1, 1]). The order is kept: row ``i`` of the result belongs to image ``i``.
    batch_size : int
        Images per step (more is faster, up to what memory allows).
    progress : bool, optional
        Show Keras' progress bar. Default: only when there are more than 10 batches.

    Returns
    -------
    numpy.ndarray or list of numpy.ndarray
        ``(N, ...)`` float32: the extractor's output shape without its batch axis; for an
        extractor with several outputs (:func:`feature_extractor` with a list of layer
        names) a list of such arrays, one per output, in the extractor's order.

    Examples
    --------
    >>> import keras
    >>> extractor = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.GlobalAveragePooling2D()])
    >>> images = np.arange(2 * 16, dtype="float32").reshape(2, 4, 4, 1)
    >>> cache_features(extractor, images)  # the mean of 0..15 and of 16..31
    array([[ 7.5],
           [23.5]], dtype=float32)
    """
    _check_model(extractor, "extractor")
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    if progress is not None and not isinstance(progress, bool):
        raise TypeError(f"progress must be True, False or None (automatic), got {progress!r}")
    array = numeric_array(images, "images")
    expected = tuple(extractor.inputs[0].shape[1:]) if extractor.inputs else None
    described = "(N, height, width, channels)" if expected is None else str((None, *expected)).replace("None", "N", 1)
    if array.ndim == 3:
        raise ValueError(f"expected a batch of images {described}, got one image of shape {array.shape}: "
                         "add a batch axis with images[None]")
    if array.ndim != 4:
        raise ValueError(f"expected a batch of images {described}, got an array of shape {array.shape}")
    if expected is not None and any(want is not None and want != got
                                    for want, got in zip(expected, array.shape[1:], strict=True)):
        raise ValueError(
            f"expected images of shape {described}, got {array.shape}: resize the images, or build "
            f"the extractor with input_shape={array.shape[1:]}"
        )
    if len(array) == 0:
        raise ValueError("images is empty: there is nothing to compute features of")
    batches = math.ceil(len(array) / batch_size)
    show = batches > _PROGRESS_BAR_BATCHES if progress is None else progress
    features = extractor.predict(array, batch_size=batch_size, verbose=1 if show else 0)
    if _output_count(extractor) > 1:
        return [np.asarray(part) for part in features]
    return np.asarray(features)


_STORE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def stored_features(extractor, images, *, name: str, batch_size: int = 32, cache_dir=None,
                    verbose: bool = True) -> np.ndarray:
    """:func:`cache_features`, kept on disk so that the next notebook reads them instead.

    The file lives in the Keras cache folder (``~/.keras/cnn_course_features/``, or
    ``$KERAS_HOME``) and is named after ``name`` and a fingerprint of everything the
    features depend on: the extractor's weights, its layer types, input and output shapes,
    and the images themselves. Change any of them and the features are computed again.
    A second file holds the SHA-256 of the stored array; a file that does not match it
    (cut short, edited) is never used: the features are computed again and replace it.

    Parameters
    ----------
    extractor, images, batch_size
        As for :func:`cache_features`.
    name : str
        A short label for the file, e.g. ``"fashion_96px_train"`` (letters, digits, ``_``,
        ``-`` and ``.``; up to 64 characters).
    cache_dir : str or pathlib.Path, optional
        Folder instead of the Keras cache folder (the features go to its
        ``cnn_course_features/`` subfolder).
    verbose : bool
        Print one line saying whether the features were read or computed, and where.

    Returns
    -------
    numpy.ndarray
        The same array :func:`cache_features` returns.

    Examples
    --------
    >>> import tempfile, keras
    >>> extractor = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.GlobalAveragePooling2D()])
    >>> images = np.arange(32, dtype="float32").reshape(2, 4, 4, 1)
    >>> folder = tempfile.mkdtemp()
    >>> first = stored_features(extractor, images, name="demo", cache_dir=folder, verbose=False)
    >>> again = stored_features(extractor, images, name="demo", cache_dir=folder)  # doctest: +ELLIPSIS
    features of 2 images (demo): read from ...
    >>> bool(np.array_equal(first, again))
    True
    """
    if not isinstance(name, str) or not _STORE_NAME.match(name):
        raise ValueError(f"name must be a short label of letters, digits, '_', '-' or '.' (up to 64 characters), "
                         f"e.g. 'fashion_96px_train'; got {name!r}")
    _check_model(extractor, "extractor")
    if _output_count(extractor) > 1:
        raise ValueError(f"stored_features keeps one array per file, but this extractor has "
                         f"{_output_count(extractor)} outputs: store each depth with its own one-layer "
                         "extractor, or keep the list that cache_features returns in memory")
    array = numeric_array(images, "images")
    folder = (Path(cache_dir).expanduser() if cache_dir is not None else keras_cache_dir()) / "cnn_course_features"
    path = folder / f"{name}-{_fingerprint(extractor, array)[:24]}.npy"
    checksum = path.with_name(path.name + ".sha256")
    if path.is_file() and checksum.is_file() and checksum.read_text().strip() == sha256_of(path):
        features = np.load(path, allow_pickle=False)
        if verbose:
            print(f"features of {len(array):,} images ({name}): read from {path}")
        return features
    features = cache_features(extractor, array, batch_size=batch_size)
    folder.mkdir(parents=True, exist_ok=True)
    # Write under a temporary name and rename, so that a run stopped half-way leaves no file
    # that looks complete; the checksum is written last.
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial.npy")
    np.save(partial, features, allow_pickle=False)
    digest = sha256_of(partial)
    os.replace(partial, path)
    checksum.write_text(digest + "\n")
    if verbose:
        print(f"features of {len(array):,} images ({name}): computed and stored in {path}")
    return features


def _fingerprint(extractor, images: np.ndarray) -> str:
    """SHA-256 over what the features depend on (layer names are left out: Keras numbers them per session)."""
    from keras import ops

    digest = hashlib.sha256()
    digest.update(repr((tuple(extractor.inputs[0].shape[1:]) if extractor.inputs else None,
                        tuple(extractor.outputs[0].shape[1:]) if extractor.outputs else None,
                        [type(layer).__name__ for layer in extractor.layers])).encode())
    for weight in extractor.weights:
        value = np.ascontiguousarray(ops.convert_to_numpy(weight))
        digest.update(repr((value.shape, value.dtype.str)).encode())
        digest.update(value.tobytes())
    digest.update(repr((images.shape, images.dtype.str)).encode())
    digest.update(np.ascontiguousarray(images).tobytes())
    return digest.hexdigest()


# ----------------------------------------------------------------------------- head and model


def head_on_features(classes: int, feature_dim: int, *, dropout: float = 0.2, hidden=None):
    """The new classifier: (dropout) → (Dense ``hidden``, ReLU) → Dense ``classes``.

    It takes pooled features, either cached ones (:func:`cache_features`) or those of the
    base inside :func:`frozen_base_with_head`, which uses this same head.

    Parameters
    ----------
    classes : int
        Number of classes (at least 2); the head gives one logit per class.
    feature_dim : int
        Length of a feature vector (1280 for MobileNetV2's last layer).
    dropout : float
        Fraction of the features (or hidden units) dropped while training, in [0, 1);
        0 adds no Dropout layer.
    hidden : int, optional
        Units of a hidden ReLU layer; ``None`` (default) gives a linear classifier, which
        is usually enough on top of good features.

    Returns
    -------
    keras.Model
        Named ``"head"``, input ``(None, feature_dim)``, output ``(None, classes)`` logits;
        not compiled.

    Examples
    --------
    >>> head = head_on_features(5, 1280, hidden=64)
    >>> [layer.name for layer in head.layers], head.output_shape
    (['features', 'hidden', 'dropout', 'logits'], (None, 5))
    >>> head.count_params()  # 1280*64 + 64, then 64*5 + 5
    82309
    """
    import keras

    classes = _check_classes(classes)
    feature_dim = check_int(feature_dim, "feature_dim", minimum=1)
    dropout = _check_dropout(dropout)
    if hidden is not None:
        hidden = check_int(hidden, "hidden", minimum=1, hint=" (units of the hidden layer) or None")
    inputs = keras.Input((feature_dim,), name="features")
    x = inputs
    if hidden is not None:
        x = keras.layers.Dense(hidden, activation="relu", name="hidden")(x)
    if dropout > 0:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    outputs = keras.layers.Dense(classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="head")


def frozen_base_with_head(base, classes=None, *, dropout: float = 0.2, hidden=None, input_shape=None,
                          head=None):
    """A frozen pretrained base, always in inference mode, with a new head on top.

    The model is ``image → base → global average pooling → head``: the base is cut after
    its last feature map (:func:`feature_extractor`) and every one of its layers is made
    non-trainable, so its weights do not move during ``fit`` and its batch-normalisation
    layers run in inference mode: stored statistics, never updated (Keras 3 does that for
    frozen BN layers; :func:`unfreeze_top` keeps them frozen). The base is also called
    with ``training=False``, which keeps it in inference mode when the model is called
    directly; ``fit`` overrides that in Keras 3 (see the module's description), which
    matters only for a base with layers such as Dropout (MobileNetV2's convolutional
    part has none).

    Parameters
    ----------
    base : keras.Model
        The pretrained network, e.g. :func:`cnn_course.pretrained.mobilenet_v2`; its
        ImageNet classifier (if any) is left out.
    classes : int
        Number of classes of the new head (at least 2). Not needed with ``head``.
    dropout, hidden
        As in :func:`head_on_features`.
    input_shape : (int, int, int), optional
        Image size the model takes, if not the base's own, e.g. ``(96, 96, 3)``.
    head : keras.Model, optional
        A head to put on the base instead of a new one, e.g. one trained on cached
        features by :func:`head_on_features`. It is used itself, not copied.

    Returns
    -------
    keras.Model
        Layers ``image``, ``base`` and ``head`` (``model.get_layer("head")``), output
        ``(None, classes)`` logits. **Not compiled**: choose the optimizer yourself, e.g.
        ``model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"])``. It shares its layers with ``base``, so ``base`` is frozen too.

    Examples
    --------
    >>> import keras
    >>> base = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, name="conv"),
    ...                          keras.layers.BatchNormalization(name="bn")])
    >>> model = frozen_base_with_head(base, 10)
    >>> model.output_shape, base.get_layer("conv").trainable
    ((None, 10), False)
    >>> head = head_on_features(10, 4, dropout=0.0)  # e.g. trained on cached features
    >>> frozen_base_with_head(base, head=head).get_layer("head") is head
    True
    """
    import keras

    dropout = _check_dropout(dropout)
    extractor = _extractor(base, None, "avg", input_shape, name="base")
    feature_dim = int(extractor.output.shape[-1])
    if head is None:
        if classes is None:
            raise TypeError("frozen_base_with_head needs classes (the number of classes) or a head")
        head = head_on_features(classes, feature_dim, dropout=dropout, hidden=hidden)
    else:
        _check_model(head, "head")
        head_shape = tuple(head.inputs[0].shape) if head.inputs else None
        if head_shape != (None, feature_dim):
            raise ValueError(
                f"the head must take the base's pooled features, shape (None, {feature_dim}); "
                f"it takes {head_shape}"
            )
        if classes is not None and _check_classes(classes) != head.output_shape[-1]:
            raise ValueError(f"classes={classes} but the head gives {head.output_shape[-1]} outputs")
    extractor.trainable = False
    inputs = keras.Input(tuple(extractor.inputs[0].shape[1:]), name="image")
    # Inference mode for model(x); under fit Keras 3 passes training=True instead, and
    # it is the frozen BN layers that keep their statistics (see the module docstring).
    features = extractor(inputs, training=False)
    return keras.Model(inputs, head(features), name="transfer_model")


# ----------------------------------------------------------------------------- fine-tuning


def _block_of(name):
    """("block", k), ("stem", k), ("top", k) or None for a MobileNetV2 layer name."""
    for pattern in (_KERAS_BLOCK, _TORCH_BLOCK):
        match = pattern.match(name)
        if match:
            return "block", int(match.group(1))
    if _KERAS_FIRST_BLOCK.match(name):
        return "block", 0
    if name in _KERAS_STEM:
        return "stem", None
    if name in _KERAS_TOP:
        return "top", None
    match = _TORCH_OTHER.match(name)
    if match:
        return "other", int(match.group(1))  # stem or top: decided once the blocks are known
    return None


def _blocks(model):
    """MobileNetV2's blocks in ``model``'s own layers, bottom to top: a list of layer lists.

    The stem (first convolution) joins the first block, the last 1x1 convolution joins
    the last block; other layers (input, pooling, classifier) belong to no block.
    """
    kinds = [(layer, _block_of(layer.name)) for layer in model.layers]
    found = sorted({k for _, kind in kinds if kind and kind[0] == "block" for k in [kind[1]]})
    if not found:
        return []
    groups = {k: [] for k in found}
    for layer, kind in kinds:
        if kind is None:
            continue
        what, k = kind
        if what == "other":
            what = "stem" if k < found[0] else "top" if k > found[-1] else None
        if what == "block":
            groups[k].append(layer)
        elif what == "stem":
            groups[found[0]].append(layer)
        elif what == "top":
            groups[found[-1]].append(layer)
    return [groups[k] for k in found]


def _find_base(model):
    """``model`` if it holds the blocks itself, else the one sub-model (at any depth) that does."""
    import keras

    if _blocks(model):
        return model
    found = [base for layer in model.layers if isinstance(layer, keras.Model)
             for base in [_find_base_or_none(layer)] if base is not None]
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise ValueError(f"{model.name!r} holds several networks with blocks "
                         f"({', '.join(base.name for base in found)}): pass the one to unfreeze")
    raise ValueError(
        f"found no MobileNetV2 blocks in {model.name!r}: expected layers named like Keras' "
        "block_<k>_... (and expanded_conv_...) or torchvision's features_<k>_conv_...; its "
        f"layers start {[layer.name for layer in model.layers[:4]]}"
    )


def _find_base_or_none(model):
    try:
        return _find_base(model)
    except ValueError:
        return None


def unfreeze_top(model_or_base, blocks: int) -> list[str]:
    """Let the top ``blocks`` blocks of a MobileNetV2 base learn again; BN layers stay frozen.

    MobileNetV2 has 17 inverted-residual blocks (Sandler, Howard, Zhu, Zhmoginov & Chen,
    "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018, Table 2): Keras
    names them ``expanded_conv`` and ``block_1`` ... ``block_16``, torchvision
    ``features_1`` ... ``features_17``. The final 1×1 convolution to 1280 channels
    (``Conv_1`` / ``features_18``) counts as part of the top block, and the first
    convolution (the stem) as part of the bottom one, so ``blocks=1`` unfreezes the
    last block and ``Conv_1``, and ``blocks=17`` the whole base.

    Every other layer of the base is frozen, and so is every BatchNormalization layer,
    inside the top blocks too: its scale and shift stay fixed, and Keras 3 runs a frozen
    BN layer in inference mode, so its moving mean and variance are never updated (a
    trainable one would update them during ``fit``, ``training=False`` or not). The head
    of a model from :func:`frozen_base_with_head` is not touched.

    Parameters
    ----------
    model_or_base : keras.Model
        A model from :func:`frozen_base_with_head`, or the base itself.
    blocks : int
        How many blocks, counted from the top, to unfreeze: 0 (none) up to the number
        of blocks (17 for MobileNetV2).

    Returns
    -------
    list of str
        Names of the base's layers that now have trainable weights, bottom to top.

    Notes
    -----
    Keras fixes the list of weights it trains when a model is compiled: compile the model
    again after this call, with a small learning rate (e.g. ``Adam(1e-5)``) so that the
    large gradients of a fresh head do not wreck the pretrained weights.

    Examples
    --------
    >>> import keras
    >>> inputs = keras.Input((8, 8, 3))
    >>> x = keras.layers.Conv2D(4, 3, name="Conv1")(inputs)  # MobileNetV2's stem name
    >>> for k in (1, 2, 3):
    ...     x = keras.layers.Conv2D(4, 1, name=f"block_{k}_project")(x)
    ...     x = keras.layers.BatchNormalization(name=f"block_{k}_project_BN")(x)
    >>> base = keras.Model(inputs, x)
    >>> unfreeze_top(base, 2)
    ['block_2_project', 'block_3_project']
    >>> unfreeze_top(base, 3)  # all three blocks: the stem too
    ['Conv1', 'block_1_project', 'block_2_project', 'block_3_project']
    >>> unfreeze_top(base, 4)
    Traceback (most recent call last):
    ...
    ValueError: blocks must be between 0 and 3 (the number of blocks of this base), got 4
    """
    import keras

    _check_model(model_or_base, "model_or_base")
    blocks = check_int(blocks, "blocks", hint=" (how many blocks to unfreeze)")
    base = _find_base(model_or_base)
    groups = _blocks(base)
    if not 0 <= blocks <= len(groups):
        raise ValueError(f"blocks must be between 0 and {len(groups)} (the number of blocks of this "
                         f"base), got {blocks}")
    top = {id(layer) for group in groups[len(groups) - blocks:] for layer in group}
    # The base's own flag must be True for any layer inside it to count as trainable;
    # setting it sets every layer's flag, which the loop then sets one by one.
    base.trainable = True
    for layer in base.layers:
        layer.trainable = id(layer) in top and not isinstance(layer, keras.layers.BatchNormalization)
    return [layer.name for layer in base.layers if layer.trainable and layer.trainable_weights]
