"""cnn_course.models: the MNIST networks, the one-cycle schedule, the timing callbacks and the benchmark."""

from __future__ import annotations

import os
import time

import keras
import nbformat
import numpy as np
import pytest
from benchmark_runner import run_benchmark
from cnn_course.data import load_mnist
from cnn_course.models import (
    EpochTimer,
    OneCycleSchedule,
    TimeToAccuracy,
    fast_mnist_cnn,
    hold_out_validation,
    journal_club_mnist_cnn,
    keras_io_mnist_convnet,
    layer_configs,
    mnist_as_inputs,
    reference_mnist_cnn,
    train_fast_mnist,
)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MNIST_NOTEBOOK = os.path.join(REPO_ROOT, "course", "week3_building_blocks", "05_mnist_99.ipynb")
layers = keras.layers


@pytest.fixture(scope="module")
def mnist():
    (x_train, y_train), (x_test, y_test) = load_mnist(verbose=False)
    return x_train, y_train, x_test, y_test


def conv_weights(kernel: int, channels_in: int, filters: int, bias: bool) -> int:
    return kernel * kernel * channels_in * filters + (filters if bias else 0)


def batch_norm_weights(channels: int) -> int:
    return 4 * channels  # gamma, beta (trained) + moving mean, moving variance (not trained)


def assert_layers(model, described):
    """The model's layers are of these classes, with these settings, in this order."""
    assert len(model.layers) == len(described), [layer.name for layer in model.layers]
    for layer, (kind, settings) in zip(model.layers, described, strict=True):
        assert type(layer) is kind, layer.name
        config = layer.get_config()
        for key, value in settings.items():
            got = tuple(config[key]) if isinstance(config[key], list) else config[key]
            assert got == value, (layer.name, key, got)


# ------------------------------------------------------------------ architectures


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


def test_keras_io_convnet_is_the_simple_mnist_convnet_of_keras_io():
    model = keras_io_mnist_convnet()
    assert_layers(model, [
        (layers.Rescaling, {"scale": 1 / 255}),
        (layers.Conv2D, {"filters": 32, "kernel_size": (3, 3), "strides": (1, 1), "padding": "valid",
                         "activation": "relu"}),
        (layers.MaxPooling2D, {"pool_size": (2, 2)}),
        (layers.Conv2D, {"filters": 64, "kernel_size": (3, 3), "strides": (1, 1), "padding": "valid",
                         "activation": "relu"}),
        (layers.MaxPooling2D, {"pool_size": (2, 2)}),
        (layers.Flatten, {}),
        (layers.Dropout, {"rate": 0.5}),
        (layers.Dense, {"units": 10, "activation": "softmax"}),
    ])
    # 28 -conv-> 26 -pool-> 13 -conv-> 11 -pool-> 5: a 5×5×64 map into the dense layer
    expected = conv_weights(3, 1, 32, bias=True) + conv_weights(3, 32, 64, bias=True) + 5 * 5 * 64 * 10 + 10
    assert model.count_params() == expected == 34_826  # the figure keras.io prints


def test_journal_club_network_is_the_keras_1_example():
    model = journal_club_mnist_cnn()
    assert_layers(model, [
        (layers.Rescaling, {}),
        (layers.Conv2D, {"filters": 32, "kernel_size": (3, 3), "padding": "valid", "activation": "relu"}),
        (layers.Conv2D, {"filters": 32, "kernel_size": (3, 3), "padding": "valid", "activation": "relu"}),
        (layers.MaxPooling2D, {"pool_size": (2, 2)}),
        (layers.Dropout, {"rate": 0.25}),
        (layers.Flatten, {}),
        (layers.Dense, {"units": 128, "activation": "relu"}),
        (layers.Dropout, {"rate": 0.5}),
        (layers.Dense, {"units": 10, "activation": "softmax"}),
    ])
    # 28 -conv-> 26 -conv-> 24 -pool-> 12: a 12×12×32 map into the dense layer of 128
    expected = (conv_weights(3, 1, 32, bias=True) + conv_weights(3, 32, 32, bias=True)
                + 12 * 12 * 32 * 128 + 128 + 128 * 10 + 10)
    assert model.count_params() == expected == 600_810


def test_reference_model_is_the_retired_keras_2_example_convnet():
    model = reference_mnist_cnn()
    assert_layers(model, [
        (layers.Rescaling, {}),
        (layers.Conv2D, {"filters": 32, "kernel_size": (3, 3), "activation": "relu"}),
        (layers.Conv2D, {"filters": 64, "kernel_size": (3, 3), "activation": "relu"}),
        (layers.MaxPooling2D, {"pool_size": (2, 2)}),
        (layers.Dropout, {"rate": 0.25}),
        (layers.Flatten, {}),
        (layers.Dense, {"units": 128, "activation": "relu"}),
        (layers.Dropout, {"rate": 0.5}),
        (layers.Dense, {"units": 10, "activation": "softmax"}),
    ])
    assert model.count_params() == 1_199_882
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-3)


def test_fast_network_is_much_smaller_than_the_keras_2_reference():
    assert reference_mnist_cnn().count_params() > 15 * fast_mnist_cnn().count_params()


