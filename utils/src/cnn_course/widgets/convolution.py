"""Convolution explorer and sliding-window stepper.

Two widgets for week 2 (the convolution operation from first principles):

* :func:`convolution_explorer` applies a 3×3 kernel (a preset or your own
  weights) to a small binary image or a real photo with a choice of padding,
  stride and dilation, and shows input, kernel and output side by side with the
  output shape.
* :func:`sliding_window_stepper` moves a kernel across a small integer image one
  output cell at a time: the window under the kernel, the element-wise products,
  their sum, and the output filled in so far. A toggle rotates the kernel by 180°
  to turn cross-correlation into true convolution.

Both follow the pattern described in :mod:`cnn_course.widgets`: plain functions
(:func:`parse_kernel`, :func:`sliding_window_step`, ...), pure view functions
(:func:`convolution_view`, :func:`sliding_window_view`) that return a
:class:`~cnn_course.widgets.Frame` plus the numbers behind the picture, and thin
``ipywidgets.VBox`` classes.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

import ipywidgets
import numpy as np

from .. import conv, data, kernels
from ..images import as_float_image, check_image
from .frame import Frame, FrameWidget, figure_png

__all__ = [
    "BINARY_IMAGES",
    "ConvolutionExplorer",
    "ConvolutionFrame",
    "SlidingWindowFrame",
    "SlidingWindowStepper",
    "WindowStep",
    "binary_image",
    "convolution_explorer",
    "convolution_view",
    "format_kernel",
    "grayscale_photo",
    "parse_kernel",
    "sliding_window_step",
    "sliding_window_stepper",
    "sliding_window_view",
]

PADDINGS = ("valid", "same", "full")
MAX_STRIDE = 4
MAX_DILATION = 3
# Larger kernels are unreadable as a grid of numbers, and slow on a photo.
MAX_KERNEL_SIDE = 7
# Photos are shrunk (by averaging blocks of pixels) until their longer side is at
# most this many pixels: a 3×3 kernel still finds the same edges, and a frame
# renders in a fraction of a second even on a slow laptop.
MAX_PHOTO_SIDE = 256
# Grids up to this size get their values printed in every cell.
MAX_ANNOTATED_SIDE = 12
# The stepper draws every number of the input, so the input stays small.
MAX_STEPPER_SIDE = 10
BINARY_IMAGE_SIDE = 8
BINARY_IMAGES = ("square", "cross", "diagonal line")
CUSTOM_KERNEL = "custom"
# Sobel x responds to vertical edges, with a sign, so the explorer starts on a signed output.
DEFAULT_KERNEL = "Sobel x (vertical edges)"
KERNEL_TEXT_EXAMPLE = "-1 0 1; -2 0 2; -1 0 1"
_OWN_IMAGE = "(your image)"

# Luminance weights of ITU-R BT.709 (the ones skimage.color.rgb2gray uses).
_LUMINANCE = np.array([0.2125, 0.7154, 0.0721])
_HOLE_COLOUR = "#e8e8e8"  # cells of a dilated kernel that hold no weight
_SIGNED_COLOURMAP = "RdBu_r"  # negative blue, zero white, positive red

# A 6×6 image with a vertical and a horizontal edge, small enough to follow by hand.
DEFAULT_STEPPER_IMAGE = np.array(
    [
        [0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0],
        [0, 0, 5, 5, 5, 5],
        [0, 0, 5, 9, 9, 9],
        [0, 0, 5, 9, 9, 9],
        [0, 0, 5, 9, 9, 9],
    ]
)


# ------------------------------------------------------------------------ inputs


def binary_image(name: str) -> np.ndarray:
    """A small hand-made black-and-white image (8×8, values 0 and 1, integer).

    Parameters
    ----------
    name : str
        ``"square"`` (a 4×4 square in the middle), ``"cross"`` (a plus sign two
        pixels thick) or ``"diagonal line"`` (the main diagonal).

    Examples
    --------
    >>> binary_image("square")[2]
    array([0, 0, 1, 1, 1, 1, 0, 0])
    """
    side = BINARY_IMAGE_SIDE
    image = np.zeros((side, side), dtype=np.int64)
    middle = slice(side // 2 - 1, side // 2 + 1)
    if name == "square":
        image[2 : side - 2, 2 : side - 2] = 1
    elif name == "cross":
        image[middle, 1 : side - 1] = 1
        image[1 : side - 1, middle] = 1
    elif name == "diagonal line":
        image[np.arange(side), np.arange(side)] = 1
    else:
        raise ValueError(f"unknown binary image {name!r}; choose one of: {', '.join(BINARY_IMAGES)}")
    return image


def grayscale_photo(name: str, max_side: int = MAX_PHOTO_SIDE) -> np.ndarray:
    """A photo of :data:`cnn_course.data.PHOTOS` in grayscale, float in [0, 1], at most ``max_side`` pixels.

    Colour photos are converted with the BT.709 luminance weights; photos larger
    than ``max_side`` are shrunk by the smallest integer factor that fits, each
    output pixel being the mean of a block of pixels.

    Examples
    --------
    >>> grayscale_photo("camera").shape
    (256, 256)
    """
    photo = as_float_image(data.load_photo(name))
    if photo.ndim == 3:
        photo = photo[..., :3] @ _LUMINANCE
    factor = math.ceil(max(photo.shape) / max_side)
    if factor > 1:
        height, width = (photo.shape[0] // factor) * factor, (photo.shape[1] // factor) * factor
        blocks = photo[:height, :width].reshape(height // factor, factor, width // factor, factor)
        photo = blocks.mean(axis=(1, 3))
    return photo


_ROW_SEPARATOR = re.compile(r"[;\n]")
_NUMBER_SEPARATOR = re.compile(r"[\s,]+")


def parse_kernel(text: str) -> np.ndarray:
    """Read kernel weights typed as rows of numbers separated by ``;`` (or new lines).

    Numbers in a row are separated by spaces or commas; fractions such as ``1/9``
    are allowed.

    Raises
    ------
    ValueError
        With a message that says what is wrong (empty text, a word that is not a
        number, rows of different lengths, more than 7×7 weights).

    Examples
    --------
    >>> parse_kernel("1 0 -1; 2 0 -2; 1 0 -1")
    array([[ 1.,  0., -1.],
           [ 2.,  0., -2.],
           [ 1.,  0., -1.]])
    >>> parse_kernel("1/2, 1/2")
    array([[0.5, 0.5]])
    """
    if not isinstance(text, str):
        raise TypeError(f"kernel text must be a string, got {type(text).__name__}")
    lines = [line.strip() for line in _ROW_SEPARATOR.split(text)]
    # A trailing ";" or blank line is harmless; an empty row in the middle is a typo.
    while lines and not lines[-1]:
        lines.pop()
    if not lines or not any(lines):
        raise ValueError(f"the kernel is empty: type rows of numbers separated by ';', e.g. {KERNEL_TEXT_EXAMPLE!r}")
    rows = []
    for row_number, line in enumerate(lines, start=1):
        if not line:
            raise ValueError(f"row {row_number} of the kernel is empty (two ';' in a row?)")
        row = []
        for word in _NUMBER_SEPARATOR.split(line.strip(", ")):
            try:
                value = float(Fraction(word))
            except (ValueError, ZeroDivisionError):
                raise ValueError(
                    f"could not read {word!r} in row {row_number} of the kernel as a number "
                    f"(write e.g. {KERNEL_TEXT_EXAMPLE!r}; fractions like 1/9 are fine)"
                ) from None
            row.append(value)
        rows.append(row)
    lengths = [len(row) for row in rows]
    if len(set(lengths)) > 1:
        counts = ", ".join(f"row {i} has {n}" for i, n in enumerate(lengths, start=1))
        raise ValueError(f"every row of the kernel needs the same number of weights, but {counts}")
    if len(rows) > MAX_KERNEL_SIDE or lengths[0] > MAX_KERNEL_SIDE:
        raise ValueError(
            f"this widget takes kernels up to {MAX_KERNEL_SIDE}×{MAX_KERNEL_SIDE}, "
            f"got {len(rows)}×{lengths[0]}"
        )
    return np.array(rows, dtype=np.float64)


def format_kernel(kernel) -> str:
    """Kernel weights as text that :func:`parse_kernel` reads back (4 significant digits).

    Examples
    --------
    >>> format_kernel([[1, 0, -1], [2, 0, -2], [1, 0, -1]])
    '1 0 -1; 2 0 -2; 1 0 -1'
    """
    weights = _check_kernel(kernel)
    # "+ 0.0" turns -0.0 into 0.0, so no "-0" appears.
    return "; ".join(" ".join(f"{value + 0.0:.4g}" for value in row) for row in weights)


def _check_kernel(kernel, name: str = "kernel") -> np.ndarray:
    weights = np.asarray(kernel)
    if weights.ndim != 2 or weights.size == 0:
        raise ValueError(f"{name} must be a 2-D array (kh, kw), got shape {weights.shape}")
    if weights.dtype == bool or not np.issubdtype(weights.dtype, np.number):
        raise TypeError(f"{name} must hold numbers, got dtype {weights.dtype}")
    if not np.all(np.isfinite(weights)):
        raise ValueError(f"{name} must hold finite numbers (no nan or inf)")
    return weights


def _check_2d_image(image, name: str = "image") -> np.ndarray:
    array = check_image(image, name)
    if array.ndim != 2:
        raise ValueError(
            f"{name} must be a single-channel (H, W) image, got shape {array.shape}; "
            "for a colour photo take one channel or a grayscale version first"
        )
    return array


def _dilated_footprint(kernel: np.ndarray, dilation: int) -> np.ndarray:
    """The kernel spread out by ``dilation``; the skipped cells are nan."""
    kh, kw = kernel.shape
    footprint = np.full(((kh - 1) * dilation + 1, (kw - 1) * dilation + 1), np.nan)
    footprint[::dilation, ::dilation] = kernel
    return footprint


# ------------------------------------------------------------------------ drawing


def _value_text(value) -> str:
    return f"{float(value) + 0.0:.3g}"


def _draw_grid(ax, values, *, cmap, vmin, vmax, annotate, title):
    """imshow with one cell per value, optionally its number written in it, no ticks."""
    from matplotlib import colormaps
    from matplotlib.colors import Normalize

    colour_map = colormaps[cmap].with_extremes(bad=_HOLE_COLOUR)
    image = ax.imshow(values, cmap=colour_map, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=10)
    if annotate:
        norm = Normalize(vmin, vmax)
        for (row, col), value in np.ndenumerate(values):
            if np.isnan(value):
                continue
            red, green, blue, _ = colour_map(norm(value))
            dark = 0.2126 * red + 0.7152 * green + 0.0722 * blue < 0.5
            ax.text(col, row, _value_text(value), ha="center", va="center", fontsize=8,
                    color="white" if dark else "black")
    return image


def _signed_limits(*arrays) -> tuple[float, float]:
    """Symmetric colour limits around 0, so 0 is always the middle (white) colour."""
    largest = max((float(np.nanmax(np.abs(a))) for a in arrays if a is not None and a.size), default=0.0)
    largest = largest or 1.0
    return -largest, largest


def _size(shape) -> str:
    return f"{shape[0]}×{shape[1]}"


# ------------------------------------------------------------------------ convolution explorer


@dataclass(frozen=True)
class ConvolutionFrame(Frame):
    """What the convolution explorer shows, and the output array behind the picture.

    Attributes
    ----------
    output : numpy.ndarray or None
        The result of the convolution (or cross-correlation); ``None`` when the
        settings do not work, and the caption then says why.
    """

    output: np.ndarray | None


def convolution_view(image, kernel, *, padding="valid", stride=1, dilation=1, flip=False) -> ConvolutionFrame:
    """What the convolution explorer shows for one image, kernel and setting of the controls.

    Parameters
    ----------
    image : array_like
        ``(H, W)`` single-channel image (e.g. :func:`binary_image` or
        :func:`grayscale_photo`).
    kernel : array_like or str
        ``(kh, kw)`` weights, or text such as ``"1 0 -1; 2 0 -2; 1 0 -1"``
        (see :func:`parse_kernel`).
    padding, stride, dilation
        As in :func:`cnn_course.conv.correlate2d`.
    flip : bool
        ``False``: cross-correlation (:func:`~cnn_course.conv.correlate2d`, what
        Keras calls convolution); ``True``: true convolution
        (:func:`~cnn_course.conv.convolve2d`, the kernel rotated by 180°).

    Returns
    -------
    ConvolutionFrame
        A figure with the input, the kernel (spread out when dilated) and the
        output with a colour bar, and a caption such as ``"8×8 input → 6×6 output
        (padding valid, stride 1, dilation 1, cross-correlation); values -4 to 4"``.
        Settings that do not work (unreadable kernel text, a kernel that does not
        fit the input) give ``output=None`` and a caption starting with ``"⚠"``
        instead of an exception, so a student can fix them with the controls.

    Examples
    --------
    >>> frame = convolution_view(binary_image("square"), "1 0 -1; 2 0 -2; 1 0 -1")
    >>> frame.caption
    '8×8 input → 6×6 output (padding valid, stride 1, dilation 1, cross-correlation); values -4 to 4'
    >>> convolution_view(binary_image("square"), "1 0 -1; 2 0").caption[:45]
    '⚠ every row of the kernel needs the same numb'
    """
    image = _check_2d_image(image)
    operation = "convolution" if flip else "cross-correlation"
    settings = f"padding {padding}, stride {stride}, dilation {dilation}, {operation}"
    try:
        weights = parse_kernel(kernel) if isinstance(kernel, str) else _check_kernel(kernel)
    except (ValueError, TypeError) as error:
        return _explorer_frame(image, None, None, dilation, flip, f"⚠ {error}")
    problem = _explain_misfit(image.shape, weights.shape, padding, dilation)
    if problem is None:
        compute = conv.convolve2d if flip else conv.correlate2d
        try:
            output = compute(image, weights, stride=stride, padding=padding, dilation=dilation)
        except ValueError as error:  # anything conv rejects, in its own words
            problem = f"⚠ {error}"
    if problem is not None:
        return _explorer_frame(image, weights, None, dilation, flip, f"{problem} ({settings})")
    caption = (
        f"{_size(image.shape)} input → {_size(output.shape)} output ({settings}); "
        f"values {_value_text(output.min())} to {_value_text(output.max())}"
    )
    return _explorer_frame(image, weights, output, dilation, flip, caption)


def _explain_misfit(image_shape, kernel_shape, padding, dilation) -> str | None:
    """Why the (dilated) kernel does not fit in the unpadded input, or None if it fits.

    Only "valid" padding can fail: "same" and "full" pad enough for any kernel.
    """
    if padding != "valid" or not isinstance(dilation, int):
        return None
    span = tuple((k - 1) * dilation + 1 for k in kernel_shape)
    if span[0] <= image_shape[0] and span[1] <= image_shape[1]:
        return None
    spread = f" spread out by dilation {dilation} covers" if dilation > 1 else " covers"
    return (
        f"⚠ the kernel does not fit: the {_size(kernel_shape)} kernel{spread} {_size(span)} pixels, "
        f"but the input is only {_size(image_shape)} and valid padding adds nothing; "
        "choose padding same or full, a smaller dilation or a smaller kernel"
    )


def _explorer_frame(image, weights, output, dilation, flip, caption) -> ConvolutionFrame:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10.5, 3.6))
    ax_input, ax_kernel, ax_output = fig.subplots(1, 3, width_ratios=[1, 0.7, 1])
    # Fixed margins instead of a layout engine: as good here, and half the drawing time.
    fig.subplots_adjust(left=0.01, right=0.97, top=0.86, bottom=0.02, wspace=0.12)
    small = max(image.shape) <= MAX_ANNOTATED_SIDE
    _draw_grid(ax_input, image, cmap="gray", vmin=min(0.0, float(image.min())),
               vmax=max(1.0, float(image.max())), annotate=small, title=f"input {_size(image.shape)}")
    if weights is None:
        ax_kernel.set_axis_off()
        ax_kernel.text(0.5, 0.5, "kernel?", ha="center", va="center", fontsize=14, transform=ax_kernel.transAxes)
    else:
        shown = np.rot90(weights, 2) if flip else weights
        footprint = _dilated_footprint(shown.astype(np.float64), dilation)
        low, high = _signed_limits(shown)
        title = f"kernel {_size(weights.shape)}"
        if flip:
            title += ", rotated 180°"
        if dilation > 1:
            title += f"\n(dilation {dilation}: spans {_size(footprint.shape)})"
        _draw_grid(ax_kernel, footprint, cmap=_SIGNED_COLOURMAP, vmin=low, vmax=high, annotate=True, title=title)
    if output is None:
        ax_output.set_axis_off()
        ax_output.text(0.5, 0.5, "no output", ha="center", va="center", fontsize=14,
                       transform=ax_output.transAxes)
    else:
        signed = float(output.min()) < 0
        if signed:
            low, high = _signed_limits(output)
        else:
            low, high = 0.0, float(output.max()) or 1.0
        picture = _draw_grid(
            ax_output, output, cmap=_SIGNED_COLOURMAP if signed else "gray", vmin=low, vmax=high,
            annotate=max(output.shape) <= MAX_ANNOTATED_SIDE, title=f"output {_size(output.shape)}",
        )
        fig.colorbar(picture, ax=ax_output, shrink=0.85)
    return ConvolutionFrame(png=figure_png(fig), caption=caption, output=output)


def _explorer_sources() -> list[tuple[str, str]]:
    """(label, value) pairs for the image dropdown: the binary images, then the photos."""
    side = f"{BINARY_IMAGE_SIDE}×{BINARY_IMAGE_SIDE}"
    return [(f"{name} ({side}, binary)", name) for name in BINARY_IMAGES] + [
        (f"{name} (photo, grayscale)", name) for name in data.PHOTOS
    ]


class ConvolutionExplorer(FrameWidget):
    """Apply a kernel to an image with a choice of padding, stride and dilation.

    Use :func:`convolution_explorer` to create one in a notebook.

    Attributes
    ----------
    image_dropdown : ipywidgets.Dropdown
        The input: a small binary image (:data:`BINARY_IMAGES`), a grayscale photo
        (:data:`cnn_course.data.PHOTOS`), or "(your image)" when one was passed in.
    kernel_dropdown : ipywidgets.Dropdown
        A kernel of :data:`cnn_course.kernels.PRESETS`, or "custom".
    kernel_text : ipywidgets.Text
        The weights, rows separated by ``;``. Choosing a preset fills it in; editing
        it (press Enter) switches the dropdown to "custom".
    padding_buttons : ipywidgets.ToggleButtons
        valid, same or full.
    stride_slider, dilation_slider : ipywidgets.IntSlider
        Stride 1–4, dilation 1–3.
    flip_checkbox : ipywidgets.Checkbox
        Rotate the kernel by 180° (true convolution) instead of cross-correlation.
    picture : ipywidgets.Image
        Input, kernel and output side by side (PNG).
    caption : ipywidgets.Label
        Input and output shapes and the settings, or what is wrong with them.
    output : numpy.ndarray or None
        The output currently shown.
    """

    def __init__(self, image=None, *, source="square", kernel=DEFAULT_KERNEL, padding="valid",
                 stride=1, dilation=1, flip=False):
        options = _explorer_sources()
        self._images: dict[str, np.ndarray] = {}
        if image is not None:
            self._images[_OWN_IMAGE] = _check_2d_image(image)
            options = [(_OWN_IMAGE, _OWN_IMAGE), *options]
            source = _OWN_IMAGE
        values = [value for _, value in options]
        if source not in values:
            raise ValueError(f"unknown image {source!r}; choose one of: {', '.join(values)}")
        presets = list(kernels.PRESETS)
        if isinstance(kernel, str):
            if kernel not in presets:
                raise ValueError(f"unknown kernel {kernel!r}; choose one of: {', '.join(presets)}, "
                                 "or pass the weights as an array")
            kernel_name, kernel_text = kernel, format_kernel(kernels.PRESETS[kernel])
        else:
            weights = _check_kernel(kernel)
            if max(weights.shape) > MAX_KERNEL_SIDE:
                raise ValueError(f"this widget takes kernels up to {MAX_KERNEL_SIDE}×{MAX_KERNEL_SIDE}, "
                                 f"got {_size(weights.shape)}")
            kernel_name, kernel_text = CUSTOM_KERNEL, format_kernel(weights)
            self._custom_weights = weights  # exact, unlike its 4-digit text
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {', '.join(PADDINGS)} in this widget, got {padding!r}")
        _check_range("stride", stride, 1, MAX_STRIDE)
        _check_range("dilation", dilation, 1, MAX_DILATION)

        self.image_dropdown = ipywidgets.Dropdown(options=options, value=source, description="image")
        self.kernel_dropdown = ipywidgets.Dropdown(
            options=[*presets, CUSTOM_KERNEL], value=kernel_name, description="kernel"
        )
        self.kernel_text = ipywidgets.Text(
            value=kernel_text, description="weights", continuous_update=False,
            placeholder=KERNEL_TEXT_EXAMPLE, layout=ipywidgets.Layout(width="24em"),
        )
        self.padding_buttons = ipywidgets.ToggleButtons(
            options=PADDINGS, value=padding, description="padding",
            style={"button_width": "5em"},
        )
        self.stride_slider = ipywidgets.IntSlider(value=stride, min=1, max=MAX_STRIDE, description="stride")
        self.dilation_slider = ipywidgets.IntSlider(
            value=dilation, min=1, max=MAX_DILATION, description="dilation"
        )
        self.flip_checkbox = ipywidgets.Checkbox(value=bool(flip), description="flip kernel (true convolution)")
        self.output: np.ndarray | None = None
        self._updating_kernel = False
        if kernel_name != CUSTOM_KERNEL:
            self._custom_weights = None
        super().__init__(
            [
                ipywidgets.HBox([self.image_dropdown, self.kernel_dropdown, self.kernel_text]),
                ipywidgets.HBox([self.padding_buttons, self.flip_checkbox]),
                ipywidgets.HBox([self.stride_slider, self.dilation_slider]),
            ],
            css_class="cnn-course-convolution-explorer",
        )
        self.kernel_dropdown.observe(self._preset_chosen, names="value")
        self.kernel_text.observe(self._weights_typed, names="value")
        for control in (self.image_dropdown, self.padding_buttons, self.stride_slider,
                        self.dilation_slider, self.flip_checkbox):
            control.observe(self._redraw, names="value")
        self._redraw()

    def _current_image(self) -> np.ndarray:
        name = self.image_dropdown.value
        if name not in self._images:
            self._images[name] = binary_image(name) if name in BINARY_IMAGES else grayscale_photo(name)
        return self._images[name]

    def _current_kernel(self):
        name = self.kernel_dropdown.value
        if name != CUSTOM_KERNEL:
            return kernels.PRESETS[name]
        if self._custom_weights is not None:
            return self._custom_weights
        return self.kernel_text.value

    def _preset_chosen(self, change) -> None:
        if self._updating_kernel:
            return
        if change["new"] != CUSTOM_KERNEL:
            self._custom_weights = None
            self._updating_kernel = True
            try:
                self.kernel_text.value = format_kernel(kernels.PRESETS[change["new"]])
            finally:
                self._updating_kernel = False
        self._redraw()

    def _weights_typed(self, _change) -> None:
        if self._updating_kernel:
            return
        # Typed weights replace the preset (and any exact weights passed in).
        self._custom_weights = None
        self._updating_kernel = True
        try:
            self.kernel_dropdown.value = CUSTOM_KERNEL
        finally:
            self._updating_kernel = False
        self._redraw()

    def _redraw(self, _change=None) -> None:
        frame = convolution_view(
            self._current_image(), self._current_kernel(), padding=self.padding_buttons.value,
            stride=self.stride_slider.value, dilation=self.dilation_slider.value,
            flip=self.flip_checkbox.value,
        )
        self.output = frame.output
        self.show(frame)



def _check_range(name: str, value, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer from {low} to {high} in this widget, got {value!r}")


def convolution_explorer(image=None, *, source="square", kernel=DEFAULT_KERNEL, padding="valid",
                         stride=1, dilation=1, flip=False) -> ConvolutionExplorer:
    """Explore what a kernel, padding, stride and dilation do to an image.

    Parameters
    ----------
    image : array_like, optional
        Your own ``(H, W)`` single-channel image; if omitted, ``source`` is shown.
    source : str
        The image to start with: one of :data:`BINARY_IMAGES` or a photo name of
        :data:`cnn_course.data.PHOTOS` (shown in grayscale, shrunk to at most
        256 pixels a side).
    kernel : str or array_like
        A name of :data:`cnn_course.kernels.PRESETS` or your own weights (up to 7×7).
    padding : {"valid", "same", "full"}
    stride : int
        1 to 4.
    dilation : int
        1 to 3.
    flip : bool
        Start with true convolution instead of cross-correlation.

    Returns
    -------
    ConvolutionExplorer
        The widget; it displays itself when it is the last expression of a cell.

    Examples
    --------
    >>> explorer = convolution_explorer(source="cross", kernel="Laplacian")
    >>> explorer.padding_buttons.value = "same"
    >>> explorer.caption.value.startswith("8×8 input → 8×8 output (padding same")
    True
    """
    return ConvolutionExplorer(image, source=source, kernel=kernel, padding=padding, stride=stride,
                               dilation=dilation, flip=flip)


# ------------------------------------------------------------------------ sliding-window stepper


@dataclass(frozen=True)
class WindowStep:
    """The state of a sliding-window computation after ``step`` output cells.

    Attributes
    ----------
    step : int
        How many output cells are computed (1 to ``n_steps``); the last one is
        the current cell.
    n_steps : int
        Number of output cells.
    row, col : int
        Position of the current output cell, which is also the top-left corner of
        the window in the input.
    window : numpy.ndarray
        The input values under the kernel.
    kernel : numpy.ndarray
        The kernel as it is slid: rotated by 180° for true convolution.
    products : numpy.ndarray
        ``window * kernel``, element by element.
    total : number
        ``products.sum()``, the value of the current output cell.
    output : numpy.ndarray
        The output so far; cells not computed yet are 0.
    filled : numpy.ndarray
        Boolean mask of the cells computed so far (row by row).
    flip : bool
        True convolution (``True``) or cross-correlation (``False``).
    """

    step: int
    n_steps: int
    row: int
    col: int
    window: np.ndarray
    kernel: np.ndarray
    products: np.ndarray
    total: float
    output: np.ndarray
    filled: np.ndarray
    flip: bool


def _check_stepper_inputs(image, kernel) -> tuple[np.ndarray, np.ndarray]:
    image = np.asarray(image)
    if image.ndim != 2 or image.size == 0:
        raise ValueError(f"image must be a 2-D array (H, W), got shape {image.shape}")
    if image.dtype == bool or not np.issubdtype(image.dtype, np.number):
        raise TypeError(f"image must hold numbers, got dtype {image.dtype}")
    if max(image.shape) > MAX_STEPPER_SIDE:
        raise ValueError(
            f"the stepper shows every number, so the image can be at most "
            f"{MAX_STEPPER_SIDE}×{MAX_STEPPER_SIDE}, got {_size(image.shape)}"
        )
    kernel = _check_kernel(kernel)
    if kernel.shape[0] > image.shape[0] or kernel.shape[1] > image.shape[1]:
        raise ValueError(
            f"the {_size(kernel.shape)} kernel does not fit in the {_size(image.shape)} image"
        )
    return image, kernel


def sliding_window_step(image, kernel, step: int, *, flip: bool = False) -> WindowStep:
    """Compute the first ``step`` output cells of a valid, stride-1 cross-correlation (or convolution).

    The kernel visits the output cells row by row; after all ``n_steps`` steps
    ``output`` equals :func:`cnn_course.conv.correlate2d` (``flip=False``) or
    :func:`cnn_course.conv.convolve2d` (``flip=True``).

    Parameters
    ----------
    image : array_like
        ``(H, W)`` numbers, at most 10×10.
    kernel : array_like
        ``(kh, kw)`` weights that fit in the image.
    step : int
        1 to ``(H - kh + 1) * (W - kw + 1)``.
    flip : bool
        Rotate the kernel by 180° first (true convolution).

    Examples
    --------
    >>> state = sliding_window_step(np.arange(16).reshape(4, 4), np.ones((3, 3), int), 2)
    >>> (state.row, state.col, int(state.total), state.n_steps)
    (0, 1, 54, 4)
    >>> state.output
    array([[45, 54],
           [ 0,  0]])
    """
    image, kernel = _check_stepper_inputs(image, kernel)
    out_height = image.shape[0] - kernel.shape[0] + 1
    out_width = image.shape[1] - kernel.shape[1] + 1
    n_steps = out_height * out_width
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or not 1 <= step <= n_steps:
        raise ValueError(f"step must be an integer from 1 to {n_steps}, got {step!r}")
    slid = np.rot90(kernel, 2) if flip else kernel
    output = np.zeros((out_height, out_width), dtype=np.result_type(image, slid))
    filled = np.zeros((out_height, out_width), dtype=bool)
    # The definition, one output cell at a time: multiply the window by the kernel and add up.
    for index in range(step):
        row, col = divmod(index, out_width)
        window = image[row : row + kernel.shape[0], col : col + kernel.shape[1]]
        products = window * slid
        output[row, col] = products.sum()
        filled[row, col] = True
    return WindowStep(
        step=int(step), n_steps=n_steps, row=row, col=col, window=window.copy(), kernel=slid.copy(),
        products=products, total=products.sum(), output=output, filled=filled, flip=bool(flip),
    )


@dataclass(frozen=True)
class SlidingWindowFrame(Frame):
    """What the sliding-window stepper shows, and the numbers behind it (:class:`WindowStep`)."""

    state: WindowStep


def _sum_expression(state: WindowStep) -> str:
    terms = []
    for value, weight in zip(state.window.ravel(), state.kernel.ravel(), strict=True):
        weight_text = _value_text(weight)
        terms.append(f"{_value_text(value)}·{f'({weight_text})' if weight < 0 else weight_text}")
    return " + ".join(terms)


def sliding_window_view(image, kernel, step: int, *, flip: bool = False) -> SlidingWindowFrame:
    """What the sliding-window stepper shows after ``step`` output cells.

    Parameters are those of :func:`sliding_window_step`.

    Returns
    -------
    SlidingWindowFrame
        A figure (input with the current window outlined, the kernel as slid,
        the products, the output so far) and a caption such as
        ``"step 2 of 4, cross-correlation: output[0, 1] = 1·1 + ... = 54"``;
        ``.state`` holds the :class:`WindowStep`.

    Examples
    --------
    >>> frame = sliding_window_view(np.arange(16).reshape(4, 4), np.ones((3, 3), int), 2)
    >>> frame.caption[:45]
    'step 2 of 4, cross-correlation: output[0, 1] '
    >>> frame.caption.endswith("= 54")
    True
    """
    from matplotlib.patches import Rectangle

    state = sliding_window_step(image, kernel, step, flip=flip)
    image = np.asarray(image)
    full = sliding_window_step(image, kernel, state.n_steps, flip=flip).output
    operation = "convolution (kernel rotated 180°)" if flip else "cross-correlation"
    caption = (
        f"step {state.step} of {state.n_steps}, {operation}: "
        f"output[{state.row}, {state.col}] = {_sum_expression(state)} = {_value_text(state.total)}"
    )

    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 3.2))
    ax_input, ax_kernel, ax_products, ax_output = fig.subplots(
        1, 4, width_ratios=[image.shape[1], state.kernel.shape[1], state.kernel.shape[1], full.shape[1]]
    )
    fig.subplots_adjust(left=0.01, right=0.99, top=0.85, bottom=0.02, wspace=0.12)
    kh, kw = state.kernel.shape
    _draw_grid(ax_input, image.astype(np.float64), cmap="Greys", vmin=min(0.0, float(image.min())),
               vmax=float(image.max()) * 1.6 or 1.0, annotate=True, title=f"input {_size(image.shape)}")
    ax_input.add_patch(Rectangle((state.col - 0.5, state.row - 0.5), kw, kh, fill=False,
                                 edgecolor="tab:orange", linewidth=3))
    low, high = _signed_limits(state.kernel)
    kernel_title = "kernel, rotated 180°" if flip else "kernel"
    _draw_grid(ax_kernel, state.kernel.astype(np.float64), cmap=_SIGNED_COLOURMAP, vmin=low, vmax=high,
               annotate=True, title=kernel_title)
    low, high = _signed_limits(state.products)
    _draw_grid(ax_products, state.products.astype(np.float64), cmap=_SIGNED_COLOURMAP, vmin=low, vmax=high,
               annotate=True, title=f"window × kernel\nsum = {_value_text(state.total)}")
    shown = np.where(state.filled, state.output, np.nan)
    low, high = _signed_limits(full)
    _draw_grid(ax_output, shown, cmap=_SIGNED_COLOURMAP, vmin=low, vmax=high, annotate=True,
               title=f"output {_size(full.shape)}")
    ax_output.add_patch(Rectangle((state.col - 0.5, state.row - 0.5), 1, 1, fill=False,
                                  edgecolor="tab:orange", linewidth=3))
    return SlidingWindowFrame(png=figure_png(fig), caption=caption, state=state)


class SlidingWindowStepper(FrameWidget):
    """Step (or play) a kernel across a small image, one output cell at a time.

    Use :func:`sliding_window_stepper` to create one in a notebook.

    Attributes
    ----------
    step_slider : ipywidgets.IntSlider
        How many output cells are computed (1 to the number of cells).
    play : ipywidgets.Play
        Steps the slider automatically (linked to ``step_slider``).
    flip_button : ipywidgets.ToggleButton
        "flip kernel (true convolution)": rotates the kernel by 180°.
    picture : ipywidgets.Image
        Input with the window outlined, kernel, products, output so far (PNG).
    caption : ipywidgets.Label
        The current output cell as a sum of products.
    state : WindowStep
        The numbers currently shown.
    """

    def __init__(self, image=None, kernel=None, *, flip: bool = False, step: int = 1,
                 interval_ms: int = 800):
        self._image = DEFAULT_STEPPER_IMAGE if image is None else image
        self._kernel = kernels.PRESETS[DEFAULT_KERNEL] if kernel is None else kernel
        self._image, self._kernel = _check_stepper_inputs(self._image, self._kernel)
        # Validates step (and computes the number of steps) before any control exists.
        self.state = sliding_window_step(self._image, self._kernel, step, flip=flip)
        n_steps = self.state.n_steps
        self.step_slider = ipywidgets.IntSlider(value=step, min=1, max=n_steps, description="step")
        self.play = ipywidgets.Play(value=step, min=1, max=n_steps, interval=interval_ms, description="play")
        # A link through the kernel (not jslink) so that tests, and the slider, see the Play's value.
        self._play_link = ipywidgets.link((self.play, "value"), (self.step_slider, "value"))
        self.flip_button = ipywidgets.ToggleButton(
            value=bool(flip), description="flip kernel (true convolution)", icon="refresh",
            layout=ipywidgets.Layout(width="auto"),
        )
        super().__init__(
            [
                ipywidgets.HBox([self.play, self.step_slider, self.flip_button]),
            ],
            css_class="cnn-course-sliding-window-stepper",
        )
        self.step_slider.observe(self._redraw, names="value")
        self.flip_button.observe(self._redraw, names="value")
        self._redraw()

    def _redraw(self, _change=None) -> None:
        frame = sliding_window_view(self._image, self._kernel, self.step_slider.value,
                                    flip=self.flip_button.value)
        self.state = frame.state
        self.show(frame)


def sliding_window_stepper(image=None, kernel=None, *, flip: bool = False, step: int = 1,
                           interval_ms: int = 800) -> SlidingWindowStepper:
    """Watch a kernel slide across a small image and compute each output cell.

    Parameters
    ----------
    image : array_like, optional
        ``(H, W)`` numbers, at most 10×10; by default a 6×6 image with two edges.
    kernel : array_like, optional
        ``(kh, kw)`` weights; by default the Sobel x kernel.
    flip : bool
        Start with true convolution (kernel rotated by 180°).
    step : int
        The output cell to start at (1 = the top-left one).
    interval_ms : int
        Time between steps when playing.

    Returns
    -------
    SlidingWindowStepper
        The widget; it displays itself when it is the last expression of a cell.

    Examples
    --------
    >>> stepper = sliding_window_stepper()
    >>> stepper.step_slider.value = stepper.step_slider.max
    >>> bool(stepper.state.filled.all())
    True
    """
    return SlidingWindowStepper(image, kernel, flip=flip, step=step, interval_ms=interval_ms)
