"""MobileNetV2 inference on 2 cores: images per second at 96, 128, 160 and 224 pixels.

Week 5 extracts features of a target data set once with the pretrained MobileNetV2
(``cnn_course.pretrained.mobilenet_v2``, real ImageNet weights). The network is fully
convolutional, so ``cnn_course.transfer.feature_extractor(base, input_shape=...)`` runs the
same layers on smaller images; the multiply-adds shrink with the number of pixels, i.e. with
the square of the side. This script measures what that buys on this machine: for every size,
the pooled 1,280 features of the course's real photos (scikit-image's photos, centre-cropped
and resized with ``resize_for_model``), in batches, after one warm-up batch.

For every size it prints the images per second (median of ``--repeats`` timed passes over
``--images`` images), the time per image, the speed relative to 224 px measured in the same
process, and the ratio the pixel count predicts ((224 / size)²).

The last line printed is one JSON object::

    {"sizes": {"96": {"images_per_second": ..., "ms_per_image": ..., "speedup_vs_224": ...,
     "pixel_ratio": ...}, ...}, "batch_size": ..., "images": ..., "load": "..."}

Run: ``.venv/bin/python benchmarks/mobilenet_inference_speed.py`` (about a minute on 2
cores); ``--quick`` for a smoke run (8 images, one pass per size).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hide TensorFlow's start-up lines

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_average  # noqa: E402

SIZES = (96, 128, 160, 224)
PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "camera", "hubble_deep_field", "immunohistochemistry", "retina")


def course_photos(count: int, size: int):
    """`count` real photos (scikit-image's, repeated as needed) as (count, size, size, 3) floats in [-1, 1]."""
    import numpy as np
    from cnn_course.pretrained import preprocess, resize_for_model
    from skimage import data

    photos = [resize_for_model(getattr(data, name)(), size) for name in PHOTOS]
    batch = np.stack([photos[i % len(photos)] for i in range(count)])
    return preprocess(batch, size=size)


def images_per_second(extractor, images, batch_size: int, repeats: int) -> float:
    """Median images per second of `repeats` passes over `images` (after one warm-up batch)."""
    extractor.predict(images[:batch_size], batch_size=batch_size, verbose=0)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        extractor.predict(images, batch_size=batch_size, verbose=0)
        rates.append(len(images) / (time.perf_counter() - start))
    return statistics.median(rates)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=128, help="images per timed pass (default 128)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per size; the median counts")
    parser.add_argument("--quick", action="store_true", help="smoke run: 8 images, one pass per size")
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.batch_size, args.repeats = 8, 8, 1

    from cnn_course.pretrained import mobilenet_v2
    from cnn_course.transfer import feature_extractor

    print(f"load average before: {load_average()}", flush=True)
    base = mobilenet_v2()
    results = {}
    for size in SIZES:
        extractor = feature_extractor(base, input_shape=(size, size, 3))
        rate = images_per_second(extractor, course_photos(args.images, size), args.batch_size, args.repeats)
        results[str(size)] = {"images_per_second": round(rate, 1), "ms_per_image": round(1000 / rate, 2),
                              "pixel_ratio": round((224 / size) ** 2, 2)}
    reference = results["224"]["images_per_second"]
    for size in SIZES:
        row = results[str(size)]
        row["speedup_vs_224"] = round(row["images_per_second"] / reference, 2)
        print(f"{size:4d} px: {row['images_per_second']:7.1f} images/s, {row['ms_per_image']:6.2f} ms per image, "
              f"{row['speedup_vs_224']:4.2f}× the speed at 224 px (pixels predict {row['pixel_ratio']:.2f}×)",
              flush=True)
    summary = {"sizes": results, "batch_size": args.batch_size, "images": args.images, "load": load_average()}
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