BUILDERS = [fast_mnist_cnn, keras_io_mnist_convnet, journal_club_mnist_cnn, reference_mnist_cnn]


@pytest.mark.parametrize("build", BUILDERS)
def test_models_output_probabilities_for_uint8_digits(build, mnist):
    x_train = mnist[0]
    model = build()
    probabilities = np.asarray(model(mnist_as_inputs(x_train[:7]), training=False))
    assert probabilities.shape == (7, 10)
    assert np.all(probabilities >= 0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("build", BUILDERS)
def test_builders_take_input_shape_and_number_of_classes(build):
    model = build(input_shape=(32, 32, 3), num_classes=5)
    assert model.input_shape == (None, 32, 32, 3)
    assert model.output_shape == (None, 5)
    images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    assert np.asarray(model(images, training=False)).shape == (2, 5)


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


# ------------------------------------------------------------------ comparing architectures


def sequential_fast_network(filters=(24, 48, 96), batch_norm=True):
    """fast_mnist_cnn written the way the lecture notebook writes it: Sequential, default names."""
    stack = [keras.Input((28, 28, 1), dtype="uint8"), layers.Rescaling(1 / 255)]
    for width, kernel, stride, padding in zip(filters, (5, 3, 3), (2, 2, 1), ("same", "same", "valid"),
                                              strict=True):
        stack.append(layers.Conv2D(width, kernel, strides=stride, padding=padding, use_bias=not batch_norm))
        if batch_norm:
            stack.append(layers.BatchNormalization())
        stack.append(layers.ReLU())
    stack += [layers.Flatten(), layers.Dense(10, activation="softmax")]
    return keras.Sequential(stack)


def test_layer_configs_ignore_names_seeds_and_model_style():
    assert layer_configs(fast_mnist_cnn(seed=0)) == layer_configs(fast_mnist_cnn(seed=1))
    assert layer_configs(sequential_fast_network()) == layer_configs(fast_mnist_cnn())


@pytest.mark.parametrize("changed", [
    lambda: sequential_fast_network(filters=(24, 48, 64)),
    lambda: sequential_fast_network(batch_norm=False),
    lambda: fast_mnist_cnn(input_shape=(28, 28, 3)),
    lambda: fast_mnist_cnn(num_classes=9),
    keras_io_mnist_convnet,
])
def test_layer_configs_see_every_change_of_architecture(changed):
    assert layer_configs(changed()) != layer_configs(fast_mnist_cnn())


@pytest.mark.parametrize(("function", "package_network"), [
    ("keras_io_network", keras_io_mnist_convnet),
    ("strided_network", lambda: fast_mnist_cnn(batch_norm=False)),
    ("strided_bn_network", fast_mnist_cnn),
])
def test_lecture_notebook_builds_the_networks_the_benchmark_times(function, package_network):
    # The cell of 05_mnist_99.ipynb that defines the network, run on its own up to its first blank line
    # after the function (what follows uses the notebook's data).
    notebook = nbformat.read(MNIST_NOTEBOOK, as_version=4)
    sources = [cell.source for cell in notebook.cells
               if cell.cell_type == "code" and f"def {function}(" in cell.source]
    assert len(sources) == 1, f"expected one cell that defines {function}()"
    definition = sources[0].split("\n\n\n")[0]
    namespace = {"keras": keras, "layers": layers}
    exec(definition, namespace)
    assert layer_configs(namespace[function](seed=0)) == layer_configs(package_network())


# ------------------------------------------------------------------ validation split


def test_hold_out_validation_is_keras_validation_split():
    images, labels = np.arange(100).reshape(50, 2), np.arange(50)
    (x_fit, y_fit), (x_val, y_val) = hold_out_validation(images, labels, fraction=0.1)
    assert x_fit.shape == (45, 2) and x_val.shape == (5, 2)
    np.testing.assert_array_equal(y_val, [45, 46, 47, 48, 49])  # the last images, as validation_split
    np.testing.assert_array_equal(np.concatenate([y_fit, y_val]), labels)
    np.testing.assert_array_equal(x_val, images[45:])


@pytest.mark.parametrize("fraction", [0, 1, 1.5, 0.001])
def test_hold_out_validation_rejects_empty_parts(fraction):
    with pytest.raises(ValueError, match="fraction"):
        hold_out_validation(np.zeros(50), np.zeros(50), fraction)


def test_hold_out_validation_needs_as_many_labels_as_images():
    with pytest.raises(ValueError, match="50 images but 49 labels"):
        hold_out_validation(np.zeros(50), np.zeros(49))


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


# ------------------------------------------------------------------ timing callbacks


class SlowEvaluation(keras.callbacks.Callback):
    def on_test_begin(self, logs=None):
        time.sleep(1.0)


class LogKeys(keras.callbacks.Callback):
    """Records the keys of every epoch's logs: what the progress bar shows."""

    def __init__(self):
        super().__init__()
        self.keys = []

    def on_epoch_end(self, epoch, logs=None):
        self.keys.append(sorted(logs))


def small_fit(mnist, callbacks, epochs=2):
    x_train, y_train = mnist[0], mnist[1]
    (x_fit, y_fit), (x_val, y_val) = hold_out_validation(mnist_as_inputs(x_train[:384]), y_train[:384],
                                                         fraction=1 / 3)
    model = fast_mnist_cnn()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model.fit(x_fit, y_fit, batch_size=128, epochs=epochs, verbose=0,
                     validation_data=(x_val, y_val), callbacks=callbacks)


def test_epoch_timer_leaves_out_the_evaluation_and_keeps_the_logs_clean(mnist):
    timer, keys = EpochTimer(), LogKeys()
    started = time.perf_counter()
    small_fit(mnist, [timer, SlowEvaluation(), keys])
    wall = time.perf_counter() - started
    assert len(timer.seconds) == 2
    assert wall - sum(timer.seconds) >= 2.0  # both 1-s evaluation pauses are outside the timed part
    assert keys.keys == [["accuracy", "loss", "val_accuracy", "val_loss"]] * 2  # no train_seconds column


def test_time_to_accuracy_stops_at_the_target(mnist):
    clock = TimeToAccuracy(target=0.05)  # any network beats 5 % after one epoch
    small_fit(mnist, [clock], epochs=5)
    assert clock.epochs_to_target == 1 and len(clock.seconds) == 1
    assert clock.seconds_to_target == pytest.approx(clock.seconds[0])
    assert clock.accuracies[0] >= 0.05


def test_time_to_accuracy_runs_on_when_asked_and_notes_the_first_epoch(mnist):
    clock = TimeToAccuracy(target=0.05, stop_at_target=False)
    small_fit(mnist, [clock], epochs=2)
    assert len(clock.seconds) == 2 and clock.epochs_to_target == 1


def test_time_to_accuracy_stops_when_the_budget_is_spent(mnist):
    clock = TimeToAccuracy(target=1.0, max_seconds=1e-3)  # unreachable target, budget spent at once
    small_fit(mnist, [clock], epochs=5)
    assert len(clock.seconds) == 1
    assert clock.seconds_to_target is None and clock.epochs_to_target is None


def test_time_to_accuracy_needs_validation_data(mnist):
    x, y = mnist_as_inputs(mnist[0][:64]), mnist[1][:64]
    model = fast_mnist_cnn()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    with pytest.raises(ValueError, match="validation_data"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[TimeToAccuracy(0.99)])


@pytest.mark.parametrize("kwargs", [{"target": 0}, {"target": 99}, {"target": 0.99, "max_seconds": 0}])
def test_time_to_accuracy_rejects_bad_settings(kwargs):
    with pytest.raises(ValueError):
        TimeToAccuracy(**kwargs)


# ------------------------------------------------------------------ training


def tiny_run(mnist, seed):
    x_train, y_train = mnist[0], mnist[1]
    return train_fast_mnist(x_train[:1024], y_train[:1024], x_train[-256:], y_train[-256:],
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


# ------------------------------------------------------------------ benchmark script


@pytest.mark.slow
def test_benchmark_quick_mode_prints_json_last_line():
    # ours and two published networks cover both code paths (one-cycle, and a published recipe)
    lines, result = run_benchmark("mnist_time_to_accuracy.py", "--quick", "--networks", "ours", "keras_io",
                               "journal_club")
    assert result["target"] == 0.99
    assert list(result["networks"]) == ["ours", "keras_io", "journal_club"]
    for name, figures in result["networks"].items():
        # one epoch on 2,000 images: every network learns something but none reaches 99 %
        assert 0.3 < figures["best_val_accuracy"] < 0.99, name
        assert 0.3 < figures["test_accuracy"] < 0.99, name
        assert figures["seconds_to_target"] is None and figures["epochs_run"] == 1, name
        assert any(line.startswith(f"  {name} epoch 1:") for line in lines), name
    assert result["speedup"] == {"keras_io": None, "journal_club": None}
    assert any("validation 6000 (held out from the training set)" in line for line in lines)


@pytest.mark.slow
def test_recipe_search_quick_mode_prints_json_last_line():
    lines, result = run_benchmark("mnist_one_cycle_search.py", "--quick")
    (run,) = result["runs"]
    assert run["epochs"] == 1 and len(run["val_accuracy"]) == 1 and 0.3 < run["val_accuracy"][0] < 0.99
    assert result["chosen"] is None  # one epoch on 2,000 images does not reach 99 %


def test_time_to_accuracy_does_not_start_an_epoch_that_would_overrun_the_budget():
    class FakeModel:
        stop_training = False

    clock = TimeToAccuracy(target=0.99, max_seconds=25)
    clock.set_model(FakeModel())
    for epoch in range(3):
        clock.on_epoch_begin(epoch)
        clock._started -= 10.0  # pretend this epoch took 10 s
        clock.on_epoch_end(epoch, {"val_accuracy": 0.5})
        if clock.model.stop_training:
            break
    # after 10 s another 10-s epoch fits into 25 s; after 20 s it would end at 30 s: stop
    assert len(clock.seconds) == 2 and clock.seconds[0] == pytest.approx(10, abs=0.5)
    assert clock.model.stop_training and clock.seconds_to_target is None
