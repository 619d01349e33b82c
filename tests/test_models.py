"""cnn_course.models: the fast MNIST network, the reference convnet, the one-cycle schedule and the benchmark."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

keras = pytest.importorskip("keras")  # imports TensorFlow once for the module

from cnn_course.data import load_mnist  # noqa: E402
from cnn_course.models import (  # noqa: E402
    EpochTimer,
    OneCycleSchedule,
    fast_mnist_cnn,
    mnist_as_inputs,
    reference_mnist_cnn,
    train_fast_mnist,
)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def mnist():
    (x_train, y_train), (x_test, y_test) = load_mnist(verbose=False)
    return x_train, y_train, x_test, y_test


def conv_weights(kernel: int, channels_in: int, filters: int, bias: bool) -> int:
    return kernel * kernel * channels_in * filters + (filters if bias else 0)


def batch_norm_weights(channels: int) -> int:
    return 4 * channels  # gamma, beta (trained) + moving mean, moving variance (not trained)


# ------------------------------------------------------------------ architecture


def test_fast_network_parameter_count_from_its_layers():
    model = fast_mnist_cnn()
    expected = (
        conv_weights(5, 1, 24, bias=False) + batch_norm_weights(24)
        + conv_weights(3, 24, 48, bias=False) + batch_norm_weights(48)
        + conv_weights(3, 48, 96, bias=False) + batch_norm_weights(96)
        + 5 * 5 * 96 * 10 + 10  # dense on the flattened 5×5×96 map
    )
    assert model.count_params() == expected == 77_122
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == expected - 2 * (24 + 48 + 96)
    shapes = [layer.output.shape[1:] for layer in model.layers if layer.name.endswith("_relu")]
    assert shapes == [(14, 14, 24), (7, 7, 48), (5, 5, 96)]


def test_fast_network_is_much_smaller_than_the_reference():
    assert reference_mnist_cnn().count_params() > 15 * fast_mnist_cnn().count_params()


@pytest.mark.parametrize("build", [fast_mnist_cnn, reference_mnist_cnn])
def test_models_output_probabilities_for_uint8_digits(build, mnist):
    x_train = mnist[0]
    model = build()
    probabilities = np.asarray(model(mnist_as_inputs(x_train[:7]), training=False))
    assert probabilities.shape == (7, 10)
    assert np.all(probabilities >= 0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_reference_model_is_the_plain_keras_example_convnet():
    model = reference_mnist_cnn()
    layers = keras.layers
    described = [
        (layers.Rescaling, {}),
        (layers.Conv2D, {"filters": 32, "kernel_size": (3, 3), "activation": "relu"}),
        (layers.Conv2D, {"filters": 64, "kernel_size": (3, 3), "activation": "relu"}),
        (layers.MaxPooling2D, {"pool_size": (2, 2)}),
        (layers.Dropout, {"rate": 0.25}),
        (layers.Flatten, {}),
        (layers.Dense, {"units": 128, "activation": "relu"}),
        (layers.Dropout, {"rate": 0.5}),
        (layers.Dense, {"units": 10, "activation": "softmax"}),
    ]
    assert len(model.layers) == len(described)
    for layer, (kind, settings) in zip(model.layers, described, strict=True):
        assert type(layer) is kind, layer.name
        config = layer.get_config()
        for key, value in settings.items():
            got = tuple(config[key]) if isinstance(config[key], list) else config[key]
            assert got == value, (layer.name, key)
    assert model.count_params() == 1_199_882
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-3)


def test_same_seed_same_initial_weights_other_seed_different():
    first, second, other = fast_mnist_cnn(seed=3), fast_mnist_cnn(seed=3), fast_mnist_cnn(seed=4)
    for a, b in zip(first.get_weights(), second.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first.get_weights()[0], other.get_weights()[0])


def test_input_validation_messages():
    with pytest.raises(ValueError, match=r"\(N, 28, 28\).*got \(28, 28\)"):
        mnist_as_inputs(np.zeros((28, 28), np.uint8))
    with pytest.raises(TypeError, match="uint8"):
        mnist_as_inputs(np.zeros((2, 28, 28), np.float32))
    x = np.zeros((4, 28, 28), np.uint8)
    with pytest.raises(ValueError, match="labels"):
        train_fast_mnist(x, np.zeros(3, int), x, np.zeros(4, int), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="0-9"):
        train_fast_mnist(x, np.full(4, 10), x, np.zeros(4, int), epochs=1, verbose=0)


# ------------------------------------------------------------------ one-cycle schedule


def test_one_cycle_schedule_shape():
    peak, total = 0.02, 400
    schedule = OneCycleSchedule(peak, total_steps=total, warmup_fraction=0.25,
                                initial_divisor=20, final_divisor=1000)
    rates = np.array([float(schedule(step)) for step in range(total + 1)])
    assert rates[0] == pytest.approx(peak / 20)
    assert rates.argmax() == 100 and rates.max() == pytest.approx(peak)
    assert rates[-1] == pytest.approx(peak / 1000)
    assert np.all(np.diff(rates[:101]) > 0)  # climbing during the warm-up ...
    assert np.all(np.diff(rates[100:]) < 0)  # ... then falling all the way
    assert rates[50] == pytest.approx((peak / 20 + peak) / 2)  # linear warm-up
    assert rates[250] == pytest.approx((peak + peak / 1000) / 2)  # cosine: half-way down at mid-decay
    assert float(schedule(10 * total)) == pytest.approx(peak / 1000)  # stays at the end value


def test_one_cycle_schedule_round_trips_through_its_config():
    schedule = OneCycleSchedule(0.01, total_steps=50)
    copy = OneCycleSchedule.from_config(schedule.get_config())
    assert float(copy(20)) == pytest.approx(float(schedule(20)))


@pytest.mark.parametrize("kwargs", [
    {"peak_learning_rate": 0, "total_steps": 10},
    {"peak_learning_rate": 0.1, "total_steps": 1},
    {"peak_learning_rate": 0.1, "total_steps": 10, "warmup_fraction": 1.0},
])
def test_one_cycle_schedule_rejects_bad_settings(kwargs):
    with pytest.raises(ValueError):
        OneCycleSchedule(**kwargs)


# ------------------------------------------------------------------ training


def tiny_run(mnist, seed):
    x_train, y_train, x_test, y_test = mnist
    return train_fast_mnist(x_train[:1024], y_train[:1024], x_test[:256], y_test[:256],
                            epochs=2, batch_size=256, seed=seed, verbose=0)


def test_tiny_training_run_is_reproducible_with_a_seed_and_timed(mnist):
    model_a, history_a = tiny_run(mnist, seed=1)
    model_b, history_b = tiny_run(mnist, seed=1)
    for a, b in zip(model_a.get_weights(), model_b.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    # 2 epochs × 4 steps of training changed the weights (so the comparison above is not trivial);
    # a different seed gives different weights: test_same_seed_same_initial_weights_other_seed_different
    assert not np.allclose(model_a.get_weights()[0], fast_mnist_cnn(seed=1).get_weights()[0], atol=1e-3)
    assert model_a.optimizer.iterations.numpy() == 8
    history = history_a.history
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "train_seconds"):
        assert len(history[key]) == 2, key
    np.testing.assert_allclose(history["val_accuracy"], history_b.history["val_accuracy"], atol=1e-6)
    assert all(seconds > 0 for seconds in history["train_seconds"])


def test_epoch_timer_leaves_out_the_evaluation(mnist):
    x_train, y_train, x_test, y_test = mnist

    class SlowEvaluation(keras.callbacks.Callback):
        def on_test_begin(self, logs=None):
            import time
            time.sleep(1.0)

    model = fast_mnist_cnn()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    timer = EpochTimer()
    started = __import__("time").perf_counter()
    model.fit(mnist_as_inputs(x_train[:256]), y_train[:256], batch_size=128, epochs=2, verbose=0,
              validation_data=(mnist_as_inputs(x_test[:128]), y_test[:128]),
              callbacks=[timer, SlowEvaluation()])
    wall = __import__("time").perf_counter() - started
    assert len(timer.seconds) == 2
    assert wall - sum(timer.seconds) >= 2.0  # both 1-s evaluation pauses are outside the timed part


# ------------------------------------------------------------------ benchmark script


@pytest.mark.slow
def test_benchmark_quick_mode_prints_json_last_line():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    completed = subprocess.run(
        [sys.executable, os.path.join(REPO_ROOT, "benchmarks", "mnist_time_to_accuracy.py"), "--quick"],
        capture_output=True, text=True, timeout=180, env=env, cwd=REPO_ROOT,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    lines = completed.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    assert set(result) == {"ours_seconds", "ours_test_accuracy", "reference_seconds",
                           "reference_test_accuracy", "speedup"}
    # one epoch on 2,000 images: both learn something but neither reaches 99 %
    assert 0.3 < result["ours_test_accuracy"] < 0.99
    assert 0.3 < result["reference_test_accuracy"] < 0.99
    assert result["ours_seconds"] is None and result["reference_seconds"] is None
    assert result["speedup"] is None
    assert any(line.startswith("  ours epoch 1:") for line in lines)
    assert any(line.startswith("  reference epoch 1:") for line in lines)
