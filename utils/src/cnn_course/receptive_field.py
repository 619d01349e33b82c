"""Receptive fields of stacks of convolution and pooling layers.

A unit of a convolutional layer depends on a window of the layer below; that
window depends on a larger window further down, and so on. The *receptive field*
of a unit is the window of **input pixels** it depends on. For a chain of layers,
each with kernel size ``k``, stride ``s`` and dilation ``d`` (per axis), three
numbers per layer ``l`` describe the geometry (Araujo, Norris & Sim, "Computing
Receptive Fields of Convolutional Neural Networks", Distill, 2019):

* the **receptive field size** ``r_l = r_{l-1} + (k_eff - 1) * j_{l-1}``, where the
  dilated kernel spans ``k_eff = k + (k - 1)(d - 1)`` units of the layer below;
* the **jump** ``j_l = j_{l-1} * s``: the distance, in input pixels, between the
  fields of two neighbouring units (``r_0 = j_0 = 1`` for the input itself);
* the **start**: the input coordinate of the centre of the first unit's field,
  which padding shifts left/up (below, pixel ``i`` of the input has centre ``i``).

The receptive field is the *theoretical* one: every pixel in it can influence the
unit. How much it does is another matter: Luo, Li, Urtasun & Zemel ("Understanding
the Effective Receptive Field in Deep Convolutional Neural Networks", NeurIPS 2016)
showed that the pixels near the centre dominate (the influence falls off roughly
like a Gaussian), so the *effective* receptive field is much smaller than ``r``.

Layers are described with :class:`Layer` (or :func:`conv` / :func:`pool`, or a
short text such as ``"c3 c3 p2 c3d2"`` read by :func:`parse_layers`), or read from a
Keras model by :func:`receptive_field_of_model`.

Examples
--------
>>> from cnn_course.receptive_field import conv, pool, receptive_fields
>>> table = receptive_fields([conv(3), pool(2), conv(3)], input_shape=(32, 32))
>>> print(table)
#  layer              output  receptive field  jump  start
0  input              32×32   1×1              1     0
1  conv 3×3           30×30   3×3              1     1
2  pool 2×2 stride 2  15×15   4×4              2     1.5
3  conv 3×3           13×13   8×8              2     3.5
>>> table[-1].receptive_field, table[-1].jump
((8, 8), (2, 2))
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ._geometry import as_pair, check_word, dilated_size, is_int, output_length, same_padding

__all__ = [
    "Layer",
    "LayerGeometry",
    "ReceptiveFieldTable",
    "STACK_EXAMPLES",
    "STACK_SYNTAX",
    "conv",
    "input_mask",
    "input_region",
    "parse_layers",
    "pool",
    "receptive_field_of_model",
    "receptive_fields",
]

KINDS = ("conv", "pool")
PADDINGS = ("valid", "same")


# ----------------------------------------------------------------------------- layers


def _times(pair) -> str:
    return f"{pair[0]}×{pair[1]}"


def _one_or_pair(pair) -> str:
    """``2`` for (2, 2), ``(2, 1)`` otherwise; ``?`` when unknown."""
    if pair is None:
        return "?"
    values = [f"{v:g}" if isinstance(v, float) else str(v) for v in pair]
    return values[0] if values[0] == values[1] else f"({values[0]}, {values[1]})"


@dataclass(frozen=True)
class Layer:
    """One convolution or pooling layer, as far as geometry is concerned.

    Parameters
    ----------
    kind : {"conv", "pool"}
        Convolution (any number of channels, depthwise or not) or pooling (max or
        average: they have the same geometry).
    kernel : int or (int, int)
        Kernel (window) size; a pair gives (rows, columns).
    stride : int or (int, int)
        Step between neighbouring windows.
    dilation : int or (int, int)
        Spacing between kernel taps (1 = none); pooling layers have none.
    padding : "valid", "same", int or (int, int)
        ``"valid"``: no padding; ``"same"``: Keras/TensorFlow "same" padding (output
        size ``ceil(n / stride)``, any odd pixel of padding goes to the bottom/right);
        an int: that many zeros on each side.
    name : str
        Optional label, e.g. the name of the Keras layer it was read from.

    Examples
    --------
    >>> Layer("conv", kernel=3, dilation=2).effective_kernel
    (5, 5)
    >>> Layer("pool", kernel=(2, 1), stride=(2, 1)).describe()
    'pool 2×1 stride (2, 1)'
    """

    kind: str = "conv"
    kernel: int | tuple[int, int] = 3
    stride: int | tuple[int, int] = 1
    dilation: int | tuple[int, int] = 1
    padding: str | int | tuple[int, int] = "valid"
    name: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be 'conv' or 'pool', got {self.kind!r}")
        # Frozen dataclass: normalise the fields once, here, so the rest of the code sees pairs.
        object.__setattr__(self, "kernel", as_pair(self.kernel, "kernel size", minimum=1))
        object.__setattr__(self, "stride", as_pair(self.stride, "stride", minimum=1))
        object.__setattr__(self, "dilation", as_pair(self.dilation, "dilation", minimum=1))
        if self.kind == "pool" and self.dilation != (1, 1):
            raise ValueError(f"pooling layers have no dilation, got dilation {self.dilation}")
        if isinstance(self.padding, str):
            try:
                padding = check_word(self.padding, "padding", PADDINGS)
            except ValueError:
                raise ValueError(
                    f"padding must be 'valid', 'same' or a number of pixels, got {self.padding!r}"
                ) from None
            object.__setattr__(self, "padding", padding)
        else:
            object.__setattr__(self, "padding", as_pair(self.padding, "padding", minimum=0))

    @property
    def effective_kernel(self) -> tuple[int, int]:
        """Span of the (dilated) kernel, ``k + (k - 1)(d - 1)``, per axis."""
        return tuple(dilated_size(k, d) for k, d in zip(self.kernel, self.dilation, strict=True))

    def describe(self) -> str:
        """A short label such as ``"conv 3×3 stride 2 same"``."""
        parts = [f"{self.kind} {_times(self.kernel)}"]
        if self.stride != (1, 1):
            parts.append(f"stride {_one_or_pair(self.stride)}")
        if self.dilation != (1, 1):
            parts.append(f"dilation {_one_or_pair(self.dilation)}")
        if self.padding == "same":
            parts.append("same")
        elif self.padding != "valid":
            parts.append(f"pad {_one_or_pair(self.padding)}")
        return " ".join(parts)


def conv(kernel=3, stride=1, dilation=1, padding="valid", name: str = "") -> Layer:
    """A convolution :class:`Layer`.

    Examples
    --------
    >>> conv(3, stride=2).describe()
    'conv 3×3 stride 2'
    """
    return Layer("conv", kernel=kernel, stride=stride, dilation=dilation, padding=padding, name=name)


def pool(size=2, stride=None, padding="valid", name: str = "") -> Layer:
    """A (max or average) pooling :class:`Layer`; ``stride`` defaults to ``size``, as in Keras.

    Examples
    --------
    >>> pool(2).stride
    (2, 2)
    """
    return Layer("pool", kernel=size, stride=size if stride is None else stride, padding=padding, name=name)


_SIZE = r"\d+(?:x\d+)?"
_TOKEN = re.compile(
    rf"(?P<kind>[cp])(?P<kernel>{_SIZE})(?:s(?P<stride>{_SIZE}))?(?:d(?P<dilation>{_SIZE}))?"
    r"(?P<padding>same|valid)?"
)
# The short notation, one example per rule: (text, what it means).
STACK_EXAMPLES = (
    ("c3", "3×3 conv"),
    ("c3s2", "stride 2"),
    ("c3d2", "dilation 2"),
    ("c3x5", "3×5 kernel"),
    ("p2", "2×2 pooling with stride 2"),
    ("p3s1", "3×3 pooling with stride 1"),
    ("c3same", "'same' padding"),
)
STACK_SYNTAX = "write layers separated by spaces, e.g. 'c3 c3 p2 c3d2': " + ", ".join(
    f"{text} = {meaning}" for text, meaning in STACK_EXAMPLES
)


def _size(text: str) -> int | tuple[int, int]:
    rows, _, cols = text.partition("x")
    return (int(rows), int(cols)) if cols else int(rows)


def parse_layers(text: str, padding: str = "valid") -> list[Layer]:
    """Read a stack of layers from a short text such as ``"c3 c3 p2 c3d2"``.

    Parameters
    ----------
    text : str
        Layers separated by spaces or commas. ``c<k>`` is a ``k×k`` convolution,
        ``p<k>`` a ``k×k`` pooling layer (stride ``k`` unless given); then optionally
        ``s<stride>``, ``d<dilation>`` (convolutions only) and ``same`` or ``valid``.
        Sizes may be pairs: ``c3x5``, ``p2x1s2x1``.
    padding : {"valid", "same"}
        Padding of the layers that do not say.

    Returns
    -------
    list of Layer

    Raises
    ------
    ValueError
        If a layer cannot be read; the message shows the expected syntax.

    Examples
    --------
    >>> [layer.describe() for layer in parse_layers("c3 c3s2 p2 c3d2same")]
    ['conv 3×3', 'conv 3×3 stride 2', 'pool 2×2 stride 2', 'conv 3×3 dilation 2 same']
    """
    if not isinstance(text, str):
        raise TypeError(f"the stack must be text such as 'c3 c3 p2', got {type(text).__name__}")
    tokens = text.replace(",", " ").replace("×", "x").lower().split()
    if not tokens:
        raise ValueError(f"the stack is empty; {STACK_SYNTAX}")
    layers = []
    for number, token in enumerate(tokens, start=1):
        match = _TOKEN.fullmatch(token)
        if match is None:
            raise ValueError(f"cannot read layer {number} {token!r}: {STACK_SYNTAX}")
        parts = match.groupdict()
        kind = "conv" if parts["kind"] == "c" else "pool"
        if kind == "pool" and parts["dilation"]:
            raise ValueError(f"layer {number} {token!r}: pooling layers have no dilation")
        kernel = _size(parts["kernel"])
        stride = _size(parts["stride"]) if parts["stride"] else (1 if kind == "conv" else kernel)
        dilation = _size(parts["dilation"]) if parts["dilation"] else 1
        try:
            layers.append(
                Layer(kind, kernel=kernel, stride=stride, dilation=dilation,
                      padding=parts["padding"] or padding, name=token)
            )
        except (TypeError, ValueError) as error:
            raise ValueError(f"layer {number} {token!r}: {error}") from None
    return layers


def _as_layers(layers) -> list[Layer]:
    if isinstance(layers, str):
        return parse_layers(layers)
    if isinstance(layers, Layer):
        return [layers]
    if not isinstance(layers, Sequence) or not all(isinstance(layer, Layer) for layer in layers):
        raise TypeError(
            "layers must be a list of Layer objects (see conv() and pool()) or text such as "
            f"'c3 c3 p2', got {layers!r}"
        )
    return list(layers)


def _spatial_shape(input_shape) -> tuple[int, int]:
    """(H, W) from an int, (H, W) or (H, W, C)."""
    if is_int(input_shape):
        shape = (int(input_shape), int(input_shape))
    else:
        try:
            shape = tuple(input_shape)
        except TypeError:
            shape = ()
        if len(shape) == 3:
            shape = shape[:2]
        if len(shape) != 2:
            raise ValueError(f"input_shape must be (height, width) or (height, width, channels), "
                             f"got {input_shape!r}")
    return as_pair(shape, "input height and width", minimum=1)


# ----------------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class LayerGeometry:
    """Receptive-field geometry of one layer of a stack (one row of the table).

    Pairs are (rows, columns). Input pixel ``i`` has its centre at coordinate ``i``.

    Attributes
    ----------
    index : int
        1 for the first layer of the stack.
    layer : Layer
    receptive_field : (int, int)
        Size ``r`` of the field of one unit, in input pixels.
    jump : (int, int)
        Distance ``j`` in input pixels between the fields of neighbouring units.
    first_pixel : (int, int) or None
        Input coordinates of the top-left pixel of unit (0, 0)'s field; negative
        values lie in the zero padding. ``None`` when it depends on the input size
        ("same" padding with a stride > 1) and that size was not given.
    start : (float, float) or None
        Centre of unit (0, 0)'s field: ``first_pixel + (r - 1) / 2``.
    input_size, output_size : (int, int) or None
        Spatial size of the layer's input and output, if the input size was given.
    padding_before : (int, int) or None
        Zeros added above and to the left of the layer's input.
    """

    index: int
    layer: Layer
    receptive_field: tuple[int, int]
    jump: tuple[int, int]
    first_pixel: tuple[int, int] | None
    start: tuple[float, float] | None
    input_size: tuple[int, int] | None
    output_size: tuple[int, int] | None
    padding_before: tuple[int, int] | None

    def field_box(self, row: int, col: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """``((top, bottom), (left, right))`` of unit ``(row, col)``'s field, end exclusive, unclipped.

        Examples
        --------
        >>> receptive_fields("c3 c3")[-1].field_box(2, 0)
        ((2, 7), (0, 5))
        """
        if self.first_pixel is None:
            raise ValueError(
                f"where layer {self.index}'s fields lie depends on the input size ('same' padding "
                "with a stride > 1); pass input_shape"
            )
        box = []
        for unit, first, jump, size in zip((row, col), self.first_pixel, self.jump, self.receptive_field, strict=True):
            low = first + unit * jump
            box.append((low, low + size))
        return tuple(box)


def _padding_before(padding, n_in: int | None, k_eff: int, stride: int) -> int | None:
    """Zeros added before (above/left of) the layer's input; None if that needs the unknown n_in."""
    if padding == "valid":
        return 0
    if padding != "same":
        return padding
    if stride == 1:  # total padding k_eff - 1, whatever the input size
        return (k_eff - 1) // 2
    if n_in is None:
        return None
    return same_padding(n_in, k_eff, stride)[0]


