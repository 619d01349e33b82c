"""Time to quality of week 7's one-stage grid detector: validation mAP@0.5 against training seconds.

The detector of ``course/week7_detection_segmentation/03_one_stage_detector.ipynb``: a YOLO-style
8 × 8 grid on 64 × 64 digit canvases (``cnn_course.data.load_digit_canvases``), one box per cell,
three conv-BN-ReLU-maxpool blocks (16, 32, 64 filters), a 128-filter 3 × 3 convolution and a
1 × 1 convolution to 5 + 10 outputs per cell; Adam 2e-3, batches of 64; the loss is
5 × mean objectness cross-entropy over all cells + (5 × squared errors of centre and √size + class
cross-entropy) per object. **This script keeps its own copy of the network, targets, loss and
decoding** (about 60 lines below): the notebook writes them out for teaching and they are not in
the ``cnn_course`` package; if one changes, change the other.

The script trains ``--epochs`` epochs on ``--canvases`` training canvases and, after each epoch,
scores ``--validation`` validation canvases: each cell's box with score P(object) × P(class),
kept at score >= 0.01, NMS at IoU 0.5 (``cnn_course.detection.nms``; the thresholds the notebook
chooses on validation canvases with seed 0), and mAP@0.5 from
``cnn_course.detection.mean_average_precision``. It prints one line per epoch (training seconds,
their running total, validation mAP), the training seconds at which mAP first reached 0.7 and
0.8 (null if never), and as its last line one JSON object::

    {"canvases": 6000, "epochs": 12, "validation": 500, "seed": 0, "epoch_seconds": [...],
     "validation_map": [...], "seconds_to": {"0.7": ..., "0.8": ...}, "total_train_s": ...,
     "load_before": "...", "load_after": "..."}

Evaluation time is not counted in the training seconds.

Run: ``.venv/bin/python benchmarks/detector_time_to_quality.py`` (the notebook's ``FULL = True``
training: 12 epochs on 6,000 canvases, a few minutes on 2 quiet cores); ``--quick`` for a smoke run
(1 epoch on 256 canvases, 100 validation canvases).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hide TensorFlow's start-up lines

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_average  # noqa: E402

SIDE, GRID, NUM_CLASSES = 64, 8, 10
CELL = SIDE // GRID
OUTPUTS = 5 + NUM_CLASSES
SCORE_THRESHOLD, NMS_THRESHOLD = 0.01, 0.5
TARGETS = (0.7, 0.8)


def encode(boxes, classes) -> np.ndarray:
    """The (8, 8, 15) target of one canvas: the cell of each box's centre holds it (larger box first)."""
    target = np.zeros((GRID, GRID, OUTPUTS), np.float32)
    boxes = np.asarray(boxes, dtype=np.float64)
    for k in np.argsort(-(boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), kind="stable"):
        x1, y1, x2, y2 = boxes[k]
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        col, row = int(cx // CELL), int(cy // CELL)
        if target[row, col, 0] == 0:
            target[row, col, :5] = [1, cx / CELL - col, cy / CELL - row, np.sqrt((x2 - x1) / SIDE),
                                    np.sqrt((y2 - y1) / SIDE)]
            target[row, col, 5 + classes[k]] = 1
    return target


def grid_detector():
    import keras
    from keras import layers
    inputs = keras.Input((SIDE, SIDE, 1))
    x = layers.Rescaling(1 / 255)(inputs)
    for filters in (16, 32, 64, 128):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization(momentum=0.9)(x)
        x = layers.ReLU()(x)
        if filters != 128:
            x = layers.MaxPooling2D()(x)
    return keras.Model(inputs, layers.Conv2D(OUTPUTS, 1)(x))


def grid_loss(y_true, y_pred):
    from keras import ops
    has_object = y_true[..., 0]
    objects = ops.maximum(ops.sum(has_object), 1.0)
    objectness = ops.mean(ops.binary_crossentropy(has_object, y_pred[..., 0], from_logits=True))
    centre = ops.sum(has_object[..., None] * ops.square(ops.sigmoid(y_pred[..., 1:3]) - y_true[..., 1:3]))
    size = ops.sum(has_object[..., None] * ops.square(ops.sigmoid(y_pred[..., 3:5]) - y_true[..., 3:5]))
    classes = ops.sum(has_object * ops.categorical_crossentropy(y_true[..., 5:], y_pred[..., 5:], from_logits=True))
    return 5.0 * objectness + (5.0 * (centre + size) + classes) / objects


def detections(model, images) -> list[dict]:
    """Each canvas's boxes, scores and labels after the score threshold and NMS."""
    from cnn_course.detection import nms
    raw = model.predict(images, batch_size=250, verbose=0).astype(np.float64)
    sig = 1 / (1 + np.exp(-raw[..., :5]))
    probs = np.exp(raw[..., 5:] - raw[..., 5:].max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    rows, cols = np.mgrid[0:GRID, 0:GRID]
    found = []
    for k in range(len(images)):
        cx, cy = (cols + sig[k, ..., 1]) * CELL, (rows + sig[k, ..., 2]) * CELL
        w, h = sig[k, ..., 3] ** 2 * SIDE, sig[k, ..., 4] ** 2 * SIDE
        boxes = np.clip(np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1).reshape(-1, 4), 0, SIDE)
        scores = (sig[k, ..., 0, None] * probs[k]).reshape(-1, NUM_CLASSES).max(1)
        labels = probs[k].reshape(-1, NUM_CLASSES).argmax(1)
        keep = np.flatnonzero(scores >= SCORE_THRESHOLD)
        kept = keep[nms(boxes[keep], scores[keep], NMS_THRESHOLD)]
        found.append({"boxes": boxes[kept], "scores": scores[kept], "labels": labels[kept]})
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--canvases", type=int, default=6000)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--validation", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="1 epoch on 256 canvases, 100 validation canvases")
    args = parser.parse_args()
    if args.quick:
        args.canvases, args.epochs, args.validation = 256, 1, 100

    import keras
    from cnn_course.data import load_digit_canvases
    from cnn_course.detection import mean_average_precision

    load_before = load_average()
    train = load_digit_canvases(args.canvases, canvas_size=SIDE, split="train", seed=0, verbose=False)
    val = load_digit_canvases(args.validation, canvas_size=SIDE, split="validation", seed=0, verbose=False)
    y_train = np.stack([encode(b, c) for b, c in zip(train.boxes, train.classes, strict=True)])
    truths = [{"boxes": b, "labels": c} for b, c in zip(val.boxes, val.classes, strict=True)]
    print(f"Grid detector: {args.canvases:,} training canvases, {args.epochs} epoch(s), "
          f"{args.validation} validation canvases, seed {args.seed}; load {load_before}", flush=True)

    keras.utils.set_random_seed(args.seed)
    model = grid_detector()
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss=grid_loss)
    seconds, maps, total, reached = [], [], 0.0, {str(t): None for t in TARGETS}
    for epoch in range(args.epochs):
        start = time.perf_counter()
        model.fit(train.images, y_train, batch_size=64, epochs=1, verbose=0)
        seconds.append(time.perf_counter() - start)
        total += seconds[-1]
        maps.append(mean_average_precision(detections(model, val.images), truths, iou_threshold=0.5))
        for t in TARGETS:
            if reached[str(t)] is None and maps[-1] >= t:
                reached[str(t)] = round(total, 2)
        print(f"  epoch {epoch + 1}: {seconds[-1]:6.1f} s training (total {total:6.1f} s), "
              f"validation mAP@0.5 {maps[-1]:.3f}", flush=True)
    for t in TARGETS:
        when = reached[str(t)]
        print(f"validation mAP {t}: " + ("not reached" if when is None else f"after {when:.1f} s of training"))
    print(json.dumps({"canvases": args.canvases, "epochs": args.epochs, "validation": args.validation,
                      "seed": args.seed, "epoch_seconds": [round(s, 3) for s in seconds],
                      "validation_map": [round(m, 4) for m in maps], "seconds_to": reached,
                      "total_train_s": round(total, 2), "load_before": load_before,
                      "load_after": load_average()}))


if __name__ == "__main__":
    main()
