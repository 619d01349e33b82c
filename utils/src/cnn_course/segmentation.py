"""Semantic segmentation: overlap scores for masks, and the U-Net and FCN builders of week 7.

A segmentation network labels every pixel. Week 7 builds two of them as Keras 3 functional
models and scores their masks:

* :func:`dice` and :func:`iou_score` compare a predicted binary mask with the true one:
  IoU (Jaccard) = |A ∩ B| / |A ∪ B|, Dice (F1) = 2 |A ∩ B| / (|A| + |B|). They measure the
  same thing on different scales, Dice = 2 IoU / (1 + IoU), so Dice is never below IoU.
  Both are 1.0 when *both* masks are empty (nothing to find and nothing found), a choice
  that each function states; a per-image mean would otherwise be undefined.
* :func:`unet` is the U-Net of Ronneberger, Fischer & Brox, "U-Net: Convolutional networks
  for biomedical image segmentation" (2015): a contracting path of two 3×3 convolutions and
  a 2×2 max-pool per level, an expanding path that upsamples, concatenates the contracting
  path's map of the same size (the skip connection) and convolves twice again, and a 1×1
  convolution to the classes.
* :func:`fcn` is a small fully convolutional network in the spirit of Long, Shelhamer &
  Darrell, "Fully convolutional networks for semantic segmentation" (2015): a convolutional
  backbone downsamples by 2, 4, 8, 16 or 32, a 1×1 convolution scores the classes at every
  position, and one upsampling step brings the scores back to the input size.
* :func:`dense_to_conv` turns a ``Dense`` layer that reads a flattened k×k×C map into the
  k×k convolution that computes the same numbers: on a larger input the network then slides
  the classifier over every k×k window in one pass, which is how Long et al. made
  classifiers fully convolutional.

Taught in ``course/week7_detection_segmentation/04_fully_convolutional_networks.ipynb`` (FCN,
dense to convolution) and ``course/week7_detection_segmentation/05_unet_nuclei.ipynb`` (U-Net,
Dice and IoU).

Examples
--------
>>> import numpy as np
>>> from cnn_course.segmentation import dice, iou_score
>>> truth = np.array([[1, 1, 0, 0]])
>>> guess = np.array([[0, 1, 1, 0]])
>>> float(iou_score(truth, guess)), float(dice(truth, guess))  # 1/3 and 2·1/(2+2)
(0.3333333333333333, 0.5)
"""

from __future__ import annotations

import numpy as np

from ._geometry import check_int, check_word, is_int

__all__ = ["dense_to_conv", "dice", "fcn", "iou_score", "unet"]

UPSAMPLING_CHOICES = ("transpose", "bilinear")


# ----------------------------------------------------------------------------- mask scores


def _binary_mask(value, name: str) -> np.ndarray:
    """``value`` as a boolean array, if it holds only 0/1 (or False/True)."""
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be an array of 0/1 or True/False, got the string {value!r}")
    try:
        array = np.asarray(value)
    except ValueError as error:  # ragged nested lists
        raise ValueError(f"{name} must be a rectangular array of 0/1: {error}") from None
    if array.dtype == bool:
        return array
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise TypeError(f"{name} must hold 0/1 or True/False, got dtype {array.dtype}")
    if array.size and not np.isin(array, (0, 1)).all():
        others = np.unique(array[~np.isin(array, (0, 1))])[:3]
        raise ValueError(
            f"{name} must be a binary mask of 0 and 1, but it holds other values such as "
            f"{', '.join(f'{v:g}' for v in others)}; threshold probabilities first, "
            f"e.g. {name} > 0.5"
        )
    return array.astype(bool)


