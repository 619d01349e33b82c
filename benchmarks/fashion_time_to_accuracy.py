"""Fashion-MNIST: training time to 93 % validation accuracy, plain vs residual vs residual + batch norm.

Trains, in one process one after the other, four networks from
``cnn_course.small_nets.small_resnet`` with exactly the same convolutions (3×3 stem, one
stage per entry of ``--widths``, ``--blocks`` basic blocks per stage, global average
pooling) and the same recipe (Adam + one-cycle schedule from ``cnn_course.models``,
``--epochs`` epochs, batch ``--batch-size``):

=============  ===========================================
name           network
=============  ===========================================
``resnet_bn``  shortcuts and batch normalisation (ours)
``resnet``     shortcuts, no batch normalisation
``plain_bn``   no shortcuts, batch normalisation
``plain``      no shortcuts, no batch normalisation
=============  ===========================================

Data: the last 6,000 of the 60,000 training images are held out as validation images
(``cnn_course.models.hold_out_validation``); the networks train on the other 54,000.
After every epoch each network is evaluated on the validation images, and the
*training* time (evaluation not counted, ``TimeToAccuracy``) up to the first epoch at
>= ``--target`` validation accuracy is its time to accuracy. Every network runs its
whole one-cycle schedule (it only ends at a low learning rate). Then, and only then,
each trained network is evaluated once on the 10,000 test images.

The last line printed is one JSON object::

    {"target": 0.93, "recipe": {...}, "networks": {"resnet_bn": {"parameters": ..., "seconds_to_target": ...,
     "epochs_to_target": ..., "epochs_run": ..., "training_seconds": ..., "best_val_accuracy": ...,
     "final_val_accuracy": ..., "test_accuracy": ...}, ...}}

``seconds_to_target`` is ``null`` if the target was not reached.

Run: ``.venv/bin/python benchmarks/fashion_time_to_accuracy.py`` (about 4 × the training time
of one network), ``--networks resnet_bn plain_bn`` to choose, ``--quick`` for a smoke run (1 epoch
each on 2,000 training images, target not expected to be reached).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from _common import load_average, print_epochs  # noqa: E402
from cnn_course.data import load_fashion_mnist  # noqa: E402
from cnn_course.models import OneCycleSchedule, TimeToAccuracy, hold_out_validation, mnist_as_inputs  # noqa: E402
from cnn_course.small_nets import small_resnet  # noqa: E402

NETWORKS = {"resnet_bn": (True, True), "resnet": (True, False), "plain_bn": (False, True), "plain": (False, False)}


def train(name: str, data, args) -> dict:
    (x_fit, y_fit), (x_val, y_val), (x_test, y_test) = data
    residual, batch_norm = NETWORKS[name]
    keras.utils.set_random_seed(args.seed)
    model = small_resnet(input_shape=(28, 28, 1), classes=10, widths=tuple(args.widths),
                         blocks_per_stage=args.blocks, residual=residual, batch_norm=batch_norm)
    steps = args.epochs * -(-len(x_fit) // args.batch_size)
    model.compile(optimizer=keras.optimizers.Adam(OneCycleSchedule(args.peak_learning_rate, max(steps, 2))),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    print(f"{name}: {model.name}, {model.count_params():,} parameters, Adam + one-cycle over {args.epochs} "
          f"epochs (peak {args.peak_learning_rate}), batch {args.batch_size}, load average {load_average()}",
          flush=True)
    clock = TimeToAccuracy(args.target, stop_at_target=False)  # the schedule runs to its end
    model.fit(x_fit, y_fit, batch_size=args.batch_size, epochs=args.epochs, validation_data=(x_val, y_val),
              verbose=0, callbacks=[clock])
    print_epochs(name, clock.seconds, clock.accuracies)
    _, test_accuracy = model.evaluate(x_test, y_test, batch_size=1000, verbose=0)
    print(f"  {name}: test accuracy {test_accuracy:.4f} (once, after training)", flush=True)
    return {
        "parameters": model.count_params(),
        "seconds_to_target": None if clock.seconds_to_target is None else round(clock.seconds_to_target, 2),
        "epochs_to_target": clock.epochs_to_target,
        "epochs_run": len(clock.seconds),
        "training_seconds": round(sum(clock.seconds), 2),
        "best_val_accuracy": round(max(clock.accuracies), 4),
        "final_val_accuracy": round(clock.accuracies[-1], 4),
        "test_accuracy": round(float(test_accuracy), 4),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", type=float, default=0.93, help="validation accuracy to reach (default 0.93)")
    parser.add_argument("--networks", nargs="+", choices=list(NETWORKS), default=list(NETWORKS),
                        help="networks to train, in this order (default: all four)")
    parser.add_argument("--widths", type=int, nargs="+", default=[16, 32, 64], help="channels of each stage")
    parser.add_argument("--blocks", type=int, default=1, help="basic blocks per stage (default 1)")
    parser.add_argument("--epochs", type=int, default=6, help="length of the one-cycle schedule (default 6)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--peak-learning-rate", type=float, default=0.005)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 epoch each on 2,000 training images")
    args = parser.parse_args(argv)

    (x_train, y_train), (x_test, y_test) = load_fashion_mnist(verbose=False)
    (x_fit, y_fit), (x_val, y_val) = hold_out_validation(mnist_as_inputs(x_train), y_train, fraction=0.1)
    x_test = mnist_as_inputs(x_test)
    if args.quick:
        x_fit, y_fit, args.epochs = x_fit[:2000], y_fit[:2000], 1
    print(f"Fashion-MNIST: training on {len(x_fit)} images, validation {len(x_val)} (held out from the training "
          f"set), test {len(x_test)} (evaluated once per network, at the end); target validation accuracy "
          f"{args.target}", flush=True)
    print(f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, python {platform.python_version()}, "
          f"tensorflow {tf.__version__}, keras {keras.__version__}, {os.cpu_count()} CPUs, "
          f"load average {load_average()}", flush=True)
    data = ((x_fit, y_fit), (x_val, y_val), (x_test, y_test))
    results = {name: train(name, data, args) for name in args.networks}

    print(f"\n{'network':<10} {'parameters':>10} {'to target':>10} {'epochs':>6} {'training':>9} "
          f"{'best val':>8} {'test':>7}")
    for name, result in results.items():
        reached = "—" if result["seconds_to_target"] is None else f"{result['seconds_to_target']:.1f} s"
        print(f"{name:<10} {result['parameters']:>10,} {reached:>10} {result['epochs_run']:>6} "
              f"{result['training_seconds']:>7.1f} s {result['best_val_accuracy']:>8.4f} "
              f"{result['test_accuracy']:>7.4f}")
    print(f"load average at the end {load_average()}", flush=True)
    recipe = {"widths": args.widths, "blocks_per_stage": args.blocks, "epochs": args.epochs,
              "batch_size": args.batch_size, "peak_learning_rate": args.peak_learning_rate, "seed": args.seed,
              "quick": args.quick}
    result = {"target": args.target, "recipe": recipe, "networks": results}
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
