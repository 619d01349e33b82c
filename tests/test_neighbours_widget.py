"""Nearest neighbours in feature space and the nearest-neighbour explorer widget (no browser)."""

from __future__ import annotations

import io
import math
import re
import time

import numpy as np
import pytest
from cnn_course.widgets import NeighbourExplorer, nearest_neighbours, neighbour_explorer, neighbours_view
from cnn_course.widgets.neighbours import DIFFERENT_COLOUR, QUERY_COLOUR
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image
from scipy.spatial.distance import cdist

FASHION = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"]


def decode_png(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def pixels_of_colour(picture: np.ndarray, colour: str, tolerance: int = 12) -> int:
    rgb = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])
    return int(np.sum(np.all(np.abs(picture.astype(int) - rgb) <= tolerance, axis=-1)))


def brute_force(query, gallery, k, metric="euclidean", exclude=()):
    """The k nearest rows by a plain Python loop: every distance by its formula, sorted by (distance, row)."""
    found = []
    for row, vector in enumerate(gallery):
        if row in exclude:
            continue
        if metric == "euclidean":
            distance = math.sqrt(sum((float(a) - float(b)) ** 2 for a, b in zip(vector, query, strict=True)))
        else:
            dot = sum(float(a) * float(b) for a, b in zip(vector, query, strict=True))
            norms = math.sqrt(sum(float(a) ** 2 for a in vector)) * math.sqrt(sum(float(b) ** 2 for b in query))
            distance = 1 - dot / norms
        found.append((distance, row))
    found.sort()
    return [row for _, row in found[:k]], [distance for distance, _ in found[:k]]


# ------------------------------------------------------------------ nearest_neighbours


def test_hand_worked_euclidean_example_with_a_tie():
    # A 3-4-5 triangle: from the origin, (3, 4) and (0, 5) are both 5 away (a tie, broken by row),
    # (6, 8) is 10 away and the origin itself 0.
    gallery = [[3, 4], [0, 0], [6, 8], [0, 5]]
    indices, distances = nearest_neighbours([0, 0], gallery, k=3)
    assert indices.tolist() == [1, 0, 3]
    assert distances.tolist() == [0.0, 5.0, 5.0]
    assert indices.dtype == np.int64 and distances.dtype == np.float64
    # Leaving out the query itself (row 1), as when the query is a gallery image.
    assert nearest_neighbours([0, 0], gallery, k=3, exclude=[1])[0].tolist() == [0, 3, 2]


def test_hand_worked_cosine_example():
    # From the direction (1, 0): (2, 0) is the same direction (0), (1, 1) is 45° away
    # (1 - cos 45° = 1 - 1/√2), (0, 1) is at right angles (1), (-1, 0) is opposite (2).
    gallery = [[1, 1], [0, 1], [-1, 0], [2, 0]]
    indices, distances = nearest_neighbours([1, 0], gallery, k=4, metric="cosine")
    assert indices.tolist() == [3, 0, 1, 2]
    np.testing.assert_allclose(distances, [0, 1 - 1 / math.sqrt(2), 1, 2], atol=1e-15)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), n=st.integers(1, 30), d=st.integers(1, 6))
def test_integer_embeddings_match_a_brute_force_loop_exactly_ties_included(data, n, d):
    # Small whole numbers give exact squared distances and many ties: the order must be
    # (distance, row) exactly as the loop sorts it.
    gallery = data.draw(hnp.arrays(np.int64, (n, d), elements=st.integers(-3, 3)))
    query = data.draw(hnp.arrays(np.int64, (d,), elements=st.integers(-3, 3)))
    k = data.draw(st.integers(1, n))
    indices, distances = nearest_neighbours(query, gallery, k)
    expected_rows, expected_distances = brute_force(query, gallery, k)
    assert indices.tolist() == expected_rows
    assert distances.tolist() == expected_distances