def _output_size(padding, n_in: int, k_eff: int, stride: int) -> int:
    if padding == "same":
        return output_length(n_in, k_eff, stride, *same_padding(n_in, k_eff, stride))
    pad = 0 if padding == "valid" else padding
    return output_length(n_in, k_eff, stride, pad, pad)


class ReceptiveFieldTable(Sequence):
    """The :class:`LayerGeometry` of every layer of a stack; prints as a table.

    Index it like a list (``table[-1]`` is the last layer); ``print(table)`` or
    :meth:`to_text` gives a readable table.
    """

    def __init__(self, rows: list[LayerGeometry], input_shape: tuple[int, int] | None):
        self._rows = tuple(rows)
        self.input_shape = input_shape

    def __getitem__(self, index):
        return self._rows[index]

    def __len__(self) -> int:
        return len(self._rows)

    def to_text(self) -> str:
        """The table as text, one line per layer (and one for the input)."""
        header = ("#", "layer", "output", "receptive field", "jump", "start")
        lines = [("0", "input", _times(self.input_shape) if self.input_shape else "?", "1×1", "1", "0")]
        for row in self._rows:
            lines.append((
                str(row.index),
                row.layer.describe(),
                _times(row.output_size) if row.output_size else "?",
                _times(row.receptive_field),
                _one_or_pair(row.jump),
                _one_or_pair(row.start),
            ))
        widths = [max(len(line[i]) for line in (header, *lines)) for i in range(len(header))]
        return "\n".join(
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
            for line in (header, *lines)
        )

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        return self.to_text()


