"""Time the three ways of computing a convolution layer on the same inputs.

* ``naive``  -- :func:`cnn_course.conv.conv2d_naive`, a Python loop over output positions;
* ``im2col`` -- :func:`cnn_course.conv.conv2d`, all windows gathered into one matrix and
  multiplied with the kernel in a single matrix product;
* ``TF``     -- ``tf.nn.conv2d`` (TensorFlow's optimised CPU kernel), timed after warm-up calls.

Cases (float32, padding "same", stride 1):

(a) one 256×256×3 image with a 3×3×3×16 kernel;
(b) a batch of 64 images of 28×28×1 with a 3×3×1×32 kernel.

Each time is the median (and, in a second table, the best) of several repeats. The script
checks that the three outputs agree (exit status 1 if not) and reports whether im2col
reaches the course's target of being at least 20× faster than the naive loops.

Usage::

    .venv/bin/python benchmarks/conv_speed.py            # ~15 s on 2 cores
    .venv/bin/python benchmarks/conv_speed.py --repeats 3
    OPENBLAS_NUM_THREADS=2 .venv/bin/python benchmarks/conv_speed.py   # numpy may use 2 threads
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# One BLAS thread for numpy unless the caller exports another number. On a 2-core machine
# shared with other work, OpenBLAS's second thread often waits for a core (and TensorFlow's
# worker threads spin for a while after each TF call), turning a 0.4 ms matrix product into
# ~15 ms at random; one thread makes the im2col timing steady, and the comparison with the
# (single-threaded) naive loops fair. TensorFlow keeps its own default thread pool.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from cnn_course.conv import conv2d, conv2d_naive  # noqa: E402

TARGET_SPEED_UP = 20.0

CASES = {
    "(a) 1 × 256×256×3, kernel 3×3×3×16": ((1, 256, 256, 3), (3, 3, 3, 16)),
    "(b) 64 × 28×28×1, kernel 3×3×1×32": ((64, 28, 28, 1), (3, 3, 1, 32)),
}


def wall_times(run, repeats: int) -> list[float]:
    """Wall-clock seconds of ``repeats`` calls of ``run()``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return times


def make_inputs(x_shape, w_shape) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=x_shape).astype(np.float32)
    w = rng.normal(size=w_shape).astype(np.float32)
    b = rng.normal(size=w_shape[3]).astype(np.float32)
    return x, w, b


def time_numpy(x, w, b, repeats: int, naive_repeats: int) -> tuple[dict, dict]:
    """Outputs and wall times of the naive loops and of the im2col path."""
    outputs = {"naive": conv2d_naive(x, w, b, padding="same"), "im2col": conv2d(x, w, b, padding="same")}
    seconds = {
        "naive": wall_times(lambda: conv2d_naive(x, w, b, padding="same"), naive_repeats),
        "im2col": wall_times(lambda: conv2d(x, w, b, padding="same"), repeats),
    }
    return outputs, seconds


def time_tensorflow(x, w, b, repeats: int) -> tuple[np.ndarray, list[float]]:
    """Output and wall times of tf.nn.conv2d, after warm-up calls."""
    x_tf, w_tf, b_tf = tf.constant(x), tf.constant(w), tf.constant(b)

    def tensorflow():
        # .numpy() waits for the result and copies it out, as conv2d's result is a numpy array
        return (tf.nn.conv2d(x_tf, w_tf, strides=1, padding="SAME") + b_tf).numpy()

    output = tensorflow()
    for _ in range(3):
        tensorflow()
    return output, wall_times(tensorflow, repeats)


def benchmark(repeats: int, naive_repeats: int) -> dict:
    """Times and agreement for every case; all numpy timings first, then TensorFlow's.

    TensorFlow's worker threads keep spinning for a while after each TF call and would take
    a core from numpy, so no numpy timing follows a TF call.
    """
    inputs = {name: make_inputs(*shapes) for name, shapes in CASES.items()}
    results = {}
    for name, (x, w, b) in inputs.items():
        outputs, seconds = time_numpy(x, w, b, repeats, naive_repeats)
        results[name] = {"outputs": outputs, "seconds": seconds}
    for name, (x, w, b) in inputs.items():
        outputs, seconds = results[name]["outputs"], results[name]["seconds"]
        outputs["TF"], seconds["TF"] = time_tensorflow(x, w, b, repeats)
        scale = float(np.abs(outputs["TF"]).max())
        difference = max(float(np.abs(out - outputs["TF"]).max()) / scale for out in outputs.values())
        results[name]["agree"] = (
            all(out.shape == outputs["TF"].shape for out in outputs.values()) and difference < 1e-5)
    return results


def milliseconds(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def print_table(title: str, rows: list[tuple[str, dict, bool]]) -> list[float]:
    """Print one markdown table of times and ratios; return the im2col-vs-naive speed-ups."""
    print(f"\n{title}\n")
    header = (f"| {'case':<36} | {'naive':>11} | {'im2col':>9} | {'TF':>9} | "
              f"{'im2col vs naive':>15} | {'TF vs im2col':>12} | agree |")
    print(header)
    print("|" + "|".join("-" * len(part) for part in header.split("|")[1:-1]) + "|")
    speed_ups = []
    for name, s, agree in rows:
        speed_up, tf_ratio = s["naive"] / s["im2col"], s["im2col"] / s["TF"]
        speed_ups.append(speed_up)
        print(f"| {name:<36} | {milliseconds(s['naive']):>11} | {milliseconds(s['im2col']):>9} | "
              f"{milliseconds(s['TF']):>9} | {speed_up:>13.0f} × | {tf_ratio:>10.1f} × | "
              f"{'yes' if agree else 'NO':>5} |")
    return speed_ups


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="repeats for im2col and TF")
    parser.add_argument("--naive-repeats", type=int, default=3, help="repeats for the slow naive loops")
    args = parser.parse_args(argv)

    print(f"numpy {np.__version__}, tensorflow {tf.__version__}, Python {platform.python_version()}, "
          f"{os.cpu_count()} CPU cores, {platform.processor() or platform.machine()}, "
          f"load average before: {os.getloadavg()[0]:.1f}, "
          f"OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}")
    print(f"{args.naive_repeats} runs (naive) / {args.repeats} runs (im2col, TF) each, float32, padding 'same'")
    results = benchmark(args.repeats, args.naive_repeats)
    speed_ups = print_table("Median time", [
        (name, {k: statistics.median(v) for k, v in r["seconds"].items()}, r["agree"])
        for name, r in results.items()])
    print_table("Best time (least disturbed by other processes)", [
        (name, {k: min(v) for k, v in r["seconds"].items()}, r["agree"]) for name, r in results.items()])
    print("\n'im2col vs naive' = naive time / im2col time; 'TF vs im2col' = im2col time / TF time.")
    met = min(speed_ups) >= TARGET_SPEED_UP
    print(f"target im2col >= {TARGET_SPEED_UP:.0f}× faster than naive (medians): {'met' if met else 'NOT met'} "
          f"(smallest speed-up {min(speed_ups):.0f}×)")
    if not all(r["agree"] for r in results.values()):
        print("ERROR: the three implementations disagree", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
