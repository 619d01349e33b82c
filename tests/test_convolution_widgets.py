"""The convolution explorer and the sliding-window stepper, without a browser.

Every number the widgets show is checked against the reference implementation
(cnn_course.conv), and scipy where it applies; tests/test_browser.py drives the
same widgets in JupyterLab.
"""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
import scipy.signal
from cnn_course import conv, data, kernels
from cnn_course.widgets import (
    ConvolutionExplorer,
    Frame,
    SlidingWindowStepper,
    convolution_explorer,
    convolution_view,
    sliding_window_step,
    sliding_window_stepper,
    sliding_window_view,
)
from cnn_course.widgets.convolution import (
    BINARY_IMAGES,
    DEFAULT_KERNEL,
    DEFAULT_STEPPER_IMAGE,
    binary_image,
    format_kernel,
    grayscale_photo,
    parse_kernel,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

EXPLORER_CAPTION = re.compile(
    r"(?P<in_h>\d+)×(?P<in_w>\d+) input → (?P<out_h>\d+)×(?P<out_w>\d+) output "
    r"\(padding (?P<padding>\w+), stride (?P<stride>\d+), dilation (?P<dilation>\d+), "
    r"(?P<operation>cross-correlation|convolution)\); values (?P<low>\S+) to (?P<high>\S+)"
)
STEPPER_CAPTION = re.compile(
    r"step (?P<step>\d+) of (?P<n>\d+), (?P<operation>cross-correlation|convolution \(kernel rotated 180°\)): "
    r"output\[(?P<row>\d+), (?P<col>\d+)\] = (?P<expression>.+) = (?P<total>\S+)"
)
SOBEL_X = kernels.PRESETS[DEFAULT_KERNEL]
# Not symmetric under a 180° rotation in any way, so convolution and correlation differ
# by more than a sign.
LOPSIDED = np.array([[1, 2, 0], [0, -1, 3], [0, 0, 4]])


def decode_png(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))


def parse_explorer_caption(caption: str) -> dict[str, str]:
    match = EXPLORER_CAPTION.fullmatch(caption)
    assert match, f"caption has an unexpected form: {caption!r}"
    return match.groupdict()


def reference(image, kernel, *, padding="valid", stride=1, dilation=1, flip=False):
    compute = conv.convolve2d if flip else conv.correlate2d
    return compute(image, kernel, padding=padding, stride=stride, dilation=dilation)


# ----------------------------------------------------------------------------- inputs


def test_binary_images_are_small_black_and_white_integer_images():
    for name in BINARY_IMAGES:
        image = binary_image(name)
        assert image.shape == (8, 8) and np.issubdtype(image.dtype, np.integer)
        assert set(np.unique(image)) == {0, 1}
    assert binary_image("square").sum() == 16
    np.testing.assert_array_equal(binary_image("diagonal line"), np.eye(8, dtype=int))
    cross = binary_image("cross")
    np.testing.assert_array_equal(cross, cross.T)  # a plus sign is symmetric
    with pytest.raises(ValueError, match="unknown binary image 'circle'; choose one of: square"):
        binary_image("circle")


def test_grayscale_photo_is_the_block_mean_of_the_luminance():
    camera = data.load_photo("camera") / 255.0  # 512×512 grayscale -> factor 2
    expected = camera.reshape(256, 2, 256, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(grayscale_photo("camera"), expected)

    from skimage.color import rgb2gray

    cat = rgb2gray(data.load_photo("chelsea"))  # 300×451 colour -> factor 2, odd column dropped
    shrunk = grayscale_photo("chelsea")
    assert shrunk.shape == (150, 225)
    np.testing.assert_allclose(shrunk, cat[:, :450].reshape(150, 2, 225, 2).mean(axis=(1, 3)), atol=1e-12)

    retina = grayscale_photo("retina")  # the largest photo, 1411×1411 -> factor 6
    assert retina.shape == (235, 235) and 0 <= retina.min() and retina.max() <= 1
    # A photo that already fits is only converted.
    np.testing.assert_allclose(grayscale_photo("page", max_side=384), data.load_photo("page") / 255.0)


# ----------------------------------------------------------------------------- kernel text


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1 0 -1; 2 0 -2; 1 0 -1", [[1, 0, -1], [2, 0, -2], [1, 0, -1]]),
        ("1, 2\n3, 4", [[1, 2], [3, 4]]),
        ("  0.5 -1.5 ;", [[0.5, -1.5]]),
        ("1/9 1/9 1/9; 1/9 1/9 1/9; 1/9 1/9 1/9", np.full((3, 3), 1 / 9)),
        ("-2.5e-1", [[-0.25]]),
    ],
)
def test_parse_kernel_reads_rows_of_numbers(text, expected):
    np.testing.assert_array_equal(parse_kernel(text), np.array(expected, dtype=float))


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "the kernel is empty: type rows of numbers separated by ';'"),
        (" ; ", "the kernel is empty"),
        ("1 0 -1; 2 0; 1 0 -1", "every row of the kernel needs the same number of weights, but row 1 has 3, "
                               "row 2 has 2, row 3 has 3"),
        ("1 0 x", "could not read 'x' in row 1 of the kernel as a number"),
        ("1 2; 3 1/0", "could not read '1/0' in row 2"),
        ("1 2;; 3 4", "row 2 of the kernel is empty"),
        ("; ".join(["1 1 1 1 1 1 1 1"] * 8), "this widget takes kernels up to 7×7, got 8×8"),
    ],
)
def test_parse_kernel_explains_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_kernel(text)