def receptive_fields(layers, input_shape=None) -> ReceptiveFieldTable:
    """Receptive field size, jump and start of every layer of a stack.

    Taught in ``course/week2_convolution/06_receptive_fields.ipynb``.

    Parameters
    ----------
    layers : list of Layer, or str
        The stack, first layer first; text is read with :func:`parse_layers`.
    input_shape : int, (H, W) or (H, W, C), optional
        Size of the input image. Needed for the output sizes, and for the start of
        layers after a "same"-padded layer with stride > 1 (TensorFlow then pads
        depending on the input size); without it those are ``None`` ("?" in the table).

    Returns
    -------
    ReceptiveFieldTable

    Raises
    ------
    ValueError
        If a layer's (padded) input is smaller than its (dilated) kernel.

    Examples
    --------
    >>> [row.receptive_field[0] for row in receptive_fields("c3 c3 c3")]
    [3, 5, 7]
    >>> receptive_fields("c3d2")[0].receptive_field
    (5, 5)
    """
    layers = _as_layers(layers)
    size = None if input_shape is None else _spatial_shape(input_shape)
    table_input_shape = size
    field, jump, first = (1, 1), (1, 1), (0, 0)
    rows = []
    for index, layer in enumerate(layers, start=1):
        k_eff, stride = layer.effective_kernel, layer.stride
        paddings = (layer.padding,) * 2 if isinstance(layer.padding, str) else layer.padding
        pads = tuple(
            _padding_before(paddings[axis], None if size is None else size[axis], k_eff[axis], stride[axis])
            for axis in (0, 1)
        )
        out = None
        if size is not None:
            out = tuple(_output_size(paddings[axis], size[axis], k_eff[axis], stride[axis]) for axis in (0, 1))
            if min(out) < 1:
                raise ValueError(
                    f"layer {index} ({layer.describe()}) gets a {_times(size)} input, too small for "
                    f"its {_times(k_eff)} (dilated) kernel; use a larger input, 'same' padding "
                    "or fewer layers"
                )
        # The recurrences, per axis: the field grows by (k_eff - 1) jumps of the layer below,
        # padding moves its first pixel back by p jumps, and the stride multiplies the jump.
        first = None if first is None or None in pads else tuple(f - p * j for f, p, j in zip(first, pads, jump, strict=True))
        field = tuple(r + (k - 1) * j for r, k, j in zip(field, k_eff, jump, strict=True))
        jump = tuple(j * s for j, s in zip(jump, stride, strict=True))
        rows.append(LayerGeometry(
            index=index, layer=layer, receptive_field=field, jump=jump, first_pixel=first,
            start=None if first is None else tuple(f + (r - 1) / 2 for f, r in zip(first, field, strict=True)),
            input_size=size, output_size=out, padding_before=None if None in pads else pads,
        ))
        size = out
    return ReceptiveFieldTable(rows, table_input_shape)


