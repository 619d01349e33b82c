"""MNIST: training time to first reach 99.0 % test accuracy, fast network vs. plain reference.

Trains, in the same process one after the other, the course's fast network
(``cnn_course.models.train_fast_mnist``: batch norm, strided convolutions, one-cycle
schedule) and the plain Keras example convnet (``reference_mnist_cnn``: Adam, batch
128). After every epoch both are evaluated on the 10,000 test images; the *training*
time is summed over epochs up to the first epoch whose test accuracy is >= the target.
Evaluation time is NOT counted as training time (``cnn_course.models.EpochTimer``
stops the clock when evaluation starts).

The fast network always runs its whole one-cycle schedule (``--epochs``). The
reference trains until it reaches the target or its budget runs out
(``--reference-max-epochs`` epochs or ``--reference-max-seconds`` seconds of training,
whichever comes first; an epoch that has started is finished).

The last line printed is one JSON object::

    {"ours_seconds": ..., "ours_test_accuracy": ..., "reference_seconds": ...,
     "reference_test_accuracy": ..., "speedup": ...}

``*_seconds`` is the training time to first reach the target (``null`` if never
reached), ``*_test_accuracy`` the test accuracy at that epoch (or at the last epoch if
never reached). ``speedup = reference_seconds / ours_seconds``. If the reference never
reached the target, ``reference_seconds`` is ``null`` and ``speedup`` is the *lower
bound* (reference training time spent) / ``ours_seconds``; a line before the JSON says so.

Run: ``.venv/bin/python benchmarks/mnist_time_to_accuracy.py`` (several minutes: the
reference is slow), ``--quick`` for a smoke run (1 epoch each on a 2,000-image subset,
target not expected to be reached).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from cnn_course.data import load_mnist  # noqa: E402
from cnn_course.models import (  # noqa: E402
    FAST_BATCH_SIZE,
    FAST_EPOCHS,
    FAST_PEAK_LEARNING_RATE,
    EpochTimer,
    mnist_as_inputs,
    reference_mnist_cnn,
    train_fast_mnist,
)

REFERENCE_BATCH_SIZE = 128


def load_average() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "unknown"


def first_reaching(history: dict, target: float):
    """(training seconds up to the first epoch at >= target or None, accuracy then, epochs run)."""
    accuracies, seconds = history["val_accuracy"], history["train_seconds"]
    for epoch, accuracy in enumerate(accuracies):
        if accuracy >= target:
            return float(sum(seconds[: epoch + 1])), float(accuracy), epoch + 1
    return None, float(accuracies[-1]), len(accuracies)


class StopAtTargetOrBudget(keras.callbacks.Callback):
    """Stop after the epoch that reaches the target accuracy or exhausts the time budget."""

    def __init__(self, timer: EpochTimer, target: float, max_seconds: float):
        super().__init__()
        self.timer, self.target, self.max_seconds = timer, target, max_seconds

    def on_epoch_end(self, epoch, logs=None):
        if logs["val_accuracy"] >= self.target or sum(self.timer.seconds) >= self.max_seconds:
            self.model.stop_training = True


def print_epochs(name: str, history: dict) -> None:
    total = 0.0
    for epoch, (seconds, accuracy) in enumerate(zip(history["train_seconds"], history["val_accuracy"],
                                                    strict=True)):
        total += seconds
        print(f"  {name} epoch {epoch + 1}: {seconds:6.1f} s training (total {total:6.1f} s), "
              f"test accuracy {accuracy:.4f}", flush=True)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", type=float, default=0.99, help="test accuracy to reach (default 0.99)")
    parser.add_argument("--epochs", type=int, default=FAST_EPOCHS,
                        help=f"length of our one-cycle schedule in epochs (default {FAST_EPOCHS})")
    parser.add_argument("--reference-max-epochs", type=int, default=6,
                        help="reference budget in epochs (default 6)")
    parser.add_argument("--reference-max-seconds", type=float, default=480.0,
                        help="reference budget in seconds of training (default 480 = 8 min)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jit-compile", action="store_true", help="compile our training step with XLA")
    parser.add_argument("--skip-reference", action="store_true", help="train only our network")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 1 epoch each on 2,000 training images")
    args = parser.parse_args(argv)

    (x_train, y_train), (x_test, y_test) = load_mnist(verbose=False)
    x_train, x_test = mnist_as_inputs(x_train), mnist_as_inputs(x_test)
    if args.quick:
        x_train, y_train = x_train[:2000], y_train[:2000]
        args.epochs, args.reference_max_epochs = 1, 1
    print(f"MNIST {len(x_train)} training / {len(x_test)} test images; target test accuracy {args.target}",
          flush=True)
    print(f"python {platform.python_version()}, tensorflow {tf.__version__}, keras {keras.__version__}, "
          f"{os.cpu_count()} CPUs, TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'default')}, "
          f"load average {load_average()}", flush=True)

    print(f"ours: fast_mnist_cnn, {args.epochs} epochs, batch {FAST_BATCH_SIZE}, "
          f"one-cycle peak {FAST_PEAK_LEARNING_RATE}, jit_compile={args.jit_compile}", flush=True)
    _, ours = train_fast_mnist(x_train, y_train, x_test, y_test, epochs=args.epochs, seed=args.seed, verbose=0,
                               jit_compile=args.jit_compile)
    print_epochs("ours", ours.history)
    ours_seconds, ours_accuracy, _ = first_reaching(ours.history, args.target)

    reference_seconds, reference_accuracy, speedup = None, None, None
    if not args.skip_reference:
        print(f"reference: Keras example convnet, batch {REFERENCE_BATCH_SIZE}, Adam, budget "
              f"{args.reference_max_epochs} epochs / {args.reference_max_seconds:.0f} s, "
              f"load average {load_average()}", flush=True)
        model = reference_mnist_cnn(seed=args.seed)
        timer = EpochTimer()
        reference = model.fit(x_train, y_train, batch_size=REFERENCE_BATCH_SIZE,
                              epochs=args.reference_max_epochs, validation_data=(x_test, y_test),
                              verbose=0,
                              callbacks=[timer, StopAtTargetOrBudget(timer, args.target, args.reference_max_seconds)])
        print_epochs("reference", reference.history)
        reference_seconds, reference_accuracy, epochs_run = first_reaching(reference.history, args.target)
        if ours_seconds is not None:
            if reference_seconds is not None:
                speedup = reference_seconds / ours_seconds
            else:
                spent = float(sum(reference.history["train_seconds"]))
                speedup = spent / ours_seconds
                print(f"reference did not reach {args.target} within {epochs_run} epochs ({spent:.1f} s): "
                      f"speedup is a LOWER BOUND ({spent:.1f} s / {ours_seconds:.1f} s)", flush=True)

    print(f"load average at the end {load_average()}", flush=True)
    result = {
        "ours_seconds": None if ours_seconds is None else round(ours_seconds, 2),
        "ours_test_accuracy": round(ours_accuracy, 4),
        "reference_seconds": None if reference_seconds is None else round(reference_seconds, 2),
        "reference_test_accuracy": None if reference_accuracy is None else round(reference_accuracy, 4),
        "speedup": None if speedup is None else round(speedup, 2),
    }
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main(sys.argv[1:])
    sys.exit(0)