@pytest.mark.parametrize("name", list(kernels.PRESETS))
def test_every_preset_survives_a_round_trip_through_its_text(name):
    weights = kernels.PRESETS[name]
    np.testing.assert_allclose(parse_kernel(format_kernel(weights)), weights, rtol=1e-3)


def test_format_kernel_writes_no_minus_zero():
    assert format_kernel(np.array([[-0.0, 1.5]])) == "0 1.5"


# ----------------------------------------------------------------------------- convolution_view


@pytest.mark.parametrize(
    "source, kernel, padding, stride, dilation, flip",
    [
        ("square", SOBEL_X, "valid", 1, 1, False),
        ("square", SOBEL_X, "valid", 1, 1, True),
        ("cross", LOPSIDED, "same", 2, 1, True),
        ("diagonal line", LOPSIDED, "full", 3, 2, False),
        ("square", kernels.PRESETS["Laplacian"], "same", 1, 3, False),
        ("cross", np.array([[1, -1]]), "full", 4, 1, True),  # an asymmetric 1×2 kernel
        ("coins", kernels.PRESETS["Gaussian blur"], "valid", 2, 2, False),
        ("camera", SOBEL_X, "same", 3, 1, True),
    ],
)
def test_view_output_and_caption_match_the_reference(source, kernel, padding, stride, dilation, flip):
    image = binary_image(source) if source in BINARY_IMAGES else grayscale_photo(source)
    frame = convolution_view(image, kernel, padding=padding, stride=stride, dilation=dilation, flip=flip)

    assert isinstance(frame, Frame)
    expected = reference(image, kernel, padding=padding, stride=stride, dilation=dilation, flip=flip)
    np.testing.assert_array_equal(frame.output, expected)
    numbers = parse_explorer_caption(frame.caption)
    assert (int(numbers["in_h"]), int(numbers["in_w"])) == image.shape
    assert (int(numbers["out_h"]), int(numbers["out_w"])) == tuple(
        conv.output_size(n, k, stride=stride, padding=padding, dilation=dilation)
        for n, k in zip(image.shape, np.shape(kernel), strict=True)
    )
    assert numbers["padding"] == padding
    assert (int(numbers["stride"]), int(numbers["dilation"])) == (stride, dilation)
    assert numbers["operation"] == ("convolution" if flip else "cross-correlation")
    assert float(numbers["low"]) == pytest.approx(expected.min(), rel=5e-3, abs=1e-9)
    assert float(numbers["high"]) == pytest.approx(expected.max(), rel=5e-3, abs=1e-9)
    assert decode_png(frame.png).ndim == 3  # a real picture


def test_flipping_in_the_view_is_scipy_convolution_and_not_correlation():
    square = binary_image("square")
    correlated = convolution_view(square, LOPSIDED).output
    convolved = convolution_view(square, LOPSIDED, flip=True).output
    np.testing.assert_array_equal(correlated, scipy.signal.correlate2d(square, LOPSIDED, mode="valid"))
    np.testing.assert_array_equal(convolved, scipy.signal.convolve2d(square, LOPSIDED, mode="valid"))
    assert not np.array_equal(correlated, convolved)