# ----------------------------------------------------------------------------- one unit


def _unit_geometry(layers, out_row, out_col, input_shape):
    layers = _as_layers(layers)
    if not layers:
        raise ValueError("the stack has no layers")
    if input_shape is None:
        raise TypeError(
            "input_shape is needed to find which pixels a unit sees (the fields near the border are "
            "clipped to the image): pass the image's (height, width), e.g. input_shape=(28, 28)"
        )
    table = receptive_fields(layers, input_shape)
    last = table[-1]
    for name, unit, n in (("out_row", out_row, last.output_size[0]), ("out_col", out_col, last.output_size[1])):
        if not is_int(unit):
            raise TypeError(f"{name} must be an int, got {unit!r}")
        if not 0 <= unit < n:
            raise ValueError(
                f"{name} must be in 0..{n - 1} (the output is {_times(last.output_size)}), got {unit}"
            )
    return table


def input_region(layers, out_row: int, out_col: int, input_shape) -> tuple[slice, slice]:
    """The input pixels inside the receptive field of one output unit, clipped to the image.

    Taught in ``course/week2_convolution/06_receptive_fields.ipynb``.

    Parameters
    ----------
    layers : list of Layer, or str
        The stack; the unit belongs to its last layer (slice the list for an earlier one).
    out_row, out_col : int
        Position of the unit in the last layer's output.
    input_shape : int, (H, W) or (H, W, C)
        Size of the input image.

    Returns
    -------
    (slice, slice)
        Rows and columns: ``image[region]`` is the field. At the border it is
        clipped, so it may be smaller than ``r``.

    Examples
    --------
    >>> input_region("c3 c3", 0, 4, (10, 10))
    (slice(0, 5, None), slice(4, 9, None))
    >>> input_region("c3same c3same", 0, 0, (10, 10))  # half of the field is padding
    (slice(0, 3, None), slice(0, 3, None))
    """
    table = _unit_geometry(layers, out_row, out_col, input_shape)
    box = table[-1].field_box(out_row, out_col)
    return tuple(
        slice(max(low, 0), min(high, n)) for (low, high), n in zip(box, table.input_shape, strict=True)
    )


