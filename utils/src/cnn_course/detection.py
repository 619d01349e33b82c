"""Object detection in numpy: IoU, non-maximum suppression, RoI pooling, anchors, focal loss and mAP.

The pieces a detector is built from, small enough to read, each checked against a widely used
implementation in ``tests/test_detection.py``:

* **Boxes** are rows ``(x1, y1, x2, y2)``: the left, top, right and bottom edges, with
  ``x1 <= x2`` and ``y1 <= y2``. Edges are continuous coordinates: a box ``(0, 0, 4, 4)``
  covers the 4 × 4 pixels 0-3 and has area 16 (no ``+ 1``, as in pycocotools and TensorFlow).
* :func:`iou` compares every box of one set with every box of another (intersection over union).
* :func:`nms` keeps the best-scoring box of each cluster of overlapping boxes (greedy
  non-maximum suppression, the same boxes as ``tf.image.non_max_suppression``).
* :func:`roi_pool` cuts each region of interest out of one feature map and max-pools it to a
  fixed size (Girshick, "Fast R-CNN", 2015).
* :func:`anchor_boxes`, :func:`match_anchors`, :func:`encode_boxes` and :func:`decode_boxes`:
  the anchors of a region proposal network, their objectness targets and the (tx, ty, tw, th)
  box offsets it regresses (Ren, He, Girshick & Sun, "Faster R-CNN", 2015).
* :func:`focal_loss`: cross-entropy that down-weights easy examples (Lin, Goyal, Girshick, He &
  Dollár, "Focal loss for dense object detection", 2017).
* :func:`match_detections`, :func:`average_precision`, :func:`class_average_precisions` and
  :func:`mean_average_precision`: how detectors are scored (equal to pycocotools' COCOeval at
  one IoU threshold).

Taught in ``course/week7_detection_segmentation/01_tasks_iou_and_nms.ipynb`` (IoU, NMS),
``course/week7_detection_segmentation/02_two_stage_detectors.ipynb`` (RoI pooling, anchors)
and ``course/week7_detection_segmentation/03_one_stage_detector.ipynb`` (focal loss, mAP).

Examples
--------
>>> import numpy as np
>>> from cnn_course.detection import iou, nms
>>> boxes = np.array([[0, 0, 4, 4],     # area 16
...                   [2, 0, 6, 4],     # shares a 2 × 4 strip with the first: 8 / (16 + 16 - 8)
...                   [10, 10, 12, 12]])
>>> iou(boxes, boxes).round(3)
array([[1.   , 0.333, 0.   ],
       [0.333, 1.   , 0.   ],
       [0.   , 0.   , 1.   ]])
>>> nms(boxes, scores=[0.9, 0.8, 0.7], iou_threshold=0.3)  # box 1 overlaps box 0 by 0.333 > 0.3
array([0, 2])
"""

from __future__ import annotations

import numbers

import numpy as np

from ._checks import check_positive_int, numeric_array
from ._geometry import as_pair, check_word, is_int

__all__ = [
    "anchor_boxes",
    "average_precision",
    "class_average_precisions",
    "decode_boxes",
    "encode_boxes",
    "focal_loss",
    "iou",
    "match_anchors",
    "match_detections",
    "mean_average_precision",
    "nms",
    "roi_pool",
]

#: Keras' ``backend.epsilon()``: predictions are clipped to [EPSILON, 1 - EPSILON] inside the
#: logarithm of :func:`focal_loss`, so a certain wrong answer costs ~16.1, not infinity.
EPSILON = 1e-7

_INTERPOLATIONS = ("coco", "all")


# ----------------------------------------------------------------------------- checks


def _boxes(value, name: str) -> np.ndarray:
    """``value`` as a float64 (N, 4) array of valid boxes, or a ValueError/TypeError naming the problem."""
    array = numeric_array(value, name)
    if array.shape == (0,):  # [] : no boxes (an image without detections)
        array = array.reshape(0, 4)
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValueError(f"{name} must have shape (N, 4) as (x1, y1, x2, y2); got shape {array.shape}")
    array = array.astype(np.float64)
    bad = ~np.isfinite(array).all(axis=1)
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(f"{name}[{row}] = {array[row].tolist()} holds NaN or infinity; "
                         "box coordinates must be finite numbers")
    for axis, (low, high) in enumerate((("x1", "x2"), ("y1", "y2"))):
        flipped = array[:, axis + 2] < array[:, axis]
        if flipped.any():
            row = int(np.argmax(flipped))
            raise ValueError(
                f"{name}[{row}] = {array[row].tolist()} has {high} < {low} "
                f"({high} = {array[row, axis + 2]:g} < {low} = {array[row, axis]:g}); boxes are "
                "(x1, y1, x2, y2) with x1 <= x2 and y1 <= y2 (from a (x, y, width, height) box, "
                "x2 = x + width)")
    return array


def _vector(value, name: str, length: int | None = None, *, what: str = "numbers") -> np.ndarray:
    """``value`` as a finite float64 vector (of ``length`` entries when given)."""
    array = numeric_array(value, name)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of {what}, got shape {array.shape}")
    if length is not None and len(array) != length:
        raise ValueError(f"{name} must have one entry per box ({length}), got {len(array)}")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must hold finite numbers, got NaN or infinity at index "
                         f"{int(np.argmax(~np.isfinite(array)))}")
    return array


