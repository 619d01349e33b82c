"""cnn_course.detection against TensorFlow, Keras, pycocotools, brute-force loops and hand-worked cases.

References, each computed without the module:

* IoU: pycocotools' C implementation (``pycocotools.mask.iou`` on (x, y, w, h) boxes) and a
  pair-by-pair Python loop;
* NMS: ``tf.image.non_max_suppression`` (integer boxes, so that TensorFlow's float32 and our
  float64 agree exactly on every IoU, and continuous ones);
* RoI pooling: a pixel-by-pixel loop written from the Fast R-CNN Caffe layer's formulas
  (inclusive last column, float bin sizes, here as exact fractions) and Keras' MaxPooling2D;
* anchors and their matching: loops over cells and anchors following Ren et al. 2015;
* focal loss: ``keras.losses.BinaryFocalCrossentropy`` and ``BinaryCrossentropy``;
* AP and mAP: pycocotools' COCOeval restricted to one IoU threshold.
"""

from __future__ import annotations

import contextlib
import io
import math
from fractions import Fraction

import keras  # imports TensorFlow once for the module; a broken install fails, never skips
import numpy as np
import pytest
import tensorflow as tf
from cnn_course.detection import (
    anchor_boxes,
    average_precision,
    class_average_precisions,
    decode_boxes,
    encode_boxes,
    focal_loss,
    iou,
    match_anchors,
    match_detections,
    mean_average_precision,
    nms,
    roi_pool,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from pycocotools import mask as coco_mask
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval


def random_boxes(rng, n, *, extent=100.0, max_size=40.0, integer=False):
    """``n`` boxes (x1, y1, x2, y2) inside [0, extent + max_size]², widths and heights in [0, max_size]."""
    corner = rng.uniform(0, extent, size=(n, 2))
    size = rng.uniform(0, max_size, size=(n, 2))
    if integer:
        corner, size = np.floor(corner), np.floor(size)
    return np.concatenate([corner, corner + size], axis=1)


def to_xywh(boxes):
    boxes = np.asarray(boxes, dtype=np.float64)
    return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)


# ----------------------------------------------------------------------------- IoU