@settings(max_examples=60, deadline=None)
@given(data=st.data(), n=st.integers(1, 25), d=st.integers(1, 8), metric=st.sampled_from(["euclidean", "cosine"]))
def test_float_embeddings_agree_with_scipy_cdist_and_the_loop(data, n, d, metric):
    values = st.floats(-10, 10, allow_nan=False, allow_infinity=False)
    gallery = data.draw(hnp.arrays(np.float64, (n, d), elements=values))
    query = data.draw(hnp.arrays(np.float64, (d,), elements=values))
    if metric == "cosine":  # an all-zero vector has no direction (tested below); keep directions well defined
        gallery[np.linalg.norm(gallery, axis=1) < 1e-3, 0] = 1.0
        if np.linalg.norm(query) < 1e-3:
            query[0] = 1.0
    k = data.draw(st.integers(1, n))
    excluded = data.draw(st.lists(st.integers(0, n - 1), max_size=n - k, unique=True))
    indices, distances = nearest_neighbours(query, gallery, k, metric=metric, exclude=excluded)

    reference = cdist(query[None, :], gallery, metric=metric)[0]
    assert len(indices) == k and len(set(indices.tolist())) == k
    assert not set(indices.tolist()) & set(excluded)
    np.testing.assert_allclose(distances, reference[indices], rtol=1e-9, atol=1e-9)
    assert np.all(np.diff(distances) >= 0)
    # They are the k nearest: nothing left out (and not excluded) is nearer than the farthest returned.
    others = np.setdiff1d(np.arange(n), np.concatenate([indices, excluded]).astype(int))
    if others.size:
        assert reference[others].min() >= distances[-1] - 1e-9
    # The same distances as the loop's, in the same order (up to round-off).
    _, loop_distances = brute_force(query, gallery, k, metric, set(excluded))
    np.testing.assert_allclose(distances, loop_distances, rtol=1e-9, atol=1e-9)


def test_equal_rows_are_returned_in_row_order():
    rng = np.random.default_rng(0)
    row = rng.normal(size=64)
    gallery = np.stack([row + 5, row, rng.normal(size=64), row, row])
    for metric in ("euclidean", "cosine"):
        indices, distances = nearest_neighbours(row + 0.1, gallery, 4, metric=metric)
        assert indices[:3].tolist() == [1, 3, 4], metric
        assert distances[0] == distances[1] == distances[2]


@pytest.mark.parametrize(("arguments", "error", "message"), [
    (([0, 0], [[1, 1]], 0), ValueError, r"k must be between 1 and 1 \(the 1 rows of embeddings\), got 0"),
    (([0, 0], [[1, 1], [2, 2]], 3), ValueError, r"k must be between 1 and 2 .*got 3"),
    (([0, 0], [[1, 1]], True), TypeError, r"k must be a whole number, got True"),
    (([0, 0], [[1, 1]], 1.0), TypeError, r"k must be a whole number, got 1.0 \(float\)"),
    (([0, 0, 0], [[1, 1]], 1), ValueError, r"query_embedding must be one vector of 2 features.*got shape \(3,\)"),
    (([[0, 0]], [[1, 1]], 1), ValueError, r"one vector of 2 features.*got shape \(1, 2\)"),
    (([0, 0], [1, 1], 1), ValueError, r"embeddings must be a 2-D array .*got shape \(2,\)"),
    (([0, 0], [[1, np.nan]], 1), ValueError, r"embeddings must hold finite numbers"),
    (([0, np.inf], [[1, 1]], 1), ValueError, r"query_embedding must hold finite numbers"),
    (([0, 0], [["a", "b"]], 1), TypeError, r"embeddings must hold integer or float numbers"),
])
def test_bad_arguments_say_what_was_expected_and_what_was_given(arguments, error, message):
    with pytest.raises(error, match=message):
        nearest_neighbours(*arguments)


def test_unknown_metric_lists_the_choices():
    with pytest.raises(ValueError, match=r"unknown metric 'manhattan'; choose one of: euclidean, cosine"):
        nearest_neighbours([0, 0], [[1, 1]], 1, metric="manhattan")


