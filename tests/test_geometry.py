"""One geometry for conv, pooling, receptive fields and the widgets: same rules, same words.

Every public function that takes a size, stride, dilation or padding reads it through
``cnn_course._geometry``, so the same value is accepted (numpy integers), refused (booleans,
floats) and explained in the same words everywhere. These tests pin that wording.
"""

from __future__ import annotations

import numpy as np
import pytest
from cnn_course import _geometry as geometry
from cnn_course.conv import conv2d, correlate2d, output_size, pad2d
from cnn_course.pooling import pool2d
from cnn_course.receptive_field import Layer, conv, input_mask, input_region, pool, receptive_fields
from cnn_course.widgets import convolution_explorer, convolution_view
from cnn_course.widgets.convolution import binary_image
from cnn_course.widgets.receptive_field import receptive_field_explorer

IMAGE = np.arange(64.0).reshape(8, 8)
KERNEL = np.ones((3, 3))

# The one wording, for every function and every argument name.
NOT_AN_INT_OR_PAIR = "{name} must be an int or a pair of ints (rows, cols), got {value!r}"
NOT_POSITIVE = "{name} must be positive, got {value!r}"


@pytest.mark.parametrize(
    "call",
    [
        lambda value: correlate2d(IMAGE, KERNEL, stride=value),
        lambda value: conv2d(IMAGE[..., None], KERNEL[..., None, None], stride=value),
        lambda value: pool2d(IMAGE, 2, stride=value),
        lambda value: conv(3, stride=value),
        lambda value: pool(2, stride=value),
    ],
    ids=["correlate2d", "conv2d", "pool2d", "receptive_field.conv", "receptive_field.pool"],
)
def test_stride_is_read_and_explained_the_same_way_everywhere(call):
    for bad in (1.5, "2", (1, 2, 3), True, np.bool_(True), (1, True)):
        with pytest.raises(TypeError) as caught:
            call(bad)
        assert str(caught.value) == NOT_AN_INT_OR_PAIR.format(name="stride", value=bad)
    for bad, shown in ((0, 0), (np.int64(-1), np.int64(-1)), ((2, 0), (2, 0))):
        with pytest.raises(ValueError) as caught:
            call(bad)
        assert str(caught.value) == NOT_POSITIVE.format(name="stride", value=shown)
    # numpy integers, alone or in a pair (a list, a tuple or an array), are ints.
    for good in (np.int64(2), np.int32(2), (np.int64(2), 2), [2, 2], np.array([2, 2])):
        call(good)


@pytest.mark.parametrize(
    "call",
    [
        lambda value: correlate2d(IMAGE, KERNEL, dilation=value),
        lambda value: conv(3, dilation=value),
        lambda value: convolution_view(binary_image("square"), KERNEL, dilation=value).caption,
    ],
    ids=["correlate2d", "receptive_field.conv", "convolution_view"],
)
def test_dilation_accepts_numpy_integers_everywhere(call):
    results = [call(value) for value in (2, np.int64(2), np.int8(2), (2, 2), (np.int64(2), 2))]
    for result in results[1:]:
        if isinstance(result, np.ndarray):
            np.testing.assert_array_equal(result, results[0])
        else:
            assert result == results[0]


def test_the_convolution_widgets_take_numpy_integers_for_their_sliders():
    plain = convolution_explorer(source="square", stride=2, dilation=2)
    numpy_ints = convolution_explorer(source="square", stride=np.int64(2), dilation=np.int64(2))
    assert numpy_ints.caption.value == plain.caption.value
    assert numpy_ints.dilation_slider.value == 2 and type(numpy_ints.dilation_slider.value) is int
    # A dilation too large for the 8×8 input: the same explanation, whatever the integer type.
    too_far = [convolution_view(binary_image("square"), KERNEL, dilation=d).caption for d in (4, np.int64(4))]
    assert too_far[0] == too_far[1] and too_far[0].startswith("⚠ the kernel does not fit")


def test_dilated_size_and_same_padding_agree_across_modules():
    for k, d in ((1, 1), (3, 1), (3, 2), (5, 3), (2, 4)):
        span = geometry.dilated_size(k, d)
        assert span == (k - 1) * d + 1
        assert Layer("conv", kernel=k, dilation=d).effective_kernel == (span, span)
        assert output_size(20, k, dilation=d) == 20 - span + 1
    for n in range(1, 13):
        for k in range(1, 6):
            for s in range(1, 4):
                before, after = geometry.same_padding(n, k, s)
                out = output_size(n, k, stride=s, padding="same")
                assert out == -(-n // s) == geometry.output_length(n, k, s, before, after)
                assert after - before in (0, 1)  # the odd zero goes after (bottom/right)
                table = receptive_fields([conv(k, stride=s, padding="same")], (n, n))
                assert table[0].output_size == (out, out)
                assert table[0].padding_before == (before, before)


@pytest.mark.parametrize(
    "call",
    [
        lambda word: correlate2d(IMAGE, KERNEL, padding=word),
        lambda word: conv(3, padding=word),
        lambda word: convolution_view(binary_image("square"), KERNEL, padding=word).caption,
        lambda word: convolution_explorer(source="square", padding=word).caption.value,
        lambda word: receptive_field_explorer(photo="camera", stack="c3s2", padding=word).caption.value,
    ],
    ids=["correlate2d", "receptive_field.conv", "convolution_view", "convolution_explorer",
         "receptive_field_explorer"],
)
def test_padding_words_are_read_without_regard_to_case(call):
    results = [call(word) for word in ("same", "SAME", "Same")]
    for result in results[1:]:
        if isinstance(result, np.ndarray):
            np.testing.assert_array_equal(result, results[0])
        else:
            assert result == results[0]


def test_mode_words_are_read_without_regard_to_case():
    np.testing.assert_array_equal(pool2d(IMAGE, 2, mode="MAX"), pool2d(IMAGE, 2, mode="max"))
    np.testing.assert_array_equal(pool2d(IMAGE, 2, mode="Avg"), pool2d(IMAGE, 2, mode="avg"))
    np.testing.assert_array_equal(pad2d(IMAGE, 1, mode="REFLECT"), pad2d(IMAGE, 1, mode="reflect"))
    with pytest.raises(ValueError, match=r"^unknown pooling mode 'mean': use 'max', 'avg' or 'min'$"):
        pool2d(IMAGE, 2, mode="mean")
    with pytest.raises(TypeError, match=r"^pooling mode must be one of 'max', 'avg' or 'min', got 3$"):
        pool2d(IMAGE, 2, mode=3)


def test_one_check_for_single_ints():
    assert geometry.check_int(np.uint8(7), "n", minimum=1) == 7
    with pytest.raises(TypeError, match=r"^k must be an int, got True$"):
        output_size(5, True)
    with pytest.raises(ValueError, match=r"^n must be positive, got 0$"):
        output_size(0, 3)
    with pytest.raises(ValueError, match=r"^padding must be zero or more, got -1$"):
        correlate2d(IMAGE, KERNEL, padding=-1)
    assert output_size(np.int64(28), np.int64(3), stride=np.int64(2)) == 13


def test_input_region_without_an_input_shape_says_what_to_pass():
    for function in (input_region, input_mask):
        with pytest.raises(TypeError, match=r"input_shape is needed .* e\.g\. input_shape=\(28, 28\)"):
            function("c3 c3", 0, 0, None)
    assert input_region("c3", np.int64(1), np.int64(2), (6, 6)) == (slice(1, 4), slice(2, 5))