def test_iou_hand_worked():
    # (0,0,4,4) and (2,0,6,4): overlap 2 × 4 = 8, union 16 + 16 - 8 = 24 -> 1/3
    # (0,0,2,2) and (1,1,3,3): overlap 1 × 1 = 1, union 4 + 4 - 1 = 7 -> 1/7
    # (1,1,3,3) inside (0,0,4,4): 4 / 16 = 1/4; boxes that only touch along an edge: 0
    a = [[0, 0, 4, 4], [0, 0, 2, 2]]
    b = [[2, 0, 6, 4], [1, 1, 3, 3], [4, 0, 5, 4]]
    np.testing.assert_allclose(iou(a, b), [[1 / 3, 1 / 4, 0], [0, 1 / 7, 0]])
    # zero-area boxes: 0 with everything, themselves included (the formula would give 0/0)
    line, point = [2, 0, 2, 4], [1, 1, 1, 1]
    result = iou([line, point], [line, point, [0, 0, 4, 4]])
    assert not np.isnan(result).any()
    np.testing.assert_array_equal(result, np.zeros((2, 3)))
    assert iou(np.zeros((0, 4)), a).shape == (0, 2) and iou(a, np.zeros((0, 4))).shape == (2, 0)
    assert iou([], a).shape == (0, 2)  # an empty list is no boxes


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 30), st.integers(1, 30), st.booleans())
def test_iou_equals_pycocotools_and_a_loop(seed, n, m, integer):
    rng = np.random.default_rng(seed)
    a, b = random_boxes(rng, n, integer=integer), random_boxes(rng, m, integer=integer)
    result = iou(a, b)
    reference = coco_mask.iou(to_xywh(a).tolist(), to_xywh(b).tolist(), [0] * m)
    np.testing.assert_allclose(result, np.asarray(reference).reshape(n, m), rtol=1e-12, atol=1e-12)
    loop = np.zeros((n, m))
    for i, (ax1, ay1, ax2, ay2) in enumerate(a):
        for j, (bx1, by1, bx2, by2) in enumerate(b):
            inter = max(0.0, min(ax2, bx2) - max(ax1, bx1)) * max(0.0, min(ay2, by2) - max(ay1, by1))
            union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
            loop[i, j] = inter / union if union > 0 else 0.0
    np.testing.assert_allclose(result, loop, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(iou(b, a), result.T)
    assert ((result >= 0) & (result <= 1)).all()


# ----------------------------------------------------------------------------- NMS


def tf_nms(boxes, scores, iou_threshold, max_outputs=None):
    boxes, scores = np.asarray(boxes, np.float32), np.asarray(scores, np.float32)
    limit = len(boxes) if max_outputs is None else max_outputs
    return tf.image.non_max_suppression(boxes, scores, limit, iou_threshold=iou_threshold).numpy()


def test_nms_hand_worked():
    # boxes 0 and 1: overlap 9 × 9 = 81, union 100 + 100 - 81 = 119 -> IoU 0.68; 0 and 2 identical
    boxes = [[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10], [20, 20, 30, 30]]
    scores = [0.6, 0.9, 0.6, 0.1]
    np.testing.assert_array_equal(nms(boxes, scores, 0.5), [1, 3])       # 0.68 > 0.5: 0 and 2 go
    np.testing.assert_array_equal(nms(boxes, scores, 0.7), [1, 0, 3])    # 0 stays, removes its twin 2
    np.testing.assert_array_equal(nms(boxes, scores, 1.0), [1, 0, 2, 3])  # nothing overlaps by > 1
    np.testing.assert_array_equal(nms(boxes, scores, 0.7, max_outputs=1), [1])
    for threshold in (0.5, 0.7, 1.0):
        np.testing.assert_array_equal(nms(boxes, scores, threshold), tf_nms(boxes, scores, threshold))


def test_nms_tie_rule_and_threshold_convention_match_tensorflow():
    # equal scores: the lower index first
    twins = [[0, 0, 4, 4]] * 3
    np.testing.assert_array_equal(nms(twins, [1, 1, 1]), [0])
    np.testing.assert_array_equal(nms(twins, [1, 2, 2]), [1])
    np.testing.assert_array_equal(tf_nms(twins, [1, 2, 2], 0.5), [1])
    # IoU exactly 0.5 (overlap 8, union 16) survives threshold 0.5: suppression needs IoU > threshold
    half = [[0, 0, 4, 3], [0, 1, 4, 4]]  # areas 12 and 12, overlap 4 × 2 = 8, union 16
    assert iou(half[:1], half[1:])[0, 0] == 0.5
    np.testing.assert_array_equal(nms(half, [0.9, 0.8], 0.5), [0, 1])
    np.testing.assert_array_equal(tf_nms(half, [0.9, 0.8], 0.5), [0, 1])
    np.testing.assert_array_equal(nms(half, [0.9, 0.8], 0.49), [0])
    # threshold 0: anything overlapping goes, boxes that only touch stay; zero-area boxes never go
    boxes = [[0, 0, 2, 2], [1, 1, 3, 3], [2, 0, 4, 2], [1, 1, 1, 1]]
    np.testing.assert_array_equal(nms(boxes, [4, 3, 2, 1], 0.0), [0, 2, 3])
    np.testing.assert_array_equal(tf_nms(boxes, [4, 3, 2, 1], 0.0), [0, 2, 3])


@st.composite
def nms_case(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = draw(st.integers(1, 40))
    boxes = random_boxes(rng, n, extent=30, max_size=16, integer=True)  # zero areas included
    if draw(st.booleans()):
        scores = rng.integers(0, 4, size=n).astype(np.float32)           # many ties
    else:
        scores = rng.random(n).astype(np.float32)
    threshold = draw(st.sampled_from([0.0, 0.1, 0.25, 0.3, 0.5, 0.6, 0.7, 0.9, 1.0]))
    max_outputs = draw(st.one_of(st.none(), st.integers(1, n)))
    return boxes.astype(np.float32), scores, threshold, max_outputs


@settings(max_examples=150, deadline=None)
@given(nms_case())
def test_nms_equals_tensorflow_on_integer_boxes(case):
    # integer coordinates: every area, intersection and union is exact in float32 and float64,
    # so TensorFlow's float32 IoU and ours decide every comparison with the threshold alike
    boxes, scores, threshold, max_outputs = case
    kept = nms(boxes, scores, threshold, max_outputs)
    assert kept.dtype == np.int64
    np.testing.assert_array_equal(kept, tf_nms(boxes, scores, threshold, max_outputs))


def test_nms_equals_tensorflow_on_continuous_boxes():
    rng = np.random.default_rng(7)
    for _ in range(60):
        n = int(rng.integers(1, 300))
        boxes = random_boxes(rng, n, extent=200, max_size=60).astype(np.float32)
        scores = rng.random(n).astype(np.float32)
        threshold = float(np.float32(rng.uniform(0, 1)))
        np.testing.assert_array_equal(nms(boxes, scores, threshold), tf_nms(boxes, scores, threshold))


# ----------------------------------------------------------------------------- RoI pooling

HAND_MAP = np.array([[0, 1, 2, 3],
                     [4, 15, 6, 7],
                     [8, 9, 10, 11],
                     [12, 13, 14, 5]])


def test_roi_pool_hand_worked_4x4_to_2x2():
    # Box (0.4, 0.6, 3.2, 3.6): edges rounded half up -> x 0..3, y 1..4, i.e. columns 0-2 and
    # rows 1-3: a 3 × 3 region. Bins split 3 cells into [floor(0·3/2), ceil(1·3/2)) = [0, 2) and
    # [floor(1·3/2), ceil(2·3/2)) = [1, 3) of the region: rows {1, 2} and {2, 3}, columns {0, 1}
    # and {1, 2} (the middle row and column are shared).
    #   rows 1-2, cols 0-1: 4 15 8 9     -> 15      rows 1-2, cols 1-2: 15 6 9 10   -> 15
    #   rows 2-3, cols 0-1: 8 9 12 13    -> 13      rows 2-3, cols 1-2: 9 10 13 14  -> 14
    np.testing.assert_array_equal(roi_pool(HAND_MAP, [[0.4, 0.6, 3.2, 3.6]], 2)[0], [[15, 15], [13, 14]])
    # the whole map: four 2 × 2 blocks [0 1 4 15], [2 3 6 7], [8 9 12 13], [10 11 14 5]
    np.testing.assert_array_equal(roi_pool(HAND_MAP, [[0, 0, 4, 4]], 2)[0], [[15, 7], [13, 14]])
    # halves round up: x1 = 0.5 -> column 1, x2 = 2.5 -> 3 (columns 1-2); y 0..1 is row 0 only,
    # split into 2 bins that both hold row 0
    np.testing.assert_array_equal(roi_pool(HAND_MAP, [[0.5, 0, 2.5, 1]], 2)[0], [[1, 2], [1, 2]])
    # a 1 × 3 output over columns 0-3 of rows 2-3: bins [0, 2), [1, 3), [2, 4) of 4 columns
    np.testing.assert_array_equal(roi_pool(HAND_MAP, [[0, 2, 4, 4]], (1, 3))[0], [[13, 14, 14]])


def caffe_roi_pool_loop(feature_map, boxes, out_h, out_w):
    """Pixel-by-pixel RoI max pooling following the Fast R-CNN Caffe layer (roi_pooling_layer.cpp).

    Caffe's boxes name the last row and column (inclusive), so ours become (x1, y1, x2 - 1, y2 - 1);
    its bin sizes are floats (here exact fractions).
    """
    height, width, channels = feature_map.shape
    out = np.zeros((len(boxes), out_h, out_w, channels), feature_map.dtype)
    for k, (x1, y1, x2, y2) in enumerate(boxes):
        start_w, start_h = math.floor(x1 + 0.5), math.floor(y1 + 0.5)      # C's round() for x >= 0
        end_w, end_h = math.floor(x2 - 1 + 0.5), math.floor(y2 - 1 + 0.5)
        # our one departure, documented in roi_pool: a box whose left (top) edge rounds to the map's
        # right (bottom) border keeps its last column (row); Caffe would give an empty bin, 0
        start_w, start_h = min(start_w, width - 1), min(start_h, height - 1)
        roi_w, roi_h = max(end_w - start_w + 1, 1), max(end_h - start_h + 1, 1)
        bin_h, bin_w = Fraction(roi_h, out_h), Fraction(roi_w, out_w)
        for ph in range(out_h):
            for pw in range(out_w):
                h0 = min(max(math.floor(ph * bin_h) + start_h, 0), height)
                h1 = min(max(math.ceil((ph + 1) * bin_h) + start_h, 0), height)
                w0 = min(max(math.floor(pw * bin_w) + start_w, 0), width)
                w1 = min(max(math.ceil((pw + 1) * bin_w) + start_w, 0), width)
                for c in range(channels):
                    best = -np.inf
                    for row in range(h0, h1):
                        for col in range(w0, w1):
                            best = max(best, feature_map[row, col, c])
                    out[k, ph, pw, c] = best
    return out


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 12), st.integers(1, 12), st.integers(1, 3),
       st.integers(1, 5), st.integers(1, 5))
