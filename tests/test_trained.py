"""cnn_course.trained: the week-3 network trained once, stored with a checksum, loaded afterwards."""

import numpy as np
import pytest
from cnn_course import trained
from cnn_course.data import load_mnist


@pytest.fixture(scope="module")
def few_digits():
    # 3,000 real MNIST training images keep the training in these tests to a few seconds.
    (x_train, y_train), test = load_mnist(verbose=False)
    return (x_train[:3000], y_train[:3000]), test


@pytest.fixture
def small_training(monkeypatch, few_digits):
    monkeypatch.setattr(trained, "_load", lambda dataset: few_digits)


@pytest.mark.slow
def test_trains_once_then_loads_the_same_weights_and_retrains_a_damaged_file(small_training, few_digits, tmp_path, capsys):
    first = trained.digit_network("mnist", epochs=1, cache_dir=tmp_path)
    out = capsys.readouterr().out
    assert "training the week-3 fast network for 1 epochs on 2,700 images" in out   # 10 % held out
    stored = sorted(p.name for p in tmp_path.iterdir())
    assert len(stored) == 2 and stored[0].startswith("mnist_fast_cnn_1_epochs_seed_0-")
    assert stored[1] == stored[0] + ".sha256"
    second = trained.digit_network("mnist", epochs=1, cache_dir=tmp_path)
    assert "weights loaded from" in capsys.readouterr().out
    images = few_digits[0][0][:64, :, :, None]
    np.testing.assert_array_equal(first.predict(images, verbose=0), second.predict(images, verbose=0))
    # Trained, not fresh: better than chance on images it learned from.
    assert np.mean(np.argmax(second.predict(images, verbose=0), axis=1) == few_digits[0][1][:64]) > 0.5
    assert second.output_shape == (None, 10) and second.input.dtype == "uint8"

    # A damaged file does not match its checksum: the network is trained again, the checksum renewed.
    weights = tmp_path / stored[0]
    weights.write_bytes(weights.read_bytes()[:-100] + b"\0" * 100)
    trained.digit_network("mnist", epochs=1, cache_dir=tmp_path)
    out = capsys.readouterr().out
    assert "do not match their checksum; training again" in out and "weights loaded" not in out
    assert (tmp_path / stored[1]).read_text().strip() == trained.sha256_of(weights)


def test_other_settings_get_other_files(tmp_path):
    paths = {trained._stored_path(d, e, s, tmp_path) for d in ("mnist", "fashion") for e in (1, 3) for s in (0, 1)}
    assert len(paths) == 8
    assert trained._stored_path("mnist", 3, 0, tmp_path) == trained._stored_path("mnist", 3, 0, tmp_path)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"dataset": "cifar"}, ValueError, r"dataset must be one of \['fashion', 'mnist'\].*got 'cifar'"),
    ({"epochs": 0}, ValueError, r"epochs must be positive, got 0"),
    ({"seed": -1}, ValueError, r"seed must be"),
    ({"seed": 1.5}, TypeError, r"seed must be an int"),
])
def test_bad_arguments(kwargs, error, message, tmp_path):
    with pytest.raises(error, match=message):
        trained.digit_network(**{"cache_dir": tmp_path, **kwargs})
