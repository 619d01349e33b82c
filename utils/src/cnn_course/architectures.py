"""Classic CNN architectures of the lectures, as Keras 3 functional models.

Every builder returns a fresh, untrained ``keras.Model`` (no weights are downloaded)
and takes ``input_shape`` (height, width, channels) and ``classes`` keyword arguments
whose defaults are the paper's:

* :func:`lenet5`: LeCun, Bottou, Bengio & Haffner, "Gradient-Based Learning Applied to
  Document Recognition", Proc. IEEE 1998.
* :func:`alexnet`: Krizhevsky, Sutskever & Hinton, "ImageNet Classification with Deep
  Convolutional Neural Networks", NeurIPS 2012.
* :func:`vgg`: Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale
  Image Recognition", 2014 (ICLR 2015), configurations A–E of their Table 1.
* :func:`inception_module`, :func:`googlenet`, :func:`googlenet_table`: Szegedy et al.,
  "Going Deeper with Convolutions", 2014 (CVPR 2015).
* :func:`separable_conv`, :func:`xception_block`: Chollet, "Xception: Deep Learning with
  Depthwise Separable Convolutions", CVPR 2017.
* :func:`residual_block`, :func:`resnet`: He, Zhang, Ren & Sun, "Deep Residual Learning
  for Image Recognition", 2015 (CVPR 2016); pre-activation: He, Zhang, Ren & Sun,
  "Identity Mappings in Deep Residual Networks", ECCV 2016.
* :func:`dense_block`, :func:`transition`, :func:`densenet121`: Huang, Liu, van der
  Maaten & Weinberger, "Densely Connected Convolutional Networks", CVPR 2017.

The lectures compare parameter counts: :func:`trainable_parameters` counts what gradient
descent changes (``model.count_params()`` also counts the moving means and variances
of batch normalisation, which are statistics, not learned weights).

Examples
--------
>>> from cnn_course.architectures import lenet5, trainable_parameters
>>> model = lenet5()
>>> model.output_shape, trainable_parameters(model)
((None, 10), 60850)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import keras
from keras import layers, ops

from ._checks import check_positive_int

__all__ = [
    "GOOGLENET_MODULES",
    "IMAGENET_RESNETS",
    "LENET_C3_TABLE",
    "SHORTCUTS",
    "GoogLeNetRow",
    "VGG_CONFIGS",
    "alexnet",
    "alexnet_two_tower_parameters",
    "dense_block",
    "densenet121",
    "googlenet",
    "googlenet_table",
    "inception_module",
    "lenet5",
    "residual_block",
    "resnet",
    "separable_conv",
    "trainable_parameters",
    "transition",
    "vgg",
    "xception_block",
]


# ----------------------------------------------------------------------------- checks


def _input(input_shape, name: str = "image"):
    """A Keras ``Input`` after checking that ``input_shape`` is (height, width, channels)."""
    if isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, Sequence):
        raise TypeError(f"input_shape must be a tuple (height, width, channels), got {input_shape!r}")
    if len(input_shape) != 3:
        raise ValueError(
            f"input_shape must be (height, width, channels): 3 numbers for one image "
            f"(the batch axis is added by Keras), got {len(input_shape)}: {tuple(input_shape)}"
        )
    for size, axis in zip(input_shape, ("height", "width", "channels"), strict=True):
        if size is not None:
            check_positive_int(size, f"the {axis} in input_shape")
    return keras.Input(shape=tuple(input_shape), name=name)


def _check_tensor(x, what: str = "x"):
    if not hasattr(x, "shape") or len(x.shape) != 4:
        shape = getattr(x, "shape", None)
        raise ValueError(
            f"{what} must be a 4-D feature map (batch, height, width, channels), got "
            f"{'no shape' if shape is None else f'shape {tuple(shape)}'}"
        )
    return x


def trainable_parameters(model) -> int:
    """Number of trainable weights of ``model`` (biases included, batch-norm statistics not).

    Examples
    --------
    >>> import keras
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> trainable_parameters(model)  # 4 * 3 weights + 3 biases
    15
    """
    return int(sum(math.prod(w.shape) for w in model.trainable_weights))


# ----------------------------------------------------------------------------- LeNet-5

# C3's connection table (LeCun et al. 1998, Table I): which of S2's six maps each of the
# sixteen C3 maps reads. Breaking the symmetry makes the maps learn different features,
# and it keeps the number of connections down.
LENET_C3_TABLE = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (0, 4, 5), (0, 1, 5),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (0, 3, 4, 5), (0, 1, 4, 5), (0, 1, 2, 5),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)


def _lenet_subsampling(x, name: str):
    # The paper's S layers add the four inputs of a 2x2 window, multiply by a trainable
    # coefficient and add a trainable bias, per map: average pooling and a per-map
    # (depthwise) 1x1 scale and bias give the same function with 2 parameters per map.
    x = layers.AveragePooling2D(2, name=f"{name}_pool")(x)
    return layers.DepthwiseConv2D(1, activation="tanh", name=name)(x)


def lenet5(*, input_shape=(32, 32, 1), classes: int = 10, connection_table: bool = True):
    """LeNet-5 (LeCun et al. 1998): C1–S2–C3–S4–C5–F6–output.

    The classic version: C1 has 6 maps of 5×5, S2 and S4 are trainable subsamplings (one
    coefficient and one bias per map, 12 and 32 parameters), C3 has 16 maps of 5×5 that
    read the subsets of S2's maps given by the paper's Table I (``connection_table=True``,
    1,516 parameters; ``False`` connects every map to all six: 2,416), C5 has 120 maps
    (48,120), F6 84 units (10,164). Up to F6 that is the paper's 60,000 trainable
    parameters. Two simplifications: plain ``tanh`` replaces the scaled
    ``1.7159 tanh(2a/3)`` (same parameter count), and a softmax ``Dense`` layer (850
    parameters) replaces the Euclidean RBF output units, whose 84×10 weights the paper
    fixes by hand rather than learning. Total: 60,850.

    Parameters
    ----------
    input_shape : (int, int, int)
        32×32×1 in the paper (MNIST digits padded to 32×32).
    classes : int
        Number of outputs (10 digits).
    connection_table : bool
        Use C3's partial connection table (default) or full connections.

    Examples
    --------
    >>> from cnn_course.architectures import lenet5, trainable_parameters
    >>> trainable_parameters(lenet5(connection_table=False)) - trainable_parameters(lenet5())
    900
    """
    check_positive_int(classes, "classes")
    inputs = _input(input_shape)
    # C5's 5x5 kernels need S4 maps of at least 5x5, i.e. an input of at least 32x32
    # (MNIST's 28x28 digits were padded to 32x32 in the paper).
    if any(size is not None and size < 32 for size in input_shape[:2]):
        raise ValueError(f"LeNet-5 needs images of at least 32×32 pixels (pad 28×28 digits by 2 "
                         f"on each side), got {input_shape[0]}×{input_shape[1]}")
    x = layers.Conv2D(6, 5, activation="tanh", name="C1")(inputs)
    x = _lenet_subsampling(x, "S2")
    if connection_table:
        if x.shape[-1] != 6:
            raise ValueError(f"C3's connection table needs 6 maps from S2, got {x.shape[-1]}")
        maps = []
        for i, sources in enumerate(LENET_C3_TABLE):
            # Each C3 map is its own small convolution over the S2 maps it reads.
            picked = layers.Lambda(lambda t, s=sources: ops.take(t, list(s), axis=-1),
                                   name=f"C3_inputs_{i}")(x)
            maps.append(layers.Conv2D(1, 5, activation="tanh", name=f"C3_map_{i}")(picked))
        x = layers.Concatenate(name="C3")(maps)
    else:
        x = layers.Conv2D(16, 5, activation="tanh", name="C3")(x)
    x = _lenet_subsampling(x, "S4")
    x = layers.Conv2D(120, 5, activation="tanh", name="C5")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(84, activation="tanh", name="F6")(x)
    outputs = layers.Dense(classes, activation="softmax", name="output")(x)
    return keras.Model(inputs, outputs, name="lenet5")


# ----------------------------------------------------------------------------- AlexNet


def alexnet_two_tower_parameters(classes: int = 1000) -> int:
    """Trainable parameters of AlexNet as trained on two GPUs (227×227×3 input).

    In the paper conv2, conv4 and conv5 only see the maps of their own GPU: each of
    their kernels has half the input channels, which halves those layers' weights
    (biases unchanged). conv3 and the dense layers read both GPUs.

    Examples
    --------
    >>> alexnet_two_tower_parameters()
    60965224
    """
    check_positive_int(classes, "classes")

    def conv(k, c_in, c_out, groups=1):
        return k * k * (c_in // groups) * c_out + c_out

    return (conv(11, 3, 96) + conv(5, 96, 256, 2) + conv(3, 256, 384) + conv(3, 384, 384, 2)
            + conv(3, 384, 256, 2) + (6 * 6 * 256 + 1) * 4096 + (4096 + 1) * 4096
            + (4096 + 1) * classes)


def alexnet(*, input_shape=(227, 227, 3), classes: int = 1000, two_towers: bool = False,
            dropout: float = 0.5):
    """AlexNet (Krizhevsky, Sutskever & Hinton 2012), single tower by default.

    Input 227×227×3 with an unpadded 11×11 stride-4 conv1, which gives the 55×55 maps of
    the paper's figure ((227 − 11) / 4 + 1 = 55; the "224" of the paper's text does not
    give whole numbers). conv2–conv5 use "same" padding, max pooling is 3×3 stride 2
    (overlapping). Local response normalisation is left out: it has no parameters and
    Keras has no layer for it. 62,378,344 parameters.

    ``two_towers=True`` reproduces the two-GPU connectivity with grouped convolutions
    (``groups=2`` in conv2, conv4, conv5): each of those kernels sees half the input
    channels, 1,413,120 weights fewer, 60,965,224 in all
    (:func:`alexnet_two_tower_parameters` counts it by hand).

    Examples
    --------
    >>> from cnn_course.architectures import alexnet
    >>> alexnet(input_shape=(227, 227, 3), classes=10).get_layer("conv1").output.shape
    (None, 55, 55, 96)
    """
    check_positive_int(classes, "classes")
    groups = 2 if two_towers else 1
    inputs = _input(input_shape)
    x = layers.Conv2D(96, 11, strides=4, activation="relu", name="conv1")(inputs)
    x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    x = layers.Conv2D(256, 5, padding="same", groups=groups, activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool2")(x)
    x = layers.Conv2D(384, 3, padding="same", activation="relu", name="conv3")(x)
    x = layers.Conv2D(384, 3, padding="same", groups=groups, activation="relu", name="conv4")(x)
    x = layers.Conv2D(256, 3, padding="same", groups=groups, activation="relu", name="conv5")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool5")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(4096, activation="relu", name="fc6")(x)
    x = layers.Dropout(dropout, name="drop6")(x)
    x = layers.Dense(4096, activation="relu", name="fc7")(x)
    x = layers.Dropout(dropout, name="drop7")(x)
    outputs = layers.Dense(classes, activation="softmax", name="fc8")(x)
    return keras.Model(inputs, outputs, name="alexnet_two_towers" if two_towers else "alexnet")


# ----------------------------------------------------------------------------- VGG

#: Simonyan & Zisserman 2014, Table 1: per block, the convolutions as (kernel, filters).
#: Every block ends with 2x2 max pooling. A-LRN is left out: it is A plus one local
#: response normalisation, which has no parameters (Keras has no layer for it).
VGG_CONFIGS = {
    "A": [[(3, 64)], [(3, 128)], [(3, 256)] * 2, [(3, 512)] * 2, [(3, 512)] * 2],
    "B": [[(3, 64)] * 2, [(3, 128)] * 2, [(3, 256)] * 2, [(3, 512)] * 2, [(3, 512)] * 2],
    "C": [[(3, 64)] * 2, [(3, 128)] * 2, [(3, 256)] * 2 + [(1, 256)],
          [(3, 512)] * 2 + [(1, 512)], [(3, 512)] * 2 + [(1, 512)]],
    "D": [[(3, 64)] * 2, [(3, 128)] * 2, [(3, 256)] * 3, [(3, 512)] * 3, [(3, 512)] * 3],
    "E": [[(3, 64)] * 2, [(3, 128)] * 2, [(3, 256)] * 4, [(3, 512)] * 4, [(3, 512)] * 4],
}


def vgg(config: str = "D", *, input_shape=(224, 224, 3), classes: int = 1000,
        dropout: float = 0.5):
    """VGG network of configuration ``config`` ("A"–"E"; "D" is VGG-16, "E" VGG-19).

    3×3 convolutions with stride 1 and "same" padding (configuration C also has 1×1
    convolutions), 2×2 max pooling, then dense layers of 4096, 4096 and ``classes``.

    Examples
    --------
    >>> from cnn_course.architectures import VGG_CONFIGS
    >>> [sum(len(block) for block in VGG_CONFIGS[c]) + 3 for c in "ABCDE"]  # weight layers
    [11, 13, 16, 16, 19]
    """
    if not isinstance(config, str) or config.upper() not in VGG_CONFIGS:
        raise ValueError(f"unknown VGG configuration {config!r}: expected one of "
                         f"{', '.join(VGG_CONFIGS)} (Simonyan & Zisserman 2014, Table 1)")
    config = config.upper()
    check_positive_int(classes, "classes")
    inputs = _input(input_shape)
    x = inputs
    for b, block in enumerate(VGG_CONFIGS[config], start=1):
        for c, (kernel, filters) in enumerate(block, start=1):
            x = layers.Conv2D(filters, kernel, padding="same", activation="relu",
                              name=f"block{b}_conv{c}")(x)
        x = layers.MaxPooling2D(2, name=f"block{b}_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(4096, activation="relu", name="fc1")(x)
    x = layers.Dropout(dropout, name="drop1")(x)
    x = layers.Dense(4096, activation="relu", name="fc2")(x)
    x = layers.Dropout(dropout, name="drop2")(x)
    outputs = layers.Dense(classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=f"vgg_{config}")


# ----------------------------------------------------------------------------- GoogLeNet


def inception_module(x, f1, f3_reduce, f3, f5_reduce, f5, pool_proj, *, name=None):
    """An Inception module (Szegedy et al. 2014, Figure 2b).

    Four branches side by side, concatenated along the channels: 1×1 (``f1`` maps);
    1×1 reduction to ``f3_reduce`` then 3×3 (``f3``); 1×1 reduction to ``f5_reduce`` then
    5×5 (``f5``); 3×3 max pooling (stride 1) then 1×1 projection (``pool_proj``). Every
    convolution has a bias and a ReLU. Output channels: ``f1 + f3 + f5 + pool_proj``.

    Examples
    --------
    >>> import keras
    >>> from cnn_course.architectures import inception_module
    >>> x = keras.Input((28, 28, 192))
    >>> y = inception_module(x, 64, 96, 128, 16, 32, 32, name="3a")  # Table 1, row 3a
    >>> y.shape
    (None, 28, 28, 256)
    """
    _check_tensor(x)
    for value, what in zip((f1, f3_reduce, f3, f5_reduce, f5, pool_proj),
                           ("f1", "f3_reduce", "f3", "f5_reduce", "f5", "pool_proj"), strict=True):
        check_positive_int(value, what)
    p = f"{name}_" if name else ""

    def conv(t, filters, kernel, label):
        return layers.Conv2D(filters, kernel, padding="same", activation="relu",
                             name=f"{p}{label}" if name else None)(t)

    b1 = conv(x, f1, 1, "1x1")
    b3 = conv(conv(x, f3_reduce, 1, "3x3_reduce"), f3, 3, "3x3")
    b5 = conv(conv(x, f5_reduce, 1, "5x5_reduce"), f5, 5, "5x5")
    pooled = layers.MaxPooling2D(3, strides=1, padding="same",
                                 name=f"{p}pool" if name else None)(x)
    bp = conv(pooled, pool_proj, 1, "pool_proj")
    return layers.Concatenate(name=f"{p}output" if name else None)([b1, b3, b5, bp])


#: The inception rows of Szegedy et al. 2014, Table 1:
#: (f1, f3_reduce, f3, f5_reduce, f5, pool_proj); "pool" marks the 3x3 stride-2 max pooling.
GOOGLENET_MODULES = (
    ("3a", (64, 96, 128, 16, 32, 32)),
    ("3b", (128, 128, 192, 32, 96, 64)),
    ("pool", None),
    ("4a", (192, 96, 208, 16, 48, 64)),
    ("4b", (160, 112, 224, 24, 64, 64)),
    ("4c", (128, 128, 256, 24, 64, 64)),
    ("4d", (112, 144, 288, 32, 64, 64)),
    ("4e", (256, 160, 320, 32, 128, 128)),
    ("pool", None),
    ("5a", (256, 160, 320, 32, 128, 128)),
    ("5b", (384, 192, 384, 48, 128, 128)),
)

# The "params" column of Szegedy et al., "Going Deeper with Convolutions", 2014, Table 1,
# typed from the paper (thousands of weights, "K"). Reference data, not computed here.
_GOOGLENET_PAPER_PARAMS_K = {
    "conv 7x7/2": 2.7, "max pool 3x3/2 (1)": 0, "conv 3x3/1": 112, "max pool 3x3/2 (2)": 0,
    "inception 3a": 159, "inception 3b": 380, "max pool 3x3/2 (3)": 0,
    "inception 4a": 364, "inception 4b": 437, "inception 4c": 463, "inception 4d": 580,
    "inception 4e": 840, "max pool 3x3/2 (4)": 0, "inception 5a": 1072, "inception 5b": 1388,
    "avg pool 7x7/1": 0, "dropout (40%)": 0, "linear": 1000,
}


def _auxiliary_classifier(x, classes: int, name: str):
    # Szegedy et al. 2014, Section 5: 5x5 average pooling with stride 3 (4x4 maps at
    # 224x224), a 1x1 convolution of 128 maps, a dense layer of 1024 units, 70 % dropout,
    # and a softmax classifier. Its loss is added with weight 0.3 during training only.
    x = layers.AveragePooling2D(5, strides=3, name=f"{name}_pool")(x)
    x = layers.Conv2D(128, 1, activation="relu", name=f"{name}_conv")(x)
    x = layers.Flatten(name=f"{name}_flatten")(x)
    x = layers.Dense(1024, activation="relu", name=f"{name}_fc")(x)
    x = layers.Dropout(0.7, name=f"{name}_dropout")(x)
    return layers.Dense(classes, activation="softmax", name=f"{name}_linear")(x)


def googlenet(*, input_shape=(224, 224, 3), classes: int = 1000, dropout: float = 0.4,
              auxiliary_classifiers: bool = False):
    """GoogLeNet (Szegedy et al. 2014, Table 1).

    Local response normalisation (no parameters) is left out. The final 7×7 average
    pooling is written as global average pooling (the same at 224×224).
    :func:`googlenet_table` lists every row's parameters next to the paper's column.
    With ``auxiliary_classifiers=True`` the model has three outputs: the main classifier
    and the two side classifiers on top of inception 4a and 4d (paper, Section 5),
    which only help training and are dropped at test time.

    Examples
    --------
    >>> from cnn_course.architectures import GOOGLENET_MODULES
    >>> sum(f[0] + f[2] + f[4] + f[5] for label, f in GOOGLENET_MODULES if label == "5b")
    1024
    """
    check_positive_int(classes, "classes")
    inputs = _input(input_shape)
    x = layers.Conv2D(64, 7, strides=2, padding="same", activation="relu", name="conv1_7x7")(inputs)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
    # The paper's "conv 3x3/1" row has depth 2: a 1x1 reduction (64) before the 3x3 (192).
    x = layers.Conv2D(64, 1, activation="relu", name="conv2_reduce")(x)
    x = layers.Conv2D(192, 3, padding="same", activation="relu", name="conv2_3x3")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool2")(x)
    pools, side = 2, []
    for label, filters in GOOGLENET_MODULES:
        if filters is None:
            pools += 1
            x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"pool{pools}")(x)
        else:
            x = inception_module(x, *filters, name=f"inception_{label}")
            if auxiliary_classifiers and label in ("4a", "4d"):
                side.append(_auxiliary_classifier(x, classes, f"aux_{label}"))
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)  # 7x7 average pooling at 224x224
    x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(classes, activation="softmax", name="linear")(x)
    if auxiliary_classifiers:
        return keras.Model(inputs, [outputs, *side], name="googlenet_with_auxiliary_classifiers")
    return keras.Model(inputs, outputs, name="googlenet")


@dataclass(frozen=True)
class GoogLeNetRow:
    """One row of GoogLeNet's Table 1: our exact count and the paper's figure."""

    name: str
    params: int  #: weights and biases of the row's layers, as Keras counts them
    paper_k: float  #: the paper's "params" column, in thousands ("K")
    weights: int  #: the same as ``params`` without the biases

    @property
    def ratio(self) -> float:
        """Exact weights (biases left out, as the paper does) over the paper's figure in
        units of 1024: 1.0 where they agree (``nan`` for rows without parameters)."""
        return self.weights / (self.paper_k * 1024) if self.paper_k else math.nan


def googlenet_table(classes: int = 1000) -> list[GoogLeNetRow]:
    """Per row of Szegedy et al. 2014, Table 1: the exact parameter count next to the paper's.

    Our ``params`` are Keras' count for the row's layers (weights *and* biases). The
    paper's column (``paper_k``, typed from the paper) is rounded to thousands and
    leaves the biases out; the figures agree best with K = 1024 (the 3×3 row: 64·64 +
    9·64·192 = 114,688 = 112 × 1024 weights; the linear layer: 1,024,000 = 1000 × 1024),
    and most inception rows lie within 2 % of that reading (``ratio``). Two rows are
    further off (4c: our count is 7 % higher, 5a: 5 % lower), and the first
    convolution's "2.7K" matches no reading of a 7×7 convolution from 3 to 64 channels
    (9,408 weights): the paper does not say why. Biases add only 0.1–0.3 % to a module.

    Examples
    --------
    >>> from cnn_course.architectures import googlenet_table
    >>> row = googlenet_table()[4]
    >>> row.name, row.params, row.weights, row.paper_k
    ('inception 3a', 163696, 163328, 159)
    """
    check_positive_int(classes, "classes")
    model = googlenet(classes=classes)
    by_row: dict[str, list] = {}
    for layer in model.layers:
        label = _row_of(layer.name)
        by_row.setdefault(label, []).append(layer)
    table = []
    for label, paper in _GOOGLENET_PAPER_PARAMS_K.items():
        found = by_row.get(label, [])
        params = sum(math.prod(w.shape) for layer in found for w in layer.trainable_weights)
        weights = sum(math.prod(w.shape) for layer in found for w in layer.trainable_weights
                      if len(w.shape) > 1)
        table.append(GoogLeNetRow(label, int(params), paper, int(weights)))
    return table


_POOL_ROWS = {"pool1": "max pool 3x3/2 (1)", "pool2": "max pool 3x3/2 (2)",
              "pool3": "max pool 3x3/2 (3)", "pool4": "max pool 3x3/2 (4)"}
_SINGLE_ROWS = {"conv1_7x7": "conv 7x7/2", "conv2_reduce": "conv 3x3/1", "conv2_3x3": "conv 3x3/1",
                "avg_pool": "avg pool 7x7/1", "dropout": "dropout (40%)", "linear": "linear"}


def _row_of(layer_name: str) -> str:
    if layer_name.startswith("inception_"):
        return "inception " + layer_name.split("_")[1]
    return _POOL_ROWS.get(layer_name) or _SINGLE_ROWS.get(layer_name, "input")


# ----------------------------------------------------------------------------- Xception


def separable_conv(x, filters, kernel_size=3, *, stride=1, use_bias=False, name=None):
    """A depthwise-separable convolution (Chollet 2017): one k×k filter per input channel,
    then a 1×1 convolution that mixes the channels.

    ``k·k·C_in + C_in·filters`` weights (plus ``filters`` biases with ``use_bias``) instead
    of a full convolution's ``k·k·C_in·filters``. Xception leaves the bias out because
    batch normalisation follows.

    Examples
    --------
    >>> import keras
    >>> from cnn_course.architectures import separable_conv
    >>> x = keras.Input((8, 8, 16))
    >>> keras.Model(x, separable_conv(x, 32)).count_params()  # 3*3*16 + 16*32
    656
    """
    _check_tensor(x)
    check_positive_int(filters, "filters")
    check_positive_int(kernel_size, "kernel_size")
    check_positive_int(stride, "stride")
    return layers.SeparableConv2D(filters, kernel_size, strides=stride, padding="same",
                                  use_bias=use_bias, name=name)(x)


def xception_block(x, filters, *, repeats=2, downsample=True, relu_first=True, name=None):
    """An Xception residual block (Chollet 2017, Figure 5).

    ``repeats`` times [ReLU, separable 3×3 conv, batch norm]; with ``downsample`` (entry
    flow) a 3×3 stride-2 max pooling follows and the shortcut is a 1×1 stride-2
    convolution with batch norm; without it (middle flow) the shortcut is the identity,
    which needs ``filters`` equal to the input's channels. ``relu_first=False`` drops the
    first ReLU (the entry flow's first block follows a ReLU already).

    Examples
    --------
    >>> import keras
    >>> from cnn_course.architectures import xception_block
    >>> xception_block(keras.Input((32, 32, 64)), 128).shape
    (None, 16, 16, 128)
    """
    _check_tensor(x)
    check_positive_int(filters, "filters")
    check_positive_int(repeats, "repeats")
    if not downsample and x.shape[-1] != filters:
        raise ValueError(f"an identity shortcut needs as many filters as input channels: "
                         f"got {filters} filters for {x.shape[-1]} channels (use downsample=True)")
    p = f"{name}_" if name else None
    shortcut = x
    for i in range(repeats):
        if i > 0 or relu_first:
            x = layers.Activation("relu", name=p and f"{p}relu{i + 1}")(x)
        x = separable_conv(x, filters, name=p and f"{p}sepconv{i + 1}")
        x = layers.BatchNormalization(name=p and f"{p}bn{i + 1}")(x)
    if downsample:
        x = layers.MaxPooling2D(3, strides=2, padding="same", name=p and f"{p}pool")(x)
        shortcut = layers.Conv2D(filters, 1, strides=2, padding="same", use_bias=False,
                                 name=p and f"{p}shortcut")(shortcut)
        shortcut = layers.BatchNormalization(name=p and f"{p}shortcut_bn")(shortcut)
    return layers.Add(name=p and f"{p}add")([x, shortcut])


# ----------------------------------------------------------------------------- ResNet

SHORTCUTS = ("projection", "zero-pad")


def _bn(name):
    # Keras' ResNet50 and DenseNet121 use epsilon 1.001e-5; it changes no parameter count.
    return layers.BatchNormalization(epsilon=1.001e-5, name=name)


def residual_block(x, filters, stride=1, bottleneck=False, preactivation=False, *,
                   shortcut="projection", name=None):
    """A residual block (He et al. 2015), optionally pre-activated (He et al. 2016).

    Basic block: two 3×3 convolutions of ``filters`` maps. Bottleneck block: 1×1
    (``filters``), 3×3 (``filters``), 1×1 (``4 * filters``). The first convolution carries
    the ``stride``. Convolutions have no bias (batch normalisation follows and has its
    own shift). Original order: conv–BN–ReLU, with the last ReLU after the addition;
    pre-activation order: BN–ReLU–conv, nothing after the addition.

    When the shape changes (stride > 1 or other channel count) the shortcut is a 1×1
    strided convolution (+ BN in the original order): ``shortcut="projection"``, the
    paper's option B. ``shortcut="zero-pad"`` is option A: subsample and pad the extra
    channels with zeros, no parameters.

    Examples
    --------
    >>> import keras
    >>> from cnn_course.architectures import residual_block
    >>> residual_block(keras.Input((56, 56, 64)), 64, bottleneck=True).shape
    (None, 56, 56, 256)
    """
    _check_tensor(x)
    check_positive_int(filters, "filters")
    check_positive_int(stride, "stride")
    if shortcut not in SHORTCUTS:
        raise ValueError(f"unknown shortcut {shortcut!r}: expected one of {', '.join(SHORTCUTS)}")
    p = f"{name}_" if name else None
    out_channels = 4 * filters if bottleneck else filters
    plan = ([(1, filters, 1), (3, filters, stride), (1, out_channels, 1)] if bottleneck
            else [(3, filters, stride), (3, filters, 1)])
    # Keras' ResNet50 (v1) strides the first 1x1 convolution of a bottleneck; same count.
    if bottleneck:
        plan[0], plan[1] = (1, filters, stride), (3, filters, 1)
    needs_projection = stride != 1 or x.shape[-1] != out_channels

    inputs = x
    if preactivation:
        x = _bn(p and f"{p}preact_bn")(x)
        x = layers.Activation("relu", name=p and f"{p}preact_relu")(x)
        # The projection reads the pre-activated input (He et al. 2016, Appendix).
        shortcut_source = x if needs_projection else inputs
    else:
        shortcut_source = inputs
    for i, (kernel, n, s) in enumerate(plan, start=1):
        if preactivation and i > 1:
            x = _bn(p and f"{p}bn{i - 1}")(x)
            x = layers.Activation("relu", name=p and f"{p}relu{i - 1}")(x)
        x = layers.Conv2D(n, kernel, strides=s, padding="same", use_bias=False,
                          name=p and f"{p}conv{i}")(x)
        if not preactivation:
            x = _bn(p and f"{p}bn{i}")(x)
            if i < len(plan):
                x = layers.Activation("relu", name=p and f"{p}relu{i}")(x)

    if not needs_projection:
        residual = shortcut_source
    elif shortcut == "projection":
        residual = layers.Conv2D(out_channels, 1, strides=stride, use_bias=False,
                                 name=p and f"{p}shortcut")(shortcut_source)
        if not preactivation:
            residual = _bn(p and f"{p}shortcut_bn")(residual)
    else:
        residual = layers.Lambda(_zero_pad_shortcut, arguments={"stride": stride,
                                                                "channels": out_channels},
                                 name=p and f"{p}shortcut")(shortcut_source)
    x = layers.Add(name=p and f"{p}add")([x, residual])
    if not preactivation:
        x = layers.Activation("relu", name=p and f"{p}out")(x)
    return x


def _zero_pad_shortcut(t, stride, channels):
    # Option A: keep every stride-th pixel, add zero maps for the new channels.
    t = t[:, ::stride, ::stride, :]
    extra = channels - t.shape[-1]
    return ops.pad(t, [[0, 0], [0, 0], [0, 0], [extra // 2, extra - extra // 2]])


#: ImageNet ResNets of He et al. 2015, Table 1: blocks per stage and bottleneck or not.
IMAGENET_RESNETS = {18: ((2, 2, 2, 2), False), 34: ((3, 4, 6, 3), False),
                    50: ((3, 4, 6, 3), True)}


def resnet(depth: int = 50, *, input_shape=None, classes=None, preactivation=False,
           shortcut=None):
    """A ResNet: ImageNet ResNet-18/34/50 or a CIFAR ResNet of depth 6n + 2.

    ``depth`` 18, 34 or 50: He et al. 2015, Table 1 (7×7 stem, 3×3 max pooling, four
    stages of 64–512 filters, global average pooling, 1000 classes at 224×224×3),
    projection shortcuts where the shape changes (option B). Any other ``depth`` must be
    6n + 2 (20, 32, 44, 56, 110, ...): the CIFAR-10 networks of Section 4.2 (3×3 stem of
    16 filters, three stages of n basic blocks with 16, 32, 64 filters, 10 classes at
    32×32×3) with option A (zero-padding, parameter-free) shortcuts, as in the paper's
    Table 6. ``shortcut`` overrides the choice ("projection" or "zero-pad").

    Examples
    --------
    >>> from cnn_course.architectures import resnet
    >>> model = resnet(20)
    >>> model.name, model.output_shape
    ('resnet20', (None, 10))
    """
    if isinstance(depth, bool) or not isinstance(depth, int):
        raise TypeError(f"depth must be a whole number, got {depth!r}")
    cifar = depth not in IMAGENET_RESNETS
    if cifar and (depth < 8 or (depth - 2) % 6):
        raise ValueError(f"depth must be 18, 34 or 50 (ImageNet) or of the form 6n + 2 "
                         f"(20, 32, 44, 56, 110, ... for CIFAR), got {depth}")
    if input_shape is None:
        input_shape = (32, 32, 3) if cifar else (224, 224, 3)
    classes = (10 if cifar else 1000) if classes is None else classes
    check_positive_int(classes, "classes")
    shortcut = shortcut or ("zero-pad" if cifar else "projection")
    inputs = _input(input_shape)

    if cifar:
        stages, bottleneck = ((depth - 2) // 6,) * 3, False
        widths = (16, 32, 64)
        x = layers.Conv2D(16, 3, padding="same", use_bias=False, name="stem_conv")(inputs)
    else:
        stages, bottleneck = IMAGENET_RESNETS[depth]
        widths = (64, 128, 256, 512)
        x = layers.Conv2D(64, 7, strides=2, padding="same", use_bias=False, name="stem_conv")(inputs)
    if not preactivation:
        x = _bn("stem_bn")(x)
        x = layers.Activation("relu", name="stem_relu")(x)
    if not cifar:
        x = layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    for s, (blocks, width) in enumerate(zip(stages, widths, strict=True), start=1):
        for b in range(1, blocks + 1):
            stride = 2 if (b == 1 and s > 1) else 1
            x = residual_block(x, width, stride, bottleneck, preactivation,
                               shortcut=shortcut, name=f"stage{s}_block{b}")
    if preactivation:
        x = _bn("final_bn")(x)
        x = layers.Activation("relu", name="final_relu")(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = layers.Dense(classes, activation="softmax", name="predictions")(x)
    prefix = "preact_" if preactivation else ""
    return keras.Model(inputs, outputs, name=f"{prefix}resnet{depth}")


# ----------------------------------------------------------------------------- DenseNet


def dense_block(x, layers, growth_rate, bottleneck=True, *, name=None):
    """A dense block (Huang et al. 2017): each layer's output is concatenated to its input.

    Each of the ``layers`` layers is BN–ReLU–3×3 conv of ``growth_rate`` maps,
    preceded in DenseNet-B (``bottleneck=True``) by BN–ReLU–1×1 conv of
    ``4 * growth_rate`` maps. The block adds ``layers * growth_rate`` channels.

    Examples
    --------
    >>> import keras
    >>> from cnn_course.architectures import dense_block
    >>> dense_block(keras.Input((56, 56, 64)), 6, 32).shape
    (None, 56, 56, 256)
    """
    _check_tensor(x)
    check_positive_int(layers, "layers (the number of layers in the block)")
    check_positive_int(growth_rate, "growth_rate")
    p = f"{name}_" if name else None
    # The argument ``layers`` hides the module imported as ``layers``: use keras.layers.
    for i in range(1, layers + 1):
        q = p and f"{p}layer{i}_"
        y = x
        if bottleneck:
            y = _bn(q and f"{q}bn1")(y)
            y = keras.layers.Activation("relu", name=q and f"{q}relu1")(y)
            y = keras.layers.Conv2D(4 * growth_rate, 1, use_bias=False, name=q and f"{q}conv1")(y)
        y = _bn(q and f"{q}bn2")(y)
        y = keras.layers.Activation("relu", name=q and f"{q}relu2")(y)
        y = keras.layers.Conv2D(growth_rate, 3, padding="same", use_bias=False, name=q and f"{q}conv2")(y)
        x = keras.layers.Concatenate(name=q and f"{q}concat")([x, y])
    return x


def transition(x, compression=0.5, *, name=None):
    """A transition layer (Huang et al. 2017): BN–ReLU–1×1 conv to ``floor(compression·C)``
    maps, then 2×2 average pooling. ``compression`` θ lies in (0, 1]; DenseNet-C uses 0.5.

    Examples
    --------
    >>> import keras
    >>> from cnn_course.architectures import transition
    >>> transition(keras.Input((56, 56, 256))).shape
    (None, 28, 28, 128)
    """
    _check_tensor(x)
    if isinstance(compression, bool) or not isinstance(compression, (int, float)):
        raise TypeError(f"compression must be a number in (0, 1], got {compression!r}")
    if not 0 < compression <= 1:
        raise ValueError(f"compression must lie in (0, 1] (a fraction of the channels to keep), "
                         f"got {compression}")
    p = f"{name}_" if name else None
    x = _bn(p and f"{p}bn")(x)
    x = layers.Activation("relu", name=p and f"{p}relu")(x)
    x = layers.Conv2D(int(x.shape[-1] * compression), 1, use_bias=False, name=p and f"{p}conv")(x)
    return layers.AveragePooling2D(2, strides=2, name=p and f"{p}pool")(x)


def densenet121(*, input_shape=(224, 224, 3), classes: int = 1000, growth_rate: int = 32,
                compression: float = 0.5):
    """DenseNet-121 (DenseNet-BC of Huang et al. 2017, Table 1): blocks of 6, 12, 24, 16
    layers, growth rate 32, compression 0.5, a 7×7 stride-2 stem of 2k = 64 maps.

    Examples
    --------
    >>> 64 + 32 * (6 + 12 + 24 + 16) - (64 + 32 * 6) // 2 - (128 + 32 * 12) // 2 - (256 + 32 * 24) // 2
    1024
    """
    check_positive_int(classes, "classes")
    check_positive_int(growth_rate, "growth_rate")
    inputs = _input(input_shape)
    x = layers.Conv2D(2 * growth_rate, 7, strides=2, padding="same", use_bias=False,
                      name="stem_conv")(inputs)
    x = _bn("stem_bn")(x)
    x = layers.Activation("relu", name="stem_relu")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    blocks = (6, 12, 24, 16)
    for i, count in enumerate(blocks, start=1):
        x = dense_block(x, count, growth_rate, name=f"block{i}")
        if i < len(blocks):
            x = transition(x, compression, name=f"transition{i}")
    x = _bn("final_bn")(x)
    x = layers.Activation("relu", name="final_relu")(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = layers.Dense(classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="densenet121")