def test_roi_pool_equals_caffe_style_loop(seed, height, width, channels, out_h, out_w):
    rng = np.random.default_rng(seed)
    feature_map = rng.normal(size=(height, width, channels))
    corner = rng.uniform(0, 1, size=(6, 2)) * [width, height]
    far = corner + rng.uniform(0, 1, size=(6, 2)) * ([width, height] - corner)
    boxes = np.concatenate([corner, far], axis=1)
    boxes[0] = [0, 0, width, height]
    pooled = roi_pool(feature_map, boxes, (out_h, out_w))
    assert pooled.shape == (6, out_h, out_w, channels)
    np.testing.assert_array_equal(pooled, caffe_roi_pool_loop(feature_map, boxes, out_h, out_w))


def test_roi_pool_of_the_whole_map_is_max_pooling():
    rng = np.random.default_rng(3)
    feature_map = rng.normal(size=(12, 8, 5)).astype(np.float32)
    expected = keras.ops.convert_to_numpy(keras.layers.MaxPooling2D((3, 2))(feature_map[None]))[0]
    np.testing.assert_array_equal(roi_pool(feature_map, [[0, 0, 8, 12]], (4, 4))[0], expected)
    # one bin per cell gives the region itself
    np.testing.assert_array_equal(roi_pool(feature_map, [[2, 3, 6, 9]], (6, 4))[0], feature_map[3:9, 2:6])
    assert roi_pool(feature_map.astype(np.float16), [[0, 0, 1, 1]], 1).dtype == np.float16
    assert roi_pool(np.zeros((4, 4)), np.zeros((0, 4)), 3).shape == (0, 3, 3)


# ----------------------------------------------------------------------------- anchors


