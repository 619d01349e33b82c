"""Feature-map browser: pick an image, a conv layer and a channel of a Keras model and see its activations.

Taught in ``course/week3_building_blocks/06_what_the_network_sees.ipynb``.
"""

from __future__ import annotations

from dataclasses import dataclass

import ipywidgets
import numpy as np

from ..images import to_png_bytes, to_rgb
from ..visualize import _one_image_for, activation_stats, conv_layers, feature_map_model, tile_images
from .frame import Frame, FrameWidget

__all__ = ["FeatureMapBrowser", "FeatureMapFrame", "feature_map_browser", "feature_map_view"]

# Input and feature map are enlarged (nearest neighbour) to about this height in screen pixels,
# so a 7×7 map is as easy to read as a 28×28 digit.
DISPLAY_HEIGHT = 196
_GAP = 8  # white pixels between the input and the map


@dataclass(frozen=True)
class FeatureMapFrame(Frame):
    """What the feature-map browser shows, and the numbers behind it.

    Attributes
    ----------
    feature_map : numpy.ndarray
        The chosen layer's whole output for the chosen image, ``(H, W, C)``.
    """

    feature_map: np.ndarray


def _check_images(model, images) -> np.ndarray:
    """``images`` as an array whose items each fit ``model`` (one image at a time)."""
    array = np.asarray(images)
    if array.ndim < 3 or len(array) == 0:
        raise ValueError(
            f"expected a non-empty stack of images, e.g. shape (N, 28, 28) or (N, 28, 28, 1), got {array.shape}"
        )
    _one_image_for(model, array[0])  # raises a ValueError naming the expected shape
    return array


def _as_display(image) -> np.ndarray:
    """An input image scaled to [0, 1] by its own min and max, grey or RGB, for showing."""
    picture = np.asarray(image, dtype=float)
    if picture.ndim == 3 and picture.shape[2] == 1:
        picture = picture[..., 0]
    if picture.ndim == 3 and picture.shape[2] != 3:
        picture = picture.mean(axis=2)  # more than 3 channels: show their mean
    low, high = picture.min(), picture.max()
    picture = (picture - low) / (high - low) if high > low else np.zeros_like(picture)
    return to_rgb(picture)  # grey repeated in all three channels


def _coloured(values) -> np.ndarray:
    """Values in [0, 1] (NaN = separator) to RGB with the 'magma' colour map; NaN becomes white."""
    from matplotlib import colormaps

    values = np.asarray(values, dtype=float)
    rgb = colormaps["magma"](np.nan_to_num(values, nan=0.0))[..., :3]
    rgb[np.isnan(values)] = 1.0
    return rgb