def _intersection_and_sizes(mask_true, mask_pred, per_image: bool):
    """|A ∩ B|, |A| and |B|, over all pixels or per image (first axis)."""
    truth, guess = _binary_mask(mask_true, "mask_true"), _binary_mask(mask_pred, "mask_pred")
    if truth.shape != guess.shape:
        raise ValueError(f"mask_true and mask_pred must have the same shape; got {truth.shape} and {guess.shape}")
    if not isinstance(per_image, (bool, np.bool_)):
        raise TypeError(f"per_image must be True or False, got {per_image!r}")
    if per_image:
        if truth.ndim < 2:
            raise ValueError(
                f"per_image=True needs a batch of masks (N, H, W) or (N, H, W, 1), got shape {truth.shape}"
            )
        axes = tuple(range(1, truth.ndim))
    else:
        axes = None
    intersection = np.logical_and(truth, guess).sum(axis=axes)
    return intersection, truth.sum(axis=axes), guess.sum(axis=axes)


def _ratio_with_empty_as_one(numerator, denominator):
    """numerator / denominator, and 1.0 where both masks were empty (denominator 0)."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    score = np.divide(numerator, denominator, out=np.ones_like(numerator), where=denominator > 0)
    return score if score.ndim else np.float64(score)


def iou_score(mask_true, mask_pred, *, per_image: bool = False):
    """Intersection over union (Jaccard index) of two binary masks.

    IoU = |A ∩ B| / |A ∪ B| with A the true and B the predicted foreground pixels.

    Parameters
    ----------
    mask_true, mask_pred : array_like
        Binary masks of the same shape: bool, or numbers that are all 0 or 1
        (probabilities are refused: threshold them first).
    per_image : bool
        False (default): pool every pixel of the arrays into one score (large
        images weigh more). True: the first axis numbers the images; return one
        score per image (take ``.mean()`` for the per-image average).

    Returns
    -------
    numpy.float64 or numpy.ndarray
        The score in [0, 1]; an array of shape (N,) with ``per_image=True``.
        When both masks are empty the score is **1.0**: nothing was there and
        nothing was found.

    Examples
    --------
    >>> truth = np.array([[[1, 1], [0, 0]], [[0, 0], [0, 0]]])
    >>> guess = np.array([[[1, 0], [0, 0]], [[0, 0], [0, 0]]])
    >>> float(iou_score(truth, guess))  # pooled: 1 shared pixel of 2 in the union
    0.5
    >>> iou_score(truth, guess, per_image=True)  # the second pair is empty vs empty
    array([0.5, 1. ])
    """
    intersection, size_true, size_pred = _intersection_and_sizes(mask_true, mask_pred, per_image)
    return _ratio_with_empty_as_one(intersection, size_true + size_pred - intersection)


def dice(mask_true, mask_pred, *, per_image: bool = False):
    """Dice coefficient (the F1 score of the pixels) of two binary masks.

    Dice = 2 |A ∩ B| / (|A| + |B|) with A the true and B the predicted foreground
    pixels; it equals 2 IoU / (1 + IoU) (see :func:`iou_score`).

    Parameters
    ----------
    mask_true, mask_pred : array_like
        Binary masks of the same shape: bool, or numbers that are all 0 or 1.
    per_image : bool
        False (default): one score over all pixels. True: one score per image
        along the first axis.

    Returns
    -------
    numpy.float64 or numpy.ndarray
        The score in [0, 1] (shape (N,) with ``per_image=True``); **1.0** when both
        masks are empty.

    Examples
    --------
    >>> truth = np.array([[1, 1, 1, 0]])
    >>> guess = np.array([[0, 1, 1, 1]])
    >>> float(dice(truth, guess))  # 2·2 / (3 + 3)
    0.6666666666666666
    """
    intersection, size_true, size_pred = _intersection_and_sizes(mask_true, mask_pred, per_image)
    return _ratio_with_empty_as_one(2 * intersection, size_true + size_pred)


# ----------------------------------------------------------------------------- builders


def _image_shape(input_shape, multiple: int, what: str) -> tuple:
    """``input_shape`` as (H, W, C); H and W (None allowed) divisible by ``multiple``."""
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3:
        raise ValueError(f"input_shape must be (height, width, channels), e.g. (128, 128, 1); got {input_shape!r}")
    height, width, channels = input_shape
    check_int(channels, "the number of channels in input_shape", minimum=1)
    for name, size in (("height", height), ("width", width)):
        if size is None:  # any size, checked when the model is called
            continue
        check_int(size, f"the {name} in input_shape", minimum=1)
        if size % multiple:
            below, above = size // multiple * multiple, (size // multiple + 1) * multiple
            works = f"{above}" if below == 0 else f"{below} or {above}"
            raise ValueError(
                f"{what} needs a {name} divisible by {multiple}, got {size}: "
                f"use a multiple of {multiple} such as {works} (crop or pad the images)"
            )
    return (None if height is None else int(height), None if width is None else int(width), int(channels))


def _output_layer(features, classes: int, name: str):
    """1×1 convolution to the classes: sigmoid for one class, softmax over several."""
    from keras import layers

    activation = "sigmoid" if classes == 1 else "softmax"
    return layers.Conv2D(classes, 1, activation=activation, name=name)(features)


def unet(input_shape, depth: int = 4, base_filters: int = 64, classes: int = 1, *,
         upsampling: str = "transpose", batch_norm: bool = False):
    """Build (not compile) a U-Net (Ronneberger, Fischer & Brox, 2015).

    Contracting path: at every level two 3×3 convolutions with ReLU, then a 2×2 max-pool
    that halves the size; the number of filters doubles from level to level
    (``base_filters``, 2×, 4×, …, ``2**depth``× at the bottom). Expanding path: upsample
    by 2 to half the filters, concatenate the contracting path's map of the same size
    (the skip connection that brings back the fine detail the pooling lost), two 3×3
    convolutions. A 1×1 convolution gives the class probabilities.

    Unlike the paper, the convolutions use ``"same"`` padding: the paper used
    ``"valid"`` convolutions, so its output (388×388 for a 572×572 input) was smaller
    than its input and the skip maps were cropped to fit. With ``"same"`` the output
    has the input's size and nothing is cropped; the pixels near the border see some
    zero padding instead. The paper's dropout at the end of the contracting path is
    left out (add it when training on little data shows the need).

    Parameters
    ----------
    input_shape : tuple
        (height, width, channels). Height and width must be divisible by
        ``2**depth`` (each pooling halves them); ``None`` accepts any such size.
    depth : int
        Number of poolings (and of skip connections); the paper used 4.
    base_filters : int
        Filters of the first level; the paper used 64.
    classes : int
        1: one sigmoid channel (foreground probability). More: a softmax over
        ``classes`` channels.
    upsampling : {"transpose", "bilinear"}
        ``"transpose"``: a 2×2 transposed convolution with stride 2, the paper's
        "up-convolution". ``"bilinear"``: bilinear resizing, then a 3×3 convolution
        (no checkerboard artefacts; Odena, Dumoulin & Olah, 2016).
    batch_norm : bool
        Put batch normalisation between each 3×3 convolution and its ReLU (not in
        the paper, which predates it; it makes training faster).

    Returns
    -------
    keras.Model
        Input (H, W, channels), output (H, W, classes).

    Examples
    --------
    >>> model = unet((32, 32, 1), depth=2, base_filters=4)
    >>> model.output_shape
    (None, 32, 32, 1)
    >>> sum(type(layer).__name__ == "Concatenate" for layer in model.layers)
    2
    """
    import keras
    from keras import layers

    depth = check_int(depth, "depth", minimum=1)
    base_filters = check_int(base_filters, "base_filters", minimum=1)
    classes = check_int(classes, "classes", minimum=1)
    upsampling = check_word(upsampling, "upsampling", UPSAMPLING_CHOICES)
    if not isinstance(batch_norm, (bool, np.bool_)):
        raise TypeError(f"batch_norm must be True or False, got {batch_norm!r}")
    shape = _image_shape(input_shape, 2**depth, f"a U-Net of depth {depth}")

    def two_convolutions(x, filters, name):
        for number in (1, 2):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=not batch_norm, name=f"{name}_conv{number}")(x)
            if batch_norm:
                x = layers.BatchNormalization(name=f"{name}_bn{number}")(x)
            x = layers.Activation("relu", name=f"{name}_relu{number}")(x)
        return x

    inputs = layers.Input(shape, name="image")
    x = inputs
    skips = []
    for level in range(depth):
        x = two_convolutions(x, base_filters * 2**level, f"down{level}")
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"down{level}_pool")(x)
    x = two_convolutions(x, base_filters * 2**depth, "bottom")
    for level in reversed(range(depth)):
        filters = base_filters * 2**level
        if upsampling == "transpose":
            x = layers.Conv2DTranspose(filters, 2, strides=2, name=f"up{level}_transpose")(x)
        else:
            x = layers.UpSampling2D(2, interpolation="bilinear", name=f"up{level}_resize")(x)
            x = layers.Conv2D(filters, 3, padding="same", name=f"up{level}_conv")(x)
        x = layers.Concatenate(name=f"up{level}_skip")([skips[level], x])
        x = two_convolutions(x, filters, f"up{level}")
    outputs = _output_layer(x, classes, "probabilities")
    return keras.Model(inputs, outputs, name=f"unet_depth{depth}")


def _bilinear_upsampling_kernel(factor: int, channels: int) -> np.ndarray:
    """Weights of a transposed convolution (2·factor × 2·factor, stride factor) that
    upsamples each channel bilinearly, as Long et al. initialised theirs."""
    size = 2 * factor
    # The tent 1 - |x - centre| / factor, sampled at the kernel's taps.
    centre = (size - 1) / 2
    taps = 1 - np.abs(np.arange(size) - centre) / factor
    kernel2d = np.outer(taps, taps)
    kernel = np.zeros((size, size, channels, channels), dtype=np.float32)
    for channel in range(channels):  # each class upsampled on its own: no mixing
        kernel[:, :, channel, channel] = kernel2d
    return kernel


def fcn(input_shape, classes: int, *, downsampling: int = 8, base_filters: int = 16,
        upsampling: str = "transpose"):
    """Build (not compile) a small fully convolutional network (after Long et al., 2015).

    Backbone: ``log2(downsampling)`` blocks of two 3×3 convolutions with ReLU and a 2×2
    max-pool, the filters doubling from block to block (a small VGG, as the paper's
    backbone was VGG-16). A 1×1 convolution, named ``"scores"``, then gives the class
    scores at every position of the coarse map (the classifier, made convolutional), and
    one step upsamples them by ``downsampling`` back to the input size (the paper's
    FCN-32s did this with one step of 32; its FCN-16s and FCN-8s add skips from earlier
    layers, left out here). Last, a sigmoid (one class) or softmax over the classes at
    every pixel.

    Parameters
    ----------
    input_shape : tuple
        (height, width, channels); height and width divisible by ``downsampling``,
        or ``None`` for any such size.
    classes : int
        Number of classes (1: one sigmoid channel).
    downsampling : int
        Total downsampling of the backbone: 2, 4, 8, 16 or 32.
    base_filters : int
        Filters of the first block.
    upsampling : {"transpose", "bilinear"}
        ``"transpose"``: a learnt transposed convolution (kernel 2·downsampling,
        stride downsampling), initialised to bilinear interpolation as in the paper.
        ``"bilinear"``: fixed bilinear resizing.

    Returns
    -------
    keras.Model
        Input (H, W, channels), output (H, W, classes).

    Examples
    --------
    >>> model = fcn((32, 48, 3), classes=5, downsampling=8, base_filters=4)
    >>> model.output_shape, model.get_layer("scores").output.shape
    ((None, 32, 48, 5), (None, 4, 6, 5))
    """
    import keras
    from keras import layers

    classes = check_int(classes, "classes", minimum=1)
    base_filters = check_int(base_filters, "base_filters", minimum=1)
    allowed = (2, 4, 8, 16, 32)
    if not is_int(downsampling) or int(downsampling) not in allowed:
        raise ValueError(f"downsampling must be one of {', '.join(map(str, allowed))}, got {downsampling!r}")
    factor = int(downsampling)
    upsampling = check_word(upsampling, "upsampling", UPSAMPLING_CHOICES)
    shape = _image_shape(input_shape, factor, f"an FCN that downsamples by {factor}")

    inputs = layers.Input(shape, name="image")
    x = inputs
    for block in range(factor.bit_length() - 1):  # log2(factor) blocks
        for number in (1, 2):
            x = layers.Conv2D(base_filters * 2**block, 3, padding="same", activation="relu",
                              name=f"block{block}_conv{number}")(x)
        x = layers.MaxPooling2D(2, name=f"block{block}_pool")(x)
    scores = layers.Conv2D(classes, 1, name="scores")(x)
    if upsampling == "transpose":
        upsample = layers.Conv2DTranspose(classes, 2 * factor, strides=factor, padding="same", name="upsample")
        scores = upsample(scores)
        upsample.set_weights([_bilinear_upsampling_kernel(factor, classes), np.zeros(classes, np.float32)])
    else:
        scores = layers.UpSampling2D(factor, interpolation="bilinear", name="upsample")(scores)
    outputs = layers.Activation("sigmoid" if classes == 1 else "softmax", name="probabilities")(scores)
    return keras.Model(inputs, outputs, name=f"fcn{factor}s")


def dense_to_conv(dense_layer, input_shape):
    """The convolution that computes what a ``Dense`` layer computes on a flattened map.

    A ``Dense`` layer after ``Flatten`` on a k×k×C map multiplies each of its units'
    weights with one k×k×C window: exactly a k×k convolution with ``"valid"`` padding
    on that map, whose kernel holds the same weights reshaped. On the original map the
    convolution gives a 1×1 output with the ``Dense`` layer's numbers; on a larger map
    it slides the classifier over every k×k window and gives a map of scores, in one
    pass that shares the work of overlapping windows (Long et al., 2015; OverFeat,
    Sermanet et al., 2014, before them).

    Parameters
    ----------
    dense_layer : keras.layers.Dense
        A built ``Dense`` layer whose input was ``Flatten()`` of a map of ``input_shape``
        (Keras flattens channels-last maps row by row, channels fastest).
    input_shape : tuple
        (k_rows, k_cols, channels) of the map that was flattened.

    Returns
    -------
    keras.layers.Conv2D
        A built convolution with ``dense_layer``'s units as filters, its weights and
        its activation.

    Examples
    --------
    >>> import keras
    >>> dense = keras.layers.Dense(2)
    >>> _ = dense(np.zeros((1, 3 * 3 * 4), np.float32))  # builds it for a flattened 3×3×4 map
    >>> conv = dense_to_conv(dense, (3, 3, 4))
    >>> tuple(conv.kernel.shape), tuple(conv(np.zeros((1, 5, 7, 4), np.float32)).shape)  # 3×5 windows
    ((3, 3, 4, 2), (1, 3, 5, 2))
    """
    import keras
    from keras import layers

    if not isinstance(dense_layer, layers.Dense):
        raise TypeError(f"dense_layer must be a keras.layers.Dense layer, got {type(dense_layer).__name__}")
    if not dense_layer.built:
        raise ValueError("dense_layer is not built yet: call it on its input (or build the model) first")
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3:
        raise ValueError(f"input_shape must be (rows, cols, channels) of the flattened map; got {input_shape!r}")
    rows, cols, channels = (check_int(size, "every size in input_shape", minimum=1) for size in input_shape)
    kernel = keras.ops.convert_to_numpy(dense_layer.kernel)
    if kernel.shape[0] != rows * cols * channels:
        raise ValueError(
            f"dense_layer reads {kernel.shape[0]} inputs, but a flattened {rows}×{cols}×{channels} map has "
            f"{rows * cols * channels}: give the shape of the map that went into Flatten"
        )
    units = kernel.shape[1]
    # Flatten reads (rows, cols, channels) in C order, so the reshape restores each weight's position.
    weights = [kernel.reshape(rows, cols, channels, units)]
    if dense_layer.use_bias:
        weights.append(keras.ops.convert_to_numpy(dense_layer.bias))
    conv = layers.Conv2D(units, (rows, cols), padding="valid", activation=dense_layer.activation,
                         use_bias=dense_layer.use_bias, name=f"{dense_layer.name}_as_conv")
    conv.build((None, None, None, channels))
    conv.set_weights(weights)
    return conv