def test_anchor_boxes_hand_worked_and_against_a_loop():
    # one cell, stride 16: centre (8, 8); size 16, ratio 1 -> 16 × 16; ratio 4 = h/w -> w 8, h 32
    np.testing.assert_allclose(anchor_boxes(1, 16, 16, (1, 4)), [[0, 0, 16, 16], [4, -8, 12, 24]])
    rows, cols, stride, sizes, ratios = 3, 5, 8, (16, 40), (0.5, 1, 2)
    anchors = anchor_boxes((rows, cols), stride, sizes, ratios)
    expected = []
    for row in range(rows):
        for col in range(cols):
            cx, cy = col * stride + stride / 2, row * stride + stride / 2
            for size in sizes:
                for ratio in ratios:
                    w, h = math.sqrt(size * size / ratio), math.sqrt(size * size * ratio)
                    expected.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
    np.testing.assert_allclose(anchors, expected)
    widths, heights = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    np.testing.assert_allclose(widths * heights, np.tile(np.repeat(np.square(sizes), 3), rows * cols))
    np.testing.assert_allclose(heights / widths, np.tile(ratios, rows * cols * 2))
    assert anchor_boxes((38, 50), 16, (128, 256, 512)).shape == (38 * 50 * 9, 4)  # Faster R-CNN's ~17k


def test_encode_boxes_hand_worked():
    # anchor (0,0,16,16): centre (8, 8), 16 × 16; box (5,0,13,16): centre (9, 8), 8 × 16
    # tx = (9 - 8) / 16, ty = 0, tw = log(8 / 16), th = log(1)
    np.testing.assert_allclose(encode_boxes([[5, 0, 13, 16]], [[0, 0, 16, 16]]),
                               [[1 / 16, 0, math.log(0.5), 0]])
    # anchor (10,20,30,60): centre (20, 40), 20 × 40; box (0,0,60,40): centre (30, 20), 60 × 40
    np.testing.assert_allclose(encode_boxes([[0, 0, 60, 40]], [[10, 20, 30, 60]]),
                               [[0.5, -0.5, math.log(3), 0]])
    np.testing.assert_allclose(decode_boxes([[0.5, -0.5, math.log(3), 0]], [[10, 20, 30, 60]]),
                               [[0, 0, 60, 40]], atol=1e-12)
    anchors = anchor_boxes(2, 16)
    np.testing.assert_allclose(encode_boxes(anchors, anchors), 0, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 20))
def test_decode_undoes_encode(seed, n):
    rng = np.random.default_rng(seed)
    anchors = random_boxes(rng, n, extent=500, max_size=300) + [0, 0, 1, 1]   # positive sizes
    boxes = random_boxes(rng, n, extent=500, max_size=300) + [0, 0, 0.5, 0.5]
    np.testing.assert_allclose(decode_boxes(encode_boxes(boxes, anchors), anchors), boxes, rtol=1e-9, atol=1e-9)
    deltas = rng.normal(size=(n, 4))
    np.testing.assert_allclose(encode_boxes(decode_boxes(deltas, anchors), anchors), deltas, rtol=1e-9, atol=1e-9)


def test_match_anchors_hand_worked():
    anchors = [[0, 0, 10, 10], [0, 0, 12, 10], [20, 0, 30, 10], [0, 20, 10, 30], [0, 0, 20, 10]]
    gt = [[0, 0, 11, 10], [21, 1, 29, 9]]
    # IoUs with box 0: 100/110 = 0.91, 110/120 = 0.92, 0, 0, 110/200 = 0.55 (ignored: 0.3 <= . < 0.7)
    # with box 1 (area 64): only anchor 2, 64/100 = 0.64 < 0.7, but it is box 1's best -> positive
    labels, matched = match_anchors(anchors, gt)
    np.testing.assert_array_equal(labels, [1, 1, 1, 0, -1])
    np.testing.assert_array_equal(matched, [0, 0, 1, 0, 0])
    labels, _ = match_anchors(anchors, gt, positive_iou=0.95, negative_iou=0.5)
    np.testing.assert_array_equal(labels, [-1, 1, 1, 0, -1])  # positives: only each box's best anchor
    labels, matched = match_anchors(anchors, np.zeros((0, 4)))
    np.testing.assert_array_equal(labels, [0] * 5)
    np.testing.assert_array_equal(matched, [-1] * 5)
    # a box overlapping no anchor gets none, rather than every anchor at IoU 0
    labels, _ = match_anchors(anchors, [[100, 100, 110, 110]])
    np.testing.assert_array_equal(labels, [0] * 5)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 40), st.integers(1, 6))
def test_match_anchors_equals_a_loop(seed, num_anchors, num_boxes):
    rng = np.random.default_rng(seed)
    anchors = random_boxes(rng, num_anchors, extent=40, max_size=30, integer=True)
    gt = random_boxes(rng, num_boxes, extent=40, max_size=30, integer=True)
    labels, matched = match_anchors(anchors, gt, 0.6, 0.2)
    overlaps = [[iou([a], [g])[0, 0] for g in gt] for a in anchors]
    expected_labels = []
    for row in overlaps:
        best = max(row)
        expected_labels.append(1 if best >= 0.6 else 0 if best < 0.2 else -1)
    for j in range(num_boxes):
        column = [row[j] for row in overlaps]
        for i, value in enumerate(column):
            if value > 0 and value == max(column):
                expected_labels[i] = 1
    np.testing.assert_array_equal(labels, expected_labels)
    np.testing.assert_array_equal(matched, [row.index(max(row)) for row in overlaps])


# ----------------------------------------------------------------------------- focal loss


