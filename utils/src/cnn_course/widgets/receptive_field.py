"""Receptive-field explorer: which input pixels does one unit of a conv/pool stack see?

The stack is typed as short text (``"c3 c3 p2 c3d2"``, see
:func:`cnn_course.receptive_field.parse_layers`) or chosen from presets; sliders pick
the layer and the unit; the photo is shown with the unit's receptive field lit up.

Taught in ``course/week2_convolution/06_receptive_fields.ipynb``.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import ipywidgets
import numpy as np

from .. import data
from .._geometry import check_word, is_int
from ..images import check_image, shrink, to_png_bytes, to_rgb
from ..receptive_field import (
    STACK_EXAMPLES,
    ReceptiveFieldTable,
    input_mask,
    input_region,
    parse_layers,
    receptive_fields,
)
from .frame import Frame, FrameWidget

__all__ = [
    "CUSTOM_STACK",
    "PRESETS",
    "ReceptiveFieldExplorer",
    "ReceptiveFieldFrame",
    "highlight_receptive_field",
    "receptive_field_explorer",
    "receptive_field_view",
    "small_photo",
    "syntax_hint_html",
]

# Stacks worth comparing: depth vs. kernel size, strides and pooling, dilation, real stems.
PRESETS = {
    "two 3×3 convs": "c3 c3",
    "three 3×3 convs": "c3 c3 c3",
    "one 7×7 conv": "c7",
    "3×3, pool 2, 3×3": "c3 p2 c3",
    "3×3 stride 2, 3×3": "c3s2 c3",
    "VGG: two blocks": "c3 c3 p2 c3 c3 p2",
    "dilated 1-2-4": "c3 c3d2 c3d4",
    "1×1 stride 3 (gaps)": "c1s3 c3",
    "ResNet stem": "c7s2 p3s2",
    "AlexNet start": "c11s4 p3s2 c5 p3s2",
}
PHOTO_CHOICES = ("astronaut", "camera", "chelsea", "coffee", "coins", "brick")
# Small enough that a field of 5-20 pixels is clearly visible, large enough for deep stacks.
DEFAULT_MAX_SIDE = 128
# Each image pixel is drawn as a SCALE x SCALE block, so single pixels stay visible.
DEFAULT_SCALE = 4
_OWN_IMAGE = "(your image)"
# What the preset dropdown shows while the typed stack is none of the presets.
CUSTOM_STACK = "(your own stack)"
_DIM = 0.3  # brightness of the pixels the unit does not see
_HOLE_TINT = np.array([0.25, 0.35, 0.8])  # field pixels skipped by dilation or stride
_OUTLINE = np.array([255, 140, 0], dtype=np.uint8)  # the field's box


# ------------------------------------------------------------------------ plain functions


def small_photo(image, max_side: int = DEFAULT_MAX_SIDE) -> np.ndarray:
    """An RGB uint8 copy of ``image`` shrunk to at most ``max_side`` pixels per side.

    :func:`cnn_course.images.to_rgb` then :func:`cnn_course.images.shrink`: the image is
    shrunk by the smallest whole factor that fits, each new pixel being the mean of a
    block, so pixels stay square and the picture stays sharp.

    Parameters
    ----------
    image : array_like or str
        ``(H, W)`` or ``(H, W, 3)`` image, or the name of one of
        :data:`cnn_course.data.PHOTOS`.
    max_side : int
        Largest allowed height or width.

    Examples
    --------
    >>> small_photo("camera").shape
    (128, 128, 3)
    """
    if isinstance(image, str):
        image = data.load_photo(image)
    return np.round(shrink(to_rgb(image), max_side) * 255).astype(np.uint8)


def _check_drawable(image, scale) -> np.ndarray:
    image = check_image(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be RGB uint8 of shape (H, W, 3) (see small_photo), "
                         f"got {image.dtype} {image.shape}")
    if not is_int(scale) or scale < 1:
        raise ValueError(f"scale must be a positive int, got {scale!r}")
    return image


def highlight_receptive_field(image, layers, row: int, col: int, *, scale: int = DEFAULT_SCALE):
    """The image with the receptive field of unit ``(row, col)`` of the stack's last layer lit up.

    Pixels the unit depends on keep their colour; the rest of its field (holes left
    by dilation or by a stride larger than the kernel) is tinted blue; everything
    else is dimmed; an orange outline marks the field (clipped to the image).

    Parameters
    ----------
    image : array_like
        ``(H, W, 3)`` uint8 image (see :func:`small_photo`).
    layers : list of Layer, or str
        The stack; the unit belongs to its last layer.
    row, col : int
        The unit, in the last layer's output.
    scale : int
        Each image pixel becomes a ``scale × scale`` block.

    Returns
    -------
    picture : numpy.ndarray
        uint8 ``(H * scale, W * scale, 3)``.
    mask : numpy.ndarray
        bool ``(H, W)``: :func:`~cnn_course.receptive_field.input_mask`, the pixels the unit depends on.

    Examples
    --------
    >>> picture, mask = highlight_receptive_field(np.zeros((8, 8, 3), np.uint8), "c3 c3", 1, 2, scale=2)
    >>> picture.shape, int(mask.sum())
    ((16, 16, 3), 25)
    """
    image = _check_drawable(image, scale)
    mask = input_mask(layers, row, col, image.shape[:2])
    region = input_region(layers, row, col, image.shape[:2])
    in_field = np.zeros(mask.shape, dtype=bool)
    in_field[region] = True

    colours = image / 255.0
    shown = colours * _DIM
    holes = in_field & ~mask
    shown[holes] = 0.5 * colours[holes] + 0.5 * _HOLE_TINT
    shown[mask] = colours[mask]
    picture = np.repeat(np.repeat(np.round(shown * 255).astype(np.uint8), scale, axis=0), scale, axis=1)

    (top, bottom), (left, right) = ((s.start * scale, s.stop * scale - 1) for s in region)
    picture[top, left:right + 1] = picture[bottom, left:right + 1] = _OUTLINE
    picture[top:bottom + 1, left] = picture[top:bottom + 1, right] = _OUTLINE
    return picture, mask


def _preset_of(stack: str) -> str:
    """The name of the preset whose text is ``stack`` (spacing and case aside), else :data:`CUSTOM_STACK`."""
    words = " ".join(str(stack).lower().split())
    return next((name for name, text in PRESETS.items() if text == words), CUSTOM_STACK)


def syntax_hint_html() -> str:
    """How to write a stack, as short HTML that wraps: one example per rule of the notation.

    Examples
    --------
    >>> syntax_hint_html()[:60]
    'Layers separated by spaces, e.g. <code>c3 c3 p2 c3d2</code>:'
    """
    rules = " · ".join(f"<code>{html.escape(text)}</code> {html.escape(meaning)}"
                       for text, meaning in STACK_EXAMPLES)
    return f"Layers separated by spaces, e.g. <code>c3 c3 p2 c3d2</code>: {rules}"


def _jump_text(jump) -> str:
    return str(jump[0]) if jump[0] == jump[1] else f"({jump[0]}, {jump[1]})"


@dataclass(frozen=True)
class ReceptiveFieldFrame(Frame):
    """What the receptive-field explorer shows, and the numbers behind it.

    Attributes
    ----------
    mask : numpy.ndarray or None
        bool ``(H, W)``: the input pixels the chosen unit depends on; ``None`` when
        the stack could not be used (the caption then says why).
    table : ReceptiveFieldTable or None
        The geometry of every layer of the stack, up to the chosen one.
    """

    mask: np.ndarray | None
    table: ReceptiveFieldTable | None


def receptive_field_view(image, stack, *, layer: int | None = None, row: int | None = None,
                         col: int | None = None, padding: str = "valid",
                         scale: int = DEFAULT_SCALE) -> ReceptiveFieldFrame:
    """What the receptive-field explorer shows for one stack, layer and unit.

    Parameters
    ----------
    image : array_like
        ``(H, W, 3)`` uint8 image (see :func:`small_photo`).
    stack : str or list of Layer
        The layers, e.g. ``"c3 c3 p2"`` (see :func:`~cnn_course.receptive_field.parse_layers`).
    layer : int, optional
        Which layer's unit, counting from 1; the last one by default.
    row, col : int, optional
        The unit in that layer's output; the centre one by default.
    padding : {"valid", "same"}
        Padding of the layers whose text does not say.
    scale : int
        Each image pixel is drawn as a ``scale × scale`` block.

    Returns
    -------
    ReceptiveFieldFrame
        The highlighted image as PNG and a caption such as ``"layer 3 of 3 (conv 3×3):
        receptive field 7×7, jump 1, output 122×122 · unit (61, 61) sees rows 61–67,
        columns 61–67 of the 128×128 input"``. A stack that cannot be read, or does not fit
        the image, gives the plain image, ``mask=None`` and a caption starting with "⚠".

    Raises
    ------
    ValueError
        If ``image`` is not RGB uint8 or ``scale`` is not a positive int.

    Examples
    --------
    >>> photo = small_photo("camera", max_side=32)
    >>> print(receptive_field_view(photo, "c3 p2 c3").caption)  # doctest: +NORMALIZE_WHITESPACE
    layer 3 of 3 (conv 3×3): receptive field 8×8, jump 2, output 13×13 · unit (6, 6) sees
    rows 12–19, columns 12–19 of the 32×32 input
    >>> receptive_field_view(photo, "c3 q2").caption[:33]
    "⚠ cannot read layer 2 'q2': write"
    """
    # A bad image or scale is the caller's bug, not the student's stack: raise, don't caption.
    image = _check_drawable(image, scale)
    try:
        all_layers = parse_layers(stack, padding=padding) if isinstance(stack, str) else list(stack)
        layer = len(all_layers) if layer is None else layer
        if not 1 <= layer <= len(all_layers):
            raise ValueError(f"layer must be 1..{len(all_layers)} for this stack, got {layer}")
        layers = all_layers[:layer]
        table = receptive_fields(layers, image.shape[:2])
        geometry = table[-1]
        out_rows, out_cols = geometry.output_size
        row = out_rows // 2 if row is None else row
        col = out_cols // 2 if col is None else col
        picture, mask = highlight_receptive_field(image, layers, row, col, scale=scale)
    except ValueError as error:
        plain = np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)
        return ReceptiveFieldFrame(png=to_png_bytes(plain), caption=f"⚠ {error}", mask=None, table=None)

    rows, cols = input_region(layers, row, col, image.shape[:2])
    caption = (
        f"layer {layer} of {len(all_layers)} "
        f"({geometry.layer.describe()}): receptive field {geometry.receptive_field[0]}×"
        f"{geometry.receptive_field[1]}, jump {_jump_text(geometry.jump)}, output {out_rows}×{out_cols}"
        f" · unit ({row}, {col}) sees rows {rows.start}–{rows.stop - 1}, columns {cols.start}–{cols.stop - 1}"
        f" of the {image.shape[0]}×{image.shape[1]} input"
    )
    (top, bottom), (left, right) = geometry.field_box(row, col)
    if top < 0 or left < 0 or bottom > image.shape[0] or right > image.shape[1]:
        caption += " (the field reaches past the border)"
    field_pixels = (rows.stop - rows.start) * (cols.stop - cols.start)
    if mask.sum() < field_pixels:
        caption += f"; it depends on {int(mask.sum())} of those {field_pixels} pixels"
    return ReceptiveFieldFrame(png=to_png_bytes(picture), caption=caption, mask=mask, table=table)


# ------------------------------------------------------------------------ the widget


class ReceptiveFieldExplorer(FrameWidget):
    """Build a stack of conv/pool layers, pick a unit, and see the input pixels it depends on.

    Use :func:`receptive_field_explorer` to create one in a notebook.

    Attributes
    ----------
    preset_dropdown : ipywidgets.Dropdown
        Ready-made stacks (:data:`PRESETS`); choosing one fills in ``stack_text``. It
        shows :data:`CUSTOM_STACK` while the typed stack is none of them.
    stack_text : ipywidgets.Text
        The stack as text, e.g. ``"c3 c3 p2 c3d2"``; applied on Enter.
    syntax_hint : ipywidgets.HTML
        How to write a stack, one short example per rule; wraps with the page width.
    padding_dropdown : ipywidgets.Dropdown
        "valid" or "same": the padding of layers whose text does not say.
    layer_slider : ipywidgets.IntSlider
        Which layer the unit belongs to (1 = first); its range follows the stack.
    row_slider, col_slider : ipywidgets.IntSlider
        The unit; their ranges follow that layer's output size.
    photo_dropdown : ipywidgets.Dropdown
        Which photo to show underneath.
    picture : ipywidgets.Image
        The photo with the unit's receptive field lit up (PNG).
    caption : ipywidgets.Label
        Layer, receptive field, jump, output size and the rows/columns seen, or
        what is wrong with the stack.
    """

    def __init__(self, image=None, *, photo: str = "astronaut", stack: str = "c3 c3 c3",
                 padding: str = "valid", max_side: int = DEFAULT_MAX_SIDE, scale: int = DEFAULT_SCALE):
        if photo not in data.PHOTOS:
            raise ValueError(f"unknown photo {photo!r}; choose one of: {', '.join(data.PHOTOS)}")
        try:
            padding = check_word(padding, "padding", ("valid", "same"))
        except (TypeError, ValueError):
            raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}") from None
        if not is_int(scale) or scale < 1:
            raise ValueError(f"scale must be a positive int, got {scale!r}")
        self._max_side, self._scale = max_side, scale
        self._photos: dict[str, np.ndarray] = {}
        photo_options = list(dict.fromkeys((photo, *PHOTO_CHOICES)))
        if image is not None:
            self._photos[_OWN_IMAGE] = small_photo(image, max_side)
            photo_options, photo = [_OWN_IMAGE, *photo_options], _OWN_IMAGE

        self.preset_dropdown = ipywidgets.Dropdown(options=[*PRESETS, CUSTOM_STACK], value=_preset_of(stack),
                                                   description="preset")
        self.stack_text = ipywidgets.Text(
            value=stack, description="layers", placeholder="e.g. c3 c3 p2 c3d2",
            continuous_update=False,  # apply on Enter, not after every key
        )
        self.padding_dropdown = ipywidgets.Dropdown(options=["valid", "same"], value=padding,
                                                    description="padding")
        self.photo_dropdown = ipywidgets.Dropdown(options=photo_options, value=photo, description="photo")
        self.layer_slider = ipywidgets.IntSlider(value=1, min=1, max=1, description="layer")
        self.row_slider = ipywidgets.IntSlider(value=0, min=0, max=0, description="unit row")
        self.col_slider = ipywidgets.IntSlider(value=0, min=0, max=0, description="unit col")
        self.syntax_hint = ipywidgets.HTML(value=syntax_hint_html(),
                                           layout=ipywidgets.Layout(max_width="48em"))
        self.syntax_hint.add_class("cnn-course-hint")
        super().__init__(
            [
                ipywidgets.HBox([self.preset_dropdown, self.stack_text, self.padding_dropdown]),
                self.syntax_hint,
                ipywidgets.HBox([self.layer_slider, self.row_slider, self.col_slider]),
                self.photo_dropdown,
            ],
            css_class="cnn-course-receptive-field",
        )

        # Changing the ranges of the sliders changes their values; _adjusting stops
        # those changes from each redrawing the picture.
        self._adjusting = False
        self.preset_dropdown.observe(self._preset_chosen, names="value")
        self.stack_text.observe(self._stack_changed, names="value")
        self.padding_dropdown.observe(self._stack_changed, names="value")
        self.layer_slider.observe(self._stack_changed, names="value")
        self.photo_dropdown.observe(self._stack_changed, names="value")
        self.row_slider.observe(self._redraw, names="value")
        self.col_slider.observe(self._redraw, names="value")
        self._stack_changed(None, last_layer=True)

    def _current_photo(self) -> np.ndarray:
        name = self.photo_dropdown.value
        if name not in self._photos:
            self._photos[name] = small_photo(name, self._max_side)
        return self._photos[name]

    def _preset_chosen(self, change) -> None:
        # Choosing "(your own stack)" keeps the text as it is: there is nothing to fill in.
        if change["new"] in PRESETS:
            self.stack_text.value = PRESETS[change["new"]]

    def _stack_changed(self, change, *, last_layer: bool = False) -> None:
        """Fit the sliders to the stack (centring the unit), then redraw once."""
        if self._adjusting:
            return
        self._adjusting = True
        try:
            if change is not None and change["owner"] is self.stack_text:
                self.preset_dropdown.value = _preset_of(change["new"])
                last_layer = True
            try:
                layers = parse_layers(self.stack_text.value, padding=self.padding_dropdown.value)
            except ValueError:
                layers = None  # the view explains the problem in the caption
            if layers:
                self.layer_slider.max = len(layers)
                if last_layer:
                    self.layer_slider.value = len(layers)
                try:
                    table = receptive_fields(layers[: self.layer_slider.value], self._current_photo().shape[:2])
                except ValueError:
                    table = None
                if table is not None:
                    out_rows, out_cols = table[-1].output_size
                    self.row_slider.max, self.col_slider.max = out_rows - 1, out_cols - 1
                    self.row_slider.value, self.col_slider.value = out_rows // 2, out_cols // 2
        finally:
            self._adjusting = False
        self._redraw()

    def _redraw(self, _change=None) -> None:
        if self._adjusting:
            return
        frame = receptive_field_view(
            self._current_photo(), self.stack_text.value, layer=self.layer_slider.value,
            row=self.row_slider.value, col=self.col_slider.value,
            padding=self.padding_dropdown.value, scale=self._scale,
        )
        self.show(frame)


def receptive_field_explorer(image=None, *, photo: str = "astronaut", stack: str = "c3 c3 c3",
                             padding: str = "valid", max_side: int = DEFAULT_MAX_SIDE,
                             scale: int = DEFAULT_SCALE) -> ReceptiveFieldExplorer:
    """Type a stack of conv/pool layers, pick a unit, and see its receptive field on a photo.

    Parameters
    ----------
    image : array_like, optional
        Your own ``(H, W)`` or ``(H, W, 3)`` image; shrunk to at most ``max_side`` pixels.
    photo : str
        Which of :data:`cnn_course.data.PHOTOS` to start with.
    stack : str
        The layers, e.g. ``"c3 c3 p2 c3d2"`` (see
        :func:`~cnn_course.receptive_field.parse_layers`), or pick a preset.
    padding : {"valid", "same"}
        Padding of the layers whose text does not say.
    max_side : int
        The photo is shrunk to at most this many pixels per side, so fields are visible.
    scale : int
        Each image pixel is drawn as a ``scale × scale`` block.

    Returns
    -------
    ReceptiveFieldExplorer
        The widget; it displays itself when it is the last expression of a cell.

    Examples
    --------
    >>> explorer = receptive_field_explorer(photo="camera", stack="c3 c3")
    >>> explorer.caption.value[:45]
    'layer 2 of 2 (conv 3×3): receptive field 5×5,'
    >>> explorer.stack_text.value = "c3 c3d2 c3d4"
    >>> explorer.caption.value[:48]
    'layer 3 of 3 (conv 3×3 dilation 4): receptive fi'
    """
    return ReceptiveFieldExplorer(image, photo=photo, stack=stack, padding=padding,
                                  max_side=max_side, scale=scale)
