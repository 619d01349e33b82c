"""The receptive-field explorer: its plain functions, its view and the widget object (no browser)."""

from __future__ import annotations

import html
import io
import re

import ipywidgets
import numpy as np
import pytest
from cnn_course import data
from cnn_course.receptive_field import (
    STACK_EXAMPLES,
    input_mask,
    input_region,
    parse_layers,
    receptive_fields,
)
from cnn_course.widgets import ReceptiveFieldExplorer, receptive_field_explorer, receptive_field_view
from cnn_course.widgets.receptive_field import (
    CUSTOM_STACK,
    PHOTO_CHOICES,
    PRESETS,
    ReceptiveFieldFrame,
    highlight_receptive_field,
    small_photo,
    syntax_hint_html,
)
from PIL import Image

CAPTION = re.compile(
    r"layer (?P<layer>\d+) of (?P<layers>\d+) \((?P<description>.*?)\): "
    r"receptive field (?P<field_rows>\d+)×(?P<field_cols>\d+), jump (?P<jump>\d+|\(\d+, \d+\)), "
    r"output (?P<out_rows>\d+)×(?P<out_cols>\d+) · unit \((?P<row>\d+), (?P<col>\d+)\) sees "
    r"rows (?P<top>\d+)–(?P<bottom>\d+), columns (?P<left>\d+)–(?P<right>\d+) "
    r"of the (?P<height>\d+)×(?P<width>\d+) input(?P<notes>.*)"
)


def decode_png(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))


def parse_caption(caption: str) -> dict:
    match = CAPTION.fullmatch(caption)
    assert match, f"caption has an unexpected form: {caption!r}"
    return match.groupdict()


@pytest.fixture(scope="module")
def photo():
    return small_photo("astronaut")


# ----------------------------------------------------------------------------- small_photo


def test_small_photo_shrinks_by_block_means_and_keeps_colour():
    original = data.load_photo("chelsea")  # 300 x 451
    small = small_photo(original, max_side=100)  # factor 5
    assert small.shape == (60, 90, 3) and small.dtype == np.uint8
    np.testing.assert_allclose(small[3, 7], original[15:20, 35:40].mean(axis=(0, 1)), atol=0.5)
    assert small_photo("chelsea", max_side=100).shape == (60, 90, 3)


def test_small_photo_makes_grayscale_rgb_and_leaves_small_images_alone():
    gray = data.load_photo("camera")
    small = small_photo(gray)
    assert small.shape == (128, 128, 3)
    assert (small[..., 0] == small[..., 2]).all()
    tiny = np.arange(12, dtype=np.uint8).reshape(3, 4)
    np.testing.assert_array_equal(small_photo(tiny)[..., 1], tiny)
    with pytest.raises(ValueError, match="max_side must be a positive int"):
        small_photo(tiny, max_side=0)


# ----------------------------------------------------------------------------- highlight


def test_highlight_lights_up_exactly_the_pixels_the_unit_depends_on(photo):
    layers = parse_layers("c3d2 c3d2")
    picture, mask = highlight_receptive_field(photo, layers, 20, 30, scale=4)
    np.testing.assert_array_equal(mask, input_mask(layers, 20, 30, photo.shape[:2]))
    assert picture.shape == (photo.shape[0] * 4, photo.shape[1] * 4, 3)

    centres = picture[2::4, 2::4].astype(int)  # one sample per image pixel, away from the outline
    in_field = np.zeros(mask.shape, bool)
    in_field[input_region(layers, 20, 30, photo.shape[:2])] = True
    np.testing.assert_array_equal(centres[mask], photo[mask])
    dimmed = np.round(photo[~in_field] * 0.3)
    assert np.abs(centres[~in_field] - dimmed).max() <= 1
    holes = in_field & ~mask
    assert holes.any()
    assert not np.array_equal(centres[holes], photo[holes])

    # The orange outline runs along the field's top edge.
    rows, cols = input_region(layers, 20, 30, photo.shape[:2])
    top_edge = picture[rows.start * 4, cols.start * 4:cols.stop * 4]
    assert (top_edge == [255, 140, 0]).all()