def keras_focal(y, p, gamma, alpha, label_smoothing=0.0, from_logits=False):
    loss = keras.losses.BinaryFocalCrossentropy(
        apply_class_balancing=alpha is not None, alpha=0.25 if alpha is None else alpha, gamma=gamma,
        from_logits=from_logits, label_smoothing=label_smoothing)
    return float(keras.ops.convert_to_numpy(loss(np.asarray(y, np.float32), np.asarray(p, np.float32))))


def test_focal_loss_hand_worked():
    # y = 1, p = 0.9: p_t = 0.9, cross-entropy -log 0.9 = 0.10536, factor (1 - 0.9)² = 0.01,
    #   alpha_t = 0.25 -> 0.25 · 0.01 · 0.10536 = 0.00026340
    # y = 0, p = 0.1: p_t = 0.9 as well, alpha_t = 0.75 -> 0.00079020
    # y = 1, p = 0.5: p_t = 0.5, -log 0.5 = 0.69315, factor 0.25, alpha_t 0.25 -> 0.043322
    values = focal_loss([1, 0, 1], [0.9, 0.1, 0.5], reduction="none")
    np.testing.assert_allclose(values, [0.00026340, 0.00079020, 0.043322], rtol=1e-4)
    assert focal_loss([1, 0, 1], [0.9, 0.1, 0.5]) == pytest.approx(np.mean(values))
    assert focal_loss([1, 0, 1], [0.9, 0.1, 0.5], reduction="sum") == pytest.approx(np.sum(values))
    # gamma = 0 without alpha is cross-entropy: (0.10536 + 0.10536 + 0.69315) / 3 = 0.30129
    assert focal_loss([1, 0, 1], [0.9, 0.1, 0.5], gamma=0, alpha=None) == pytest.approx(0.30129, abs=1e-5)
    # an easy example (p_t = 0.9) loses 100 times more than a hard one (p_t = 0.5) loses 4 times
    ratio_easy = focal_loss([1], [0.9], alpha=None) / focal_loss([1], [0.9], gamma=0, alpha=None)
    ratio_hard = focal_loss([1], [0.5], alpha=None) / focal_loss([1], [0.5], gamma=0, alpha=None)
    assert ratio_easy == pytest.approx(0.01) and ratio_hard == pytest.approx(0.25)
    # a certain wrong answer is large but finite (p clipped to 1e-7 inside the log, like Keras)
    assert focal_loss([1], [0.0], alpha=None) == pytest.approx(-math.log(1e-7))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(0, 5), st.one_of(st.none(), st.floats(0, 1)),
       st.sampled_from([0.0, 0.1, 0.3]))
def test_focal_loss_equals_keras_binary_focal_crossentropy(seed, gamma, alpha, smoothing):
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(1, 6)), int(rng.integers(1, 7)))
    y = rng.integers(0, 2, size=shape)
    p = rng.uniform(0.001, 0.999, size=shape).astype(np.float32)
    soft = y * (1 - smoothing) + 0.5 * smoothing     # Keras' label smoothing, done by hand
    expected = keras_focal(y, p, gamma, alpha, label_smoothing=smoothing)
    assert focal_loss(soft, p, gamma, alpha) == pytest.approx(expected, rel=2e-5, abs=1e-7)


def test_focal_loss_reduces_to_cross_entropy_and_takes_sigmoids_of_logits():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, size=(8, 5))
    p = rng.uniform(0.001, 0.999, size=(8, 5)).astype(np.float32)
    bce = float(keras.losses.BinaryCrossentropy()(y.astype(np.float32), p))
    assert focal_loss(y, p, gamma=0, alpha=None) == pytest.approx(bce, rel=1e-5)
    assert focal_loss(y, p, gamma=0, alpha=0.5) == pytest.approx(bce / 2, rel=1e-5)  # alpha_t = 1/2
    logits = rng.normal(scale=3, size=(8, 5)).astype(np.float32)
    expected = keras_focal(y, logits, 2.0, 0.25, from_logits=True)
    assert focal_loss(y, 1 / (1 + np.exp(-logits.astype(np.float64)))) == pytest.approx(expected, rel=1e-4)


def test_focal_loss_works_as_a_keras_loss():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(32, 3)).astype(np.float32)
    y = (x[:, :1] > 0).astype(np.float32)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(loss=focal_loss)
    evaluated = model.evaluate(x, y, batch_size=32, verbose=0)
    predicted = model.predict(x, verbose=0)
    assert evaluated == pytest.approx(focal_loss(y, predicted), rel=1e-5)
    tensor_loss = focal_loss(tf.constant(y), tf.constant(predicted), reduction="none")
    assert tf.is_tensor(tensor_loss) and tensor_loss.shape == (32, 1)


# ----------------------------------------------------------------------------- AP and mAP


