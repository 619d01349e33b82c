"""The course's trained digit and clothing networks, trained once and kept in the Keras cache.

Week 6 attacks and explains networks that are already trained: the week-3 fast network
(:func:`cnn_course.models.fast_mnist_cnn`) trained on MNIST or on Fashion-MNIST with the
week-3 recipe (:func:`cnn_course.models.train_fast_mnist`: Adam, one-cycle schedule). Training
takes about a minute on 2 cores, so :func:`digit_network` trains it once and stores the weights
under the Keras cache folder (``~/.keras/cnn_course_models/``), with a SHA-256 file next to them;
every later call, in any notebook, loads them in a second. A damaged or changed file is
noticed by its hash and the network is trained again.

The network is trained on the training images minus the validation split that
:func:`cnn_course.models.hold_out_validation` holds out (the last 10 %); the test images are
never used here.

Examples
--------
>>> from cnn_course.trained import digit_network
>>> model = digit_network("mnist")  # doctest: +SKIP
MNIST network: weights loaded from ~/.keras/cnn_course_models/mnist_fast_cnn_3_epochs_seed_0-....weights.h5
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from ._checks import check_positive_int
from ._geometry import check_int
from .cache import keras_cache_dir, sha256_of

DATASETS = {"mnist": "MNIST", "fashion": "Fashion-MNIST"}
RECIPE_VERSION = 1   # raise when the training recipe changes, so old stored weights are not reused


def _load(dataset: str):
    from . import data

    loader = data.load_mnist if dataset == "mnist" else data.load_fashion_mnist
    return loader(verbose=False)


def _stored_path(dataset: str, epochs: int, seed: int, cache_dir) -> Path:
    import keras

    from .models import FAST_BATCH_SIZE, FAST_PEAK_LEARNING_RATE, fast_mnist_cnn

    # Everything the weights depend on: the architecture, the recipe and the software that ran it.
    recipe = {"config": fast_mnist_cnn(seed=seed).get_config(), "epochs": epochs, "seed": seed,
              "batch_size": FAST_BATCH_SIZE, "peak_learning_rate": FAST_PEAK_LEARNING_RATE,
              "keras": keras.__version__, "recipe_version": RECIPE_VERSION, "dataset": dataset}
    fingerprint = hashlib.sha256(json.dumps(recipe, sort_keys=True, default=str).encode()).hexdigest()[:16]
    folder = Path(cache_dir) if cache_dir is not None else keras_cache_dir() / "cnn_course_models"
    return folder / f"{dataset}_fast_cnn_{epochs}_epochs_seed_{seed}-{fingerprint}.weights.h5"


def digit_network(dataset: str = "mnist", *, epochs: int | None = None, seed: int = 0, verbose: bool = True,
                  cache_dir=None):
    """The week-3 fast network trained on MNIST or Fashion-MNIST (trained once, then loaded).

    Parameters
    ----------
    dataset : {"mnist", "fashion"}
        The digits (MNIST) or the clothes (Fashion-MNIST).
    epochs : int, optional
        Length of the one-cycle schedule (default: the week-3 recipe's
        ``cnn_course.models.FAST_EPOCHS``).
    seed : int
        Seeds the initial weights and the shuffling.
    verbose : bool
        Print one line saying whether the weights were loaded or trained (and Keras' one
        line per epoch while training).
    cache_dir : path, optional
        Folder for the stored weights (default: ``cnn_course_models`` in the Keras cache).

    Returns
    -------
    keras.Model
        Input ``(None, 28, 28, 1)`` ``uint8`` images (0–255), output ``(None, 10)``
        probabilities (a softmax layer named ``probabilities``). Trained; not compiled
        when loaded (compile it yourself to call ``evaluate``).

    Raises
    ------
    ValueError
        For an unknown data set name.
    """
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {sorted(DATASETS)} (MNIST digits or Fashion-MNIST clothes), "
                         f"got {dataset!r}")
    from .models import FAST_EPOCHS, fast_mnist_cnn, hold_out_validation, train_fast_mnist

    epochs = FAST_EPOCHS if epochs is None else check_positive_int(epochs, "epochs")
    seed = check_int(seed, "seed", minimum=0)
    path = _stored_path(dataset, epochs, seed, cache_dir)
    checksum = path.with_name(path.name + ".sha256")
    name = DATASETS[dataset]
    if path.is_file() and checksum.is_file() and checksum.read_text().strip() == sha256_of(path):
        model = fast_mnist_cnn(seed=seed)
        model.load_weights(path)
        if verbose:
            print(f"{name} network: weights loaded from {path}")
        return model
    if verbose and path.is_file():
        print(f"{name} network: the stored weights do not match their checksum; training again")
    (x_train, y_train), _ = _load(dataset)
    (x_fit, y_fit), (x_val, y_val) = hold_out_validation(x_train, y_train)
    if verbose:
        print(f"{name} network: training the week-3 fast network for {epochs} epochs on {len(x_fit):,} images "
              f"(once; the weights are kept in {path.parent})")
    start = time.perf_counter()
    model, history = train_fast_mnist(x_fit, y_fit, x_val, y_val, epochs=epochs, seed=seed,
                                      verbose=2 if verbose else 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.stem + ".partial.weights.h5")     # never leave a half-written file
    model.save_weights(partial)
    partial.replace(path)
    checksum.write_text(sha256_of(path) + "\n")
    if verbose:
        print(f"{name} network: validation accuracy {history.history['val_accuracy'][-1]:.4f} after "
              f"{time.perf_counter() - start:.0f} s")
    return model
