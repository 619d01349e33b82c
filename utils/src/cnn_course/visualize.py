"""What a convolutional network sees: its first-layer filters and its feature maps.

Plain functions on a Keras model and NumPy arrays; the plotting helpers return
matplotlib figures (they do not show them), so notebooks decide when to draw.

* :func:`conv_layers` — the 2-D convolution layers of a model, in order.
* :func:`feature_maps` — the output of every conv layer for one image,
  ``{layer name: array (H, W, C)}``.
* :func:`activation_stats` — mean activation and share of exact zeros of a map.
* :func:`filter_grid` — first-layer kernels tiled into one image, each filter
  scaled to [0, 1] on its own.
* :func:`feature_map_grid` — the channels of one feature map tiled into one
  image, on a common scale (so bright means "strongly active" in every tile).
* :func:`plot_filters`, :func:`plot_feature_maps` — the two grids as figures.

Keras imports lazily, so importing this module is cheap.

Examples
--------
>>> import keras, numpy as np
>>> model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, name="c1"),
...                           keras.layers.MaxPooling2D(), keras.layers.Conv2D(6, 3, name="c2")])
>>> {name: fmap.shape for name, fmap in feature_maps(model, np.zeros((8, 8))).items()}
{'c1': (6, 6, 4), 'c2': (1, 1, 6)}
"""

from __future__ import annotations

import math

import numpy as np

from ._geometry import is_int

__all__ = [
    "activation_stats",
    "conv_layers",
    "feature_map_grid",
    "feature_map_model",
    "feature_maps",
    "filter_grid",
    "plot_feature_maps",
    "plot_filters",
    "tile_images",
]


def _check_model(model):
    import keras

    if not isinstance(model, keras.Model):
        raise TypeError(f"expected a Keras model (keras.Model or keras.Sequential), got {type(model).__name__}")
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if not inputs:
        raise ValueError(
            "the model has no defined input yet; start it with keras.Input(shape), e.g. "
            "keras.Sequential([keras.Input((28, 28, 1)), ...]), or call it once on a batch"
        )
    if len(inputs) != 1:
        raise ValueError(f"expected a model with one input, this one has {len(inputs)}")
    return model


def conv_layers(model) -> list:
    """The 2-D convolution layers of ``model`` (``Conv2D``, ``SeparableConv2D``, ``DepthwiseConv2D``), in order.

    Only the model's own layers are searched, not models nested inside it.

    Examples
    --------
    >>> import keras
    >>> model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3, name="a"),
    ...                           keras.layers.Flatten(), keras.layers.Dense(3)])
    >>> [layer.name for layer in conv_layers(model)]
    ['a']
    """
    import keras

    _check_model(model)
    kinds = (keras.layers.Conv2D, keras.layers.SeparableConv2D, keras.layers.DepthwiseConv2D)
    return [layer for layer in model.layers if isinstance(layer, kinds)]


def feature_map_model(model, layer_names=None):
    """A Keras model from ``model``'s input to the outputs of the named layers.

    Parameters
    ----------
    model : keras.Model
        A built model with one input.
    layer_names : list of str, optional
        Layers whose outputs to return; default: every conv layer (:func:`conv_layers`).
        Each must output a 4-D ``(batch, H, W, C)`` tensor.

    Returns
    -------
    keras.Model
        Its outputs are a list, one ``(batch, H, W, C)`` tensor per layer, in the order given.
    """
    import keras

    _check_model(model)
    if layer_names is None:
        layer_names = [layer.name for layer in conv_layers(model)]
        if not layer_names:
            raise ValueError("the model has no Conv2D layers, so it has no feature maps to show")
    if isinstance(layer_names, str):
        layer_names = [layer_names]
    if not layer_names:
        raise ValueError("layer_names is empty; name at least one layer (or leave it out for all conv layers)")
    known = {layer.name: layer for layer in model.layers}
    outputs = []
    for name in layer_names:
        if name not in known:
            raise ValueError(f"the model has no layer {name!r}; its layers are: {', '.join(known)}")
        output = known[name].output
        if len(output.shape) != 4:
            raise ValueError(
                f"layer {name!r} outputs shape {tuple(output.shape)}, not a stack of feature maps "
                "(batch, H, W, C); pick a convolution or pooling layer"
            )
        outputs.append(output)
    return keras.Model(model.inputs[0], outputs)