def test_average_precision_hand_worked():
    # 2 true boxes; detections ranked TP, FP, TP:
    #   precision 1/1, 1/2, 2/3 at recall 1/2, 1/2, 2/2; interpolated (best at this recall or
    #   beyond): 1, 2/3, 2/3 -> the curve is 1 up to recall 1/2 and 2/3 up to recall 1.
    # all-point area: 1/2 · 1 + 1/2 · 2/3 = 5/6
    # COCO: recalls 0.00 ... 0.50 (51 points) read precision 1, 0.51 ... 1.00 (50 points) 2/3
    scores, hits = [0.9, 0.8, 0.7], [True, False, True]
    assert average_precision(scores, hits, 2, interpolation="all") == pytest.approx(5 / 6)
    assert average_precision(scores, hits, 2) == pytest.approx((51 + 50 * 2 / 3) / 101)
    # 3 true boxes, two found, no false positives: precision 1 up to recall 2/3, nothing beyond
    # all-point: 2/3; COCO: recalls 0.00 ... 0.66 (67 points) read 1, the other 34 read 0
    assert average_precision([0.5, 0.4], [True, True], 3, interpolation="all") == pytest.approx(2 / 3)
    assert average_precision([0.5, 0.4], [True, True], 3) == pytest.approx(67 / 101)
    # the ranking is by score, not by the order given; a false positive first halves everything
    assert average_precision([0.1, 0.9], [True, False], 1, interpolation="all") == pytest.approx(0.5)
    assert average_precision([], np.zeros(0, bool), 4) == 0.0


def test_match_detections_hand_worked():
    gt = [[0, 0, 10, 10], [20, 0, 30, 10]]
    boxes = [[0, 0, 10, 10],    # IoU 1 with box 0
             [0, 0, 10, 5],     # IoU 50/100 = 0.5 with box 0, but box 0 is taken by detection 0 -> FP
             [20, 0, 30, 5],    # IoU 50/100 = 0.5 with box 1: exactly the threshold, enough -> TP
             [21, 0, 30, 10]]   # IoU 90/100 = 0.9 with box 1, but box 1 is taken by then -> FP
    np.testing.assert_array_equal(match_detections(boxes, [0.9, 0.8, 0.7, 0.6], gt), [True, False, True, False])
    np.testing.assert_array_equal(match_detections(boxes, [0.9, 0.8, 0.6, 0.7], gt), [True, False, False, True])
    np.testing.assert_array_equal(match_detections(boxes, [0.9, 0.8, 0.7, 0.6], gt, 0.51), [True, False, False, True])
    # a detection overlapping two free boxes takes the one it overlaps more, not the first:
    # (5,0,25,10) has IoU 50/250 = 0.2 with (0,0,10,10) and 150/200 = 0.75 with (10,0,25,10), so
    # (0,0,10,10) is still free for the second detection
    np.testing.assert_array_equal(
        match_detections([[5, 0, 25, 10], [0, 0, 10, 10]], [1, 0.5], [[0, 0, 10, 10], [10, 0, 25, 10]], 0.1),
        [True, True])


def coco_average_precisions(detections, ground_truths, iou_threshold):
    """Per-class AP from pycocotools' COCOeval at one IoU threshold (classes without any true box left out)."""
    images = [{"id": i + 1} for i in range(len(ground_truths))]
    labels = sorted({int(label) for entry in detections + ground_truths for label in entry["labels"]})
    annotations = []
    for i, truth in enumerate(ground_truths):
        for box, label in zip(to_xywh(np.reshape(truth["boxes"], (-1, 4))), truth["labels"], strict=True):
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": int(label),
                                "bbox": box.tolist(), "area": float(box[2] * box[3]), "iscrowd": 0})
    results = []
    for i, found in enumerate(detections):
        for box, score, label in zip(to_xywh(np.reshape(found["boxes"], (-1, 4))), found["scores"],
                                     found["labels"], strict=True):
            results.append({"image_id": i + 1, "category_id": int(label), "bbox": box.tolist(),
                            "score": float(score)})
    with contextlib.redirect_stdout(io.StringIO()):   # COCOeval prints its progress
        truth = COCO()
        truth.dataset = {"images": images, "annotations": annotations,
                         "categories": [{"id": label} for label in labels]}
        truth.createIndex()
        evaluation = COCOeval(truth, truth.loadRes(results), "bbox")
        evaluation.params.iouThrs = np.array([iou_threshold])
        evaluation.params.areaRng, evaluation.params.areaRngLbl = [[0, 1e10]], ["all"]
        evaluation.params.maxDets = [10_000]
        evaluation.evaluate()
        evaluation.accumulate()
    precision = evaluation.eval["precision"][0, :, :, 0, 0]          # (101 recalls, classes)
    return {label: float(precision[:, k].mean()) for k, label in enumerate(evaluation.params.catIds)
            if (precision[:, k] > -1).all()}