def test_highlight_rejects_images_it_cannot_draw_on():
    with pytest.raises(ValueError, match=r"RGB uint8 of shape \(H, W, 3\)"):
        highlight_receptive_field(np.zeros((8, 8)), "c3", 0, 0)
    with pytest.raises(ValueError, match="scale must be a positive int"):
        highlight_receptive_field(np.zeros((8, 8, 3), np.uint8), "c3", 0, 0, scale=0)
    with pytest.raises(ValueError, match=r"RGB uint8 of shape \(H, W, 3\)"):
        receptive_field_view(np.zeros((8, 8), np.uint8), "c3")


# ----------------------------------------------------------------------------- view


VIEW_CASES = [
    ("c3 c3 c3", {}),
    ("c3 p2 c3", {"row": 3, "col": 40}),
    ("c3s2same c3same p2", {"padding": "same", "row": 0, "col": 31}),
    ("c3 c3d2 c3d4", {"layer": 2, "row": 5, "col": 100}),
    ("c1s3 c3", {"row": 0, "col": 0}),
    ("c3x1 c1x5s1x2", {}),
    *[(text, {}) for text in PRESETS.values()],
]


@pytest.mark.parametrize(("stack", "options"), VIEW_CASES)
def test_view_caption_and_picture_match_the_geometry(photo, stack, options):
    frame = receptive_field_view(photo, stack, scale=2, **options)
    assert isinstance(frame, ReceptiveFieldFrame)
    numbers = parse_caption(frame.caption)

    all_layers = parse_layers(stack, padding=options.get("padding", "valid"))
    layer = options.get("layer", len(all_layers))
    layers = all_layers[:layer]
    last = receptive_fields(layers, photo.shape[:2])[-1]
    out_rows, out_cols = last.output_size
    row, col = options.get("row", out_rows // 2), options.get("col", out_cols // 2)
    rows, cols = input_region(layers, row, col, photo.shape[:2])
    jump = str(last.jump[0]) if last.jump[0] == last.jump[1] else f"({last.jump[0]}, {last.jump[1]})"

    assert (int(numbers["layer"]), int(numbers["layers"])) == (layer, len(all_layers))
    assert numbers["description"] == last.layer.describe()
    assert (int(numbers["field_rows"]), int(numbers["field_cols"])) == last.receptive_field
    assert numbers["jump"] == jump
    assert (int(numbers["out_rows"]), int(numbers["out_cols"])) == last.output_size
    assert (int(numbers["row"]), int(numbers["col"])) == (row, col)
    assert (int(numbers["top"]), int(numbers["bottom"]) + 1) == (rows.start, rows.stop)
    assert (int(numbers["left"]), int(numbers["right"]) + 1) == (cols.start, cols.stop)
    assert (int(numbers["height"]), int(numbers["width"])) == photo.shape[:2]

    mask = input_mask(layers, row, col, photo.shape[:2])
    np.testing.assert_array_equal(frame.mask, mask)
    picture, _ = highlight_receptive_field(photo, layers, row, col, scale=2)
    np.testing.assert_array_equal(decode_png(frame.png), picture)
    field_pixels = (rows.stop - rows.start) * (cols.stop - cols.start)
    if mask.sum() < field_pixels:
        assert f"it depends on {mask.sum()} of those {field_pixels} pixels" in numbers["notes"]
    else:
        assert "depends on" not in numbers["notes"]
    (top, bottom), (left, right) = last.field_box(row, col)
    clipped = top < 0 or left < 0 or bottom > photo.shape[0] or right > photo.shape[1]
    assert ("reaches past the border" in numbers["notes"]) == clipped


def test_view_differs_between_units_and_stacks(photo):
    pictures = {
        receptive_field_view(photo, "c3 c3", row=0, col=0).png,
        receptive_field_view(photo, "c3 c3", row=50, col=0).png,
        receptive_field_view(photo, "c3 c3 c3", row=50, col=0).png,
    }
    assert len(pictures) == 3


@pytest.mark.parametrize(
    ("stack", "options", "message"),
    [
        ("c3 zz", {}, "cannot read layer 2 'zz'"),
        ("", {}, "the stack is empty"),
        ("c3 " * 70, {}, r"layer 64 \(conv 3×3\) gets a 2×2 input, too small"),
        ("c3 c3", {"layer": 3}, "layer must be 1..2 for this stack, got 3"),
        ("c3 c3", {"row": 500}, r"out_row must be in 0..123"),
    ],
)
def test_view_explains_a_bad_stack_in_the_caption_instead_of_raising(photo, stack, options, message):
    frame = receptive_field_view(photo, stack, scale=2, **options)
    assert frame.caption.startswith("⚠ ")
    assert re.search(message, frame.caption), frame.caption
    assert frame.mask is None and frame.table is None
    np.testing.assert_array_equal(decode_png(frame.png), np.repeat(np.repeat(photo, 2, axis=0), 2, axis=1))


def test_all_presets_fit_every_photo():
    for name in PHOTO_CHOICES:
        image = small_photo(name)
        for text in PRESETS.values():
            assert not receptive_field_view(image, text, scale=1).caption.startswith("⚠"), (name, text)


# ----------------------------------------------------------------------------- widget


def test_widget_shows_the_view_of_its_controls():
    explorer = receptive_field_explorer(photo="camera", stack="c3 p2 c3")
    assert isinstance(explorer, ReceptiveFieldExplorer)
    assert explorer.preset_dropdown.value == "3×3, pool 2, 3×3"
    assert (explorer.layer_slider.value, explorer.layer_slider.max) == (3, 3)
    image = small_photo("camera")
    out_rows, out_cols = receptive_fields("c3 p2 c3", image.shape[:2])[-1].output_size
    assert (explorer.row_slider.max, explorer.col_slider.max) == (out_rows - 1, out_cols - 1)
    expected = receptive_field_view(image, "c3 p2 c3", row=out_rows // 2, col=out_cols // 2)
    assert explorer.caption.value == expected.caption
    assert explorer.picture.value == expected.png
    assert "cnn-course-receptive-field" in explorer._dom_classes
    assert "cnn-course-picture" in explorer.picture._dom_classes
    assert "cnn-course-caption" in explorer.caption._dom_classes


def test_widget_controls_change_the_picture_and_the_slider_ranges():
    explorer = receptive_field_explorer(photo="camera", stack="c3 c3")
    seen = {explorer.picture.value}

    explorer.row_slider.value = 0
    assert parse_caption(explorer.caption.value)["row"] == "0"
    seen.add(explorer.picture.value)

    explorer.preset_dropdown.value = "ResNet stem"
    assert explorer.stack_text.value == "c7s2 p3s2"
    numbers = parse_caption(explorer.caption.value)
    assert (numbers["field_rows"], numbers["jump"]) == ("11", "4")
    assert explorer.row_slider.max == int(numbers["out_rows"]) - 1
    seen.add(explorer.picture.value)

    explorer.layer_slider.value = 1
    numbers = parse_caption(explorer.caption.value)
    assert (numbers["layer"], numbers["field_rows"], numbers["jump"]) == ("1", "7", "2")
    assert explorer.row_slider.max == int(numbers["out_rows"]) - 1
    seen.add(explorer.picture.value)

    explorer.padding_dropdown.value = "same"
    assert parse_caption(explorer.caption.value)["out_rows"] == "64"  # ceil(128 / 2)
    seen.add(explorer.picture.value)

    explorer.photo_dropdown.value = "astronaut"
    seen.add(explorer.picture.value)
    assert len(seen) == 6

    explorer.stack_text.value = "c3 c3d2"
    assert explorer.preset_dropdown.value == CUSTOM_STACK  # no preset is this stack
    assert (explorer.layer_slider.value, explorer.layer_slider.max) == (2, 2)


def test_preset_dropdown_never_goes_blank():
    # A typed stack that is no preset shows "(your own stack)", not an empty dropdown; a
    # preset typed by hand (other spacing or case) is recognised; choosing "(your own
    # stack)" keeps what was typed.
    explorer = receptive_field_explorer(photo="camera", stack="c5 p2")
    assert explorer.preset_dropdown.value == CUSTOM_STACK
    assert explorer.preset_dropdown.value in explorer.preset_dropdown.options
    explorer.stack_text.value = "  C3   C3 "
    assert explorer.preset_dropdown.value == "two 3×3 convs"
    explorer.stack_text.value = "c3 c3 c3 c3"
    assert explorer.preset_dropdown.value == CUSTOM_STACK
    explorer.preset_dropdown.value = "one 7×7 conv"
    assert explorer.stack_text.value == "c7"
    caption = explorer.caption.value
    explorer.preset_dropdown.value = CUSTOM_STACK  # nothing to fill in: the stack stays
    assert explorer.stack_text.value == "c7" and explorer.caption.value == caption


def test_syntax_hint_is_short_wrapping_html_with_every_rule():
    explorer = receptive_field_explorer(photo="camera")
    hint = explorer.syntax_hint
    assert "cnn-course-hint" in hint._dom_classes and hint.layout.max_width
    assert hint.value == syntax_hint_html()
    for text, meaning in STACK_EXAMPLES:
        assert f"<code>{text}</code> {html.escape(meaning)}" in hint.value
        # Every example in the hint is a stack the explorer reads.
        assert parse_layers(text)
    # The hint's own example stack is read as it says.
    assert [layer.describe() for layer in parse_layers("c3 c3 p2 c3d2")][-1] == "conv 3×3 dilation 2"


def test_long_captions_wrap_instead_of_being_cut_off():
    explorer = receptive_field_explorer(photo="coins", stack="c3 q9")
    assert len(explorer.caption.value) > 200  # the error names the whole notation
    style = explorer.children[0]
    assert style.layout.display == "none"
    assert ".cnn-course-caption" in style.value and "white-space: normal" in style.value
    assert ".cnn-course-hint" in style.value
    # Rows of controls wider than the notebook continue on the next line.
    rows = [child for child in explorer.children if isinstance(child, ipywidgets.HBox)]
    assert len(rows) == 2 and all(row.layout.flex_flow == "row wrap" for row in rows)


def test_explorer_accepts_padding_in_any_case():
    explorer = receptive_field_explorer(photo="camera", stack="c3s2", padding="SAME")
    assert explorer.padding_dropdown.value == "same"
    assert parse_caption(explorer.caption.value)["out_rows"] == "64"


def test_widget_shows_a_bad_stack_in_the_caption_and_recovers():
    explorer = receptive_field_explorer(photo="coins", stack="c3 c3")
    explorer.stack_text.value = "c3 k9"
    assert explorer.caption.value.startswith("⚠ cannot read layer 2 'k9'")
    explorer.stack_text.value = "c5"
    assert parse_caption(explorer.caption.value)["field_rows"] == "5"


def test_widget_takes_your_own_image():
    image = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    explorer = receptive_field_explorer(image, stack="c3")
    assert explorer.photo_dropdown.value == "(your image)"
    assert parse_caption(explorer.caption.value)["height"] == "40"
    with pytest.raises(ValueError, match="unknown photo"):
        receptive_field_explorer(photo="dog")
    with pytest.raises(ValueError, match="padding must be 'valid' or 'same'"):
        receptive_field_explorer(padding="full")