def _one_image_for(model, image) -> np.ndarray:
    """``image`` as a batch of one for ``model``, or a ValueError that says what shape is expected."""
    expected = tuple(model.input_shape[1:])
    array = np.asarray(image)
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise TypeError(f"image must be an array of numbers, got dtype {array.dtype}")
    shape = array.shape
    grey_ok = len(expected) == 3 and expected[2] == 1
    if grey_ok and array.ndim == 2:
        array = array[:, :, None]  # (H, W) -> (H, W, 1) for a one-channel model
    fits = array.ndim == len(expected) and all(
        want is None or want == got for want, got in zip(expected, array.shape, strict=True)
    )
    if not fits:
        shown = "(" + ", ".join("any" if n is None else str(n) for n in expected) + ")"
        hint = f" or {shown.rsplit(', ', 1)[0]})" if grey_ok else ""
        batch = " (a single image, not a batch: pass images[i])" if array.ndim == len(expected) + 1 else ""
        raise ValueError(f"expected one image of shape {shown}{hint} for this model, got {shape}{batch}")
    return array[None].astype("float32")


def feature_maps(model, image, layer_names=None) -> dict[str, np.ndarray]:
    """The feature maps of every conv layer of ``model`` for one ``image``.

    Taught in ``course/week3_building_blocks/06_what_the_network_sees.ipynb``.

    Each map is the layer's output, i.e. after the layer's own activation (if it
    has one, e.g. ``Conv2D(..., activation="relu")``).

    Parameters
    ----------
    model : keras.Model
        A built model with one image input, e.g. ``(None, 28, 28, 1)``.
    image : array_like
        ONE image of the model's input shape without the batch axis, e.g.
        ``(28, 28, 1)`` (``(28, 28)`` is accepted for one-channel models), scaled as
        the model expects (the values are passed to the model unchanged).
    layer_names : list of str, optional
        Which layers; default every conv layer, in order.

    Returns
    -------
    dict
        ``{layer name: float32 array (H, W, C)}``, in the order of the layers.

    Raises
    ------
    ValueError
        If the image does not have the model's input shape, or a layer is unknown.

    Examples
    --------
    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((5, 5, 1)),
    ...     keras.layers.Conv2D(1, 3, kernel_initializer="ones", use_bias=False, name="sum3x3")])
    >>> maps = feature_maps(model, np.ones((5, 5)))
    >>> maps["sum3x3"][:, :, 0]
    array([[9., 9., 9.],
           [9., 9., 9.],
           [9., 9., 9.]], dtype=float32)
    >>> feature_maps(model, np.ones((1, 5, 5, 1)))
    Traceback (most recent call last):
    ...
    ValueError: expected one image of shape (5, 5, 1) or (5, 5) for this model, got (1, 5, 5, 1) (a single image, not a batch: pass images[i])
    """
    if layer_names is None:
        layer_names = [layer.name for layer in conv_layers(model)]
        if not layer_names:
            raise ValueError("the model has no Conv2D layers, so it has no feature maps to show")
    elif isinstance(layer_names, str):
        layer_names = [layer_names]
    extractor = feature_map_model(model, layer_names)
    batch = _one_image_for(model, image)
    outputs = extractor(batch, training=False)
    if not isinstance(outputs, (list, tuple)):
        outputs = [outputs]
    return {name: np.asarray(output)[0] for name, output in zip(layer_names, outputs, strict=True)}


def activation_stats(feature_map) -> tuple[float, float]:
    """Mean activation and the fraction of exact zeros of a feature map (any shape).

    Taught in ``course/week3_building_blocks/06_what_the_network_sees.ipynb``.

    After a ReLU, many activations are exactly 0: the map is *sparse*.

    Examples
    --------
    >>> activation_stats(np.array([[0.0, 2.0], [0.0, 0.0]]))
    (0.5, 0.75)
    """
    values = np.asarray(feature_map, dtype=float)
    if values.size == 0:
        raise ValueError("the feature map is empty")
    return float(values.mean()), float(np.mean(values == 0))