def input_mask(layers, out_row: int, out_col: int, input_shape) -> np.ndarray:
    """Which input pixels one output unit really depends on, as a boolean image.

    Taught in ``course/week2_convolution/06_receptive_fields.ipynb``.

    Unlike :func:`input_region` (the whole field), this follows the connections
    back layer by layer, so it leaves out the holes between the taps of a dilated
    kernel or of a stride larger than the kernel, and, at the border, pixels the
    field covers only through units of the zero padding. With all weights non-zero
    (and no ReLU cutting gradients) it is exactly where the gradient of the unit
    with respect to the input is non-zero.

    Parameters
    ----------
    layers, out_row, out_col, input_shape
        As for :func:`input_region`.

    Returns
    -------
    numpy.ndarray
        ``bool`` array of shape ``(H, W)``.

    Examples
    --------
    >>> input_mask("c3d2", 0, 0, (5, 5))[0].astype(int)
    array([1, 0, 1, 0, 1])
    """
    table = _unit_geometry(layers, out_row, out_col, input_shape)
    per_axis = []
    for axis, unit in ((0, out_row), (1, out_col)):
        depends = np.zeros(table[-1].output_size[axis], dtype=bool)
        depends[unit] = True
        for row in reversed(table):
            layer = row.layer
            units = np.flatnonzero(depends)
            taps = np.arange(layer.kernel[axis]) * layer.dilation[axis]
            below = (units[:, None] * layer.stride[axis] - row.padding_before[axis] + taps).ravel()
            depends = np.zeros(row.input_size[axis], dtype=bool)
            depends[below[(below >= 0) & (below < row.input_size[axis])]] = True
        per_axis.append(depends)
    return np.outer(per_axis[0], per_axis[1])