def test_typed_kernel_text_gives_the_same_output_as_the_weights():
    square = binary_image("square")
    typed = convolution_view(square, "-1 0 1; -2 0 2; -1 0 1", padding="same")
    given_weights = convolution_view(square, SOBEL_X, padding="same")
    np.testing.assert_array_equal(typed.output, given_weights.output)
    assert typed.caption == given_weights.caption


def test_integer_image_and_kernel_give_an_exact_integer_output():
    cross, laplacian = binary_image("cross"), kernels.PRESETS["Laplacian"]
    frame = convolution_view(cross, laplacian)
    assert np.issubdtype(frame.output.dtype, np.integer)
    expected = scipy.signal.correlate2d(cross, laplacian, mode="valid")
    assert frame.caption.endswith(f"; values {expected.min()} to {expected.max()}")  # no "-2.0"


def test_different_settings_draw_different_pictures():
    square = binary_image("square")
    pictures = {
        convolution_view(square, SOBEL_X).png,
        convolution_view(square, SOBEL_X, padding="full").png,
        convolution_view(square, SOBEL_X, stride=2).png,
        convolution_view(square, SOBEL_X, dilation=2).png,
        convolution_view(square, SOBEL_X, flip=True).png,
        convolution_view(square, kernels.PRESETS["sharpen"]).png,
        convolution_view(binary_image("cross"), SOBEL_X).png,
    }
    assert len(pictures) == 7


def test_a_kernel_that_does_not_fit_gives_a_caption_not_an_exception():
    frame = convolution_view(binary_image("square"), np.ones((5, 5)), dilation=3)
    assert frame.output is None
    assert frame.caption.startswith(
        "⚠ the kernel does not fit: the 5×5 kernel spread out by dilation 3 covers 13×13 pixels, "
        "but the input is only 8×8"
    )
    assert "choose padding same or full" in frame.caption
    assert "(padding valid, stride 1, dilation 3, cross-correlation)" in frame.caption
    assert decode_png(frame.png).ndim == 3  # input and kernel are still drawn
    # The same kernel fits once the input is padded.
    assert convolution_view(binary_image("square"), np.ones((5, 5)), dilation=3, padding="same").output.shape == (8, 8)
    with pytest.raises(ValueError):  # the check agrees with the reference implementation
        conv.correlate2d(binary_image("square"), np.ones((5, 5)), dilation=3)


@pytest.mark.parametrize(
    "kernel, message",
    [
        ("1 0 -1; 2 0", "⚠ every row of the kernel needs the same number of weights"),
        ("one two", "⚠ could not read 'one' in row 1 of the kernel as a number"),
        ("", "⚠ the kernel is empty"),
        (np.array([[1.0, np.nan]]), "⚠ kernel must hold finite numbers"),
    ],
)
def test_a_bad_kernel_gives_a_clear_caption(kernel, message):
    frame = convolution_view(binary_image("square"), kernel)
    assert frame.output is None
    assert frame.caption.startswith(message)


def test_settings_the_reference_rejects_show_its_message():
    frame = convolution_view(binary_image("square"), SOBEL_X, stride=0)
    assert frame.output is None and frame.caption.startswith("⚠ stride must be positive")


def test_view_rejects_an_image_that_is_not_single_channel():
    with pytest.raises(ValueError, match=r"single-channel \(H, W\) image, got shape \(8, 8, 3\)"):
        convolution_view(np.zeros((8, 8, 3)), SOBEL_X)


# ----------------------------------------------------------------------------- the explorer widget


def test_explorer_starts_on_the_square_with_sobel_x():
    explorer = convolution_explorer()
    assert isinstance(explorer, ConvolutionExplorer)
    assert explorer.image_dropdown.value == "square"
    assert explorer.kernel_dropdown.value == DEFAULT_KERNEL
    assert explorer.kernel_text.value == "-1 0 1; -2 0 2; -1 0 1"
    np.testing.assert_array_equal(explorer.output, conv.correlate2d(binary_image("square"), SOBEL_X))
    assert explorer.caption.value.startswith("8×8 input → 6×6 output (padding valid, stride 1, dilation 1")
    assert explorer.picture in explorer.children and explorer.caption in explorer.children
    assert explorer._dom_classes == ("cnn-course-convolution-explorer",)
    assert "cnn-course-picture" in explorer.picture._dom_classes
    assert "cnn-course-caption" in explorer.caption._dom_classes
    # All the images: the binary ones first, then every photo.
    assert [value for _, value in explorer.image_dropdown.options] == [*BINARY_IMAGES, *data.PHOTOS]
    assert list(explorer.kernel_dropdown.options) == [*kernels.PRESETS, "custom"]