def tile_images(images, *, columns: int | None = None, padding: int = 1, background: float = 1.0):
    """Tile ``N`` equally sized images (``(N, h, w)`` or ``(N, h, w, 3)``) into one grid image.

    Image ``k`` goes to row ``k // columns``, column ``k % columns``; tiles are
    separated by ``padding`` pixels of ``background``. ``columns`` defaults to
    ``ceil(sqrt(N))`` (a square-ish grid).

    Examples
    --------
    >>> tile_images(np.zeros((3, 2, 2)), padding=1).shape
    (5, 5)
    """
    stack = np.asarray(images, dtype=float)
    if stack.ndim not in (3, 4) or (stack.ndim == 4 and stack.shape[3] != 3) or len(stack) == 0:
        raise ValueError(f"expected images of shape (N, h, w) or (N, h, w, 3) with N >= 1, got {stack.shape}")
    if columns is None:
        columns = math.ceil(math.sqrt(len(stack)))
    if not is_int(columns) or columns < 1:
        raise ValueError(f"columns must be a positive int, got {columns!r}")
    if not is_int(padding) or padding < 0:
        raise ValueError(f"padding must be an int >= 0, got {padding!r}")
    columns = min(int(columns), len(stack))
    rows = math.ceil(len(stack) / columns)
    h, w = stack.shape[1:3]
    grid = np.full((rows * (h + padding) - padding, columns * (w + padding) - padding, *stack.shape[3:]),
                   background, dtype=float)
    for k, tile in enumerate(stack):
        top, left = (k // columns) * (h + padding), (k % columns) * (w + padding)
        grid[top:top + h, left:left + w] = tile
    return grid


def filter_grid(kernels, *, columns: int | None = None, padding: int = 1) -> np.ndarray:
    """First-layer convolution kernels as one image, each filter scaled to [0, 1] on its own.

    Taught in ``course/week3_building_blocks/06_what_the_network_sees.ipynb``.

    Parameters
    ----------
    kernels : array_like
        Keras layout ``(kh, kw, in_channels, filters)``, e.g. ``layer.kernel`` of the
        first ``Conv2D``; ``in_channels`` must be 1 (grey tiles) or 3 (colour tiles).
    columns, padding : int, optional
        Grid layout, see :func:`tile_images`; separators are white (1.0).

    Returns
    -------
    numpy.ndarray
        float image in [0, 1]: filter ``k`` at row ``k // columns``, column
        ``k % columns``. In each tile black is the filter's most negative weight and
        white its most positive one; a constant filter is mid-grey (0.5).

    Examples
    --------
    >>> vertical_edge = np.array([[-1, 0, 1]] * 3, float)[:, :, None, None]  # (3, 3, 1, 1)
    >>> filter_grid(vertical_edge)
    array([[0. , 0.5, 1. ],
           [0. , 0.5, 1. ],
           [0. , 0.5, 1. ]])
    """
    weights = np.asarray(kernels, dtype=float)
    if weights.ndim != 4:
        raise ValueError(
            f"expected kernels of shape (kh, kw, in_channels, filters) as Keras stores them, got {weights.shape}"
        )
    if weights.shape[2] not in (1, 3):
        raise ValueError(
            f"filter_grid shows filters with 1 (grey) or 3 (RGB) input channels, like a first layer's; "
            f"these have {weights.shape[2]} (shape {weights.shape}). For a deeper layer, look at its "
            "feature maps instead (feature_maps)"
        )
    tiles = np.moveaxis(weights, 3, 0)  # (filters, kh, kw, in)
    low = tiles.min(axis=(1, 2, 3), keepdims=True)
    span = tiles.max(axis=(1, 2, 3), keepdims=True) - low
    scaled = np.where(span > 0, (tiles - low) / np.where(span > 0, span, 1), 0.5)
    if scaled.shape[3] == 1:
        scaled = scaled[..., 0]
    return tile_images(scaled, columns=columns, padding=padding, background=1.0)


def feature_map_grid(feature_map, *, channels=None, columns: int | None = None, padding: int = 1,
                     scale: float | None = None, background: float = 1.0) -> np.ndarray:
    """The channels of one feature map ``(H, W, C)`` tiled into a grid image in [0, 1].

    All tiles share one scale: 0 (and anything below) is black, ``scale`` (default:
    the largest value of the map) is white, so tiles can be compared by brightness.

    Parameters
    ----------
    feature_map : array_like
        ``(H, W, C)``, e.g. one value of :func:`feature_maps`.
    channels : sequence of int, optional
        Which channels, in order; default all.
    columns, padding : int, optional
        Grid layout, see :func:`tile_images`.
    scale : float, optional
        The activation shown as white.
    background : float
        Value of the separators between tiles (``numpy.nan`` lets a plot draw them
        in a colour of its own, see :func:`plot_feature_maps`).

    Examples
    --------
    >>> fmap = np.stack([np.zeros((2, 2)), np.full((2, 2), 4.0)], axis=-1)   # (2, 2, 2)
    >>> feature_map_grid(fmap, padding=0)
    array([[0., 0., 1., 1.],
           [0., 0., 1., 1.]])
    """
    values = np.asarray(feature_map, dtype=float)
    if values.ndim != 3:
        raise ValueError(f"expected one feature map of shape (H, W, C), got {values.shape}")
    if channels is None:
        channels = range(values.shape[2])
    channels = list(channels)
    bad = [c for c in channels if not 0 <= c < values.shape[2]]
    if bad or not channels:
        raise ValueError(f"channels must be in 0..{values.shape[2] - 1}, got {channels}")
    if scale is None:
        scale = float(values.max())
    tiles = np.moveaxis(values[:, :, channels], 2, 0)
    scaled = np.clip(tiles / scale, 0, 1) if scale > 0 else np.zeros_like(tiles)
    return tile_images(scaled, columns=columns, padding=padding, background=background)


def plot_filters(kernels, *, title: str | None = None, size: float = 4.0):
    """A figure of :func:`filter_grid` (returned, not shown).

    Examples
    --------
    >>> fig = plot_filters(np.random.default_rng(0).normal(size=(3, 3, 1, 8)), title="random")
    >>> fig.axes[0].get_title()
    'random'
    >>> import matplotlib.pyplot as plt; plt.close(fig)
    """
    import matplotlib.pyplot as plt

    grid = filter_grid(kernels)
    fig, ax = plt.subplots(figsize=(size, size * grid.shape[0] / grid.shape[1]))
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.axis("off")
    if title is not None:
        ax.set_title(title, fontsize=11)
    return fig


def plot_feature_maps(maps: dict, image=None, *, max_channels: int = 16, size: float = 2.6):
    """One panel per layer: the first ``max_channels`` channels of each map (returned, not shown).

    Taught in ``course/week3_building_blocks/06_what_the_network_sees.ipynb``.

    Parameters
    ----------
    maps : dict
        ``{layer name: (H, W, C)}``, e.g. from :func:`feature_maps`.
    image : array_like, optional
        The input image, drawn as the first panel.
    max_channels : int
        At most this many channels per layer (the first ones).

    Examples
    --------
    >>> fig = plot_feature_maps({"c1": np.ones((4, 4, 3))}, image=np.zeros((6, 6)))
    >>> [ax.get_title() for ax in fig.axes]
    ['input 6×6', 'c1 4×4×3']
    >>> import matplotlib.pyplot as plt; plt.close(fig)
    """
    import matplotlib.pyplot as plt

    if not maps:
        raise ValueError("no feature maps to plot")
    panels = len(maps) + (image is not None)
    fig, axes = plt.subplots(1, panels, figsize=(size * panels, size), squeeze=False)
    axes = list(axes[0])
    if image is not None:
        picture = np.asarray(image, dtype=float)
        if picture.ndim == 3 and picture.shape[2] == 1:
            picture = picture[..., 0]
        axes[0].imshow(picture, cmap="gray", interpolation="nearest")
        axes[0].set_title(f"input {picture.shape[0]}×{picture.shape[1]}", fontsize=11)
        axes = axes[1:]
    colours = plt.get_cmap("magma").with_extremes(bad="white")  # white NaN separators between tiles
    for ax, (name, fmap) in zip(axes, maps.items(), strict=True):
        fmap = np.asarray(fmap)
        shown = range(min(max_channels, fmap.shape[2]))
        ax.imshow(feature_map_grid(fmap, channels=shown, background=np.nan), cmap=colours, vmin=0, vmax=1,
                  interpolation="nearest")
        h, w, c = fmap.shape
        ax.set_title(f"{name} {h}×{w}×{c}", fontsize=11)
    for ax in fig.axes:
        ax.axis("off")
    fig.tight_layout()
    return fig
