"""Week 7's data: MNIST digit canvases with their true boxes, and the nuclei image cut into regions
that never overlap. Checked against MNIST and the nuclei files themselves, independently of the loaders."""

from __future__ import annotations

import numpy as np
import pytest
from cnn_course import data
from cnn_course.data import _ink_box
from skimage.transform import resize

# ----------------------------------------------------------------------------- digit canvases


@pytest.fixture(scope="module")
def mnist():
    return data.load_mnist(verbose=False)


@pytest.fixture(scope="module")
def canvases():
    return {split: data.load_digit_canvases(120, split=split, seed=1, verbose=False)
            for split in data.CANVAS_SPLITS}


def source_ink(digit):
    """The digit cut tight around its nonzero pixels, found here with a loop (not the loader's code)."""
    rows = [r for r in range(digit.shape[0]) if digit[r].max() > 0]
    cols = [c for c in range(digit.shape[1]) if digit[:, c].max() > 0]
    return digit[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def boxes_share_a_pixel(a, b):
    # the boxes' pixel sets, as sets of (row, col), intersect
    pixels_a = {(r, c) for r in range(a[1], a[3]) for c in range(a[0], a[2])}
    return any((r, c) in pixels_a for r in range(b[1], b[3]) for c in range(b[0], b[2]))


def test_ink_box_by_hand():
    # ink at row 1, column 2 and row 3, column 4 of a 5×6 image: columns 2..4, rows 1..3,
    # so (x1, y1, x2, y2) = (2, 1, 5, 4) with x2 and y2 one past the last
    image = np.zeros((5, 6), np.uint8)
    image[1, 2] = image[3, 4] = 7
    assert _ink_box(image) == (2, 1, 5, 4)


def test_shapes_boxes_inside_and_counts(canvases):
    for split, result in canvases.items():
        assert result.images.shape == (120, 64, 64, 1) and result.images.dtype == np.uint8, split
        assert len(result.boxes) == len(result.classes) == len(result.sources) == 120
        counts = [len(boxes) for boxes in result.boxes]
        assert set(counts) == {1, 2, 3}  # digits_per_canvas=(1, 3): each count occurs in 120 canvases
        for boxes, classes, sources in zip(result.boxes, result.classes, result.sources, strict=True):
            assert boxes.shape == (len(classes), 4) and boxes.dtype == np.int64
            assert classes.shape == sources.shape == (len(boxes),)
            x1, y1, x2, y2 = boxes.T
            assert (0 <= x1).all() and (x1 < x2).all() and (x2 <= 64).all()
            assert (0 <= y1).all() and (y1 < y2).all() and (y2 <= 64).all()


def test_boxes_are_tight_on_the_ink_and_never_overlap(canvases):
    for result in canvases.values():
        for image, boxes in zip(result.images[..., 0], result.boxes, strict=True):
            outside = np.ones(image.shape, bool)
            for x1, y1, x2, y2 in boxes:
                crop = image[y1:y2, x1:x2]
                # ink on every edge row and column of the box: it cannot shrink
                assert crop[0].any() and crop[-1].any() and crop[:, 0].any() and crop[:, -1].any()
                outside[y1:y2, x1:x2] = False
            assert not image[outside].any()  # nothing but the digits on the canvas
            for i in range(len(boxes)):
                for j in range(i):
                    assert not boxes_share_a_pixel(boxes[i], boxes[j])


def test_classes_and_crops_match_the_source_digits(canvases, mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    for split, result in canvases.items():
        x, y = (x_test, y_test) if split == "test" else (x_train, y_train)
        for image, boxes, classes, sources in zip(result.images[..., 0], result.boxes, result.classes,
                                                  result.sources, strict=True):
            np.testing.assert_array_equal(classes, y[sources])
            inks = [source_ink(x[source]).astype(float) for source in sources]
            for (x1, y1, x2, y2), own in zip(boxes, range(len(boxes)), strict=True):
                crop = image[y1:y2, x1:x2].astype(float)
                # the box's size is the source ink's scaled by 0.75-1.5 (±2 pixels of rounding and trimming)
                height, width = inks[own].shape
                assert np.floor(0.75 * height) - 2 <= y2 - y1 <= np.ceil(1.5 * height)
                assert np.floor(0.75 * width) - 2 <= x2 - x1 <= np.ceil(1.5 * width)
                # resized back with scikit-image (not the loader's PIL), the crop resembles its own
                # source digit (measured: correlation >= 0.90 over 300 canvases) more than the others
                def similarity(ink, crop=crop):
                    back = resize(crop, ink.shape, order=1, anti_aliasing=True)
                    return -np.abs(back / max(back.max(), 1) - ink / ink.max()).mean()
                scores = [similarity(ink) for ink in inks]
                assert int(np.argmax(scores)) == own
                if min(height, width) > 1:
                    back = resize(crop, (height, width), order=1, anti_aliasing=True)
                    assert np.corrcoef(back.ravel(), inks[own].ravel())[0, 1] > 0.85


def test_unit_scale_pastes_the_exact_digit(mnist):
    # At scale 1 nothing is resized: each box holds its source digit's ink pixel for pixel.
    (x_train, _), _ = mnist
    result = data.load_digit_canvases(20, canvas_size=(40, 90), digits_per_canvas=2, scale_range=1.0,
                                      split="validation", seed=5, verbose=False)
    assert result.images.shape == (20, 40, 90, 1)
    for image, boxes, sources in zip(result.images[..., 0], result.boxes, result.sources, strict=True):
        assert len(boxes) == 2
        for (x1, y1, x2, y2), source in zip(boxes, sources, strict=True):
            np.testing.assert_array_equal(image[y1:y2, x1:x2], source_ink(x_train[source]))


def test_splits_use_disjoint_digits(canvases, mnist):
    # The course's split: the last 10 % of MNIST's 60,000 training images validate.
    sources = {split: np.concatenate(result.sources) for split, result in canvases.items()}
    assert (sources["train"] < 54_000).all() and (sources["train"] >= 0).all()
    assert (sources["validation"] >= 54_000).all() and (sources["validation"] < 60_000).all()
    assert (sources["test"] >= 0).all() and (sources["test"] < 10_000).all()
    # no digit is used twice within a call while its part lasts
    for split, used in sources.items():
        assert len(np.unique(used)) == len(used), split


def test_same_seed_same_canvases_other_seed_others(canvases):
    again = data.load_digit_canvases(120, split="train", seed=1, verbose=False)
    np.testing.assert_array_equal(again.images, canvases["train"].images)
    for a, b in zip(again.boxes, canvases["train"].boxes, strict=True):
        np.testing.assert_array_equal(a, b)
    other = data.load_digit_canvases(120, split="train", seed=2, verbose=False)
    assert not np.array_equal(other.images, again.images)


def test_reuses_digits_only_after_the_part_is_used_up(monkeypatch):
    # A stand-in MNIST of 20 training digits (the last 2 validate) shows the rounds:
    # 6 canvases of 2 validation digits each take both digits three times, never one twice in a round.
    digits = np.zeros((20, 28, 28), np.uint8)
    digits[:, 10:18, 12:16] = 200
    labels = np.arange(20, dtype=np.uint8) % 10
    fake = ((digits, labels), (digits[:10], labels[:10]))
    monkeypatch.setattr(data, "load_mnist", lambda verbose=True: fake)
    result = data.load_digit_canvases(6, canvas_size=40, digits_per_canvas=2, scale_range=1.0,
                                      split="validation", verbose=False)
    for sources in result.sources:
        assert sorted(sources.tolist()) == [18, 19]


@pytest.mark.parametrize(("kwargs", "error", "words"), [
    ({"n": 0}, ValueError, "n must be positive"),
    ({"n": 2.5}, TypeError, "n must be an int"),
    ({"split": "val"}, ValueError, "unknown split 'val': use 'train', 'validation' or 'test'"),
    ({"digits_per_canvas": (3, 1)}, ValueError, r"0 <= min <= max"),
    ({"digits_per_canvas": (0, 0)}, ValueError, r"max >= 1"),
    ({"scale_range": (2.0, 1.0)}, ValueError, r"0 < low <= high"),
    ({"scale_range": (0, 1)}, ValueError, r"0 < low <= high"),
    ({"scale_range": "big"}, TypeError, "scale_range must be a number or a pair"),
    ({"canvas_size": 32, "scale_range": (1, 2)}, ValueError, "up to 56 pixels tall, larger than the 32×32 canvas"),
    ({"canvas_size": 0}, ValueError, "canvas_size must be positive"),
    ({"seed": -1}, ValueError, "seed must be zero or more"),
])
def test_bad_arguments_give_clear_errors(kwargs, error, words):
    arguments = {"n": 2, **kwargs}
    with pytest.raises(error, match=words):
        data.load_digit_canvases(arguments.pop("n"), verbose=False, **arguments)


def test_too_many_digits_for_the_canvas():
    with pytest.raises(ValueError, match="without overlap .* use a larger canvas_size"):
        data.load_digit_canvases(1, canvas_size=42, digits_per_canvas=9, scale_range=1.5, verbose=False)


# ----------------------------------------------------------------------------- nuclei regions

# Counted once from the instance mask with a separate script (labels with a pixel in each
# column range, np.unique): 73 nuclei in columns 0-255, 34 in 256-383, 30 in 384-511.
DEFAULT_NUCLEI_COUNTS = {"train": 73, "validation": 34, "test": 30}


@pytest.fixture(scope="module")
def nuclei():
    return data.load_nuclei(verbose=False)


@pytest.fixture(scope="module")
def regions():
    return data.nuclei_regions(40, 64, seed=3, verbose=False)


def test_regions_never_overlap_and_tile_the_image(regions, nuclei):
    image, labels = nuclei
    columns = regions.columns
    assert columns == {"train": (0, 256), "validation": (256, 384), "test": (384, 512)}
    covered = np.zeros(512, int)
    for start, stop in columns.values():
        covered[start:stop] += 1
    assert (covered == 1).all()  # every column in exactly one region
    np.testing.assert_array_equal(np.concatenate([regions.labels[name] for name in columns], axis=1), labels)
    mask = np.concatenate([regions.masks[name][0, ..., 0] for name in columns], axis=1)
    np.testing.assert_array_equal(mask, (labels > 0).astype(np.uint8))
    for name, (start, stop) in columns.items():
        assert regions.images[name].shape == (1, 512, stop - start, 1)
        assert regions.images[name].dtype == np.float32 and regions.masks[name].dtype == np.uint8


def test_scaling_uses_the_training_region_only(regions, nuclei):
    image, _ = nuclei
    low, high = np.percentile(image[:, :256].astype(np.float64), [1, 99.8])
    whole = np.concatenate([regions.images[name][0, ..., 0] for name in regions.columns], axis=1)
    np.testing.assert_allclose(whole, np.clip((image - low) / (high - low), 0, 1), atol=1e-6)


def test_nuclei_counts_are_consistent(regions, nuclei):
    _, labels = nuclei
    assert regions.nuclei == DEFAULT_NUCLEI_COUNTS
    ids = {name: set(np.unique(part[part > 0]).tolist()) for name, part in regions.labels.items()}
    assert {name: len(found) for name, found in ids.items()} == regions.nuclei
    assert set().union(*ids.values()) == set(np.unique(labels[labels > 0]).tolist())
    assert len(set().union(*ids.values())) == 125
    # a nucleus cut by an edge counts in both regions: 137 = 125 + the 12 cut ones
    cut = sum(len(ids[a] & ids[b]) for a, b in (("train", "validation"), ("validation", "test"), ("train", "test")))
    assert sum(regions.nuclei.values()) == 125 + cut
    # ... and its pixels are split, never shared: per nucleus the regions' pixels add up
    total = np.bincount(labels.ravel())
    parts = sum(np.bincount(part.ravel(), minlength=len(total)) for part in regions.labels.values())
    np.testing.assert_array_equal(parts, total)


def test_crops_stay_inside_the_training_region(regions):
    assert regions.crop_images.shape == regions.crop_masks.shape == (40, 64, 64, 1)
    train_image, train_mask = regions.images["train"][0], regions.masks["train"][0]
    for (row, col), crop, mask in zip(regions.crop_corners, regions.crop_images, regions.crop_masks, strict=True):
        assert 0 <= row <= 512 - 64 and 0 <= col and col + 64 <= 256
        np.testing.assert_array_equal(crop, train_image[row:row + 64, col:col + 64])
        np.testing.assert_array_equal(mask, train_mask[row:row + 64, col:col + 64])
    assert regions.crop_masks.mean() > 0.05  # real nuclei in the crops


def test_regions_are_reproducible_and_columns_move():
    a = data.nuclei_regions(5, 32, seed=7, verbose=False)
    b = data.nuclei_regions(5, 32, seed=7, verbose=False)
    c = data.nuclei_regions(5, 32, seed=8, verbose=False)
    np.testing.assert_array_equal(a.crop_images, b.crop_images)
    np.testing.assert_array_equal(a.crop_corners, b.crop_corners)
    assert not np.array_equal(a.crop_corners, c.crop_corners)
    moved = data.nuclei_regions(5, 32, columns=(320, 416), verbose=False)
    assert moved.columns == {"train": (0, 320), "validation": (320, 416), "test": (416, 512)}
    assert moved.images["test"].shape == (1, 512, 96, 1)
    assert (moved.crop_corners[:, 1] + 32 <= 320).all()


def test_nuclei_segmentation_set_is_unchanged():
    # week 1's loader still cuts anywhere in the image, scaled by the whole image's percentiles
    images, masks = data.nuclei_segmentation_set(4, 64, seed=0, verbose=False)
    assert images.shape == masks.shape == (4, 64, 64, 1)
    assert images.dtype == np.float32 and masks.dtype == np.uint8


@pytest.mark.parametrize(("kwargs", "error", "words"), [
    ({"crop_size": 300}, ValueError, "wider than the training region .* at most 256"),
    ({"crop_size": 4}, ValueError, "crop_size must be at least 8"),
    ({"n_crops": 0}, ValueError, "n_crops must be positive"),
    ({"columns": (300, 200)}, ValueError, r"0 < a < b < 512"),
    ({"columns": (100, 512)}, ValueError, r"0 < a < b < 512"),
    ({"columns": 5}, ValueError, r"0 < a < b < 512"),
    ({"columns": (1.5, 2)}, TypeError, "columns"),
])
def test_nuclei_regions_bad_arguments(kwargs, error, words):
    with pytest.raises(error, match=words):
        data.nuclei_regions(verbose=False, **kwargs)
