"""MNIST: training time to 99 % validation accuracy: our network, the steps to it, and published networks.

Trains, in one process one after the other (all networks from ``cnn_course.models``;
uint8 input, rescaled inside the model):

================  ==========================================  ==========  ==========================================
name              builder                                     parameters  recipe
================  ==========================================  ==========  ==========================================
``ours``          ``fast_mnist_cnn``                          77,122      Adam + one-cycle schedule, batch 256,
                                                                          ``FAST_EPOCHS`` epochs (``train_fast_mnist``)
``keras_io``      ``keras_io_mnist_convnet``                  34,826      Adam 0.001, batch 128, up to 15 epochs
``strided``       ``fast_mnist_cnn(batch_norm=False)``        76,618      Adam 0.001, batch 128, up to 15 epochs
``strided_bn``    ``fast_mnist_cnn``                          77,122      Adam 0.001, batch 128, up to 15 epochs
``ours_no_bn``    ``fast_mnist_cnn(batch_norm=False)``        76,618      ours, without batch normalisation
``journal_club``  ``journal_club_mnist_cnn``                  600,810     Adadelta 1.0, batch 128, up to 12 epochs
``keras2``        ``reference_mnist_cnn``                     1,199,882   Adam 0.001, batch 128, up to 12 epochs
================  ==========================================  ==========  ==========================================

``keras_io`` is today's keras.io "Simple MNIST convnet" with its recipe; ``strided`` and
``strided_bn`` are the intermediate steps of the ablation in
``course/week3_building_blocks/05_mnist_99.ipynb`` (keras.io's recipe, our architecture
without and with batch normalisation), run here without the notebook's time budget;
``ours_no_bn`` is our recipe without batch normalisation (what the high learning rates of
the one-cycle schedule do without it);
``journal_club`` is the Keras 1 example of the source lectures' journal club with its
recipe (the lecture: "14 min on CPU, 42 s on GPU" for about 99 %); ``keras2`` the retired
Keras 2 example ``mnist_cnn.py``.

Data: the last 6,000 of the 60,000 training images are held out as validation images
(``hold_out_validation``, the split ``validation_split=0.1`` makes); the networks train
on the other 54,000. After every epoch each network is evaluated on the validation
images, and the *training* time (evaluation not counted, ``TimeToAccuracy``) up to the
first epoch at >= ``--target`` validation accuracy is its time to accuracy. Ours runs
its whole one-cycle schedule; the others stop at the target or at their epoch limit, or
before an epoch that would end beyond ``--max-seconds`` of training. Then, and only then, each trained network is evaluated once on
the 10,000 test images.

The last line printed is one JSON object::

    {"target": 0.99, "networks": {"ours": {"seconds_to_target": ..., "epochs_to_target": ...,
     "epochs_run": ..., "training_seconds": ..., "best_val_accuracy": ...,
     "test_accuracy": ...}, ...}, "speedup": {"keras_io": ..., ...}}

``seconds_to_target`` is ``null`` if the target was not reached. ``speedup[name]`` is
that network's time to the target divided by ours (not given for ``ours_no_bn``); if it never reached the target its
whole training time is used and the figure is a lower bound (a line before the JSON
says so); ``null`` if ours did not reach the target.

Run: ``.venv/bin/python benchmarks/mnist_time_to_accuracy.py`` (about 15-25 minutes on 2
cores), ``--networks ours keras_io`` to choose,
``--quick`` for a smoke run (1 epoch each on 2,000 training images, target not expected
to be reached).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from _common import load_average, print_epochs  # noqa: E402
from cnn_course.data import load_mnist  # noqa: E402
from cnn_course.models import (  # noqa: E402
    FAST_BATCH_SIZE,
    FAST_EPOCHS,
    FAST_PEAK_LEARNING_RATE,
    TimeToAccuracy,
    fast_mnist_cnn,
    hold_out_validation,
    journal_club_mnist_cnn,
    keras_io_mnist_convnet,
    mnist_as_inputs,
    reference_mnist_cnn,
    train_fast_mnist,
)

# name: (builder, optimiser factory, batch size, epoch limit, description)
OTHERS = {
    "keras_io": (keras_io_mnist_convnet, lambda: keras.optimizers.Adam(1e-3), 128, 15,
                 "keras.io simple convnet, Adam 0.001"),
    "strided": (lambda seed: fast_mnist_cnn(seed=seed, batch_norm=False), lambda: keras.optimizers.Adam(1e-3),
                128, 15, "our strided convolutions without batch norm, Adam 0.001"),
    "strided_bn": (fast_mnist_cnn, lambda: keras.optimizers.Adam(1e-3), 128, 15,
                   "our strided convolutions with batch norm, Adam 0.001 (no schedule)"),
    "journal_club": (journal_club_mnist_cnn,
                     # Keras 1's Adadelta defaults (learning rate 1.0); Keras 3's default is 0.001
                     lambda: keras.optimizers.Adadelta(learning_rate=1.0, rho=0.95, epsilon=1e-8), 128, 12,
                     "Keras 1 example of the journal club, Adadelta 1.0"),
    "keras2": (lambda seed: reference_mnist_cnn(seed=seed), lambda: keras.optimizers.Adam(1e-3), 128, 12,
               "retired Keras 2 example, Adam 0.001"),
}
NAMES = ["ours", "ours_no_bn", *OTHERS]


def summary(clock: TimeToAccuracy, test_accuracy: float) -> dict:
    return {
        "seconds_to_target": None if clock.seconds_to_target is None else round(clock.seconds_to_target, 2),
        "epochs_to_target": clock.epochs_to_target,
        "epochs_run": len(clock.seconds),
        "training_seconds": round(sum(clock.seconds), 2),
        "best_val_accuracy": round(max(clock.accuracies), 4),
        "test_accuracy": round(float(test_accuracy), 4),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", type=float, default=0.99, help="validation accuracy to reach (default 0.99)")
    parser.add_argument("--networks", nargs="+", choices=NAMES,
                        default=["ours", "keras_io", "strided", "strided_bn", "ours_no_bn", "journal_club"],
                        help="networks to train, in this order (default: all but keras2)")
    parser.add_argument("--epochs", type=int, default=FAST_EPOCHS,
                        help=f"length of our one-cycle schedule in epochs (default {FAST_EPOCHS})")
    parser.add_argument("--max-seconds", type=float, default=900.0,
                        help="training-time budget of each network but ours (default 900 = 15 min)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jit-compile", action="store_true", help="compile our training step with XLA")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 1 epoch each on 2,000 training images")
    args = parser.parse_args(argv)

    (x_train, y_train), (x_test, y_test) = load_mnist(verbose=False)
    (x_fit, y_fit), (x_val, y_val) = hold_out_validation(mnist_as_inputs(x_train), y_train, fraction=0.1)
    x_test = mnist_as_inputs(x_test)
    if args.quick:
        x_fit, y_fit = x_fit[:2000], y_fit[:2000]
        args.epochs = 1
    print(f"MNIST: training on {len(x_fit)} images, validation {len(x_val)} (held out from the training set), "
          f"test {len(x_test)} (evaluated once per network, at the end); target validation accuracy "
          f"{args.target}", flush=True)
    print(f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, python "
          f"{platform.python_version()}, tensorflow {tf.__version__}, keras {keras.__version__}, "
          f"{os.cpu_count()} CPUs, load average {load_average()}", flush=True)

    results = {}
    for name in args.networks:
        if name in ("ours", "ours_no_bn"):
            batch_norm = name == "ours"
            print(f"{name}: fast_mnist_cnn(batch_norm={batch_norm}), Adam + one-cycle over {args.epochs} epochs, "
                  f"batch {FAST_BATCH_SIZE}, peak {FAST_PEAK_LEARNING_RATE}, jit_compile={args.jit_compile}, "
                  f"load average {load_average()}", flush=True)
            clock = TimeToAccuracy(args.target, stop_at_target=False)  # the schedule runs to its end
            model, _ = train_fast_mnist(x_fit, y_fit, x_val, y_val, epochs=args.epochs, seed=args.seed,
                                        verbose=0, callbacks=[clock], jit_compile=args.jit_compile,
                                        batch_norm=batch_norm)
        else:
            build, optimizer, batch_size, epochs, description = OTHERS[name]
            epochs = 1 if args.quick else epochs
            print(f"{name}: {description}, batch {batch_size}, up to {epochs} epochs or "
                  f"{args.max_seconds:.0f} s, load average {load_average()}", flush=True)
            model = build(seed=args.seed)
            model.compile(optimizer=optimizer(), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
            clock = TimeToAccuracy(args.target, max_seconds=args.max_seconds)
            model.fit(x_fit, y_fit, batch_size=batch_size, epochs=epochs, validation_data=(x_val, y_val),
                      verbose=0, callbacks=[clock])
        print_epochs(name, clock.seconds, clock.accuracies)
        _, test_accuracy = model.evaluate(x_test, y_test, batch_size=1000, verbose=0)
        results[name] = summary(clock, test_accuracy)
        print(f"  {name}: test accuracy {test_accuracy:.4f} ({model.count_params():,} parameters)", flush=True)

    speedup = {}
    ours = results.get("ours", {}).get("seconds_to_target")
    for name, result in results.items():
        if name.startswith("ours"):
            continue
        if ours is None:
            speedup[name] = None
            continue
        if result["seconds_to_target"] is not None:
            speedup[name] = round(result["seconds_to_target"] / ours, 2)
        else:
            speedup[name] = round(result["training_seconds"] / ours, 2)
            print(f"{name} did not reach {args.target} within {result['epochs_run']} epochs "
                  f"({result['training_seconds']:.1f} s): its speedup is a LOWER BOUND", flush=True)

    print(f"load average at the end {load_average()}", flush=True)
    result = {"target": args.target, "networks": results, "speedup": speedup}
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main(sys.argv[1:])
    sys.exit(0)