# ----------------------------------------------------------------------------- Keras


def _keras_layer_kinds():
    import keras

    layers = keras.layers
    convolutions = (layers.Conv2D, layers.DepthwiseConv2D, layers.SeparableConv2D)
    poolings = (layers.MaxPooling2D, layers.AveragePooling2D)
    # Layers that act on each pixel (position) on its own leave the geometry unchanged.
    per_pixel = tuple(
        getattr(layers, name)
        for name in ("InputLayer", "Activation", "ReLU", "LeakyReLU", "PReLU", "ELU",
                     "BatchNormalization", "Dropout", "SpatialDropout2D", "GaussianNoise",
                     "GaussianDropout", "Rescaling", "Identity")
        if hasattr(layers, name)
    )
    whole_image = tuple(
        getattr(layers, name)
        for name in ("Flatten", "Dense", "GlobalAveragePooling2D", "GlobalMaxPooling2D")
        if hasattr(layers, name)
    )
    return convolutions, poolings, per_pixel, whole_image


def _chain_of(model) -> list:
    """The layers from a functional model's input to its output, read from this model's own graph.

    A layer can belong to several models (a feature extractor shares its base's layers, a model
    rebuilt at another input size calls them again); ``layer.input`` is then ambiguous, so the
    chain is followed backwards from the output through the graph nodes of *this* model.
    (Keras keeps that graph in ``KerasTensor._keras_history`` and ``Operation._inbound_nodes``,
    private names that ``adversarial.grad_cam`` relies on too.)
    """
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(f"the model has {len(model.inputs)} inputs and {len(model.outputs)} outputs; "
                         "receptive_field_of_model handles chains of layers only (one input, one output)")
    start, tensor, chain = model.inputs[0], model.outputs[0], []
    while tensor is not start:
        operation, node_index, _ = tensor._keras_history
        inputs = operation._inbound_nodes[node_index].input_tensors
        if len(inputs) != 1:
            raise ValueError(
                f"layer {operation.name!r} does not simply take the output of one layer (it takes "
                f"{len(inputs)} inputs); receptive_field_of_model handles chains of layers only (no branches, "
                "skip connections or several inputs)"
            )
        chain.append(operation)
        tensor = inputs[0]
    return chain[::-1]


