"""Transfer learning: a new head's time to a target accuracy, on cached features vs through the frozen base.

Scenario 1 of week 5 (a frozen pretrained base, a new head) can train in two ways that
compute the same thing (``tests/test_transfer.py`` checks that they give the same head):

``cached``
    push the images through the frozen MobileNetV2 **once**
    (``cnn_course.transfer.cache_features``) and train the head on the stored 1,280 features;
``end_to_end``
    train ``cnn_course.transfer.frozen_base_with_head`` on the images, which pushes every
    image through the frozen base again in every epoch (and the validation images after
    every epoch).

Both start from the same head weights (a linear layer, ``head_on_features(10, 1280,
dropout=0)``), use the same recipe (Adam, ``--learning-rate``, batch ``--batch-size``) and
stop after the first epoch at >= ``--target`` validation accuracy. The time counted is the
wall-clock time a student waits: feature extraction included for ``cached``, the validation
passes included for both.

Data: real Fashion-MNIST (``cnn_course.data.load_fashion_mnist``), grey 28×28 images
upsampled to ``--size`` pixels and repeated into three channels, as in week 5's notebook 4.
``--train-per-class`` training images per class from the first 54,000 training images, and
``--val`` validation images from the last 6,000 (held out; the test set is not used: this is a
speed measurement, not an accuracy claim).

The last line printed is one JSON object::

    {"target": 0.8, "size": 96, "train_images": 2000, "val_images": 1000,
     "modes": {"cached": {"seconds_to_target": ..., "epochs_to_target": ..., "feature_seconds": ...,
     "head_seconds": ..., "best_val_accuracy": ...}, "end_to_end": {...}},
     "speedup_cached_vs_end_to_end": ..., "load": "..."}

``seconds_to_target`` is ``null`` if the target was not reached within ``--max-epochs``.

Run: ``.venv/bin/python benchmarks/transfer_head_speed.py`` (about 3 minutes on 2 cores);
``--quick`` for a smoke run (200 training and 100 validation images, at most 2 epochs).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hide TensorFlow's start-up lines

import keras  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_average  # noqa: E402

CLASSES = 10


def fashion_subset(train_per_class: int, val_images: int, seed: int):
    """(x_train, y_train), (x_val, y_val): balanced training images, validation from the held-out end."""
    import numpy as np
    from cnn_course.data import load_fashion_mnist

    (x, y), _ = load_fashion_mnist(verbose=False)
    held_out = 6000                                   # the last 6,000 training images: validation only
    rng = np.random.default_rng(seed)
    fit_x, fit_y = x[:-held_out], y[:-held_out]
    chosen = np.concatenate([rng.choice(np.flatnonzero(fit_y == c), train_per_class, replace=False)
                             for c in range(CLASSES)])
    rng.shuffle(chosen)
    val = rng.choice(held_out, val_images, replace=False)
    return (fit_x[chosen, :, :, None], fit_y[chosen]), (x[-held_out:][val, :, :, None], y[-held_out:][val])


class WallClockToTarget(keras.callbacks.Callback):
    """Wall-clock seconds since `start` (validation included) until the validation accuracy reaches `target`."""

    def __init__(self, target: float, start: float):
        super().__init__()
        self.target, self.start = target, start
        self.seconds, self.accuracies = [], []
        self.seconds_to_target = self.epochs_to_target = None

    def on_epoch_end(self, epoch, logs=None):
        # Keras calls this after the epoch's validation pass, so that pass is counted.
        self.seconds.append(time.perf_counter() - self.start)
        self.accuracies.append(float(logs["val_accuracy"]))
        if self.accuracies[-1] >= self.target and self.seconds_to_target is None:
            self.seconds_to_target, self.epochs_to_target = self.seconds[-1], epoch + 1
            self.model.stop_training = True


def compiled(model, learning_rate: float):
    model.compile(keras.optimizers.Adam(learning_rate),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    return model


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=96, help="input side in pixels (default 96)")
    parser.add_argument("--train-per-class", type=int, default=200)
    parser.add_argument("--val", type=int, default=1000, help="validation images (default 1,000)")
    parser.add_argument("--target", type=float, default=0.80, help="validation accuracy to reach")
    parser.add_argument("--max-epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="smoke run: 200 + 100 images, at most 2 epochs")
    args = parser.parse_args(argv)
    if args.quick:
        args.train_per_class, args.val, args.max_epochs = 20, 100, 2

    from cnn_course import transfer
    from cnn_course.pretrained import mobilenet_v2

    print(f"load average before: {load_average()}", flush=True)
    (x_train, y_train), (x_val, y_val) = fashion_subset(args.train_per_class, args.val, args.seed)
    base = mobilenet_v2()
    extractor = transfer.grey_image_extractor(base, args.size)
    keras.utils.set_random_seed(args.seed)
    start_weights = transfer.head_on_features(CLASSES, 1280, dropout=0.0).get_weights()
    results = {}

    # cached: features once, then the head on the stored features
    start = time.perf_counter()
    train_features = transfer.cache_features(extractor, x_train, batch_size=128)
    val_features = transfer.cache_features(extractor, x_val, batch_size=128)
    feature_seconds = time.perf_counter() - start
    head = transfer.head_on_features(CLASSES, 1280, dropout=0.0)
    head.set_weights(start_weights)
    clock = WallClockToTarget(args.target, start)
    keras.utils.set_random_seed(args.seed)
    compiled(head, args.learning_rate).fit(train_features, y_train, batch_size=args.batch_size,
                                           epochs=args.max_epochs, validation_data=(val_features, y_val),
                                           callbacks=[clock], verbose=0)
    results["cached"] = {"feature_seconds": round(feature_seconds, 2),
                         "head_seconds": round(clock.seconds[-1] - feature_seconds, 2)}

    # end to end: every epoch through the frozen base
    head = transfer.head_on_features(CLASSES, 1280, dropout=0.0)
    head.set_weights(start_weights)
    grey = keras.Input((28, 28, 1), name="fashion_image")
    extractor.trainable = False
    model = keras.Model(grey, head(extractor(grey, training=False)), name="frozen_base_with_head")
    start = time.perf_counter()
    clock_e2e = WallClockToTarget(args.target, start)
    keras.utils.set_random_seed(args.seed)
    compiled(model, args.learning_rate).fit(x_train, y_train, batch_size=args.batch_size, epochs=args.max_epochs,
                                            validation_data=(x_val, y_val), callbacks=[clock_e2e], verbose=2)
    results["end_to_end"] = {}

    for name, timer in (("cached", clock), ("end_to_end", clock_e2e)):
        row = results[name]
        row.update(seconds_to_target=None if timer.seconds_to_target is None else round(timer.seconds_to_target, 2),
                   epochs_to_target=timer.epochs_to_target, epochs_run=len(timer.accuracies),
                   best_val_accuracy=round(max(timer.accuracies), 4),
                   seconds_per_epoch=round(timer.seconds[-1] / len(timer.seconds), 3) if name == "end_to_end"
                   else round((timer.seconds[-1] - feature_seconds) / len(timer.seconds), 3))
        reached = (f"{row['seconds_to_target']:.1f} s to {args.target:.0%} (epoch {row['epochs_to_target']})"
                   if row["seconds_to_target"] is not None else f"target {args.target:.0%} not reached")
        print(f"{name:10s}: {reached}; {row['epochs_run']} epochs, best validation {row['best_val_accuracy']:.3f},"
              f" {row['seconds_per_epoch']:.3f} s per epoch", flush=True)
    print(f"cached: {feature_seconds:.1f} s of it extracting the features of {len(x_train) + len(x_val):,} images "
          "once", flush=True)
    cached_s, e2e_s = results["cached"]["seconds_to_target"], results["end_to_end"]["seconds_to_target"]
    speedup = round(e2e_s / cached_s, 2) if cached_s and e2e_s else None
    if speedup is not None:
        print(f"caching the features reaches the target {speedup:.1f}× sooner", flush=True)
    summary = {"target": args.target, "size": args.size, "train_images": len(x_train), "val_images": len(x_val),
               "batch_size": args.batch_size, "learning_rate": args.learning_rate, "seed": args.seed,
               "modes": results, "speedup_cached_vs_end_to_end": speedup, "load": load_average()}
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