@pytest.mark.parametrize(
    "control, value",
    [
        ("padding_buttons", "full"),
        ("stride_slider", 2),
        ("dilation_slider", 2),
        ("flip_checkbox", True),
        ("kernel_dropdown", "sharpen"),
        ("image_dropdown", "diagonal line"),
    ],
)
def test_every_control_changes_picture_caption_and_output(control, value):
    explorer = convolution_explorer(kernel="Sobel y (horizontal edges)")
    before_png, before_caption = explorer.picture.value, explorer.caption.value

    getattr(explorer, control).value = value

    assert explorer.picture.value != before_png
    assert explorer.caption.value != before_caption
    expected = reference(
        binary_image(explorer.image_dropdown.value),
        kernels.PRESETS[explorer.kernel_dropdown.value],
        padding=explorer.padding_buttons.value,
        stride=explorer.stride_slider.value,
        dilation=explorer.dilation_slider.value,
        flip=explorer.flip_checkbox.value,
    )
    np.testing.assert_array_equal(explorer.output, expected)


def test_explorer_on_a_photo_shows_the_photo_in_grayscale():
    explorer = convolution_explorer(source="coins", kernel="box blur", padding="same")
    coins = grayscale_photo("coins")
    np.testing.assert_allclose(explorer.output, conv.correlate2d(coins, kernels.PRESETS["box blur"], padding="same"))
    assert explorer.caption.value.startswith(f"{coins.shape[0]}×{coins.shape[1]} input → ")


def test_typing_weights_switches_to_custom_and_uses_them():
    explorer = convolution_explorer(source="cross")
    explorer.kernel_text.value = "0 1 0; 0 0 0; 0 -1 0"
    assert explorer.kernel_dropdown.value == "custom"
    np.testing.assert_array_equal(
        explorer.output, conv.correlate2d(binary_image("cross"), np.array([[0, 1, 0], [0, 0, 0], [0, -1, 0]]))
    )
    # Choosing a preset again writes its weights into the text box and uses them.
    explorer.kernel_dropdown.value = "Laplacian"
    assert explorer.kernel_text.value == "0 1 0; 1 -4 1; 0 1 0"
    np.testing.assert_array_equal(explorer.output, conv.correlate2d(binary_image("cross"), kernels.PRESETS["Laplacian"]))


def test_bad_typed_weights_show_a_message_until_they_are_fixed():
    explorer = convolution_explorer()
    good_png = explorer.picture.value
    explorer.kernel_text.value = "1 2 3; 4 5"
    assert explorer.output is None
    assert explorer.caption.value.startswith("⚠ every row of the kernel needs the same number of weights")
    assert explorer.picture.value != good_png

    explorer.kernel_text.value = "1 2 3; 4 5 6"
    np.testing.assert_array_equal(explorer.output, conv.correlate2d(binary_image("square"), [[1, 2, 3], [4, 5, 6]]))
    assert explorer.caption.value.startswith("8×8 input → 7×6 output")


def test_numbers_too_large_for_a_float_give_a_caption_not_an_exception():
    # float("1e400") is inf and Fraction("1e400") overflows: both used to escape the observer.
    with pytest.raises(ValueError, match=r"'1e400' in row 2 of the kernel is too large .* use smaller weights"):
        parse_kernel("1 0; 1e400 0")
    explorer = convolution_explorer(source="square")
    explorer.kernel_text.value = "1 0; 1e400 0"
    assert explorer.output is None
    assert explorer.caption.value.startswith("⚠ '1e400' in row 2 of the kernel is too large")
    # Finite weights whose sums overflow: the output would be inf, so say so instead of drawing it.
    explorer.kernel_text.value = "1e308 1e308; 1e308 1e308"
    assert explorer.output is None
    assert explorer.caption.value.startswith("⚠ the output is too large for floating-point numbers")
    explorer.kernel_text.value = "1 1; 1 1"
    np.testing.assert_array_equal(explorer.output, conv.correlate2d(binary_image("square"), np.ones((2, 2))))


