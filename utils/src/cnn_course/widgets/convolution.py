"""Convolution explorer: a kernel, padding, stride and dilation applied to an image, side by side.

A widget for week 2 (``course/week2_convolution/03_padding_stride_dilation.ipynb``):
:func:`convolution_explorer` applies a kernel (a preset or your own weights, up to 7×7)
to a small binary image or a real photo with a choice of padding, stride and dilation,
and shows input, kernel and output side by side with the output shape.

It follows the pattern described in :mod:`cnn_course.widgets`: plain functions
(:func:`parse_kernel`, :func:`binary_image`, ...), a pure view (:func:`convolution_view`)
that returns a :class:`~cnn_course.widgets.Frame` plus the output behind the picture, and
a thin :class:`ConvolutionExplorer` widget.

The sliding-window stepper has its own module, :mod:`cnn_course.widgets.sliding_window`;
its names are also importable from here, for notebooks written before the split.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

import ipywidgets
import numpy as np

from .. import conv, data, kernels
from .._geometry import PADDING_WORDS, as_pair, check_word, dilated_size, is_int
from ..images import check_image, shrink, to_grayscale
from ._grids import SIGNED_COLOURMAP, check_kernel, draw_grid, signed_limits, size_text, value_text
from .frame import Frame, FrameWidget, figure_png

# The stepper lived here before it got its own module; these names keep older imports working.
from .sliding_window import (  # noqa: F401
    DEFAULT_STEPPER_IMAGE,
    SlidingWindowFrame,
    SlidingWindowStepper,
    WindowStep,
    sliding_window_step,
    sliding_window_stepper,
    sliding_window_view,
)

__all__ = [
    "BINARY_IMAGES",
    "DEFAULT_KERNEL",
    "ConvolutionExplorer",
    "ConvolutionFrame",
    "binary_image",
    "convolution_explorer",
    "convolution_view",
    "format_kernel",
    "grayscale_photo",
    "parse_kernel",
]

PADDINGS = PADDING_WORDS
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
BINARY_IMAGE_SIDE = 8
BINARY_IMAGES = ("square", "cross", "diagonal line")
CUSTOM_KERNEL = "custom"
# Sobel x responds to vertical edges, with a sign, so the explorer starts on a signed output.
DEFAULT_KERNEL = "Sobel x (vertical edges)"
KERNEL_TEXT_EXAMPLE = "-1 0 1; -2 0 2; -1 0 1"
_OWN_IMAGE = "(your image)"


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

    :func:`cnn_course.images.to_grayscale` then :func:`cnn_course.images.shrink`: colour
    photos are converted with scikit-image's luminance weights, and photos larger than
    ``max_side`` are shrunk by the smallest whole factor that fits, each output pixel the
    mean of a block of pixels.

    Examples
    --------
    >>> grayscale_photo("camera").shape
    (256, 256)
    """
    return shrink(to_grayscale(data.load_photo(name)), max_side)


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
        number or is too large for a float, rows of different lengths, more than
        7×7 weights).

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
            except OverflowError:  # e.g. 1e400: larger than any float
                raise ValueError(
                    f"{word!r} in row {row_number} of the kernel is too large for a number here "
                    f"(floats stop at about {np.finfo(np.float64).max:.1e}); use smaller weights"
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
    weights = check_kernel(kernel)
    # "+ 0.0" turns -0.0 into 0.0, so no "-0" appears.
    return "; ".join(" ".join(f"{value + 0.0:.4g}" for value in row) for row in weights)


def _check_2d_image(image, name: str = "image") -> np.ndarray:
    array = check_image(image, name)
    if array.ndim != 2:
        raise ValueError(
            f"{name} must be a single-channel (H, W) image, got shape {array.shape}; "
            "for a colour photo take one channel or a grayscale version first"
        )
    return array


def _dilated_footprint(kernel: np.ndarray, dilation: tuple[int, int]) -> np.ndarray:
    """The kernel spread out by ``dilation`` (rows, cols); the skipped cells are nan."""
    (kh, kw), (dh, dw) = kernel.shape, dilation
    footprint = np.full((dilated_size(kh, dh), dilated_size(kw, dw)), np.nan)
    footprint[::dh, ::dw] = kernel
    return footprint


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
    try:
        weights = parse_kernel(kernel) if isinstance(kernel, str) else check_kernel(kernel)
    except (ValueError, TypeError) as error:
        return _explorer_frame(image, None, None, (1, 1), flip, f"⚠ {error}")
    try:
        if isinstance(padding, str):
            padding = shown_padding = check_word(padding, "padding", PADDINGS)
        else:
            shown_padding = _one_or_pair(as_pair(padding, "padding", minimum=0))
        stride_pair = as_pair(stride, "stride", minimum=1)
        dilation_pair = as_pair(dilation, "dilation", minimum=1)
    except (ValueError, TypeError) as error:
        return _explorer_frame(image, weights, None, (1, 1), flip, f"⚠ {error}")
    settings = (f"padding {shown_padding}, stride {_one_or_pair(stride_pair)}, "
                f"dilation {_one_or_pair(dilation_pair)}, {operation}")
    problem = _explain_misfit(image.shape, weights.shape, padding, dilation_pair)
    if problem is None:
        compute = conv.convolve2d if flip else conv.correlate2d
        try:
            with np.errstate(over="ignore", invalid="ignore"):  # an overflow is explained below
                output = compute(image, weights, stride=stride, padding=padding, dilation=dilation)
        except (ValueError, TypeError) as error:  # anything conv rejects, in its own words
            problem = f"⚠ {error}"
        else:
            if not np.all(np.isfinite(output)):
                problem = ("⚠ the output is too large for floating-point numbers (it overflows to "
                           "infinity); use smaller weights")
    if problem is not None:
        return _explorer_frame(image, weights, None, dilation_pair, flip, f"{problem} ({settings})")
    caption = (
        f"{size_text(image.shape)} input → {size_text(output.shape)} output ({settings}); "
        f"values {value_text(output.min())} to {value_text(output.max())}"
    )
    return _explorer_frame(image, weights, output, dilation_pair, flip, caption)


def _one_or_pair(pair: tuple[int, int]) -> str:
    """``2`` for (2, 2), ``(1, 2)`` otherwise: how the caption shows a setting."""
    return str(pair[0]) if pair[0] == pair[1] else f"({pair[0]}, {pair[1]})"


def _explain_misfit(image_shape, kernel_shape, padding, dilation: tuple[int, int]) -> str | None:
    """Why the (dilated) kernel does not fit in the unpadded input, or None if it fits.

    Only "valid" padding can fail: "same" and "full" pad enough for any kernel.
    """
    if padding != "valid":
        return None
    span = tuple(dilated_size(k, d) for k, d in zip(kernel_shape, dilation, strict=True))
    if span[0] <= image_shape[0] and span[1] <= image_shape[1]:
        return None
    spread = f" spread out by dilation {_one_or_pair(dilation)} covers" if max(dilation) > 1 else " covers"
    return (
        f"⚠ the kernel does not fit: the {size_text(kernel_shape)} kernel{spread} {size_text(span)} pixels, "
        f"but the input is only {size_text(image_shape)} and valid padding adds nothing; "
        "choose padding same or full, a smaller dilation or a smaller kernel"
    )


def _explorer_frame(image, weights, output, dilation, flip, caption) -> ConvolutionFrame:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10.5, 3.6))
    ax_input, ax_kernel, ax_output = fig.subplots(1, 3, width_ratios=[1, 0.7, 1])
    # Fixed margins instead of a layout engine: as good here, and half the drawing time.
    fig.subplots_adjust(left=0.01, right=0.97, top=0.86, bottom=0.02, wspace=0.12)
    small = max(image.shape) <= MAX_ANNOTATED_SIDE
    draw_grid(ax_input, image, cmap="gray", vmin=min(0.0, float(image.min())),
               vmax=max(1.0, float(image.max())), annotate=small, title=f"input {size_text(image.shape)}")
    if weights is None:
        ax_kernel.set_axis_off()
        ax_kernel.text(0.5, 0.5, "kernel?", ha="center", va="center", fontsize=14, transform=ax_kernel.transAxes)
    else:
        shown = np.rot90(weights, 2) if flip else weights
        footprint = _dilated_footprint(shown.astype(np.float64), dilation)
        low, high = signed_limits(shown)
        title = f"kernel {size_text(weights.shape)}"
        if flip:
            title += ", rotated 180°"
        if max(dilation) > 1:
            title += f"\n(dilation {_one_or_pair(dilation)}: spans {size_text(footprint.shape)})"
        draw_grid(ax_kernel, footprint, cmap=SIGNED_COLOURMAP, vmin=low, vmax=high, annotate=True, title=title)
    if output is None:
        ax_output.set_axis_off()
        ax_output.text(0.5, 0.5, "no output", ha="center", va="center", fontsize=14,
                       transform=ax_output.transAxes)
    else:
        signed = float(output.min()) < 0
        if signed:
            low, high = signed_limits(output)
        else:
            low, high = 0.0, float(output.max()) or 1.0
        picture = draw_grid(
            ax_output, output, cmap=SIGNED_COLOURMAP if signed else "gray", vmin=low, vmax=high,
            annotate=max(output.shape) <= MAX_ANNOTATED_SIDE, title=f"output {size_text(output.shape)}",
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
            weights = check_kernel(kernel)
            if max(weights.shape) > MAX_KERNEL_SIDE:
                raise ValueError(f"this widget takes kernels up to {MAX_KERNEL_SIDE}×{MAX_KERNEL_SIDE}, "
                                 f"got {size_text(weights.shape)}")
            kernel_name, kernel_text = CUSTOM_KERNEL, format_kernel(weights)
            self._custom_weights = weights  # exact, unlike its 4-digit text
        if not isinstance(padding, str) or padding.lower() not in PADDINGS:
            raise ValueError(f"padding must be one of {', '.join(PADDINGS)} in this widget, got {padding!r}")
        padding = padding.lower()
        stride = _check_range("stride", stride, 1, MAX_STRIDE)
        dilation = _check_range("dilation", dilation, 1, MAX_DILATION)

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



def _check_range(name: str, value, low: int, high: int) -> int:
    """``value`` as an int from ``low`` to ``high`` (a slider's range); numpy integers are fine."""
    if not is_int(value) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer from {low} to {high} in this widget, got {value!r}")
    return int(value)


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
