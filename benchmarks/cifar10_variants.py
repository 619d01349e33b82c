"""CIFAR-10: the lectures' TensorFlow-tutorial table, rebuilt in Keras and measured.

One lecture quotes a table of TensorFlow's classic CIFAR-10 tutorial network and four
variants (test accuracy; the reference after 12 h, the variants after 2 h of training):

=============================  =========
convolutions                   lecture
=============================  =========
5×5·64 → 5×5·64 (reference)    86.1 %
5×5·64                         78.7 %
5×5·256                        79.6 %
7×7·128 → 5×5·64 → 3×3·64      81.7 %
5×5·256 → 5×5·128 → 3×3·64     81.9 %
=============================  =========

This script builds the five with ``cnn_course.small_nets.cifar_tutorial_net`` (keys of
``CIFAR_TUTORIAL_VARIANTS``: ``reference``, ``5x5x64``, ``5x5x256``,
``7x7x128-5x5x64-3x3x64``, ``5x5x256-5x5x128-3x3x64``) and trains each on CIFAR-10 with
one recipe: Adam 0.001, batch 128, random horizontal flips and shifts of up to 4 pixels,
``--epochs`` epochs (or fewer when ``--max-minutes`` runs out). The last 5,000 of the
50,000 training images are held out as validation images (``hold_out_validation``); the
weights of the epoch with the best validation accuracy are kept, and only then is each
network evaluated, once, on the 10,000 test images. The tutorial's own recipe (its
initialisation, plain SGD with a decaying rate, 24×24 crops, brightness and contrast
changes, hours of training) is not reproduced: compare the variants with each other,
not the figures with the lecture's.

CIFAR-10 comes from ``cnn_course.data.load_cifar10`` (Keras cache or download). Where it
cannot be loaded (offline, no cached copy), the script prints the loader's message,
the variants' parameter counts, and exits with status 0.

The last line printed is one JSON object, in all cases::

    {"cifar10": "loaded", "epochs": 20, "variants": {"reference": {"parameters": ...,
     "epochs_run": ..., "best_epoch": ..., "training_minutes": ..., "best_val_accuracy": ...,
     "test_accuracy": ..., "lecture_accuracy": 0.861, "lecture_hours": 12}, ...}}
    {"cifar10": "unavailable", "reason": "...", "parameters": {"reference": 1756426, ...}}

Run: ``.venv/bin/python benchmarks/cifar10_variants.py`` (hours on 2 CPU cores, minutes on a
GPU), ``--variants reference 5x5x64`` to choose, ``--quick`` for a smoke run (1 epoch
on 2,000 training images).
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from _common import load_average  # noqa: E402
from cnn_course.data import DataUnavailableError, load_cifar10  # noqa: E402
from cnn_course.models import hold_out_validation  # noqa: E402
from cnn_course.small_nets import CIFAR_TUTORIAL_VARIANTS, cifar_tutorial_net  # noqa: E402

BATCH_SIZE = 128


class BestEpoch(keras.callbacks.Callback):
    """Times each epoch's training, keeps the weights of the best validation accuracy, and
    stops before an epoch that would end beyond ``max_seconds`` of training."""

    def __init__(self, name: str, max_seconds: float | None):
        super().__init__()
        self.name, self.max_seconds = name, max_seconds
        self.seconds: list[float] = []
        self.accuracies: list[float] = []
        self.best_weights = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_test_begin(self, logs=None):
        # Validation runs at the end of each epoch: stop the training clock there.
        if len(self.seconds) < len(self.accuracies) + 1:
            self.seconds.append(time.perf_counter() - self._start)

    def on_epoch_end(self, epoch, logs=None):
        accuracy = float(logs["val_accuracy"])
        if not self.accuracies or accuracy > max(self.accuracies):
            self.best_weights = copy.deepcopy(self.model.get_weights())
        self.accuracies.append(accuracy)
        spent = sum(self.seconds)
        print(f"  {self.name} epoch {epoch + 1}: {self.seconds[-1]:6.1f} s training (total {spent / 60:5.1f} min), "
              f"loss {logs['loss']:.4f}, validation accuracy {accuracy:.4f}", flush=True)
        if self.max_seconds is not None and spent + spent / len(self.seconds) > self.max_seconds:
            self.model.stop_training = True


def augmented(x, y, seed: int):
    """A shuffled, augmented tf.data pipeline of the training images (flips, shifts up to 4 pixels)."""
    augment = keras.Sequential([keras.layers.RandomFlip("horizontal", seed=seed),
                                keras.layers.RandomTranslation(4 / 32, 4 / 32, fill_mode="reflect", seed=seed)])
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=seed).batch(BATCH_SIZE)
    return dataset.map(lambda images, labels: (augment(tf.cast(images, tf.float32), training=True), labels),
                       num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def build_all(names) -> dict:
    return {name: cifar_tutorial_net(CIFAR_TUTORIAL_VARIANTS[name]["convs"]) for name in names}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", choices=list(CIFAR_TUTORIAL_VARIANTS),
                        default=list(CIFAR_TUTORIAL_VARIANTS), help="variants to train, in this order (default: all)")
    parser.add_argument("--epochs", type=int, default=20, help="epochs per variant (default 20)")
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="training-time budget of each variant in minutes (default: none)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 epoch on 2,000 training images")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be at least 1, got {args.epochs}")

    print(f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, python "
          f"{platform.python_version()}, tensorflow {tf.__version__}, keras {keras.__version__}, "
          f"{os.cpu_count()} CPUs, load average {load_average()}", flush=True)
    # Built first, so that even without the data the parameter counts are printed.
    parameters = {name: model.count_params() for name, model in build_all(args.variants).items()}
    for name, count in parameters.items():
        print(f"{name:24s} {count:>10,} parameters", flush=True)

    try:
        (x_train, y_train), (x_test, y_test) = load_cifar10()
    except DataUnavailableError as error:
        print(error, flush=True)
        tried = [line.strip(" -") for line in str(error).splitlines() if line.startswith("  - ")]
        result = {"cifar10": "unavailable", "reason": "; ".join(tried), "parameters": parameters}
        print(json.dumps(result), flush=True)
        return result

    (x_fit, y_fit), (x_val, y_val) = hold_out_validation(x_train, y_train, fraction=0.1)
    epochs = args.epochs
    if args.quick:
        x_fit, y_fit, epochs = x_fit[:2000], y_fit[:2000], 1
    print(f"CIFAR-10: training on {len(x_fit)} images, validation {len(x_val)} (held out from the training "
          f"set), test {len(x_test)} (evaluated once per variant, at the end); up to {epochs} epochs", flush=True)

    results = {}
    for name in args.variants:
        keras.utils.set_random_seed(args.seed)
        model = cifar_tutorial_net(CIFAR_TUTORIAL_VARIANTS[name]["convs"])
        model.compile(optimizer=keras.optimizers.Adam(1e-3),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
        clock = BestEpoch(name, None if args.max_minutes is None else 60 * args.max_minutes)
        print(f"{name}: {model.count_params():,} parameters, load average {load_average()}", flush=True)
        # shuffle=False: the pipeline shuffles itself, anew every epoch.
        model.fit(augmented(x_fit, y_fit, args.seed), epochs=epochs, verbose=0, callbacks=[clock], shuffle=False,
                  validation_data=(x_val.astype(np.float32), y_val), validation_batch_size=1000)
        model.set_weights(clock.best_weights)
        _, test_accuracy = model.evaluate(x_test.astype(np.float32), y_test, batch_size=1000, verbose=0)
        best = int(np.argmax(clock.accuracies))
        lecture = CIFAR_TUTORIAL_VARIANTS[name]
        results[name] = {
            "parameters": model.count_params(),
            "epochs_run": len(clock.accuracies),
            "best_epoch": best + 1,
            "training_minutes": round(sum(clock.seconds) / 60, 2),
            "best_val_accuracy": round(clock.accuracies[best], 4),
            "test_accuracy": round(float(test_accuracy), 4),
            "lecture_accuracy": lecture["lecture_accuracy"],
            "lecture_hours": lecture["lecture_hours"],
        }
        print(f"  {name}: test accuracy {test_accuracy:.4f} (weights of epoch {best + 1})", flush=True)

    print(f"\n{'variant':24s} {'parameters':>10s} {'epochs':>6s} {'minutes':>8s} {'val acc':>8s} "
          f"{'test acc':>8s} {'lecture':>8s}")
    for name, row in results.items():
        print(f"{name:24s} {row['parameters']:>10,} {row['epochs_run']:>6d} {row['training_minutes']:>8.1f} "
              f"{row['best_val_accuracy']:>8.4f} {row['test_accuracy']:>8.4f} "
              f"{row['lecture_accuracy']:>7.1%} ({row['lecture_hours']} h)")
    print(f"load average at the end {load_average()}", flush=True)
    result = {"cifar10": "loaded", "epochs": epochs, "quick": args.quick, "variants": results}
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
    sys.exit(0)