def _flat_layers(model) -> list:
    """The layers of a chain model, with nested models expanded; ValueError for branching models."""
    import keras

    layers = model.layers if isinstance(model, keras.Sequential) else _chain_of(model)
    result = []
    for layer in layers:
        if isinstance(layer, keras.Model):
            result.extend(_flat_layers(layer))
        else:
            result.append(layer)
    return result


def receptive_field_of_model(model) -> ReceptiveFieldTable:
    """The receptive fields of the layers of a Keras model that is a chain of conv/pool layers.

    Taught in ``course/week2_convolution/06_receptive_fields.ipynb``.

    Conv2D, DepthwiseConv2D, SeparableConv2D, MaxPooling2D and AveragePooling2D
    layers are read; layers that act on each pixel separately (InputLayer,
    activations, BatchNormalization, Dropout, ...) are skipped, as they do not
    change the geometry.

    Parameters
    ----------
    model : keras.Model
        A ``keras.Sequential`` model, or a functional model without branches.

    Returns
    -------
    ReceptiveFieldTable
        One row per conv/pool layer; the layers' names are in ``row.layer.name``.
        Output sizes are filled in when the model's input size is known.

    Raises
    ------
    ValueError
        For a layer it cannot handle (e.g. Flatten, Dense, Conv2DTranspose, Add),
        naming it.

    Examples
    --------
    >>> import keras
    >>> model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(8, 3),
    ...                           keras.layers.ReLU(), keras.layers.MaxPooling2D(2)])
    >>> print(receptive_field_of_model(model))
    #  layer              output  receptive field  jump  start
    0  input              28×28   1×1              1     0
    1  conv 3×3           26×26   3×3              1     1
    2  pool 2×2 stride 2  13×13   4×4              2     1.5
    """
    import keras

    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model, got {type(model).__name__}")
    convolutions, poolings, per_pixel, whole_image = _keras_layer_kinds()
    layers = []
    for layer in _flat_layers(model):
        kind = type(layer).__name__
        if isinstance(layer, convolutions):
            layers.append(conv(tuple(layer.kernel_size), tuple(layer.strides), tuple(layer.dilation_rate),
                               layer.padding, name=layer.name))
        elif isinstance(layer, poolings):
            layers.append(pool(tuple(layer.pool_size), tuple(layer.strides), layer.padding, name=layer.name))
        elif isinstance(layer, per_pixel):
            continue
        elif isinstance(layer, whole_image):
            raise ValueError(
                f"layer {layer.name!r} ({kind}) mixes all positions, so after it every unit sees the "
                "whole image; pass a model that ends before it, e.g. "
                "keras.Model(model.inputs, model.get_layer(<name of the layer before>).output)"
            )
        else:
            raise ValueError(
                f"cannot compute receptive fields through layer {layer.name!r} ({kind}); "
                "receptive_field_of_model handles Conv2D, DepthwiseConv2D, SeparableConv2D, "
                "MaxPooling2D, AveragePooling2D and per-pixel layers (activations, "
                "BatchNormalization, Dropout)"
            )
    if not layers:
        raise ValueError("the model has no convolution or pooling layers")
    try:
        input_shape = tuple(model.input_shape[1:3])
    except (AttributeError, ValueError, TypeError):
        input_shape = None
    if input_shape is not None and (len(input_shape) != 2 or None in input_shape):
        input_shape = None
    return receptive_fields(layers, input_shape)