def test_exclude_is_checked_and_counts_against_k():
    gallery = [[0], [1], [2]]
    with pytest.raises(ValueError, match=r"k must be between 1 and 2 \(the 3 rows of embeddings minus 1 excluded\)"):
        nearest_neighbours([0], gallery, 3, exclude=1)
    with pytest.raises(ValueError, match=r"exclude must hold row numbers of embeddings, 0..2, got \[3\]"):
        nearest_neighbours([0], gallery, 1, exclude=[3])
    with pytest.raises(TypeError, match=r"exclude must be a row number or a list of row numbers"):
        nearest_neighbours([0], gallery, 1, exclude=[0.5])


def test_cosine_of_an_all_zero_vector_is_refused_with_a_way_out():
    with pytest.raises(ValueError, match=r"query's embedding is all zeros; use metric='euclidean'"):
        nearest_neighbours([0, 0], [[1, 1]], 1, metric="cosine")
    with pytest.raises(ValueError, match=r"embedding of gallery image 2 is all zeros"):
        nearest_neighbours([1, 0], [[1, 1], [0, 1], [0, 0]], 1, metric="cosine")
    # An excluded all-zero row is never compared, so it does not matter.
    assert nearest_neighbours([1, 0], [[1, 1], [0, 1], [0, 0]], 1, metric="cosine", exclude=2)[0].tolist() == [0]


# ------------------------------------------------------------------------------ view


@pytest.fixture(scope="module")
def small_set():
    """Tiny labelled images with 2-D embeddings laid out by hand.

    Query 0 sits at (0, 0) with label 7 (sneaker). The gallery holds, at distances 1, 2, 3,
    4 and 5 along the x axis, images labelled sneaker, sneaker, sandal, sneaker, sneaker,
    and far away at (0, 100) a bag.
    """
    rng = np.random.default_rng(1)
    gallery_embeddings = np.array([[3, 0], [1, 0], [100, 0], [2, 0], [5, 0], [4, 0], [0, 100]], float)
    gallery_labels = np.array([5, 7, 8, 7, 7, 7, 8])
    query_embeddings = np.array([[0, 0], [99, 0], [0, 1]], float)
    query_labels = np.array([7, 8, 5])
    gallery_images = (rng.random((7, 12, 12)) * 255).astype(np.uint8)
    query_images = rng.random((3, 12, 12))
    return query_images, query_embeddings, gallery_images, gallery_embeddings, (query_labels, gallery_labels)


def test_caption_counts_the_neighbours_that_share_the_querys_label(small_set):
    queries, query_embeddings, gallery, gallery_embeddings, labels = small_set
    frame = neighbours_view(0, queries, query_embeddings, gallery, gallery_embeddings, 5,
                            labels=labels, class_names=FASHION)
    # Neighbours by hand: rows 1 (d 1, sneaker), 3 (2, sneaker), 0 (3, sandal), 5 (4, sneaker), 4 (5, sneaker).
    assert frame.caption == ("query 0 · 4 of the 5 nearest training images are 'sneaker', like the query "
                             "(red: another label) · euclidean distance 1 to 5")
    frame = neighbours_view(0, queries, query_embeddings, gallery, gallery_embeddings, 2,
                            labels=labels, class_names=FASHION)
    assert frame.caption == ("query 0 · 2 of the 2 nearest training images are 'sneaker', like the query · "
                             "euclidean distance 1 to 2")
    # Query 1 (a bag at (99, 0)): nearest is row 2 (bag, d 1), then row 4 at x = 5 (d 94).
    frame = neighbours_view(1, queries, query_embeddings, gallery, gallery_embeddings, 1,
                            labels=labels, class_names=FASHION)
    assert frame.caption == "query 1 · the nearest training image is 'bag', like the query · euclidean distance 1"
    frame = neighbours_view(2, queries, query_embeddings, gallery, gallery_embeddings, 1,
                            labels=labels, class_names=FASHION)
    assert frame.caption == ("query 2 · the nearest training image is 'sneaker', not 'sandal' like the query "
                             "(red: another label) · euclidean distance 1.41")
    frame = neighbours_view(1, queries, query_embeddings, gallery, gallery_embeddings, 2,
                            labels=labels, class_names=FASHION)
    assert frame.caption.startswith("query 1 · 1 of the 2 nearest training images is 'bag', like the query")