def test_settings_the_view_cannot_use_give_a_caption_not_an_exception():
    square = binary_image("square")
    for controls, message in (
        ({"dilation": 0}, "⚠ dilation must be positive, got 0"),
        ({"stride": 1.5}, "⚠ stride must be an int or a pair of ints (rows, cols), got 1.5"),
        ({"padding": "middle"}, "⚠ unknown padding 'middle': use 'valid', 'same' or 'full'"),
        ({"padding": -1}, "⚠ padding must be zero or more, got -1"),
    ):
        frame = convolution_view(square, "1 0; 0 -1", **controls)
        assert frame.output is None and frame.caption == message, controls
    frame = convolution_view(square, "1 0; 0 -1", stride=(1, 2), dilation=(2, 1), padding=(1, 0))
    np.testing.assert_array_equal(
        frame.output, conv.correlate2d(square, [[1, 0], [0, -1]], stride=(1, 2), dilation=(2, 1), padding=(1, 0)))
    assert "(padding (1, 0), stride (1, 2), dilation (2, 1), cross-correlation)" in frame.caption


def test_numbers_in_the_grids_are_readable_or_left_out():
    # Cell numbers are >= 10 pt; a grid too fine for them shows only its colours.
    from cnn_course.widgets import _grids
    from matplotlib.figure import Figure

    def texts_drawn(values):
        fig = Figure(figsize=(10.5, 3.6))
        axes = fig.subplots(1, 3, width_ratios=[1, 0.7, 1])
        fig.subplots_adjust(left=0.01, right=0.97, top=0.86, bottom=0.02, wspace=0.12)
        _grids.draw_grid(axes[2], values, cmap="gray", vmin=0, vmax=1, annotate=True, title="output")
        assert axes[2].title.get_fontsize() >= 10
        return axes[2].texts

    integers = texts_drawn(conv.correlate2d(binary_image("square"), kernels.sobel_x(), padding="full"))
    assert len(integers) == 100 and min(text.get_fontsize() for text in integers) >= 10
    thirds = conv.correlate2d(binary_image("cross"), np.full((3, 3), 1 / 9), padding="full", dilation=2)
    assert thirds.shape == (12, 12) and len(texts_drawn(thirds)) == 0  # "0.111" does not fit a 12×12 grid


def test_explorer_accepts_your_own_image_and_kernel():
    own = np.arange(30).reshape(5, 6)
    explorer = convolution_explorer(own, kernel=LOPSIDED, flip=True)
    assert explorer.image_dropdown.value == "(your image)"
    assert explorer.kernel_dropdown.value == "custom"
    np.testing.assert_array_equal(explorer.output, conv.convolve2d(own, LOPSIDED))
    # Non-integer weights are used exactly, not as their rounded text.
    third = np.full((3, 3), 1 / 3)
    explorer = convolution_explorer(own, kernel=third)
    np.testing.assert_array_equal(explorer.output, conv.correlate2d(own, third))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"source": "kitten"}, "unknown image 'kitten'; choose one of: square"),
        ({"kernel": "sobel"}, "unknown kernel 'sobel'; choose one of: identity"),
        ({"kernel": np.ones((8, 8))}, "kernels up to 7×7, got 8×8"),
        ({"padding": 2}, "padding must be one of valid, same, full in this widget, got 2"),
        ({"stride": 5}, "stride must be an integer from 1 to 4 in this widget, got 5"),
        ({"dilation": 0}, "dilation must be an integer from 1 to 3 in this widget, got 0"),
        ({"image": np.zeros((8, 8, 3))}, r"single-channel \(H, W\) image, got shape \(8, 8, 3\)"),
    ],
)
def test_explorer_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        convolution_explorer(**kwargs)


# ----------------------------------------------------------------------------- sliding_window_step


def test_each_step_shows_the_window_the_products_and_their_sum():
    image = DEFAULT_STEPPER_IMAGE
    full = conv.correlate2d(image, LOPSIDED)
    for step in range(1, 17):
        state = sliding_window_step(image, LOPSIDED, step)
        row, col = divmod(step - 1, 4)  # row by row over the 4×4 output
        assert (state.step, state.n_steps, state.row, state.col) == (step, 16, row, col)
        np.testing.assert_array_equal(state.window, image[row : row + 3, col : col + 3])
        np.testing.assert_array_equal(state.kernel, LOPSIDED)
        np.testing.assert_array_equal(state.products, state.window * LOPSIDED)
        assert state.total == state.products.sum() == full[row, col]
        # Computed cells hold the reference values, the others are still empty.
        assert state.filled.sum() == step and state.filled.ravel()[:step].all()
        np.testing.assert_array_equal(state.output, np.where(state.filled, full, 0))


