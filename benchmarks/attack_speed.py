"""Adversarial attacks per second: FGSM and 10-step PGD on MobileNetV2 and on the MNIST network.

Week 6 attacks two trained networks with :mod:`cnn_course.adversarial`:

``mobilenet``
    MobileNetV2 with its ImageNet weights (``cnn_course.pretrained.mobilenet_v2``) on the cat photo
    (``skimage.data.chelsea``), one image per attack as in the ε widget, at each side in ``--sizes``
    (pixels; the attack functions re-run the network at that input size), in [-1, 1] with
    ``clip=(-1, 1)``, ε = 2/255 of the [0, 255] range;
``mnist``
    the week-3 fast network trained on MNIST (``cnn_course.trained.digit_network``), on
    ``--mnist-batch`` validation digits per call (uint8 pixels, ``clip=(0, 255)``, ε = 25.5) and on
    one digit per call.

For each model and batch: FGSM (one input gradient) and PGD with 10 steps (10 input gradients, random
start). The first two calls of each attack are not timed (the first runs eagerly, the second compiles
the gradient with ``tf.function``: a pause of a few seconds for MobileNetV2); then ``--repeats`` calls
are timed and the median is reported as images per second (``attacks_per_second``) and seconds per
call. The test set is not used; this is a speed measurement, not an accuracy claim.

The last line printed is one JSON object::

    {"mobilenet": {"224": {"batch": 1, "fgsm": {"seconds_per_call": ..., "attacks_per_second": ...},
     "pgd10": {...}}, ...}, "mnist": {"batch_100": {...}, "batch_1": {...}},
     "threads": ..., "load_before": "...", "load_after": "..."}

Run: ``.venv/bin/python benchmarks/attack_speed.py`` (about 2 minutes on 2 cores);
``--quick`` for a smoke run (96 px, 20 digits, one timed call each).
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

PGD_STEPS = 10


def timed(attack, repeats: int) -> float:
    """Median seconds of ``repeats`` calls, after two untimed calls (eager, then compiling)."""
    attack()
    attack()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        attack()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def measure(model, x, y, eps, clip, repeats: int) -> dict:
    """FGSM and 10-step PGD on the batch ``x``: seconds per call and images per second."""
    from cnn_course import adversarial

    step = 2.5 * eps / PGD_STEPS   # Madry et al.'s rule of thumb: the steps can cross the ball 2.5 times
    attacks = {
        "fgsm": lambda: adversarial.fgsm(model, x, y, eps, clip=clip),
        f"pgd{PGD_STEPS}": lambda: adversarial.pgd(model, x, y, eps, step, PGD_STEPS, clip=clip),
    }
    row = {"batch": len(x)}
    for name, attack in attacks.items():
        seconds = timed(attack, repeats)
        row[name] = {"seconds_per_call": round(seconds, 6), "attacks_per_second": round(len(x) / seconds, 2)}
    return row


def report(name: str, row: dict) -> None:
    for attack in ("fgsm", f"pgd{PGD_STEPS}"):
        figures = row[attack]
        print(f"{name:22s} {attack:6s}: {figures['attacks_per_second']:9.2f} attacks/s "
              f"({figures['seconds_per_call'] * 1000:8.1f} ms per call of {row['batch']} image(s))", flush=True)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="224,160",
                        help="MobileNetV2 input sides in pixels, comma separated (default 224,160)")
    parser.add_argument("--mnist-batch", type=int, default=100, help="validation digits per call (default 100)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per attack (default 5)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 96 px, 20 digits, one timed call")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.mnist_batch, args.repeats = "96", 20, 1
    sizes = [int(side) for side in args.sizes.split(",")]

    import tensorflow as tf
    from cnn_course import data, models, pretrained, trained

    load_before = load_average()
    print(f"load average before: {load_before}", flush=True)
    results = {"mobilenet": {}, "mnist": {}}

    mobilenet = pretrained.mobilenet_v2()
    photo = data.load_photo("chelsea")
    for side in sizes:
        x = pretrained.preprocess(pretrained.resize_for_model(photo, side), size=side)
        row = measure(mobilenet, x, 285, eps=2 / 255 * 2, clip=(-1.0, 1.0), repeats=args.repeats)  # 285: Egyptian cat
        results["mobilenet"][str(side)] = row
        report(f"MobileNetV2 {side}x{side}", row)

    net = trained.digit_network("mnist", verbose=False)
    (x_train, y_train), _ = data.load_mnist(verbose=False)
    _, (x_val, y_val) = models.hold_out_validation(x_train, y_train)
    for batch in (args.mnist_batch, 1):
        x, y = x_val[:batch, :, :, None], y_val[:batch]
        row = measure(net, x, y, eps=25.5, clip=(0, 255), repeats=args.repeats)
        results["mnist"][f"batch_{batch}"] = row
        report(f"MNIST, batch {batch}", row)

    summary = {**results, "pgd_steps": PGD_STEPS, "repeats": args.repeats,
               "threads": tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count(),
               "load_before": load_before, "load_after": load_average()}
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
