"""The small networks of the week-4 lectures, as Keras 3 functional models.

* :func:`conv_bn_relu`: convolution → batch normalisation → ReLU, the building block
  of most networks since batch normalisation (Ioffe & Szegedy, "Batch Normalization:
  Accelerating Deep Network Training by Reducing Internal Covariate Shift", 2015).
* :func:`traffic_sign_net`: the lectures' network for the German traffic signs (GTSRB,
  43 classes), rebuilt from their TensorFlow 1 Estimator notebook.
* :func:`small_resnet`: a small ResNet (or the same network without shortcuts, or
  without batch normalisation) for the Fashion-MNIST benchmark.
* :func:`cifar_tutorial_net`: TensorFlow's classic CIFAR-10 tutorial model and the
  variants of the lectures' table (:data:`CIFAR_TUTORIAL_VARIANTS`), with the local
  response normalisation it used (:class:`LocalResponseNormalization`) and its
  per-image standardisation of the input (:class:`PerImageStandardization`).

Every builder returns a fresh, untrained model whose last layer gives *logits* (no
softmax): compile with ``keras.losses.SparseCategoricalCrossentropy(from_logits=True)``.
Inputs are pixel values 0-255, as ``cnn_course.data`` and
``keras.utils.image_dataset_from_directory`` give them.

Examples
--------
>>> from cnn_course.small_nets import traffic_sign_net
>>> model = traffic_sign_net()
>>> model.output_shape
(None, 43)
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers, ops

from ._checks import check_positive_int

__all__ = [
    "CIFAR_TUTORIAL_VARIANTS",
    "LocalResponseNormalization",
    "PerImageStandardization",
    "cifar_tutorial_net",
    "conv_bn_relu",
    "small_resnet",
    "traffic_sign_net",
]

# The lectures' table of TensorFlow's CIFAR-10 tutorial: convolutions (kernel size,
# filters) of each variant, with the test accuracy the lecture reports and after how many
# hours of training (on the lecturer's machine, with the tutorial's full recipe).
# "reference" is the tutorial's own model, 5x5x64 -> 5x5x64.
CIFAR_TUTORIAL_VARIANTS = {
    "reference": {"convs": ((5, 64), (5, 64)), "lecture_accuracy": 0.861, "lecture_hours": 12},
    "5x5x64": {"convs": ((5, 64),), "lecture_accuracy": 0.787, "lecture_hours": 2},
    "5x5x256": {"convs": ((5, 256),), "lecture_accuracy": 0.796, "lecture_hours": 2},
    "7x7x128-5x5x64-3x3x64": {"convs": ((7, 128), (5, 64), (3, 64)), "lecture_accuracy": 0.817,
                              "lecture_hours": 2},
    "5x5x256-5x5x128-3x3x64": {"convs": ((5, 256), (5, 128), (3, 64)), "lecture_accuracy": 0.819,
                               "lecture_hours": 2},
}


# ----------------------------------------------------------------------------- checks


def _image_input(input_shape, smallest: int):
    """A Keras ``Input`` after checking ``input_shape`` = (height, width, channels)."""
    if isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, Sequence):
        raise TypeError(f"input_shape must be a tuple (height, width, channels), got {input_shape!r}")
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (height, width, channels): 3 numbers for one image "
                         f"(Keras adds the batch axis), got {len(input_shape)}: {tuple(input_shape)}")
    for size, axis in zip(input_shape, ("height", "width", "channels"), strict=True):
        check_positive_int(size, f"the {axis} in input_shape")
    if min(input_shape[:2]) < smallest:
        raise ValueError(f"this network needs images of at least {smallest}×{smallest} pixels, "
                         f"got {input_shape[0]}×{input_shape[1]}")
    return keras.Input(shape=tuple(input_shape), name="image")


def _check_classes(classes) -> int:
    check_positive_int(classes, "classes")
    if classes < 2:
        raise ValueError(f"classes must be at least 2 (one logit per class), got {classes}")
    return classes


# ----------------------------------------------------------------------------- conv-BN-ReLU


def conv_bn_relu(x, filters: int, kernel_size: int = 3, *, strides: int = 1, name: str | None = None):
    """Convolution ("same" padding, no bias) → batch normalisation → ReLU.

    The convolution has no bias because batch normalisation subtracts the mean of each
    channel right after it, which removes any constant the convolution adds; its own
    learnable shift (beta) plays the bias's role. A bias there would be a weight that
    gradient descent cannot change the output with.

    Parameters
    ----------
    x : Keras tensor
        Feature map (batch, height, width, channels).
    filters : int
        Output channels.
    kernel_size : int
        Side of the square kernel.
    strides : int
        Step of the convolution (2 halves the height and width).
    name : str, optional
        Prefix of the three layers' names (``<name>_conv``, ``<name>_bn``, ``<name>_relu``).

    Returns
    -------
    Keras tensor
        (batch, ceil(height / strides), ceil(width / strides), filters).

    Examples
    --------
    >>> import keras
    >>> inputs = keras.Input((8, 8, 3))
    >>> model = keras.Model(inputs, conv_bn_relu(inputs, 4, name="block"))
    >>> [layer.name for layer in model.layers[1:]], model.output_shape
    (['block_conv', 'block_bn', 'block_relu'], (None, 8, 8, 4))
    >>> model.count_params()  # 3*3*3*4 weights, no bias; BN: 4 scales, 4 shifts, 4 means, 4 variances
    124
    """
    if not hasattr(x, "shape") or len(x.shape) != 4:
        shape = getattr(x, "shape", None)
        raise ValueError("x must be a 4-D feature map (batch, height, width, channels), got "
                         f"{'no shape' if shape is None else f'shape {tuple(shape)}'}")
    check_positive_int(filters, "filters")
    check_positive_int(kernel_size, "kernel_size")
    check_positive_int(strides, "strides")
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name must be a string or None, got {name!r}")
    names = (None, None, None) if name is None else (f"{name}_conv", f"{name}_bn", f"{name}_relu")
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding="same", use_bias=False, name=names[0])(x)
    x = layers.BatchNormalization(name=names[1])(x)
    return layers.ReLU(name=names[2])(x)


# ----------------------------------------------------------------------------- traffic signs


def traffic_sign_net(input_shape=(32, 32, 3), classes: int = 43, base_channels: int = 32,
                     dense_units: int = 100, dropout: float = 0.5):
    """The lectures' traffic-sign network (German Traffic Sign Recognition Benchmark).

    ``Rescaling(1/255)`` → three stages of three 3×3 :func:`conv_bn_relu` layers with
    C, 2C and 4C channels (C = ``base_channels``), 2×2 max pooling between the stages →
    global average pooling → dense ``dense_units`` + ReLU + dropout → a second dense +
    ReLU + dropout → ``classes`` logits. The lecture does not give the second dense
    layer's width; we use ``dense_units`` again. Its TensorFlow 1 version trained with
    momentum SGD and reached about 99.5 % validation accuracy on GTSRB.

    Thanks to global average pooling the number of weights does not depend on the image
    size (at least 4×4: the two poolings halve it twice).

    Parameters
    ----------
    input_shape : (int, int, int)
        (height, width, channels) of the images, pixel values 0-255.
    classes : int
        Number of classes (43 traffic signs).
    base_channels : int
        C, the channels of the first stage.
    dense_units : int
        Width of both dense layers.
    dropout : float
        Dropout rate after each dense layer, in [0, 1).

    Returns
    -------
    keras.Model
        Outputs ``classes`` logits.

    Examples
    --------
    >>> model = traffic_sign_net(input_shape=(28, 28, 1), classes=10, base_channels=8)
    >>> model.output_shape, model.get_layer("stage3_conv3_conv").output.shape
    ((None, 10), (None, 7, 7, 32))
    """
    _check_classes(classes)
    check_positive_int(base_channels, "base_channels")
    check_positive_int(dense_units, "dense_units")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)):
        raise TypeError(f"dropout must be a number (a rate in [0, 1)), got {dropout!r}")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be a rate in [0, 1), got {dropout!r}")
    inputs = _image_input(input_shape, smallest=4)
    x = layers.Rescaling(1 / 255, name="scale_0_1")(inputs)
    for stage in range(3):
        if stage:
            x = layers.MaxPooling2D(2, name=f"stage{stage + 1}_pool")(x)
        for conv in range(3):
            x = conv_bn_relu(x, base_channels * 2**stage, 3, name=f"stage{stage + 1}_conv{conv + 1}")
    x = layers.GlobalAveragePooling2D(name="global_average")(x)
    for i in (1, 2):
        x = layers.Dense(dense_units, activation="relu", name=f"dense{i}")(x)
        x = layers.Dropout(dropout, name=f"dropout{i}")(x)
    outputs = layers.Dense(classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="traffic_sign_net")


# ----------------------------------------------------------------------------- CIFAR-10 tutorial


@keras.saving.register_keras_serializable(package="cnn_course")
class LocalResponseNormalization(layers.Layer):
    """Local response normalisation across channels (Krizhevsky et al., AlexNet, 2012).

    Each value is divided by ``(bias + alpha * s) ** beta``, where ``s`` is the sum of the
    squares of the values at the same pixel in the ``2 * depth_radius + 1`` neighbouring
    channels (fewer at the ends), as ``tf.nn.local_response_normalization`` computes it
    (note: ``alpha`` is not divided by the window size there). Keras 3 has no such layer;
    batch normalisation replaced it in later networks. No weights. The defaults are
    TensorFlow's; the CIFAR-10 tutorial used ``depth_radius=4, bias=1, alpha=0.001/9,
    beta=0.75``; AlexNet's k = 2, n = 5, alpha = 1e-4, beta = 0.75 are
    ``depth_radius=2, bias=2, alpha=1e-4, beta=0.75`` (alpha multiplies the sum there
    too; Caffe's LRN divides it by n first).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[[[1.0, 2.0, 2.0]]]])  # one pixel, three channels
    >>> lrn = LocalResponseNormalization(depth_radius=1, bias=1.0, alpha=1.0, beta=1.0)
    >>> np.asarray(lrn(x), dtype=float).round(4).tolist()  # 1/(1+1+4), 2/(1+1+4+4), 2/(1+4+4)
    [[[[0.1667, 0.2, 0.2222]]]]
    """

    def __init__(self, depth_radius: int = 5, bias: float = 1.0, alpha: float = 1.0, beta: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        if isinstance(depth_radius, bool) or not isinstance(depth_radius, int) or depth_radius < 0:
            raise ValueError(f"depth_radius must be a whole number >= 0, got {depth_radius!r}")
        self.depth_radius, self.bias, self.alpha, self.beta = depth_radius, float(bias), float(alpha), float(beta)

    def call(self, x):
        r = self.depth_radius
        squares = ops.pad(ops.square(x), [[0, 0], [0, 0], [0, 0], [r, r]])
        channels = x.shape[-1]
        # Sum of the 2r+1 shifted copies: entry c of the sum covers channels c-r .. c+r.
        window = sum(squares[..., shift:shift + channels] for shift in range(2 * r + 1))
        return x / ops.power(self.bias + self.alpha * window, self.beta)

    def get_config(self):
        return {**super().get_config(), "depth_radius": self.depth_radius, "bias": self.bias,
                "alpha": self.alpha, "beta": self.beta}


@keras.saving.register_keras_serializable(package="cnn_course")
class PerImageStandardization(layers.Layer):
    """Scale each image to mean 0 and standard deviation 1, as ``tf.image.per_image_standardization``.

    The standard deviation is taken over all pixels and channels of one image and never
    below ``1 / sqrt(number of values)``, so a uniform image does not divide by zero.

    Examples
    --------
    >>> import numpy as np
    >>> images = np.array([[[[0.0], [2.0]], [[4.0], [6.0]]]])  # one 2×2 grey image
    >>> np.asarray(PerImageStandardization()(images), dtype=float).ravel().round(4).tolist()
    [-1.3416, -0.4472, 0.4472, 1.3416]
    """

    def call(self, x):
        x = ops.cast(x, "float32")
        axes = list(range(1, len(x.shape)))
        mean = ops.mean(x, axis=axes, keepdims=True)
        std = ops.std(x, axis=axes, keepdims=True)
        size = 1
        for n in x.shape[1:]:
            size *= n
        return (x - mean) / ops.maximum(std, 1.0 / size**0.5)


def cifar_tutorial_net(convs, input_shape=(32, 32, 3), classes: int = 10, *, lrn: bool = True):
    """TensorFlow's classic CIFAR-10 tutorial network, with the convolutions of your choice.

    The tutorial's model (``tensorflow/models``, ``tutorials/image/cifar10``, 2015-2017)
    is ``convs=[(5, 64), (5, 64)]``: per-image standardisation → conv 5×5·64 + ReLU →
    max pool 3×3 stride 2 → LRN → conv 5×5·64 + ReLU → LRN → max pool 3×3 stride 2 →
    dense 384 + ReLU → dense 192 + ReLU → logits, with an L2 weight decay of 0.004 on
    the two dense layers (``0.004 * sum(w**2) / 2``, hence ``L2(0.002)`` in Keras). Its
    LRN used ``depth_radius=4, bias=1, alpha=0.001/9, beta=0.75``; its poolings pad like
    "same". Here every convolution gets the same treatment: the first is followed by
    pool then LRN, every later one by LRN then pool, as in the tutorial (the lectures'
    table does not say where its variants pooled). ``lrn=False`` leaves LRN out.

    The tutorial trained on random 24×24 crops (with flips and brightness/contrast
    changes) and tested on the central 24×24; give ``input_shape=(24, 24, 3)`` for its
    exact parameter count. It used its own weight initialisation and plain SGD with a
    decaying learning rate; these builders use Keras' default initialisers.

    Parameters
    ----------
    convs : sequence of (int, int)
        (kernel size, filters) of each convolution, e.g. ``[(5, 64), (5, 64)]``.
    input_shape : (int, int, int)
        (height, width, channels), pixel values 0-255.
    classes : int
        Number of logits.
    lrn : bool
        Include the local response normalisation layers.

    Returns
    -------
    keras.Model
        Outputs ``classes`` logits.

    Examples
    --------
    >>> model = cifar_tutorial_net([(5, 64), (5, 64)], input_shape=(24, 24, 3))
    >>> model.count_params()  # the tutorial: "1,068,298 learnable parameters"
    1068298
    """
    if isinstance(convs, (str, bytes)) or not isinstance(convs, Sequence) or not convs:
        raise ValueError(f"convs must be a non-empty list of (kernel_size, filters) pairs, got {convs!r}")
    for i, pair in enumerate(convs):
        if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise ValueError(f"convs[{i}] must be a pair (kernel_size, filters), got {pair!r}")
        check_positive_int(pair[0], f"the kernel size of convs[{i}]")
        check_positive_int(pair[1], f"the number of filters of convs[{i}]")
    _check_classes(classes)
    inputs = _image_input(input_shape, smallest=1)
    x = PerImageStandardization(name="standardize")(inputs)
    for i, (kernel_size, filters) in enumerate(convs, start=1):
        x = layers.Conv2D(filters, kernel_size, padding="same", activation="relu", name=f"conv{i}")(x)
        pool = layers.MaxPooling2D(3, strides=2, padding="same", name=f"pool{i}")
        norm = (LocalResponseNormalization(4, bias=1.0, alpha=0.001 / 9.0, beta=0.75, name=f"norm{i}")
                if lrn else None)
        steps = [pool, norm] if i == 1 else [norm, pool]
        for step in steps:
            if step is not None:
                x = step(x)
    x = layers.Flatten(name="flatten")(x)
    decay = keras.regularizers.L2(0.002)
    x = layers.Dense(384, activation="relu", kernel_regularizer=decay, name="local3")(x)
    x = layers.Dense(192, activation="relu", kernel_regularizer=decay, name="local4")(x)
    outputs = layers.Dense(classes, name="logits")(x)
    name = "cifar_tutorial_" + "_".join(f"{k}x{k}x{f}" for k, f in convs)
    return keras.Model(inputs, outputs, name=name)


# ----------------------------------------------------------------------------- small ResNet


def _conv_maybe_bn(x, filters, strides, batch_norm: bool, name: str, relu: bool = True):
    # Without batch normalisation the convolution keeps its bias (nothing removes it).
    x = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=not batch_norm, name=f"{name}_conv")(x)
    if batch_norm:
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x) if relu else x


def small_resnet(input_shape=(28, 28, 1), classes: int = 10, widths=(16, 32, 64), blocks_per_stage: int = 1, *,
                 residual: bool = True, batch_norm: bool = True, name: str | None = None):
    """A small ResNet for 28×28 (or 32×32) images, or the same stack without shortcuts.

    ``Rescaling(1/255)`` → a 3×3 stem convolution with ``widths[0]`` channels → one stage
    per entry of ``widths``, each of ``blocks_per_stage`` basic blocks (two 3×3
    convolutions; the first block of every stage after the first halves the height and
    width with stride 2) → global average pooling → ``classes`` logits. He et al. 2015
    ("Deep Residual Learning for Image Recognition") built their CIFAR-10 networks this way
    (Section 4.2), with 16, 32 and 64 channels.

    ``residual=True`` adds each block's input to its output before the last ReLU (a 1×1
    projection, with batch normalisation if used, where the shape changes); ``residual=False``
    is the *plain* network with exactly the same convolutions. ``batch_norm=False``
    leaves out batch normalisation (the convolutions then keep their biases). The three
    switches give the plain / residual / residual + BN comparison of
    ``benchmarks/fashion_time_to_accuracy.py``.

    Parameters
    ----------
    input_shape : (int, int, int)
        (height, width, channels), pixel values 0-255.
    classes : int
        Number of classes.
    widths : sequence of int
        Channels of each stage.
    blocks_per_stage : int
        Basic blocks per stage (the network has ``2 · blocks_per_stage · len(widths) + 2``
        weight layers: stem, block convolutions and the classifier).
    residual, batch_norm : bool
        Shortcuts, batch normalisation.
    name : str, optional
        The model's name (default e.g. ``"resnet8_bn"`` or ``"plain8"``).

    Returns
    -------
    keras.Model
        Outputs ``classes`` logits.

    Examples
    --------
    >>> model = small_resnet()
    >>> model.name, model.output_shape
    ('resnet8_bn', (None, 10))
    >>> small_resnet(residual=False, batch_norm=False).count_params() < model.count_params()
    True
    """
    _check_classes(classes)
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence) or not widths:
        raise TypeError(f"widths must be a non-empty list of channel counts, got {widths!r}")
    for width in widths:
        check_positive_int(width, "each entry of widths")
    check_positive_int(blocks_per_stage, "blocks_per_stage")
    for flag, what in ((residual, "residual"), (batch_norm, "batch_norm")):
        if not isinstance(flag, bool):
            raise TypeError(f"{what} must be True or False, got {flag!r}")
    inputs = _image_input(input_shape, smallest=2 ** (len(widths) - 1))
    depth = 2 * blocks_per_stage * len(widths) + 2
    if name is None:
        name = f"{'resnet' if residual else 'plain'}{depth}{'_bn' if batch_norm else ''}"
    x = layers.Rescaling(1 / 255, name="rescale")(inputs)
    x = _conv_maybe_bn(x, widths[0], 1, batch_norm, "stem")
    for stage, width in enumerate(widths, start=1):
        for block in range(1, blocks_per_stage + 1):
            prefix = f"stage{stage}_block{block}"
            strides = 2 if stage > 1 and block == 1 else 1
            shortcut = x
            x = _conv_maybe_bn(x, width, strides, batch_norm, f"{prefix}_a")
            x = _conv_maybe_bn(x, width, 1, batch_norm, f"{prefix}_b", relu=False)
            if residual:
                if strides != 1 or shortcut.shape[-1] != width:
                    shortcut = layers.Conv2D(width, 1, strides=strides, use_bias=not batch_norm,
                                             name=f"{prefix}_projection")(shortcut)
                    if batch_norm:
                        shortcut = layers.BatchNormalization(name=f"{prefix}_projection_bn")(shortcut)
                x = layers.Add(name=f"{prefix}_add")([x, shortcut])
            x = layers.ReLU(name=f"{prefix}_relu")(x)
    x = layers.GlobalAveragePooling2D(name="average")(x)
    outputs = layers.Dense(classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)