def test_caption_without_labels_and_with_raw_labels(small_set):
    queries, query_embeddings, gallery, gallery_embeddings, labels = small_set
    frame = neighbours_view(0, queries, query_embeddings, gallery, gallery_embeddings, 3)
    assert frame.caption == "query 0 · the 3 nearest training images, euclidean distance 1 to 3"
    # Labels that are not class numbers are shown as they are.
    words = (np.array(["a", "b", "c"]), np.array(["b", "a", "c", "b", "a", "a", "a"]))
    frame = neighbours_view(2, queries, query_embeddings, gallery, gallery_embeddings, 3, "cosine", labels=words)
    # From (0, 1): the bag at (0, 100) points the same way (0); every x-axis row is at right angles (1).
    assert frame.caption == ("query 2 · none of the 3 nearest training images is 'c' like the query "
                             "(red: another label) · cosine distance 0 to 1")


def test_picture_changes_with_query_k_and_metric_and_has_one_panel_per_image(small_set):
    queries, query_embeddings, gallery, gallery_embeddings, labels = small_set
    frames = {
        settings: neighbours_view(*settings[:1], queries, query_embeddings, gallery, gallery_embeddings,
                                  *settings[1:], labels=labels, class_names=FASHION)
        for settings in [(0, 3, "euclidean"), (2, 3, "euclidean"), (0, 5, "euclidean"), (2, 3, "cosine")]
    }
    pngs = [frame.png for frame in frames.values()]
    assert len(set(pngs)) == len(pngs), "every change of the controls should change the picture"
    three, five = decode_png(frames[(0, 3, "euclidean")].png), decode_png(frames[(0, 5, "euclidean")].png)
    assert three.shape[0] == five.shape[0]
    # One panel per image: 4 and 6 panels of equal width.
    assert five.shape[1] / three.shape[1] == pytest.approx(6 / 4, rel=0.02)
    # The query is framed in blue; the sandal among the 5 nearest is framed in red, none among the 2 nearest.
    assert pixels_of_colour(three, QUERY_COLOUR) > 50
    assert pixels_of_colour(five, DIFFERENT_COLOUR) > 50
    two = decode_png(neighbours_view(0, queries, query_embeddings, gallery, gallery_embeddings, 2,
                                     labels=labels, class_names=FASHION).png)
    assert pixels_of_colour(two, DIFFERENT_COLOUR) == 0