@pytest.mark.parametrize("flip, reference_function", [(False, conv.correlate2d), (True, conv.convolve2d)])
def test_stepping_through_every_position_reproduces_the_reference(flip, reference_function):
    last = sliding_window_step(DEFAULT_STEPPER_IMAGE, LOPSIDED, 16, flip=flip)
    assert last.filled.all()
    np.testing.assert_array_equal(last.output, reference_function(DEFAULT_STEPPER_IMAGE, LOPSIDED))
    assert np.issubdtype(last.output.dtype, np.integer)


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_stepper_matches_the_reference_on_random_inputs(data):
    height, width = data.draw(st.integers(1, 10)), data.draw(st.integers(1, 10))
    kh, kw = data.draw(st.integers(1, height)), data.draw(st.integers(1, width))
    values = st.integers(-9, 9)
    image = np.array(data.draw(st.lists(values, min_size=height * width, max_size=height * width)))
    kernel = np.array(data.draw(st.lists(values, min_size=kh * kw, max_size=kh * kw)))
    image, kernel = image.reshape(height, width), kernel.reshape(kh, kw)
    flip = data.draw(st.booleans())
    n_steps = (height - kh + 1) * (width - kw + 1)
    last = sliding_window_step(image, kernel, n_steps, flip=flip)
    np.testing.assert_array_equal(last.output, reference(image, kernel, flip=flip))
    np.testing.assert_array_equal(last.kernel, kernel[::-1, ::-1] if flip else kernel)


def test_flipping_rotates_the_kernel_by_180_degrees():
    state = sliding_window_step(DEFAULT_STEPPER_IMAGE, LOPSIDED, 5, flip=True)
    np.testing.assert_array_equal(state.kernel, [[4, 0, 0], [3, -1, 0], [0, 2, 1]])
    np.testing.assert_array_equal(state.products, state.window * state.kernel)


@pytest.mark.parametrize(
    "image, kernel, step, error, message",
    [
        (np.zeros((4, 4)), np.ones((3, 3)), 0, ValueError, "step must be an integer from 1 to 4, got 0"),
        (np.zeros((4, 4)), np.ones((3, 3)), 5, ValueError, "step must be an integer from 1 to 4, got 5"),
        (np.zeros((4, 4)), np.ones((3, 3)), 1.0, ValueError, "step must be an integer"),
        (np.zeros((11, 4)), np.ones((3, 3)), 1, ValueError, "at most 10×10, got 11×4"),
        (np.zeros((2, 4)), np.ones((3, 3)), 1, ValueError, "the 3×3 kernel does not fit in the 2×4 image"),
        (np.zeros(4), np.ones((3, 3)), 1, ValueError, r"image must be a 2-D array \(H, W\), got shape \(4,\)"),
        (np.zeros((4, 4)), np.ones(3), 1, ValueError, r"kernel must be a 2-D array \(kh, kw\)"),
        (np.array([["a"]]), np.ones((1, 1)), 1, TypeError, "image must hold numbers"),
    ],
)
def test_sliding_window_step_rejects_bad_arguments(image, kernel, step, error, message):
    with pytest.raises(error, match=message):
        sliding_window_step(image, kernel, step)


# ----------------------------------------------------------------------------- sliding_window_view


def _evaluate_sum(expression: str) -> float:
    """The caption's "a·b + c·(d) + ..." computed from its own numbers."""
    total = 0.0
    for term in expression.split(" + "):
        value, weight = term.split("·")
        total += float(value) * float(weight.strip("()"))
    return total


@pytest.mark.parametrize("flip", [False, True])
def test_view_caption_writes_out_the_sum_for_the_current_cell(flip):
    frame = sliding_window_view(DEFAULT_STEPPER_IMAGE, LOPSIDED, 7, flip=flip)
    match = STEPPER_CAPTION.fullmatch(frame.caption)
    assert match, frame.caption
    assert (int(match["step"]), int(match["n"]), int(match["row"]), int(match["col"])) == (7, 16, 1, 2)
    assert match["operation"].startswith("convolution" if flip else "cross-correlation")
    assert len(match["expression"].split(" + ")) == 9
    assert _evaluate_sum(match["expression"]) == float(match["total"]) == frame.state.total
    assert frame.state.total == reference(DEFAULT_STEPPER_IMAGE, LOPSIDED, flip=flip)[1, 2]


