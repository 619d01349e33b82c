"""Time to quality of week 7's U-Net on the nuclei image: validation IoU against training seconds.

The recipe of ``course/week7_detection_segmentation/05_unet_nuclei.ipynb``: ``data.nuclei_regions``
(training crops of 64×64 from columns 0-255, validation strip 256-383), joint augmentation (quarter
turns and a mirror for image and mask, a gamma curve and a gain for the image), a U-Net of depth 3
(``segmentation.unet``, no batch normalisation) with ``--base-filters`` filters at the first level,
Adam 2e-3, batches of 16 crops, and the loss ``--loss`` (``bce``: binary cross-entropy, ``bce+dice``:
plus the soft Dice loss; the notebook trains both and keeps the better one on the validation strip).

Every ``--every`` steps the training pauses and the whole validation strip (512×128) is scored: IoU at
the threshold 0.5 (the notebook then tunes the threshold on the same strip). Seconds count training
only (the first chunk includes building the graph), not the scoring. The test strip is never used.

The last line printed is one JSON object::

    {"recipe": {...}, "curve": [{"steps": 25, "seconds": ..., "validation_iou": ...}, ...],
     "time_to_iou": {"0.8": seconds or null, "0.85": ...}, "steps_to_iou": {...},
     "threads": ..., "load_before": "...", "load_after": "..."}

Run: ``.venv/bin/python benchmarks/unet_time_to_quality.py`` (300 steps with 8 filters, about 40 s
on 2 quiet cores; ``--base-filters 16`` is the notebook's FULL option); ``--quick`` for a smoke run
(50 steps, 64 crops).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hide TensorFlow's start-up lines

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_average  # noqa: E402

CROP = 64
BATCH = 16
DEPTH = 3
LEARNING_RATE = 2e-3
TARGETS = (0.8, 0.85)


def augmented_batches(images, masks, rng, batch: int):
    """Endless batches: quarter turns and a mirror for image and mask, gamma and gain for the image."""
    import numpy as np

    while True:
        chosen = rng.integers(0, len(images), batch)
        xs, ys = [], []
        for i in chosen:
            turns, mirror = int(rng.integers(4)), bool(rng.random() < 0.5)
            image, mask = np.rot90(images[i], turns, axes=(0, 1)), np.rot90(masks[i], turns, axes=(0, 1))
            if mirror:
                image, mask = image[:, ::-1], mask[:, ::-1]
            xs.append(np.clip(rng.uniform(0.8, 1.2) * image ** rng.uniform(0.7, 1.4), 0, 1))
            ys.append(mask)
        yield np.stack(xs).astype(np.float32), np.stack(ys).astype(np.float32)


def soft_dice_loss(y_true, y_pred):
    import keras

    overlap = keras.ops.sum(y_true * y_pred, axis=(1, 2, 3))
    sizes = keras.ops.sum(y_true, axis=(1, 2, 3)) + keras.ops.sum(y_pred, axis=(1, 2, 3))
    return 1.0 - (2.0 * overlap + 1.0) / (sizes + 1.0)


def bce_plus_dice(y_true, y_pred):
    import keras

    return keras.losses.binary_crossentropy(y_true, y_pred) + soft_dice_loss(y_true, y_pred)[:, None, None]


def first_reaching(curve, key: str, target: float):
    """The ``key`` ("seconds" or "steps") of the first point whose IoU reaches ``target``; None if none does."""
    return next((point[key] for point in curve if point["validation_iou"] >= target), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="training steps in all (default 300)")
    parser.add_argument("--every", type=int, default=25, help="score the validation strip every N steps")
    parser.add_argument("--crops", type=int, default=512, help="random training crops (default 512)")
    parser.add_argument("--base-filters", type=int, default=8, help="filters at the first level (default 8)")
    parser.add_argument("--loss", choices=("bce", "bce+dice"), default="bce+dice")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="smoke run: 50 steps, 64 crops")
    arguments = parser.parse_args()
    if arguments.quick:
        arguments.steps, arguments.crops = 50, 64
    if arguments.steps < 1 or arguments.every < 1 or arguments.steps % arguments.every:
        parser.error("--steps must be a positive multiple of --every")

    import keras
    import numpy as np
    import tensorflow as tf
    from cnn_course import data, segmentation

    load_before = load_average()
    keras.utils.set_random_seed(arguments.seed)
    rng = np.random.default_rng(arguments.seed)
    regions = data.nuclei_regions(arguments.crops, CROP, seed=arguments.seed, verbose=False)
    x_validation, y_validation = regions.images["validation"], regions.masks["validation"]
    model = segmentation.unet((None, None, 1), depth=DEPTH, base_filters=arguments.base_filters, classes=1)
    model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE),
                  loss="binary_crossentropy" if arguments.loss == "bce" else bce_plus_dice)
    batches = augmented_batches(regions.crop_images, regions.crop_masks, rng, BATCH)
    recipe = {"crops": arguments.crops, "crop": CROP, "batch": BATCH, "depth": DEPTH,
              "base_filters": arguments.base_filters, "parameters": int(model.count_params()),
              "loss": arguments.loss, "learning_rate": LEARNING_RATE, "seed": arguments.seed,
              "threshold": 0.5, "validation_columns": list(regions.columns["validation"])}
    print(f"U-Net depth {DEPTH}, {arguments.base_filters} base filters ({recipe['parameters']:,} parameters), "
          f"{arguments.loss}, {arguments.steps} steps of {BATCH} crops; load {load_before}", flush=True)

    curve, seconds, steps = [], 0.0, 0
    while steps < arguments.steps:
        started = time.perf_counter()
        model.fit(batches, steps_per_epoch=arguments.every, epochs=1, shuffle=False, verbose=0)
        seconds += time.perf_counter() - started
        steps += arguments.every
        probabilities = keras.ops.convert_to_numpy(model(x_validation, training=False))
        iou = float(segmentation.iou_score(y_validation, probabilities > 0.5))
        curve.append({"steps": steps, "seconds": round(seconds, 2), "validation_iou": round(iou, 4)})
        print(f"  {steps:4d} steps {seconds:6.1f} s training, validation IoU {iou:.3f}", flush=True)

    time_to = {str(target): first_reaching(curve, "seconds", target) for target in TARGETS}
    steps_to = {str(target): first_reaching(curve, "steps", target) for target in TARGETS}
    for target in TARGETS:
        reached = time_to[str(target)]
        print(f"validation IoU {target}: " + (f"after {steps_to[str(target)]} steps, {reached:.1f} s"
                                               if reached is not None else "not reached"))
    print(json.dumps({"recipe": recipe, "curve": curve, "time_to_iou": time_to, "steps_to_iou": steps_to,
                      "threads": tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count(),
                      "load_before": load_before, "load_after": load_average()}))


if __name__ == "__main__":
    main()
