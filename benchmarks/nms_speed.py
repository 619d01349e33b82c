"""IoU and non-maximum suppression on 10⁴ boxes: numpy (``cnn_course.detection``) vs a Python loop vs C/C++.

Week 7 asks for IoU and NMS "vectorised"; this script measures what that buys, in one process:

``iou``
    the IoU matrix of the first ``--iou-rows`` boxes (default 1,000) against all ``--boxes``
    boxes (default 10,000: 10⁷ pairs): :func:`cnn_course.detection.iou` (numpy broadcasting), a
    plain Python loop over pairs (on lists of tuples, its fastest plain form) and pycocotools'
    C function ``pycocotools.mask.iou`` (TensorFlow has no public pairwise IoU). The loop runs
    on the first ``--loop-rows`` rows (default 20) and its time is scaled by ``iou-rows /
    loop-rows``: every pair costs the same, so the scaling is exact up to timer noise.
``nms``
    greedy NMS at IoU 0.5 of all the boxes with random scores: :func:`cnn_course.detection.nms`
    (one numpy IoU row per kept box), a plain Python loop (each box, in score order, against the
    boxes kept so far; timed in full, once) and ``tf.image.non_max_suppression`` (C++; one untimed
    call first). All three must keep the same boxes, which the script checks.

Two layouts of boxes, in a 1024 × 1024 image: ``random`` (corners uniform, sides uniform in
16-128 px: the boxes cover the image many times over and about half survive NMS) and
``clustered`` (100 objects with 100 jittered proposals each, like a detector's raw output: under a
tenth survive). The numpy NMS does one step per kept box, so its gain over the loop depends on
how many boxes survive; the layouts show both ends.

Times are the median of ``--repeats`` calls (the loops: one call). The last line printed is one
JSON object::

    {"boxes": 10000, "random": {"iou": {"numpy_s": ..., "loop_s": ..., "pycocotools_s": ...,
     "loop_over_numpy": ..., "numpy_over_pycocotools": ...}, "nms": {"kept": ..., "numpy_s": ...,
     "loop_s": ..., "tensorflow_s": ..., "loop_over_numpy": ..., "numpy_over_tensorflow": ...,
     "same_boxes": true}}, "clustered": {...}, "load_before": "...", "load_after": "..."}

Run: ``.venv/bin/python benchmarks/nms_speed.py`` (about a minute on 2 quiet cores, most of it the
Python loops); ``--quick`` for a smoke run (1,000 boxes, 100 IoU rows, one timed call).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hide TensorFlow's start-up lines

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_average  # noqa: E402

IMAGE_SIDE = 1024.0
IOU_THRESHOLD = 0.5


def make_boxes(layout: str, count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``count`` boxes (x1, y1, x2, y2) of the given layout and their random scores."""
    rng = np.random.default_rng(seed)
    if layout == "random":
        corner = rng.uniform(0, IMAGE_SIDE - 128, size=(count, 2))
        boxes = np.concatenate([corner, corner + rng.uniform(16, 128, size=(count, 2))], axis=1)
    else:
        objects = max(1, min(100, count // 10))
        corner = rng.uniform(0, IMAGE_SIDE - 160, size=(objects, 2))
        centres = corner + rng.uniform(16, 160, size=(objects, 2)) / 2
        sides = rng.uniform(16, 160, size=(objects, 2))
        which = rng.integers(0, objects, size=count)
        centre = centres[which] + rng.normal(scale=0.15, size=(count, 2)) * sides[which]
        side = sides[which] * np.exp(rng.normal(scale=0.2, size=(count, 2)))
        boxes = np.concatenate([centre - side / 2, centre + side / 2], axis=1)
    return boxes.astype(np.float32).astype(np.float64), rng.random(count).astype(np.float32).astype(np.float64)


def loop_iou(rows: list, columns: list) -> list:
    """IoU matrix pair by pair, the way one would first write it."""
    matrix = []
    for ax1, ay1, ax2, ay2 in rows:
        area_a = (ax2 - ax1) * (ay2 - ay1)
        row = []
        for bx1, by1, bx2, by2 in columns:
            width = min(ax2, bx2) - max(ax1, bx1)
            height = min(ay2, by2) - max(ay1, by1)
            if width <= 0 or height <= 0:
                row.append(0.0)
                continue
            inter = width * height
            union = area_a + (bx2 - bx1) * (by2 - by1) - inter
            row.append(inter / union if union > 0 else 0.0)
        matrix.append(row)
    return matrix


def loop_nms(boxes: list, scores: list, threshold: float) -> list:
    """Greedy NMS pair by pair: each box in score order against the boxes kept so far."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])  # sorted() is stable: ties by index
    kept = []
    for i in order:
        x1, y1, x2, y2 = boxes[i]
        area = (x2 - x1) * (y2 - y1)
        suppressed = False
        for j in kept:
            kx1, ky1, kx2, ky2 = boxes[j]
            width = min(x2, kx2) - max(x1, kx1)
            height = min(y2, ky2) - max(y1, ky1)
            if width > 0 and height > 0:
                inter = width * height
                if inter / (area + (kx2 - kx1) * (ky2 - ky1) - inter) > threshold:
                    suppressed = True
                    break
        if not suppressed:
            kept.append(i)
    return kept


def median_seconds(call, repeats: int) -> float:
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def once(call) -> tuple[float, object]:
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


def measure_layout(layout: str, count: int, iou_rows: int, loop_rows: int, repeats: int) -> dict:
    import tensorflow as tf
    from cnn_course.detection import iou, nms
    from pycocotools import mask as coco_mask

    boxes, scores = make_boxes(layout, count)
    as_tuples = [tuple(row) for row in boxes.tolist()]

    rows = boxes[:iou_rows]
    numpy_iou = median_seconds(lambda: iou(rows, boxes), repeats)
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
    pycocotools_iou = median_seconds(lambda: coco_mask.iou(xywh[:iou_rows], xywh, [0] * count), repeats)
    loop_part, loop_matrix = once(lambda: loop_iou(as_tuples[:loop_rows], as_tuples))
    np.testing.assert_allclose(loop_matrix, iou(boxes[:loop_rows], boxes), atol=1e-12)
    loop_iou_seconds = loop_part * iou_rows / loop_rows
    iou_row = {"rows": iou_rows, "columns": count, "numpy_s": round(numpy_iou, 6),
               "pycocotools_s": round(pycocotools_iou, 6), "loop_s": round(loop_iou_seconds, 6),
               "loop_rows_timed": loop_rows,
               "loop_over_numpy": round(loop_iou_seconds / numpy_iou, 2),
               "numpy_over_pycocotools": round(numpy_iou / pycocotools_iou, 2)}
    print(f"{layout:9s} IoU {iou_rows} x {count}: numpy {numpy_iou:8.3f} s, pycocotools (C) "
          f"{pycocotools_iou:8.3f} s, Python loop {loop_iou_seconds:8.2f} s (timed on {loop_rows} rows, scaled); "
          f"loop/numpy {iou_row['loop_over_numpy']:.1f}x, numpy/pycocotools {iou_row['numpy_over_pycocotools']:.1f}x",
          flush=True)

    def tensorflow_nms():
        return tf.image.non_max_suppression(boxes.astype(np.float32), scores.astype(np.float32), count,
                                            iou_threshold=IOU_THRESHOLD).numpy()

    tensorflow_nms()  # untimed: the first call sets up the op
    tensorflow_seconds = median_seconds(tensorflow_nms, repeats)
    numpy_seconds = median_seconds(lambda: nms(boxes, scores, IOU_THRESHOLD), repeats)
    loop_seconds, loop_kept = once(lambda: loop_nms(as_tuples, scores.tolist(), IOU_THRESHOLD))
    kept = nms(boxes, scores, IOU_THRESHOLD)
    same = kept.tolist() == loop_kept == tensorflow_nms().tolist()
    nms_row = {"kept": len(kept), "numpy_s": round(numpy_seconds, 6), "loop_s": round(loop_seconds, 6),
               "tensorflow_s": round(tensorflow_seconds, 6),
               "loop_over_numpy": round(loop_seconds / numpy_seconds, 2),
               "numpy_over_tensorflow": round(numpy_seconds / tensorflow_seconds, 2), "same_boxes": same}
    print(f"{layout:9s} NMS of {count} boxes ({len(kept)} kept): numpy {numpy_seconds:8.3f} s, "
          f"tf.image.non_max_suppression {tensorflow_seconds:8.3f} s, Python loop {loop_seconds:8.2f} s; "
          f"loop/numpy {nms_row['loop_over_numpy']:.1f}x, numpy/TensorFlow {nms_row['numpy_over_tensorflow']:.1f}x, "
          f"same boxes kept: {same}", flush=True)
    return {"iou": iou_row, "nms": nms_row}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boxes", type=int, default=10_000, help="boxes per layout (default 10000)")
    parser.add_argument("--iou-rows", type=int, default=1_000, help="rows of the IoU matrix (default 1000)")
    parser.add_argument("--loop-rows", type=int, default=20,
                        help="rows the Python IoU loop computes before scaling (default 20)")
    parser.add_argument("--layouts", default="random,clustered", help="comma separated: random, clustered")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls of the fast versions (default 3)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1000 boxes, 100 IoU rows, one timed call")
    args = parser.parse_args(argv)
    if args.quick:
        args.boxes, args.iou_rows, args.loop_rows, args.repeats = 1_000, 100, 10, 1
    layouts = [word.strip() for word in args.layouts.split(",")]
    unknown = sorted(set(layouts) - {"random", "clustered"})
    if unknown:
        parser.error(f"unknown layout(s) {unknown}: use random and/or clustered")
    iou_rows = min(args.iou_rows, args.boxes)
    loop_rows = min(args.loop_rows, iou_rows)

    load_before = load_average()
    print(f"load average before: {load_before}", flush=True)
    summary = {"boxes": args.boxes, "iou_threshold": IOU_THRESHOLD, "repeats": args.repeats}
    for layout in layouts:
        summary[layout] = measure_layout(layout, args.boxes, iou_rows, loop_rows, args.repeats)
    summary.update(load_before=load_before, load_after=load_average())
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
