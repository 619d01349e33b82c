"""Sliding-window stepper: watch a kernel visit a small image one output cell at a time.

A widget for week 2 (``course/week2_convolution/01_cross_correlation_and_flipping.ipynb``):
:func:`sliding_window_stepper` moves a kernel across a small integer image one output cell
at a time and shows the window under the kernel, the element-wise products, their sum, and
the output filled in so far. A toggle rotates the kernel by 180° to turn cross-correlation
into true convolution.

It follows the pattern described in :mod:`cnn_course.widgets`: a plain function
(:func:`sliding_window_step`), a pure view (:func:`sliding_window_view`) that returns a
:class:`~cnn_course.widgets.Frame` plus the numbers behind the picture, and a thin
:class:`SlidingWindowStepper` widget.
"""

from __future__ import annotations

from dataclasses import dataclass

import ipywidgets
import numpy as np

from .. import kernels
from .._geometry import is_int
from ._grids import SIGNED_COLOURMAP, check_kernel, draw_grid, signed_limits, size_text, value_text
from .frame import Frame, FrameWidget, figure_png

__all__ = [
    "DEFAULT_STEPPER_IMAGE",
    "SlidingWindowFrame",
    "SlidingWindowStepper",
    "WindowStep",
    "sliding_window_step",
    "sliding_window_stepper",
    "sliding_window_view",
]

# The stepper draws every number of the input, so the input stays small.
MAX_STEPPER_SIDE = 10

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
            f"{MAX_STEPPER_SIDE}×{MAX_STEPPER_SIDE}, got {size_text(image.shape)}"
        )
    kernel = check_kernel(kernel)
    if kernel.shape[0] > image.shape[0] or kernel.shape[1] > image.shape[1]:
        raise ValueError(
            f"the {size_text(kernel.shape)} kernel does not fit in the {size_text(image.shape)} image"
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
    if not is_int(step) or not 1 <= step <= n_steps:
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
        weight_text = value_text(weight)
        terms.append(f"{value_text(value)}·{f'({weight_text})' if weight < 0 else weight_text}")
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
        f"output[{state.row}, {state.col}] = {_sum_expression(state)} = {value_text(state.total)}"
    )

    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 3.2))
    ax_input, ax_kernel, ax_products, ax_output = fig.subplots(
        1, 4, width_ratios=[image.shape[1], state.kernel.shape[1], state.kernel.shape[1], full.shape[1]]
    )
    fig.subplots_adjust(left=0.01, right=0.99, top=0.85, bottom=0.02, wspace=0.12)
    kh, kw = state.kernel.shape
    draw_grid(ax_input, image.astype(np.float64), cmap="Greys", vmin=min(0.0, float(image.min())),
               vmax=float(image.max()) * 1.6 or 1.0, annotate=True, title=f"input {size_text(image.shape)}")
    ax_input.add_patch(Rectangle((state.col - 0.5, state.row - 0.5), kw, kh, fill=False,
                                 edgecolor="tab:orange", linewidth=3))
    low, high = signed_limits(state.kernel)
    kernel_title = "kernel, rotated 180°" if flip else "kernel"
    draw_grid(ax_kernel, state.kernel.astype(np.float64), cmap=SIGNED_COLOURMAP, vmin=low, vmax=high,
               annotate=True, title=kernel_title)
    low, high = signed_limits(state.products)
    draw_grid(ax_products, state.products.astype(np.float64), cmap=SIGNED_COLOURMAP, vmin=low, vmax=high,
               annotate=True, title=f"window × kernel\nsum = {value_text(state.total)}")
    shown = np.where(state.filled, state.output, np.nan)
    low, high = signed_limits(full)
    draw_grid(ax_output, shown, cmap=SIGNED_COLOURMAP, vmin=low, vmax=high, annotate=True,
               title=f"output {size_text(full.shape)}")
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
        self._kernel = kernels.sobel_x() if kernel is None else kernel
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