def test_the_neighbour_images_are_drawn(small_set):
    # A gallery of flat images, white for the nearest neighbour and black for the rest:
    # with k = 1 the picture holds white panel pixels, with the farthest only it does not.
    queries, query_embeddings, _, gallery_embeddings, _ = small_set
    gallery = np.zeros((7, 12, 12, 3))
    gallery[1] = 1.0  # row 1 is query 0's nearest
    black_query = np.zeros_like(queries)
    nearest = decode_png(neighbours_view(0, black_query, query_embeddings, gallery, gallery_embeddings, 1).png)
    farther = decode_png(neighbours_view(1, black_query, query_embeddings, gallery, gallery_embeddings, 1).png)
    right_half = (slice(None), slice(nearest.shape[1] // 2, None))
    black = np.all(nearest[right_half] < 10, axis=-1).sum()
    assert black < np.all(farther[right_half] < 10, axis=-1).sum()


@pytest.mark.parametrize("shape_and_dtype", [((5, 6, 7), np.uint8), ((5, 6, 7, 1), np.float32),
                                             ((5, 6, 7, 3), np.uint8), ((5, 6, 7, 3), np.float64)])
def test_grey_and_rgb_images_uint8_and_floats_are_shown(shape_and_dtype):
    shape, dtype = shape_and_dtype
    rng = np.random.default_rng(2)
    images = rng.random(shape)
    images = (images * 255).astype(np.uint8) if dtype == np.uint8 else images.astype(dtype)
    frame = neighbours_view(1, images, rng.normal(size=(5, 3)), images, rng.normal(size=(5, 3)), 2)
    assert decode_png(frame.png).ndim == 3
    assert frame.caption.startswith("query 1 · the 2 nearest training images")


@pytest.mark.parametrize(("change", "error", "message"), [
    ({"query_index": 3}, ValueError, r"query_index must be between 0 and 2, got 3"),
    ({"query_images": np.full((3, 4, 4), 2.0)}, ValueError, r"float query_images must have values in \[0, 1\], got 2..2"),
    ({"gallery_images": np.zeros((7, 4, 4), np.int32)}, TypeError, r"integer gallery_images must be uint8"),
    ({"gallery_images": np.zeros((7, 4, 4, 2))}, ValueError, r"gallery_images must be a non-empty stack .*\(7, 4, 4, 2\)"),
    ({"gallery_images": np.zeros((6, 4, 4))}, ValueError, r"got 7 gallery embeddings for 6 gallery images"),
    ({"embeddings_of_queries": np.zeros((3, 5))}, ValueError, r"query embeddings have 5 features but gallery .* 2"),
    ({"labels": ([0, 1, 2], [0] * 6)}, ValueError, r"expected 7 gallery labels \(one per gallery image\), got shape \(6,\)"),
    ({"labels": [0, 1, 2]}, TypeError, r"labels must be a pair \(query labels, gallery labels\)"),
    ({"labels": ([0, 1, 10], [0] * 7), "class_names": FASHION}, ValueError, r"query labels must be class numbers 0..9"),
    ({"k": 8}, ValueError, r"k must be between 1 and 7"),
    ({"metric": "l1"}, ValueError, r"unknown metric 'l1'; choose one of: euclidean, cosine"),
])
def test_view_rejects_bad_arguments_clearly(small_set, change, error, message):
    queries, query_embeddings, gallery, gallery_embeddings, _ = small_set
    arguments = {"query_index": 0, "query_images": queries, "embeddings_of_queries": query_embeddings,
                 "gallery_images": gallery, "gallery_embeddings": gallery_embeddings, "k": 2, **change}
    with pytest.raises(error, match=message):
        neighbours_view(**arguments)


# ---------------------------------------------------------------------------- widget


def test_widget_redraws_when_each_control_moves(small_set):
    queries, query_embeddings, gallery, gallery_embeddings, labels = small_set
    explorer = neighbour_explorer(queries, query_embeddings, gallery, gallery_embeddings, labels=labels,
                                  class_names=FASHION, k=2)
    assert isinstance(explorer, NeighbourExplorer)
    assert "cnn-course-neighbours" in explorer._dom_classes
    # Three queries: a menu that names each query's label.
    assert explorer.query_picker.options[2] == ("2 · sandal", 2)
    assert explorer.k_slider.max == 7 and explorer.metric_buttons.options == ("euclidean", "cosine")
    seen = {(explorer.picture.value, explorer.caption.value)}
    assert explorer.caption.value.startswith("query 0 · 2 of the 2 nearest training images are 'sneaker'")
    explorer.k_slider.value = 5
    assert explorer.caption.value.startswith("query 0 · 4 of the 5 nearest")
    seen.add((explorer.picture.value, explorer.caption.value))
    explorer.query_picker.value = 1
    assert explorer.caption.value.startswith("query 1 · 1 of the 5 nearest training images is 'bag'")
    seen.add((explorer.picture.value, explorer.caption.value))
    explorer.metric_buttons.value = "cosine"
    assert "cosine distance" in explorer.caption.value
    seen.add((explorer.picture.value, explorer.caption.value))
    assert len({picture for picture, _ in seen}) == len({caption for _, caption in seen}) == 4


def test_many_queries_get_a_slider_and_k_stops_at_ten():
    rng = np.random.default_rng(3)
    images = rng.random((40, 5, 5))
    explorer = neighbour_explorer(images, rng.normal(size=(40, 4)), images, rng.normal(size=(40, 4)))
    assert type(explorer.query_picker).__name__ == "IntSlider"
    assert explorer.query_picker.max == 39 and explorer.k_slider.max == 10 and explorer.k_slider.value == 5
    before = explorer.picture.value
    explorer.query_picker.value = 17
    assert explorer.picture.value != before and explorer.caption.value.startswith("query 17 ·")


def test_a_bad_setting_shows_a_warning_caption_not_an_exception():
    images = np.zeros((2, 4, 4))
    explorer = neighbour_explorer(images, [[0.0, 0.0], [1.0, 1.0]], images, [[1.0, 0.0], [0.0, 1.0]], k=1)
    picture = explorer.picture.value
    explorer.metric_buttons.value = "cosine"  # query 0's embedding is all zeros: no direction
    assert explorer.caption.value.startswith("⚠ the cosine distance needs a direction, but the query's embedding")
    assert explorer.picture.value == picture
    explorer.query_picker.value = 1
    assert explorer.caption.value == "query 1 · the nearest training image, cosine distance 0.293"


@pytest.mark.parametrize(("change", "error", "message"), [
    ({"k": 0}, ValueError, r"k must be between 1 and 7 \(at most 10, and at most the 7 gallery images\), got 0"),
    ({"k": 8}, ValueError, r"k must be between 1 and 7"),
    ({"k": "5"}, TypeError, r"k must be a whole number, got '5' \(str\)"),
    ({"metric": "manhattan"}, ValueError, r"unknown metric 'manhattan'; choose one of: euclidean, cosine"),
    ({"query_embeddings": np.zeros((2, 2))}, ValueError, r"got 2 query embeddings for 3 query images"),
    ({"gallery_embeddings": np.zeros((7, 3))}, ValueError, r"query embeddings have 2 features but gallery .* 3"),
    ({"gallery_images": np.zeros((7, 4))}, ValueError, r"gallery_images must be a non-empty stack"),
    ({"query_images": np.array([["a"]])}, TypeError, r"query_images must hold pixel values"),
    ({"class_names": "sneaker"}, TypeError, r"class_names must be a list of names"),
    ({"labels": ([7, 8], [0] * 7)}, ValueError, r"expected 3 query labels"),
])
def test_factory_rejects_bad_arguments_clearly(small_set, change, error, message):
    queries, query_embeddings, gallery, gallery_embeddings, labels = small_set
    arguments = {"query_images": queries, "query_embeddings": query_embeddings, "gallery_images": gallery,
                 "gallery_embeddings": gallery_embeddings, "labels": labels, "class_names": FASHION, **change}
    with pytest.raises(error, match=message):
        neighbour_explorer(**arguments)


def test_update_time_for_1000_gallery_images_of_1280_features_is_printed():
    # MobileNetV2's pooled last layer has 1,280 features; printed, never asserted (timing is the machine's).
    rng = np.random.default_rng(4)
    gallery = (rng.random((1000, 28, 28)) * 255).astype(np.uint8)
    labels = (rng.integers(0, 10, 20), rng.integers(0, 10, 1000))
    explorer = neighbour_explorer(gallery[:20], rng.random((20, 1280)), gallery, rng.random((1000, 1280)),
                                  labels=labels, class_names=FASHION, k=10)
    times = []
    for query in range(1, 6):
        started = time.perf_counter()
        explorer.query_picker.value = query
        times.append(time.perf_counter() - started)
    assert re.match(r"query 5 · ", explorer.caption.value)
    print(f"neighbour explorer update, 1000 × 1280 gallery, k = 10: median {1000 * np.median(times):.0f} ms "
          f"(max {1000 * max(times):.0f} ms)")