def _fraction(value, name: str, what: str = "an IoU") -> float:
    """A number in [0, 1] (an IoU threshold, unless ``what`` says otherwise) as a float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number between 0 and 1, got {value!r}")
    if not 0.0 <= float(value) <= 1.0:  # also refuses NaN
        raise ValueError(f"{name} must be between 0 and 1 ({what}), got {value!r}")
    return float(value)


def _positive_numbers(value, name: str) -> np.ndarray:
    array = numeric_array(value, name)
    array = np.atleast_1d(array).astype(np.float64)
    if array.ndim != 1 or len(array) == 0:
        raise ValueError(f"{name} must be a number or a non-empty list of numbers, got {value!r}")
    if not (np.isfinite(array) & (array > 0)).all():
        raise ValueError(f"{name} must all be positive numbers, got {value!r}")
    return array


# ----------------------------------------------------------------------------- IoU and NMS


def iou(boxes_a, boxes_b) -> np.ndarray:
    """Intersection over union of every box in ``boxes_a`` with every box in ``boxes_b``.

    ``IoU = area(A ∩ B) / area(A ∪ B)``, between 0 (apart) and 1 (the same box). Computed for
    all pairs at once by broadcasting a column of ``boxes_a`` against a row of ``boxes_b``: no
    Python loop over boxes. A box of zero area (a line or a point) has IoU 0 with everything,
    itself included, rather than the 0 / 0 = NaN the formula gives.

    Parameters
    ----------
    boxes_a : array_like, shape (N, 4)
    boxes_b : array_like, shape (M, 4)
        Boxes ``(x1, y1, x2, y2)`` with ``x1 <= x2`` and ``y1 <= y2``.

    Returns
    -------
    numpy.ndarray, shape (N, M), float64
        Entry ``[i, j]`` is the IoU of ``boxes_a[i]`` and ``boxes_b[j]``.

    Raises
    ------
    ValueError
        A shape other than (N, 4), NaN or infinite coordinates, ``x2 < x1`` or ``y2 < y1``.

    Examples
    --------
    >>> iou([[0, 0, 2, 2]], [[1, 1, 3, 3], [0, 0, 2, 1], [5, 5, 5, 9]])  # 1/7, 2/4, zero area
    array([[0.14285714, 0.5       , 0.        ]])
    """
    return _iou_matrix(_boxes(boxes_a, "boxes_a"), _boxes(boxes_b, "boxes_b"))


def _iou_matrix(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """:func:`iou` of boxes already checked (float64 (N, 4) and (M, 4))."""
    a = boxes_a[:, None, :]   # (N, 1, 4): broadcasts against ...
    b = boxes_b[None, :, :]   # ... (1, M, 4) to (N, M)
    width = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    height = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    intersection = width * height
    union = _area(a) + _area(b) - intersection
    # union == 0 only when both boxes have zero area; their IoU is 0 by our convention
    return np.divide(intersection, union, out=np.zeros_like(intersection), where=union > 0)


def _area(boxes: np.ndarray) -> np.ndarray:
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def nms(boxes, scores, iou_threshold=0.5, max_outputs=None) -> np.ndarray:
    """Greedy non-maximum suppression: keep the best box of each cluster of overlapping boxes.

    Repeat: take the remaining box with the highest score, keep it, and delete every remaining
    box whose IoU with it is **greater than** ``iou_threshold``; stop when no box remains or
    ``max_outputs`` boxes are kept. Each step computes one row of IoUs (the kept box against
    all remaining boxes) with numpy, so the Python loop runs once per *kept* box, not once per
    pair of boxes.

    The result is the same as ``tf.image.non_max_suppression(boxes, scores, max_outputs,
    iou_threshold)`` (checked on many random cases):

    * a box whose IoU *equals* the threshold survives (TensorFlow suppresses on ``IoU >
      threshold``), so ``iou_threshold=1`` keeps every box and ``iou_threshold=0`` deletes
      every box that shares some area with a kept one (boxes that only touch along an edge
      stay);
    * **ties**: among equal scores the box with the lower index comes first;
    * zero-area boxes overlap nothing and are never suppressed.

    (TensorFlow takes boxes as ``(y1, x1, y2, x2)``; IoU does not change when x and y swap
    places, so the same arrays can be passed to both. It computes IoUs in float32, we in
    float64: an IoU within ~1e-7 of the threshold may be judged differently.)

    Parameters
    ----------
    boxes : array_like, shape (N, 4)
        ``(x1, y1, x2, y2)`` with ``x1 <= x2`` and ``y1 <= y2``.
    scores : array_like, shape (N,)
        One finite score per box (higher is better).
    iou_threshold : float in [0, 1]
        Boxes overlapping a kept box by more than this are deleted.
    max_outputs : int, optional
        Keep at most this many boxes (all that survive by default).

    Returns
    -------
    numpy.ndarray of int64
        Indices into ``boxes`` of the kept boxes, highest score first.

    Raises
    ------
    ValueError
        Invalid boxes, scores of the wrong length or not finite, a threshold outside [0, 1],
        ``max_outputs`` not positive.

    Examples
    --------
    >>> boxes = [[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10], [20, 20, 30, 30]]
    >>> nms(boxes, [0.6, 0.9, 0.6, 0.1])  # box 1 (IoU 0.68 with 0 and 2) wins its cluster
    array([1, 3])
    >>> nms(boxes, [0.6, 0.9, 0.6, 0.1], iou_threshold=0.7)  # 0.68 <= 0.7: 0 survives, then deletes 2
    array([1, 0, 3])
    >>> nms(boxes, [0.6, 0.9, 0.6, 0.1], iou_threshold=0.7, max_outputs=2)
    array([1, 0])
    """
    boxes = _boxes(boxes, "boxes")
    scores = _vector(scores, "scores", len(boxes), what="scores")
    threshold = _fraction(iou_threshold, "iou_threshold")
    limit = len(boxes) if max_outputs is None else check_positive_int(
        int(max_outputs) if is_int(max_outputs) else max_outputs, "max_outputs")
    # a stable sort of -score keeps equal scores in index order: the tie rule
    remaining = np.argsort(-scores, kind="stable")
    kept = []
    while remaining.size and len(kept) < limit:
        best, rest = remaining[0], remaining[1:]
        kept.append(best)
        overlaps = _iou_matrix(boxes[best:best + 1], boxes[rest])[0]  # checked once, above
        remaining = rest[overlaps <= threshold]
    return np.array(kept, dtype=np.int64)


# ----------------------------------------------------------------------------- RoI pooling


def roi_pool(feature_map, boxes, output_size=(7, 7)) -> np.ndarray:
    """Fast R-CNN's RoI max pooling: each box's part of the feature map, max-pooled to one size.

    A two-stage detector runs the CNN **once** per image and cuts every region proposal out of
    the resulting feature map; RoI pooling turns regions of any size into the fixed
    ``output_size`` grid that the classifier's dense layers need (Girshick 2015, section 2.1).

    How a box becomes a grid of bins (the quantisation of the Fast R-CNN Caffe layer):

    1. The box edges, in feature-map coordinates (image coordinates divided by the network's
       stride), are **rounded to the nearest whole cell**, halves up:
       ``x_start = floor(x1 + 0.5)``, ``x_end = floor(x2 + 0.5)``, likewise for y. The region
       is columns ``x_start .. x_end - 1`` and rows ``y_start .. y_end - 1``, at least one
       cell each. (Caffe's layer treats ``x2`` as the index of the last column, ours as the
       right edge, so that ``(0, 0, W, H)`` is the whole map, as in :func:`iou`; Caffe's box
       ``(x1, y1, x2, y2)`` is our ``(x1, y1, x2 + 1, y2 + 1)``.)
    2. A region of ``h`` rows is split into ``out_h`` bins; bin ``i`` covers rows
       ``floor(i * h / out_h)`` to ``ceil((i + 1) * h / out_h) - 1`` of the region. When
       ``h`` is not a multiple of ``out_h`` neighbouring bins share a row; when ``h < out_h``
       rows repeat. No bin is ever empty. Columns likewise.
    3. Each bin's output is the maximum over its cells, per channel.

    The rounding moves the region by up to half a cell (several pixels of the image): the
    misalignment that RoIAlign (He et al., "Mask R-CNN", 2017) removes by bilinear sampling.

    Parameters
    ----------
    feature_map : array_like, shape (H, W, C) or (H, W)
        One image's feature map, channels last.
    boxes : array_like, shape (K, 4)
        ``(x1, y1, x2, y2)`` in feature-map cells, inside the map: ``0 <= x1 <= x2 <= W``
        and ``0 <= y1 <= y2 <= H``.
    output_size : int or (int, int)
        ``(out_h, out_w)`` of every pooled region (Fast R-CNN with VGG16 uses 7 × 7).

    Returns
    -------
    numpy.ndarray, shape (K, out_h, out_w, C) (or (K, out_h, out_w) for a 2-D map)
        The feature map's dtype.

    Raises
    ------
    ValueError
        Invalid boxes, boxes outside the map, a map that is not 2-D or 3-D or is empty, a
        non-positive ``output_size``.

    Examples
    --------
    >>> fmap = np.arange(16).reshape(4, 4)
    >>> roi_pool(fmap, [[0, 0, 4, 4]], 2)[0]  # the whole map: the maxima of its 2 × 2 blocks
    array([[ 5,  7],
           [13, 15]])
    >>> roi_pool(fmap, [[0.6, 0.4, 2.2, 1.5]], 2)[0]  # rounds to columns 1-1, rows 0-1
    array([[1, 1],
           [5, 5]])
    """
    array = numeric_array(feature_map, "feature_map")
    if array.ndim not in (2, 3):
        raise ValueError(f"feature_map must have shape (H, W, C) or (H, W) (one image, channels last), "
                         f"got shape {array.shape}")
    if 0 in array.shape:
        raise ValueError(f"feature_map must not be empty, got shape {array.shape}")
    map3 = array if array.ndim == 3 else array[:, :, None]
    height, width = map3.shape[:2]
    boxes = _boxes(boxes, "boxes")
    out_h, out_w = as_pair(output_size, "output_size", minimum=1)
    outside = (boxes[:, 0] < 0) | (boxes[:, 1] < 0) | (boxes[:, 2] > width) | (boxes[:, 3] > height)
    if outside.any():
        row = int(np.argmax(outside))
        raise ValueError(f"boxes[{row}] = {boxes[row].tolist()} reaches outside the feature map "
                         f"(width {width}, height {height}); clip the boxes to 0 <= x <= {width} and "
                         f"0 <= y <= {height} first, e.g. with np.clip")
    pooled = np.empty((len(boxes), out_h, out_w, map3.shape[2]), dtype=map3.dtype)
    for k, (x1, y1, x2, y2) in enumerate(boxes):
        rows = _bin_edges(y1, y2, height, out_h)
        cols = _bin_edges(x1, x2, width, out_w)
        for i, (top, bottom) in enumerate(rows):
            for j, (left, right) in enumerate(cols):
                pooled[k, i, j] = map3[top:bottom, left:right].max(axis=(0, 1))
    return pooled if array.ndim == 3 else pooled[..., 0]


def _bin_edges(low: float, high: float, size: int, bins: int) -> list[tuple[int, int]]:
    """``bins`` (start, stop) index ranges along one axis of a box from ``low`` to ``high``."""
    start = min(int(np.floor(low + 0.5)), size - 1)    # round half up; keep one cell inside the map
    length = max(int(np.floor(high + 0.5)) - start, 1)  # at least one cell
    return [(start + (i * length) // bins, start + -(-(i + 1) * length // bins))  # floor, ceil
            for i in range(bins)]


# ----------------------------------------------------------------------------- anchors


def anchor_boxes(feature_size, stride, sizes=(32, 64, 128), aspect_ratios=(0.5, 1.0, 2.0)) -> np.ndarray:
    """The anchors of a region proposal network: boxes of several sizes and shapes at every cell.

    Faster R-CNN's RPN slides over a feature map of ``feature_size`` cells, each cell ``stride``
    image pixels from the next. At every cell it predicts, for each of ``A = len(sizes) *
    len(aspect_ratios)`` reference boxes (the anchors), whether an object is there and how to
    move the anchor onto it. An anchor of size ``s`` and aspect ratio ``r = height / width``
    has area ``s²``: width ``s / sqrt(r)``, height ``s * sqrt(r)``; it is centred on its cell,
    at image coordinates ``((col + 0.5) * stride, (row + 0.5) * stride)``. The paper uses sizes
    128, 256, 512 and ratios 1:2, 1:1, 2:1 on VGG16's stride-16 map: 9 anchors per cell.

    Parameters
    ----------
    feature_size : int or (int, int)
        ``(rows, cols)`` of the feature map.
    stride : positive number
        Image pixels per feature-map cell.
    sizes : number or sequence of positive numbers
        Square roots of the anchor areas, in image pixels.
    aspect_ratios : number or sequence of positive numbers
        Height divided by width.

    Returns
    -------
    numpy.ndarray, shape (rows * cols * A, 4), float64
        ``(x1, y1, x2, y2)`` in image pixels, cell by cell in row-major order (the first row of
        cells left to right, then the next row); within a cell, sizes in the order given and,
        for each size, the aspect ratios in the order given. Anchors near the border may reach
        outside the image.

    Raises
    ------
    ValueError
        Non-positive sizes, ratios, stride or feature size.

    Examples
    --------
    >>> anchor_boxes(1, 16, sizes=16, aspect_ratios=(1, 4))  # 16 × 16, then 8 wide × 32 high
    array([[ 0.,  0., 16., 16.],
           [ 4., -8., 12., 24.]])
    >>> anchor_boxes((2, 3), 16).shape  # 6 cells × 9 anchors
    (54, 4)
    """
    rows, cols = as_pair(feature_size, "feature_size", minimum=1)
    step = _positive_numbers(stride, "stride")
    if step.size != 1:
        raise ValueError(f"stride must be one positive number, got {stride!r}")
    sizes = _positive_numbers(sizes, "sizes")
    ratios = _positive_numbers(aspect_ratios, "aspect_ratios")
    widths = (sizes[:, None] / np.sqrt(ratios)[None, :]).ravel()   # (A,), sizes outer, ratios inner
    heights = (sizes[:, None] * np.sqrt(ratios)[None, :]).ravel()
    centre_y, centre_x = np.meshgrid((np.arange(rows) + 0.5) * step[0], (np.arange(cols) + 0.5) * step[0],
                                     indexing="ij")
    cx, cy = centre_x.reshape(-1, 1), centre_y.reshape(-1, 1)        # (cells, 1) against (A,)
    anchors = np.stack([cx - widths / 2, cy - heights / 2, cx + widths / 2, cy + heights / 2], axis=-1)
    return anchors.reshape(-1, 4)


def _centres_and_sizes(boxes: np.ndarray, name: str) -> tuple[np.ndarray, ...]:
    width, height = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    flat = (width <= 0) | (height <= 0)
    if flat.any():
        row = int(np.argmax(flat))
        raise ValueError(f"{name}[{row}] = {boxes[row].tolist()} has zero width or height; the "
                         "(tx, ty, tw, th) encoding divides by the anchor's size and takes the "
                         "logarithm of the box's, so both need positive width and height")
    return boxes[:, 0] + width / 2, boxes[:, 1] + height / 2, width, height


def _paired(boxes, anchors, boxes_name: str) -> tuple[np.ndarray, np.ndarray]:
    anchors = _boxes(anchors, "anchors")
    array = numeric_array(boxes, boxes_name)
    if array.ndim != 2 or array.shape[1] != 4 or len(array) != len(anchors):
        raise ValueError(f"{boxes_name} must have shape (N, 4) with one row per anchor ({len(anchors)}), "
                         f"got shape {array.shape}")
    return array, anchors


def encode_boxes(boxes, anchors) -> np.ndarray:
    """The offsets ``(tx, ty, tw, th)`` that move each anchor onto its box (Faster R-CNN, eq. 2).

    With centres ``(x, y)``, widths ``w`` and heights ``h`` of the box and ``(xa, ya, wa, ha)``
    of the anchor::

        tx = (x - xa) / wa      ty = (y - ya) / ha      tw = log(w / wa)      th = log(h / ha)

    Shifts are measured in anchor widths and sizes as log-ratios, so the same numbers mean the
    same move for a small and a large anchor: this is what the regression head learns.
    :func:`decode_boxes` undoes it.

    Parameters
    ----------
    boxes : array_like, shape (N, 4)
        Target boxes ``(x1, y1, x2, y2)``, each with positive width and height.
    anchors : array_like, shape (N, 4)
        One anchor per box (e.g. ``anchors[matched]`` from :func:`match_anchors`).

    Returns
    -------
    numpy.ndarray, shape (N, 4), float64

    Raises
    ------
    ValueError
        Invalid boxes, a different number of boxes and anchors, zero width or height.

    Examples
    --------
    >>> encode_boxes([[5, 0, 13, 16]], [[0, 0, 16, 16]])  # half as wide, centre 1/16 anchor right
    array([[ 0.0625    ,  0.        , -0.69314718,  0.        ]])
    """
    boxes, anchors = _paired(boxes, anchors, "boxes")
    boxes = _boxes(boxes, "boxes")
    x, y, w, h = _centres_and_sizes(boxes, "boxes")
    xa, ya, wa, ha = _centres_and_sizes(anchors, "anchors")
    return np.stack([(x - xa) / wa, (y - ya) / ha, np.log(w / wa), np.log(h / ha)], axis=1)


def decode_boxes(deltas, anchors) -> np.ndarray:
    """The boxes that the offsets ``(tx, ty, tw, th)`` make of the anchors: :func:`encode_boxes` undone.

    ``x = xa + tx * wa``, ``y = ya + ty * ha``, ``w = wa * exp(tw)``, ``h = ha * exp(th)``, then
    back to corners. ``decode_boxes(encode_boxes(b, a), a)`` is ``b`` up to rounding. (Trained
    detectors often clip ``tw`` and ``th`` before ``exp`` so that a wild prediction cannot give
    an infinite box; that is left to the caller.)

    Parameters
    ----------
    deltas : array_like, shape (N, 4)
        ``(tx, ty, tw, th)`` per anchor, e.g. a regression head's output.
    anchors : array_like, shape (N, 4)

    Returns
    -------
    numpy.ndarray, shape (N, 4), float64
        Boxes ``(x1, y1, x2, y2)``.

    Examples
    --------
    >>> decode_boxes([[0.0625, 0, np.log(0.5), 0]], [[0, 0, 16, 16]])
    array([[ 5.,  0., 13., 16.]])
    """
    deltas, anchors = _paired(deltas, anchors, "deltas")
    deltas = deltas.astype(np.float64)
    if not np.isfinite(deltas).all():
        raise ValueError("deltas must hold finite numbers, got NaN or infinity")
    xa, ya, wa, ha = _centres_and_sizes(anchors, "anchors")
    x, y = xa + deltas[:, 0] * wa, ya + deltas[:, 1] * ha
    w, h = wa * np.exp(deltas[:, 2]), ha * np.exp(deltas[:, 3])
    return np.stack([x - w / 2, y - h / 2, x + w / 2, y + h / 2], axis=1)


def match_anchors(anchors, gt_boxes, positive_iou=0.7, negative_iou=0.3):
    """Objectness targets of a region proposal network: which anchors show an object.

    The labelling of Faster R-CNN (Ren et al. 2015, section 3.1.2):

    * **positive** (1): an anchor whose IoU with some ground-truth box is at least
      ``positive_iou``, and, for every ground-truth box, the anchor(s) with the highest IoU with
      it (so that a box no anchor fits well still gets one; ties all count; a box that overlaps
      no anchor at all gets none);
    * **negative** (0): an anchor whose IoU with every ground-truth box is below
      ``negative_iou`` (background);
    * **ignored** (-1): the rest; they do not enter the loss.

    Parameters
    ----------
    anchors : array_like, shape (A, 4)
    gt_boxes : array_like, shape (G, 4)
        The true boxes of one image (G may be 0: then every anchor is negative).
    positive_iou, negative_iou : float in [0, 1]
        ``negative_iou <= positive_iou``.

    Returns
    -------
    labels : numpy.ndarray of int64, shape (A,)
        1, 0 or -1 as above.
    matched : numpy.ndarray of int64, shape (A,)
        For every anchor the index of the ground-truth box it overlaps most (the first of
        equals), -1 when there are no boxes; the regression target of a positive anchor is
        ``encode_boxes(gt_boxes[matched[pos]], anchors[pos])``.

    Examples
    --------
    >>> anchors = [[0, 0, 10, 10], [0, 0, 12, 10], [20, 0, 30, 10], [0, 20, 10, 30]]
    >>> gt = [[0, 0, 11, 10], [21, 1, 29, 9]]
    >>> labels, matched = match_anchors(anchors, gt)
    >>> labels  # IoUs 0.91, 0.92: positive; 0.64 < 0.7 but the best for box 1; 0: negative
    array([1, 1, 1, 0])
    >>> matched
    array([0, 0, 1, 0])
    """
    anchors = _boxes(anchors, "anchors")
    gt_boxes = _boxes(gt_boxes, "gt_boxes")
    high = _fraction(positive_iou, "positive_iou")
    low = _fraction(negative_iou, "negative_iou")
    if low > high:
        raise ValueError(f"negative_iou ({low}) must not exceed positive_iou ({high})")
    labels = np.zeros(len(anchors), dtype=np.int64)
    if len(gt_boxes) == 0 or len(anchors) == 0:
        return labels, np.full(len(anchors), -1, dtype=np.int64)
    overlaps = _iou_matrix(anchors, gt_boxes)                # (A, G)
    matched = overlaps.argmax(axis=1)
    best_per_anchor = overlaps[np.arange(len(anchors)), matched]
    labels[best_per_anchor >= low] = -1
    labels[best_per_anchor >= high] = 1
    best_per_box = overlaps.max(axis=0)                      # (G,)
    is_best = (overlaps == best_per_box[None, :]) & (best_per_box[None, :] > 0)
    labels[is_best.any(axis=1)] = 1
    return labels, matched.astype(np.int64)


# ----------------------------------------------------------------------------- focal loss


def focal_loss(y_true, y_pred, gamma=2.0, alpha=0.25, reduction="mean"):
    """Binary focal loss on probabilities (Lin et al. 2017): cross-entropy that ignores easy examples.

    With ``p_t`` the probability given to the true class (``p`` where ``y = 1``, ``1 - p``
    where ``y = 0``)::

        FL = -alpha_t * (1 - p_t) ** gamma * log(p_t),     alpha_t = alpha if y = 1 else 1 - alpha

    A detector sees ~100,000 anchors per image and almost all are easy background; with
    cross-entropy (``gamma = 0``, ``alpha = None``) their many small losses outweigh the few
    objects. The factor ``(1 - p_t) ** gamma`` shrinks the loss of an example classified
    with ``p_t = 0.9`` 100-fold at ``gamma = 2``. The paper's defaults are ``gamma = 2``,
    ``alpha = 0.25``. ``alpha=None`` drops the class weight (``alpha_t = 1``).

    Written for soft labels too: ``y_true`` may lie anywhere in [0, 1], and then ``p_t = y p +
    (1 - y)(1 - p)``, ``alpha_t = y alpha + (1 - y)(1 - alpha)`` and the cross-entropy is
    ``-(y log p + (1 - y) log(1 - p))``. Inside the logarithm ``p`` is clipped to
    [1e-7, 1 - 1e-7] (Keras' epsilon).

    **Relation to** ``keras.losses.BinaryFocalCrossentropy(apply_class_balancing, alpha,
    gamma, from_logits, label_smoothing)``: the same formula, with

    * ``alpha=a`` here = ``apply_class_balancing=True, alpha=a`` there; ``alpha=None`` here =
      Keras' default ``apply_class_balancing=False`` (note: Keras' ``alpha=0.25`` does nothing
      unless class balancing is switched on);
    * probabilities here = ``from_logits=False``; for logits ``z`` pass ``sigmoid(z)`` here;
    * Keras' ``label_smoothing=s`` replaces ``y`` by ``y (1 - s) + s / 2``: pass those soft
      labels here;
    * ``reduction="mean"`` (the mean over all entries) = Keras' default
      ``"sum_over_batch_size"`` (mean over the last axis, then over the batch, the same number
      when every row has the same length); the paper instead divides the sum by the number of
      positive anchors: use ``reduction="sum"`` and divide.

    Works on numpy arrays (returns numpy) and, unchanged, on Keras/TensorFlow/JAX tensors
    through ``keras.ops``, so it can be given to ``model.compile(loss=focal_loss)``
    (values are only checked for numpy input; for per-sample weights in ``fit``, compile with
    ``functools.partial(focal_loss, reduction="none")`` and let Keras average).

    Parameters
    ----------
    y_true : array_like
        Targets in [0, 1] (usually 0 or 1).
    y_pred : array_like, same shape
        Predicted probabilities of class 1, in [0, 1].
    gamma : float >= 0
        Focusing parameter; 0 gives (alpha-weighted) cross-entropy.
    alpha : float in [0, 1] or None
        Weight of class 1 (class 0 gets ``1 - alpha``); None for no weighting.
    reduction : {"mean", "sum", "none"}

    Returns
    -------
    float or numpy.ndarray (a tensor for tensor input)

    Examples
    --------
    >>> y, p = [1, 0, 1], [0.9, 0.1, 0.5]
    >>> round(float(focal_loss(y, p, gamma=0, alpha=None)), 4)  # cross-entropy: -(2 log .9 + log .5) / 3
    0.3013
    >>> focal_loss(y, p, reduction="none").round(6)  # 0.25·0.01·0.105, 0.75·0.01·0.105, 0.25·0.25·0.693
    array([0.000263, 0.00079 , 0.043322])
    """
    reduction = check_word(reduction, "reduction", ("mean", "sum", "none"))
    if isinstance(gamma, (bool, np.bool_)) or not isinstance(gamma, numbers.Real) or not gamma >= 0:
        raise ValueError(f"gamma must be a number >= 0 (0 gives cross-entropy), got {gamma!r}")
    if alpha is not None:
        alpha = _fraction(alpha, "alpha", "the weight of class 1; None for no weighting")
    if _is_tensor(y_true) or _is_tensor(y_pred):
        from keras import ops
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = ops.cast(y_true, y_pred.dtype)
    else:
        ops = np
        y_true, y_pred = _probabilities(y_true, "y_true"), _probabilities(y_pred, "y_pred")
        if y_true.shape != y_pred.shape:
            raise ValueError(f"y_true and y_pred must have the same shape, got {y_true.shape} and {y_pred.shape}")
    clipped = ops.clip(y_pred, EPSILON, 1 - EPSILON)
    cross_entropy = -(y_true * ops.log(clipped) + (1 - y_true) * ops.log(1 - clipped))
    p_true = y_true * y_pred + (1 - y_true) * (1 - y_pred)
    loss = ops.power(1 - p_true, gamma) * cross_entropy
    if alpha is not None:
        loss = (y_true * alpha + (1 - y_true) * (1 - alpha)) * loss
    if reduction == "mean":
        loss = ops.mean(loss)
    elif reduction == "sum":
        loss = ops.sum(loss)
    return float(loss) if ops is np and reduction != "none" else loss


def _is_tensor(value) -> bool:
    return not isinstance(value, (np.ndarray, np.generic, list, tuple, numbers.Number))


def _probabilities(value, name: str) -> np.ndarray:
    array = numeric_array(value, name, booleans=True).astype(np.float64)
    if not ((array >= 0) & (array <= 1)).all():  # also refuses NaN
        raise ValueError(f"{name} must hold probabilities in [0, 1], got values from "
                         f"{np.nanmin(array):g} to {np.nanmax(array):g}"
                         + (" and NaN" if np.isnan(array).any() else "")
                         + (" (logits? apply a sigmoid first)" if name == "y_pred" else ""))
    return array


# ----------------------------------------------------------------------------- mAP


def match_detections(boxes, scores, gt_boxes, iou_threshold=0.5) -> np.ndarray:
    """Which detections of one class in one image are true positives (COCO's greedy matching).

    Detections are taken in order of decreasing score (equal scores in the order given); each
    is matched to the ground-truth box, not yet matched, with which its IoU is highest, if that
    IoU is **at least** ``iou_threshold``, and is then a true positive. A detection left
    without a box (a duplicate, or a box in the wrong place) is a false positive. Among ground
    truths with exactly equal IoU the later one is taken, as pycocotools does.

    Parameters
    ----------
    boxes : array_like, shape (N, 4)
    scores : array_like, shape (N,)
    gt_boxes : array_like, shape (G, 4)
    iou_threshold : float in [0, 1]

    Returns
    -------
    numpy.ndarray of bool, shape (N,)
        True for the true positives, in the order of ``boxes``.

    Examples
    --------
    >>> gt = [[0, 0, 10, 10]]
    >>> match_detections([[0, 0, 10, 9], [0, 0, 10, 10]], [0.6, 0.9], gt)  # 2nd scores higher
    array([False,  True])
    """
    boxes = _boxes(boxes, "boxes")
    scores = _vector(scores, "scores", len(boxes), what="scores")
    gt_boxes = _boxes(gt_boxes, "gt_boxes")
    threshold = _fraction(iou_threshold, "iou_threshold")
    true_positive = np.zeros(len(boxes), dtype=bool)
    if len(gt_boxes) == 0 or len(boxes) == 0:
        return true_positive
    overlaps = _iou_matrix(boxes, gt_boxes)
    taken = np.zeros(len(gt_boxes), dtype=bool)
    for detection in np.argsort(-scores, kind="stable"):
        candidates = np.where(taken, -1.0, overlaps[detection])
        last_best = len(candidates) - 1 - int(np.argmax(candidates[::-1]))  # the later of equals
        if candidates[last_best] >= threshold:
            taken[last_best] = True
            true_positive[detection] = True
    return true_positive


def average_precision(scores, true_positives, num_ground_truths, interpolation="coco") -> float:
    """Average precision of one class: the area under its precision-recall curve.

    Rank all detections of the class (over all images) by score, highest first; after the
    ``k`` first, precision is (true positives so far) / ``k`` and recall is (true positives so
    far) / ``num_ground_truths``. The curve is first made non-increasing: the precision at a
    recall becomes the best precision at that recall or any higher one (the "interpolated"
    precision). Then

    * ``interpolation="coco"`` (default): the mean of the interpolated precision at the 101
      recalls 0, 0.01, ..., 1 (precision 0 at recalls never reached): COCO's definition,
      used by pycocotools and in most papers since 2015, and the one our tests check against
      pycocotools;
    * ``interpolation="all"``: the exact area under the interpolated curve, summing
      (recall step) × (precision) at every true positive: PASCAL VOC's definition from 2010 on.

    The two differ by at most ~1/101 per step of the curve; both give 1 for a perfect ranking.
    Equal scores keep the order given (pass detections image by image, as
    :func:`class_average_precisions` does, to reproduce pycocotools' order).

    Parameters
    ----------
    scores : array_like, shape (N,)
    true_positives : array_like of bool, shape (N,)
        From :func:`match_detections`.
    num_ground_truths : int > 0
        All true boxes of the class, found or not: the missed ones lower the recall.
    interpolation : {"coco", "all"}

    Returns
    -------
    float in [0, 1]

    Examples
    --------
    >>> # 2 true boxes; detections ranked TP, FP, TP: precision 1, 1/2, 2/3 at recall .5, .5, 1
    >>> round(average_precision([0.9, 0.8, 0.7], [True, False, True], 2, interpolation="all"), 4)
    0.8333
    >>> round(average_precision([0.9, 0.8, 0.7], [True, False, True], 2), 4)  # (51·1 + 50·2/3) / 101
    0.835
    """
    interpolation = check_word(interpolation, "interpolation", _INTERPOLATIONS)
    scores = _vector(scores, "scores", what="scores")
    flags = np.asarray(true_positives)
    if flags.dtype != bool:
        raise TypeError(f"true_positives must be an array of booleans (True for a true positive), "
                        f"got dtype {flags.dtype}")
    if flags.shape != scores.shape:
        raise ValueError(f"true_positives must have one entry per score ({len(scores)}), got shape {flags.shape}")
    total = check_positive_int(int(num_ground_truths) if is_int(num_ground_truths) else num_ground_truths,
                               "num_ground_truths")
    if flags.sum() > total:
        raise ValueError(f"there are {int(flags.sum())} true positives but only {total} ground-truth "
                         "boxes; each box can be found once")
    ranked = flags[np.argsort(-scores, kind="stable")]
    hits = np.cumsum(ranked)
    recall = hits / total
    precision = hits / np.arange(1, len(ranked) + 1)
    # interpolated precision: the best precision at this recall or beyond
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    if interpolation == "all":
        return float(np.sum(np.diff(recall, prepend=0.0) * envelope))
    recall_points = np.linspace(0.0, 1.0, 101)
    first_reaching = np.searchsorted(recall, recall_points, side="left")
    reached = first_reaching < len(ranked)
    values = np.zeros(len(recall_points))
    values[reached] = envelope[first_reaching[reached]]
    return float(values.mean())


def _image_entries(items, name: str, keys: tuple[str, ...]) -> list[dict]:
    if isinstance(items, dict) or not hasattr(items, "__len__"):
        raise TypeError(f"{name} must be a list with one dict per image, got {type(items).__name__}")
    checked = []
    for index, item in enumerate(items):
        where = f"{name}[{index}]"
        if not isinstance(item, dict) or not set(keys) <= set(item):
            raise ValueError(f"{where} must be a dict with keys " + ", ".join(map(repr, keys))
                             + f", got {type(item).__name__}"
                             + (f" with keys {sorted(item)}" if isinstance(item, dict) else ""))
        boxes = _boxes(item["boxes"], f"{where}['boxes']")
        entry = {"boxes": boxes, "labels": _labels(item["labels"], f"{where}['labels']", len(boxes))}
        if "scores" in keys:
            entry["scores"] = _vector(item["scores"], f"{where}['scores']", len(boxes), what="scores")
        checked.append(entry)
    return checked


def _labels(value, name: str, length: int) -> np.ndarray:
    array = np.asarray(value)
    if array.size == 0:
        array = array.astype(np.int64)
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must be a 1-D array of integer class numbers, got "
                         f"shape {array.shape}, dtype {array.dtype}")
    if len(array) != length:
        raise ValueError(f"{name} must have one entry per box ({length}), got {len(array)}")
    return array.astype(np.int64)


def class_average_precisions(detections, ground_truths, iou_threshold=0.5, interpolation="coco") -> dict:
    """Average precision of every class that has at least one ground-truth box.

    Each image's detections of a class are matched to its true boxes of that class with
    :func:`match_detections`; the detections of all images are then ranked together and
    scored with :func:`average_precision`. A class with detections but no true box in any
    image is left out (its AP is undefined; pycocotools leaves it out too).

    With ``interpolation="coco"`` the result equals pycocotools' ``COCOeval`` (bounding boxes,
    ``iouThrs=[iou_threshold]``, the single area range "all", ``maxDets`` at least the number
    of detections per image): its precision table averaged over recall for each class.
    Differences from COCOeval by design: no "crowd" boxes, no area ranges, no limit on the
    detections per image, and boxes are (x1, y1, x2, y2) rather than (x, y, width, height).

    Parameters
    ----------
    detections : list of dict, one per image
        ``{"boxes": (N, 4), "scores": (N,), "labels": (N,) ints}``.
    ground_truths : list of dict, one per image, in the same order
        ``{"boxes": (G, 4), "labels": (G,) ints}``.
    iou_threshold : float in [0, 1]
        A detection must overlap its true box at least this much.
    interpolation : {"coco", "all"}
        See :func:`average_precision`.

    Returns
    -------
    dict
        Class number -> AP, classes in increasing order.

    Examples
    --------
    >>> truth = [{"boxes": [[0, 0, 10, 10], [20, 20, 30, 30]], "labels": [0, 1]}]
    >>> found = [{"boxes": [[0, 0, 10, 10], [50, 50, 60, 60]], "scores": [0.9, 0.8], "labels": [0, 1]}]
    >>> class_average_precisions(found, truth)  # class 1's only detection is in the wrong place
    {0: 1.0, 1: 0.0}
    """
    detections = _image_entries(detections, "detections", ("boxes", "scores", "labels"))
    ground_truths = _image_entries(ground_truths, "ground_truths", ("boxes", "labels"))
    if len(detections) != len(ground_truths):
        raise ValueError(f"detections and ground_truths must have one entry per image each, got "
                         f"{len(detections)} and {len(ground_truths)}")
    threshold = _fraction(iou_threshold, "iou_threshold")
    interpolation = check_word(interpolation, "interpolation", _INTERPOLATIONS)
    classes = sorted({int(label) for truth in ground_truths for label in truth["labels"]})
    results = {}
    for label in classes:
        scores, flags, total = [], [], 0
        for found, truth in zip(detections, ground_truths, strict=True):
            mine, theirs = found["labels"] == label, truth["labels"] == label
            total += int(theirs.sum())
            scores.append(found["scores"][mine])
            flags.append(match_detections(found["boxes"][mine], scores[-1], truth["boxes"][theirs], threshold))
        # image by image, each in the order given: average_precision's stable ranking then puts
        # equal scores in pycocotools' order (earlier image first, then the order of the results)
        results[label] = average_precision(np.concatenate(scores), np.concatenate(flags), total, interpolation)
    return results


def mean_average_precision(detections, ground_truths, iou_threshold=0.5, interpolation="coco") -> float:
    """mAP: the mean over classes of :func:`class_average_precisions` ("mAP@0.5" by default).

    Classes without any ground-truth box do not count. With ``interpolation="coco"`` this is
    pycocotools' AP at one IoU threshold (``iouThrs=[0.5]`` gives COCO's "AP50"); COCO's
    headline "AP" is the mean of this over the thresholds 0.50, 0.55, ..., 0.95.

    Parameters
    ----------
    detections, ground_truths, iou_threshold, interpolation
        As in :func:`class_average_precisions`.

    Returns
    -------
    float in [0, 1]

    Raises
    ------
    ValueError
        No ground-truth box in any image, and the errors of :func:`class_average_precisions`.

    Examples
    --------
    >>> truth = [{"boxes": [[0, 0, 10, 10], [20, 20, 30, 30]], "labels": [0, 1]}]
    >>> found = [{"boxes": [[0, 0, 10, 10], [50, 50, 60, 60]], "scores": [0.9, 0.8], "labels": [0, 1]}]
    >>> mean_average_precision(found, truth)  # (1 + 0) / 2
    0.5
    """
    per_class = class_average_precisions(detections, ground_truths, iou_threshold, interpolation)
    if not per_class:
        raise ValueError("mean_average_precision needs at least one ground-truth box; "
                         "ground_truths holds none")
    return float(np.mean(list(per_class.values())))