def _enlarged(picture: np.ndarray, height: int = DISPLAY_HEIGHT) -> np.ndarray:
    factor = max(1, height // picture.shape[0])
    return picture.repeat(factor, axis=0).repeat(factor, axis=1)


def _side_by_side(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    height = max(left.shape[0], right.shape[0])
    canvas = np.ones((height, left.shape[1] + _GAP + right.shape[1], 3))
    canvas[:left.shape[0], :left.shape[1]] = left
    canvas[:right.shape[0], left.shape[1] + _GAP:] = right
    return canvas


def feature_map_view(model, images, image_index: int, layer: str, channel: int | None = None, *,
                     labels=None, maps: dict | None = None) -> FeatureMapFrame:
    """What the feature-map browser shows for one image, layer and channel.

    Parameters
    ----------
    model : keras.Model
        A built model with one image input and at least one conv layer.
    images : array_like
        ``(N, ...)``: images of the model's input shape (scaled as the model expects).
    image_index : int
        Which image, ``0 <= image_index < N``.
    layer : str
        The name of a layer of ``model`` with ``(H, W, C)`` outputs (a key of ``maps``).
    channel : int or None
        Which channel of that layer's output; ``None`` shows all channels as a grid.
    labels : sequence, optional
        Labels of the images, quoted in the caption.
    maps : dict, optional
        The feature maps of this image (``{layer name: (H, W, C)}``), if already
        computed; otherwise they are computed with
        :func:`~cnn_course.visualize.feature_maps`.

    Returns
    -------
    FeatureMapFrame
        The input next to the chosen map (black 0, bright the channel's largest
        activation) or all maps of the layer (on one colour scale: black 0, bright
        the layer's largest activation), a caption such as
        ``"image 0 (label 7) · layer conv2 (14×14×32), channel 5: mean activation
        0.31, 47 % zeros"``, and the layer's whole output.

    Examples
    --------
    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Conv2D(
    ...     2, 3, activation="relu", kernel_initializer="ones", bias_initializer="zeros", name="c")])
    >>> frame = feature_map_view(model, np.ones((1, 6, 6, 1)), 0, "c", 1, labels=["ones"])
    >>> frame.caption
    'image 0 (label ones) · layer c (4×4×2), channel 1: mean activation 9.00, 0 % zeros'
    """
    images = _check_images(model, images)
    if not 0 <= int(image_index) < len(images):
        raise ValueError(f"image_index must be in 0..{len(images) - 1}, got {image_index}")
    image_index = int(image_index)
    if maps is None:
        from ..visualize import feature_maps

        conv_names = [conv.name for conv in conv_layers(model)]
        maps = feature_maps(model, images[image_index], None if layer in conv_names else [layer])
    if layer not in maps:
        raise ValueError(f"no feature maps for layer {layer!r}; the layers shown are: {', '.join(maps)}")
    fmap = np.asarray(maps[layer])
    height, width, n_channels = fmap.shape
    scale = float(fmap.max())
    if channel is None:
        shown = fmap
        grid = tile_images(np.moveaxis(fmap, 2, 0) / (scale if scale > 0 else 1), background=np.nan)
        what = f"all {n_channels} channels"
    else:
        if not 0 <= int(channel) < n_channels:
            raise ValueError(f"layer {layer!r} has channels 0..{n_channels - 1}, got channel {channel}")
        shown = fmap[:, :, int(channel)]
        # One channel on its own scale, so that a weakly active channel is still visible.
        channel_max = float(shown.max())
        grid = shown / channel_max if channel_max > 0 else np.zeros_like(shown)
        what = f"channel {int(channel)}"
    # A grid of many small maps gets twice the height of the input, to stay readable.
    map_height = DISPLAY_HEIGHT if channel is not None else 2 * DISPLAY_HEIGHT
    picture = _side_by_side(_enlarged(_as_display(images[image_index])),
                            _enlarged(_coloured(np.clip(grid, 0, 1)), map_height))
    mean, zeros = activation_stats(shown)
    label = "" if labels is None else f" (label {labels[image_index]})"
    caption = (f"image {image_index}{label} · layer {layer} ({height}×{width}×{n_channels}), {what}: "
               f"mean activation {mean:.2f}, {100 * zeros:.0f} % zeros")
    return FeatureMapFrame(png=to_png_bytes(picture), caption=caption, feature_map=fmap)


class FeatureMapBrowser(FrameWidget):
    """Browse the feature maps of a Keras model: image, conv layer and channel.

    Use :func:`feature_map_browser` to create one in a notebook.

    Attributes
    ----------
    image_slider : ipywidgets.IntSlider
        Which image, ``0..N-1``.
    layer_dropdown : ipywidgets.Dropdown
        Which layer (the names of :func:`~cnn_course.visualize.conv_layers`, or the
        ``layer_names`` given).
    channel_slider : ipywidgets.IntSlider
        Which channel, ``0..C-1`` for the chosen layer (its range follows the layer).
    all_channels_checkbox : ipywidgets.Checkbox
        Show every channel of the layer as a grid instead of one channel.
    picture : ipywidgets.Image
        The input image next to the feature map(s) (PNG).
    caption : ipywidgets.Label
        Layer, shape, channel, mean activation and share of zeros.
    """

    def __init__(self, model, images, labels=None, layer_names=None):
        if layer_names is None:
            layers = conv_layers(model)  # validates the model
            if not layers:
                raise ValueError("the model has no Conv2D layers, so it has no feature maps to show")
        else:
            if isinstance(layer_names, str):
                layer_names = [layer_names]
            feature_map_model(model, layer_names)  # unknown layers, or ones without (H, W, C) maps: ValueError
            layers = [model.get_layer(name) for name in layer_names]
        self._model = model
        self._images = _check_images(model, images)
        if labels is not None and len(labels) != len(self._images):
            raise ValueError(f"got {len(labels)} labels for {len(self._images)} images")
        self._labels = labels
        self._layer_names = [layer.name for layer in layers]
        self._channels = {layer.name: int(layer.output.shape[-1]) for layer in layers}
        # One model for all layers, built once; the maps of each image are computed once.
        self._extractor = feature_map_model(model, self._layer_names)
        self._maps: dict[int, dict[str, np.ndarray]] = {}
        self._updating = False

        first = self._layer_names[0]
        self.image_slider = ipywidgets.IntSlider(value=0, min=0, max=len(self._images) - 1,
                                                 description="image")
        self.layer_dropdown = ipywidgets.Dropdown(options=self._layer_names, value=first,
                                                  description="layer")
        self.channel_slider = ipywidgets.IntSlider(value=0, min=0, max=self._channels[first] - 1,
                                                   description="channel")
        self.all_channels_checkbox = ipywidgets.Checkbox(value=False, description="all channels")
        super().__init__(
            [
                ipywidgets.HBox([self.image_slider, self.layer_dropdown]),
                ipywidgets.HBox([self.channel_slider, self.all_channels_checkbox]),
            ],
            css_class="cnn-course-feature-maps",
        )
        self.layer_dropdown.observe(self._layer_changed, names="value")
        for control in (self.image_slider, self.channel_slider, self.all_channels_checkbox):
            control.observe(self._redraw, names="value")
        self._redraw()

    def _maps_of(self, index: int) -> dict[str, np.ndarray]:
        if index not in self._maps:
            batch = _one_image_for(self._model, self._images[index])
            outputs = self._extractor(batch, training=False)
            if not isinstance(outputs, (list, tuple)):
                outputs = [outputs]
            self._maps[index] = {name: np.asarray(out)[0]
                                 for name, out in zip(self._layer_names, outputs, strict=True)}
        return self._maps[index]

    def _layer_changed(self, _change=None) -> None:
        # Moving the slider's maximum can move its value too; redraw once, afterwards.
        self._updating = True
        try:
            self.channel_slider.max = self._channels[self.layer_dropdown.value] - 1
        finally:
            self._updating = False
        self._redraw()

    def _redraw(self, _change=None) -> None:
        if self._updating:
            return
        self.channel_slider.disabled = self.all_channels_checkbox.value
        channel = None if self.all_channels_checkbox.value else self.channel_slider.value
        self.show_computed(lambda: feature_map_view(self._model, self._images, self.image_slider.value,
                                                    self.layer_dropdown.value, channel, labels=self._labels,
                                                    maps=self._maps_of(self.image_slider.value)))


def feature_map_browser(model, images, labels=None, *, layer_names=None) -> FeatureMapBrowser:
    """Pick an image, a conv layer and a channel of ``model`` and see what that channel responds to.

    Parameters
    ----------
    model : keras.Model
        A built (ideally trained) model with one image input and conv layers.
    images : array_like
        ``(N, ...)`` images of the model's input shape, scaled as the model expects
        (e.g. ``(N, 28, 28, 1)`` floats in [0, 1]).
    labels : sequence, optional
        One label per image, shown in the caption.
    layer_names : list of str, optional
        Which layers to offer; default every conv layer. Name other layers with
        ``(H, W, C)`` outputs here, e.g. the ``ReLU`` layers of a model built as
        conv → batch normalisation → ReLU (its conv outputs are not yet rectified).

    Returns
    -------
    FeatureMapBrowser
        The widget; it displays itself when it is the last expression of a cell.

    Examples
    --------
    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(3, 3, name="c1"),
    ...                           keras.layers.Conv2D(5, 3, name="c2")])
    >>> browser = feature_map_browser(model, np.zeros((2, 8, 8, 1)))
    >>> browser.layer_dropdown.value = "c2"
    >>> browser.channel_slider.max
    4
    """
    return FeatureMapBrowser(model, images, labels, layer_names)