@st.composite
def detection_case(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    num_images, num_classes = draw(st.integers(1, 5)), draw(st.integers(1, 4))
    detections, ground_truths = [], []
    for _ in range(num_images):
        g = int(rng.integers(0, 6))
        gt_boxes = random_boxes(rng, g, extent=100, max_size=40) + [0, 0, 2, 2]
        gt_labels = rng.integers(0, num_classes, size=g)
        # jittered copies of the truth (some good, some poor, some duplicated) plus random boxes
        copies = rng.integers(0, g, size=int(rng.integers(0, 2 * g + 1))) if g else np.zeros(0, int)
        jitter = rng.normal(scale=rng.uniform(0.5, 8), size=(len(copies), 4))
        jittered = np.sort((gt_boxes[copies] + jitter).reshape(-1, 2, 2), axis=1).reshape(-1, 4)
        labels = gt_labels[copies].copy()
        relabel = rng.random(len(copies)) < 0.1                     # a few wrong classes
        labels[relabel] = rng.integers(0, num_classes, size=int(relabel.sum()))
        noise = random_boxes(rng, int(rng.integers(0, 4)), extent=100, max_size=40) + [0, 0, 1, 1]
        boxes = np.concatenate([jittered, noise])
        labels = np.concatenate([labels, rng.integers(0, num_classes, size=len(noise))])
        scores = rng.random(len(boxes))
        if draw(st.booleans()):
            scores = np.round(scores, 1)                            # ties within and across images
        order = rng.permutation(len(boxes))
        detections.append({"boxes": boxes[order], "scores": scores[order], "labels": labels[order]})
        ground_truths.append({"boxes": gt_boxes, "labels": gt_labels})
    if not any(len(d["boxes"]) for d in detections):                # pycocotools needs one detection
        detections[0] = {"boxes": np.array([[0.0, 0, 5, 5]]), "scores": np.array([0.5]), "labels": np.array([0])}
    if not any(len(t["boxes"]) for t in ground_truths):
        ground_truths[0] = {"boxes": np.array([[0.0, 0, 5, 5]]), "labels": np.array([0])}
    return detections, ground_truths, draw(st.sampled_from([0.5, 0.3, 0.75]))


@settings(max_examples=50, deadline=None)
@given(detection_case())
def test_average_precisions_equal_pycocotools(case):
    detections, ground_truths, threshold = case
    expected = coco_average_precisions(detections, ground_truths, threshold)
    result = class_average_precisions(detections, ground_truths, threshold)
    assert list(result) == list(expected)
    np.testing.assert_allclose(list(result.values()), list(expected.values()), rtol=1e-12, atol=1e-12)
    assert mean_average_precision(detections, ground_truths, threshold) == pytest.approx(np.mean(list(expected.values())))


def test_mean_average_precision_hand_worked():
    truth = [{"boxes": [[0, 0, 10, 10], [20, 20, 30, 30]], "labels": [0, 0]},
             {"boxes": [[0, 0, 10, 10]], "labels": [1]}]
    # class 0: detections 0.9 TP (image 0, box 0), 0.8 FP (nowhere), 0.7 TP (image 0, box 1):
    #   the first hand-worked AP, (51 + 50 · 2/3) / 101; all-point 5/6
    # class 1: its one box found by the only detection: AP 1; class 2 has no box and does not count
    found = [{"boxes": [[0, 0, 10, 10], [50, 50, 60, 60], [21, 21, 30, 30], [0, 0, 9, 9]],
              "scores": [0.9, 0.8, 0.7, 0.6], "labels": [0, 0, 0, 2]},
             {"boxes": [[1, 0, 10, 10]], "scores": [0.3], "labels": [1]}]
    per_class = class_average_precisions(found, truth)
    assert list(per_class) == [0, 1]
    assert per_class[0] == pytest.approx((51 + 50 * 2 / 3) / 101) and per_class[1] == 1.0
    assert mean_average_precision(found, truth) == pytest.approx(((51 + 50 * 2 / 3) / 101 + 1) / 2)
    assert mean_average_precision(found, truth, interpolation="all") == pytest.approx((5 / 6 + 1) / 2)
    # an image without detections or without true boxes may use empty lists
    empty = {"boxes": [], "scores": [], "labels": []}
    assert mean_average_precision(found + [empty], truth + [{"boxes": [], "labels": []}]) == pytest.approx(
        mean_average_precision(found, truth))
    assert class_average_precisions([found[0], empty], truth)[1] == 0.0  # class 1's box is missed
    assert mean_average_precision(found, truth) == pytest.approx(np.mean(list(coco_average_precisions(
        [{k: np.asarray(v) for k, v in d.items()} for d in found],
        [{k: np.asarray(v) for k, v in t.items()} for t in truth], 0.5).values())))
    # at IoU 0.9 the detection (21, 21, 30, 30) (IoU 81/100) no longer counts for class 0
    assert class_average_precisions(found, truth, 0.9, interpolation="all")[0] == pytest.approx(0.5)


def test_equal_ious_go_to_the_later_true_box_as_in_pycocotools():
    # a detection overlapping two true boxes equally (IoU 50/150 = 1/3 with each) takes the later
    # one, as pycocotools does; the earlier one is then left for the second detection
    truth = [{"boxes": [[0, 0, 10, 10], [10, 0, 20, 10]], "labels": [0, 0]}]
    found = [{"boxes": [[5, 0, 15, 10], [0, 0, 10, 10]], "scores": [0.9, 0.8], "labels": [0, 0]}]
    np.testing.assert_array_equal(match_detections(found[0]["boxes"], found[0]["scores"], truth[0]["boxes"], 0.3),
                                  [True, True])
    assert class_average_precisions(found, truth, 0.3) == coco_average_precisions(
        [{k: np.asarray(v) for k, v in found[0].items()}], [{k: np.asarray(v) for k, v in truth[0].items()}], 0.3)
    assert mean_average_precision(found, truth, 0.3) == 1.0


# ----------------------------------------------------------------------------- error messages


@pytest.mark.parametrize("call, words", [
    (lambda: iou([[0, 0, 1, 1]], [[3, 0, 2, 1]]), ["boxes_b[0]", "x2 < x1"]),
    (lambda: iou([[0, 0, 1, 1], [0, 5, 1, 4]], [[0, 0, 1, 1]]), ["boxes_a[1]", "y2 < y1"]),
    (lambda: iou(np.zeros((3, 5)), [[0, 0, 1, 1]]), ["shape (N, 4)", "(3, 5)"]),
    (lambda: iou([0, 0, 1, 1], [[0, 0, 1, 1]]), ["shape (N, 4)", "(4,)"]),
    (lambda: iou([[0, np.nan, 1, 1]], [[0, 0, 1, 1]]), ["boxes_a[0]", "NaN"]),
    (lambda: nms([[0, 0, 1, 1]], [0.5], iou_threshold=1.5), ["iou_threshold", "between 0 and 1"]),
    (lambda: nms([[0, 0, 1, 1]], [0.5], iou_threshold=-0.1), ["iou_threshold", "between 0 and 1"]),
    (lambda: nms([[0, 0, 1, 1]], [0.5, 0.4]), ["scores", "one entry per box (1)"]),
    (lambda: nms([[0, 0, 1, 1]], [np.nan]), ["scores", "NaN"]),
    (lambda: nms([[0, 0, 1, 1]], [0.5], max_outputs=0), ["max_outputs", "positive"]),
    (lambda: roi_pool(np.zeros((4, 4)), [[0, 0, 2, 2]], -2), ["output_size", "positive"]),
    (lambda: roi_pool(np.zeros((4, 4)), [[0, 0, 2, 2]], (2, 0)), ["output_size", "positive"]),
    (lambda: roi_pool(np.zeros((4, 4)), [[0, 0, 5, 2]], 2), ["boxes[0]", "outside the feature map"]),
    (lambda: roi_pool(np.zeros((4, 4)), [[2, 0, 1, 2]], 2), ["boxes[0]", "x2 < x1"]),
    (lambda: roi_pool(np.zeros((1, 4, 4, 1)), [[0, 0, 1, 1]], 2), ["feature_map", "(H, W, C)"]),
    (lambda: anchor_boxes(4, 16, sizes=(32, -1)), ["sizes", "positive"]),
    (lambda: anchor_boxes(0, 16), ["feature_size", "positive"]),
    (lambda: encode_boxes([[0, 0, 0, 4]], [[0, 0, 4, 4]]), ["boxes[0]", "zero width or height"]),
    (lambda: encode_boxes([[0, 0, 2, 4]], [[0, 0, 4, 4], [0, 0, 4, 4]]), ["one row per anchor (2)"]),
    (lambda: match_anchors([[0, 0, 4, 4]], [[0, 0, 4, 4]], 0.3, 0.7), ["negative_iou", "positive_iou"]),
    (lambda: focal_loss([1, 0], [1.2, 0.1]), ["y_pred", "probabilities in [0, 1]", "sigmoid"]),
    (lambda: focal_loss([1, 0], [0.5]), ["same shape"]),
    (lambda: focal_loss([1], [0.5], gamma=-1), ["gamma", ">= 0"]),
    (lambda: focal_loss([1], [0.5], alpha=2), ["alpha", "between 0 and 1"]),
    (lambda: average_precision([0.5], [True], 0), ["num_ground_truths", "positive"]),
    (lambda: average_precision([0.5, 0.4], [True, True], 1), ["2 true positives", "only 1"]),
    (lambda: average_precision([0.5], [True], 1, interpolation="voc07"), ["interpolation", "'coco'"]),
    (lambda: mean_average_precision([{"boxes": [[0, 0, 1, 1]], "labels": [0]}],
                                    [{"boxes": [[0, 0, 1, 1]], "labels": [0]}]), ["detections[0]", "'scores'"]),
    (lambda: mean_average_precision([], []), ["at least one ground-truth box"]),
    (lambda: mean_average_precision([{"boxes": np.zeros((0, 4)), "scores": [], "labels": []}], []),
     ["one entry per image", "1 and 0"]),
    (lambda: mean_average_precision([{"boxes": [[0, 0, 1, 1]], "scores": [1], "labels": [0.5]}],
                                    [{"boxes": [[0, 0, 1, 1]], "labels": [0]}]), ["labels", "integer"]),
])
def test_bad_input_gets_a_message_naming_the_problem(call, words):
    with pytest.raises(ValueError) as error:
        call()
    for word in words:
        assert word in str(error.value), (word, str(error.value))


def test_wrong_types_raise_type_error():
    with pytest.raises(TypeError, match="boxes_a"):
        iou([["a", "b", "c", "d"]], [[0, 0, 1, 1]])
    with pytest.raises(TypeError, match="iou_threshold"):
        nms([[0, 0, 1, 1]], [1.0], iou_threshold="0.5")
    with pytest.raises(TypeError, match="true_positives"):
        average_precision([0.5], [1], 1)