def test_view_draws_a_different_picture_for_every_step_and_for_the_flip():
    pictures = {sliding_window_view(DEFAULT_STEPPER_IMAGE, SOBEL_X, step).png for step in (1, 2, 16)}
    pictures.add(sliding_window_view(DEFAULT_STEPPER_IMAGE, SOBEL_X, 16, flip=True).png)
    assert len(pictures) == 4


# ----------------------------------------------------------------------------- the stepper widget


def test_stepper_starts_at_the_first_cell_of_sobel_x_on_the_default_image():
    stepper = sliding_window_stepper()
    assert isinstance(stepper, SlidingWindowStepper)
    assert (stepper.step_slider.min, stepper.step_slider.max, stepper.step_slider.value) == (1, 16, 1)
    assert (stepper.play.min, stepper.play.max) == (1, 16)
    assert stepper.flip_button.value is False
    assert stepper.flip_button.description == "flip kernel (true convolution)"
    np.testing.assert_array_equal(stepper.state.kernel, kernels.sobel_x())
    assert stepper.caption.value.startswith("step 1 of 16, cross-correlation: output[0, 0] = ")
    assert stepper._dom_classes == ("cnn-course-sliding-window-stepper",)
    assert "cnn-course-picture" in stepper.picture._dom_classes
    assert "cnn-course-caption" in stepper.caption._dom_classes


def test_moving_the_step_slider_moves_the_window():
    stepper = sliding_window_stepper()
    before_png, before_caption = stepper.picture.value, stepper.caption.value
    stepper.step_slider.value = 6
    assert stepper.picture.value != before_png and stepper.caption.value != before_caption
    assert (stepper.state.row, stepper.state.col) == (1, 1)
    np.testing.assert_array_equal(stepper.state.window, DEFAULT_STEPPER_IMAGE[1:4, 1:4])
    assert stepper.caption.value.startswith("step 6 of 16, cross-correlation: output[1, 1] = ")


def test_play_drives_the_step_slider():
    stepper = sliding_window_stepper()
    stepper.play.value = 9
    assert stepper.step_slider.value == 9 and stepper.state.step == 9
    stepper.step_slider.value = 3
    assert stepper.play.value == 3  # pressing play continues from where the slider is


def test_flip_toggle_switches_between_correlation_and_convolution():
    stepper = sliding_window_stepper(kernel=LOPSIDED)
    stepper.step_slider.value = stepper.step_slider.max
    np.testing.assert_array_equal(stepper.state.output, conv.correlate2d(DEFAULT_STEPPER_IMAGE, LOPSIDED))
    correlation_png = stepper.picture.value

    stepper.flip_button.value = True
    np.testing.assert_array_equal(stepper.state.output, conv.convolve2d(DEFAULT_STEPPER_IMAGE, LOPSIDED))
    np.testing.assert_array_equal(stepper.state.kernel, np.rot90(LOPSIDED, 2))
    assert "convolution (kernel rotated 180°)" in stepper.caption.value
    assert stepper.picture.value != correlation_png

    stepper.flip_button.value = False
    np.testing.assert_array_equal(stepper.state.output, conv.correlate2d(DEFAULT_STEPPER_IMAGE, LOPSIDED))
    assert stepper.picture.value == correlation_png  # the same state draws the same picture


def test_flipping_sobel_x_negates_every_output():
    stepper = sliding_window_stepper(step=7)
    correlation = stepper.state.total
    stepper.flip_button.value = True
    assert stepper.state.total == -correlation != 0


def test_stepper_accepts_your_own_image_and_kernel():
    image = np.arange(20).reshape(4, 5)
    stepper = sliding_window_stepper(image, [[1, -1]], flip=True, step=2)
    assert stepper.step_slider.max == 16 and stepper.state.step == 2
    stepper.step_slider.value = 16
    np.testing.assert_array_equal(stepper.state.output, conv.convolve2d(image, [[1, -1]]))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"step": 17}, "step must be an integer from 1 to 16, got 17"),
        ({"image": np.zeros((12, 12))}, "at most 10×10, got 12×12"),
        ({"kernel": np.ones((7, 7))}, "the 7×7 kernel does not fit in the 6×6 image"),
    ],
)
def test_stepper_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        sliding_window_stepper(**kwargs)
