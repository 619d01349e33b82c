"""A fast MNIST network (≥ 99 % test accuracy in well under a minute on 2 CPU cores) and its reference.

Two Keras models that take the raw ``uint8`` MNIST digits of shape ``(N, 28, 28)`` or
``(N, 28, 28, 1)`` and return 10 class probabilities:

* :func:`fast_mnist_cnn`: small, strided convolutions with batch normalisation
  (Ioffe & Szegedy, "Batch Normalization", ICML 2015). The two strided convolutions
  shrink the image to 14×14 and then 7×7 right away, so most of the arithmetic runs on
  small feature maps; batch normalisation keeps training stable at a high learning rate.
* :func:`reference_mnist_cnn`: the plain Keras example convnet (two 3×3 convolutions of
  32 and 64 filters, max pooling, dropout, a dense layer of 128), trained with Adam at
  its default learning rate and batch 128.

:func:`train_fast_mnist` trains the fast network with a one-cycle learning-rate
schedule (:class:`OneCycleSchedule`; Smith & Topin, "Super-Convergence: Very Fast
Training of Neural Networks Using Large Learning Rates", 2017/2019): the rate climbs
from a small value to a high peak and then anneals to almost zero within a few
epochs. :class:`EpochTimer` records the training time of every epoch *without* the
time spent evaluating the test set.

Examples
--------
>>> from cnn_course.models import OneCycleSchedule
>>> schedule = OneCycleSchedule(peak_learning_rate=0.01, total_steps=100)
>>> [f"{float(schedule(step)):.1e}" for step in (0, 25, 100)]
['4.0e-04', '1.0e-02', '1.0e-06']
"""

from __future__ import annotations

import math
import time

import keras
import numpy as np
from keras import layers, ops

__all__ = [
    "EpochTimer",
    "OneCycleSchedule",
    "fast_mnist_cnn",
    "reference_mnist_cnn",
    "train_fast_mnist",
    "mnist_as_inputs",
]

# Defaults of the fast recipe, chosen by measurement (benchmarks/RESULTS.md).
FAST_EPOCHS = 4
FAST_BATCH_SIZE = 256
FAST_PEAK_LEARNING_RATE = 0.005


def mnist_as_inputs(images) -> np.ndarray:
    """Check MNIST images and give them the ``(N, 28, 28, 1)`` shape the models take.

    Parameters
    ----------
    images : array_like
        ``(N, 28, 28)`` or ``(N, 28, 28, 1)`` digits, ``uint8`` 0–255 as
        :func:`cnn_course.data.load_mnist` returns them.

    Returns
    -------
    numpy.ndarray
        ``uint8`` array of shape ``(N, 28, 28, 1)`` (no copy when already so).

    Raises
    ------
    TypeError
        If the images are not ``uint8`` (the models scale 0–255 to 0–1 themselves).
    ValueError
        If the shape is not one of the two above.

    Examples
    --------
    >>> import numpy as np
    >>> mnist_as_inputs(np.zeros((5, 28, 28), np.uint8)).shape
    (5, 28, 28, 1)
    """
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise TypeError(
            f"expected uint8 MNIST images with values 0-255 (as load_mnist() returns them), "
            f"got dtype {images.dtype}; the models rescale to 0-1 themselves"
        )
    if images.ndim == 3:
        images = images[..., np.newaxis]
    if images.ndim != 4 or images.shape[1:] != (28, 28, 1):
        raise ValueError(f"expected images of shape (N, 28, 28) or (N, 28, 28, 1), got {images.shape}")
    return images


def _check_labels(labels, n_images: int) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != (n_images,):
        raise ValueError(f"expected {n_images} labels of shape ({n_images},), got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() > 9:
        raise ValueError("expected integer class labels 0-9")
    return labels


def fast_mnist_cnn(seed: int = 0):
    """Build (not compile) the course's fast MNIST network.

    ``uint8`` input → ``Rescaling(1/255)`` → conv 5×5, 24 filters, stride 2 (14×14) →
    conv 3×3, 48 filters, stride 2 (7×7) → conv 3×3, 96 filters, "valid" (5×5) →
    flatten → dense 10 with softmax. Every convolution is followed by batch
    normalisation and ReLU, and has no bias of its own (batch normalisation's shift
    plays that role).

    Parameters
    ----------
    seed : int
        Seeds Python, numpy and TensorFlow (``keras.utils.set_random_seed``) before the
        weights are drawn, so the same seed gives the same initial weights.

    Returns
    -------
    keras.Model
        Input ``(None, 28, 28, 1)`` ``uint8``, output ``(None, 10)`` probabilities;
        77,122 parameters (76,786 trainable; batch normalisation keeps 336 running statistics).

    Examples
    --------
    >>> model = fast_mnist_cnn(seed=0)  # doctest: +SKIP
    >>> model.count_params()  # doctest: +SKIP
    77122
    """
    keras.utils.set_random_seed(seed)

    def conv_bn_relu(x, filters, kernel_size, strides, padding, name):
        x = layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, use_bias=False,
                          name=f"{name}_conv")(x)
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
        return layers.ReLU(name=f"{name}_relu")(x)

    inputs = keras.Input((28, 28, 1), dtype="uint8", name="digits")
    x = layers.Rescaling(1 / 255, name="scale_0_1")(inputs)
    x = conv_bn_relu(x, 24, 5, 2, "same", "block1")   # 14×14×24
    x = conv_bn_relu(x, 48, 3, 2, "same", "block2")   # 7×7×48
    x = conv_bn_relu(x, 96, 3, 1, "valid", "block3")  # 5×5×96
    x = layers.Flatten(name="flatten")(x)
    outputs = layers.Dense(10, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="fast_mnist_cnn")


def reference_mnist_cnn(seed: int = 0):
    """Build and compile the plain Keras example convnet, the baseline to beat.

    ``uint8`` input → ``Rescaling(1/255)`` → conv 3×3, 32, ReLU → conv 3×3, 64, ReLU →
    max pooling 2 → dropout 0.25 → flatten → dense 128, ReLU → dropout 0.5 →
    dense 10, softmax. Compiled with Adam (default learning rate 0.001) and sparse
    categorical cross-entropy; train it with batch size 128.

    Parameters
    ----------
    seed : int
        Seed for the initial weights and dropout masks.

    Returns
    -------
    keras.Model
        1,199,882 parameters, compiled with ``metrics=["accuracy"]``.

    Examples
    --------
    >>> model = reference_mnist_cnn()  # doctest: +SKIP
    >>> model.count_params()  # doctest: +SKIP
    1199882
    """
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1), dtype="uint8", name="digits"),
            layers.Rescaling(1 / 255, name="scale_0_1"),
            layers.Conv2D(32, 3, activation="relu"),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Dropout(0.25),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dropout(0.5),
            layers.Dense(10, activation="softmax"),
        ],
        name="reference_mnist_cnn",
    )
    model.compile(optimizer=keras.optimizers.Adam(), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


@keras.saving.register_keras_serializable(package="cnn_course")
class OneCycleSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """One-cycle learning rate: linear warm-up to a peak, then cosine annealing to almost zero.

    Step 0 starts at ``peak / initial_divisor``; the rate rises linearly to
    ``peak_learning_rate`` at step ``warmup_fraction * total_steps`` and then follows half a
    cosine down to ``peak / final_divisor`` at ``total_steps`` (and stays there after).
    The short phase at a high rate lets the optimiser cross the loss landscape fast; the
    long annealing settles it in a minimum (Smith & Topin, "Super-Convergence", 2017/2019).

    A ``keras.optimizers.schedules.LearningRateSchedule``: pass it as the optimiser's
    ``learning_rate``; Keras calls it with the optimiser's step counter.

    Parameters
    ----------
    peak_learning_rate : float
        The highest rate, reached at the end of the warm-up.
    total_steps : int
        Number of optimiser steps (batches) in the whole training run.
    warmup_fraction : float
        Share of the steps spent climbing, in (0, 1).
    initial_divisor, final_divisor : float
        Start at ``peak / initial_divisor``, end at ``peak / final_divisor``.

    Examples
    --------
    >>> schedule = OneCycleSchedule(0.01, total_steps=100, warmup_fraction=0.25)
    >>> round(float(schedule(12.5)), 5), round(float(schedule(62.5)), 5)
    (0.0052, 0.005)
    """

    def __init__(self, peak_learning_rate, total_steps, warmup_fraction=0.25,
                 initial_divisor=25.0, final_divisor=1e4):
        if not peak_learning_rate > 0:
            raise ValueError(f"peak_learning_rate must be positive, got {peak_learning_rate}")
        if int(total_steps) != total_steps or total_steps < 2:
            raise ValueError(f"total_steps must be a whole number >= 2, got {total_steps}")
        if not 0 < warmup_fraction < 1:
            raise ValueError(f"warmup_fraction must be between 0 and 1, got {warmup_fraction}")
        if initial_divisor < 1 or final_divisor < 1:
            raise ValueError("initial_divisor and final_divisor must be >= 1 (the peak is the highest rate)")
        self.peak_learning_rate = float(peak_learning_rate)
        self.total_steps = int(total_steps)
        self.warmup_fraction = float(warmup_fraction)
        self.initial_divisor = float(initial_divisor)
        self.final_divisor = float(final_divisor)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        peak = self.peak_learning_rate
        start, end = peak / self.initial_divisor, peak / self.final_divisor
        warmup_steps = self.warmup_fraction * self.total_steps
        rising = start + (peak - start) * step / warmup_steps
        progress = ops.clip((step - warmup_steps) / (self.total_steps - warmup_steps), 0.0, 1.0)
        falling = end + (peak - end) * 0.5 * (1.0 + ops.cos(math.pi * progress))
        return ops.where(step < warmup_steps, rising, falling)

    def get_config(self):
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "total_steps": self.total_steps,
            "warmup_fraction": self.warmup_fraction,
            "initial_divisor": self.initial_divisor,
            "final_divisor": self.final_divisor,
        }


class EpochTimer(keras.callbacks.Callback):
    """Keras callback: training seconds of every epoch, evaluation time left out.

    The clock starts when an epoch starts and stops when Keras begins evaluating the
    validation data at the end of that epoch (or when the epoch ends, if there is no
    validation data). The seconds are added to the epoch's logs as ``train_seconds``,
    so they appear in ``history.history["train_seconds"]``; ``seconds`` keeps the list.

    Examples
    --------
    >>> timer = EpochTimer()  # doctest: +SKIP
    >>> model.fit(x, y, validation_data=(x_test, y_test), callbacks=[timer])  # doctest: +SKIP
    >>> sum(timer.seconds)  # training time of all epochs  # doctest: +SKIP
    """

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []
        self._started = None
        self._stopped = None

    def on_epoch_begin(self, epoch, logs=None):
        self._started, self._stopped = time.perf_counter(), None

    def on_test_begin(self, logs=None):
        # Inside fit, evaluation of the validation data starts here: stop the clock once.
        if self._started is not None and self._stopped is None:
            self._stopped = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        stopped = self._stopped if self._stopped is not None else time.perf_counter()
        self.seconds.append(stopped - self._started)
        self._started = None
        if logs is not None:
            logs["train_seconds"] = self.seconds[-1]


def train_fast_mnist(x_train, y_train, x_test, y_test, *, epochs: int = FAST_EPOCHS,
                     batch_size: int = FAST_BATCH_SIZE, peak_learning_rate: float = FAST_PEAK_LEARNING_RATE,
                     seed: int = 0, verbose: int = 1, callbacks=(), jit_compile=False):
    """Build :func:`fast_mnist_cnn` and train it with Adam and a one-cycle schedule.

    The test set is passed to ``fit`` as validation data only to *report* its accuracy
    after every epoch (``history.history["val_accuracy"]``); nothing is chosen by it
    during training. ``history.history["train_seconds"]`` holds each epoch's training
    time without that evaluation (see :class:`EpochTimer`).

    Parameters
    ----------
    x_train, x_test : array_like
        ``uint8`` digits, ``(N, 28, 28)`` or ``(N, 28, 28, 1)``.
    y_train, y_test : array_like
        Integer labels 0–9, shape ``(N,)``.
    epochs : int
        Length of the one-cycle schedule; the rate reaches almost zero at the end.
    batch_size : int
        Images per step.
    peak_learning_rate : float
        Highest learning rate of the schedule.
    seed : int
        Seeds the weights and the shuffling: the same seed gives the same run up to
        the (tiny) non-determinism of multi-threaded float sums.
    verbose : int
        Keras ``fit`` verbosity: 0 silent, 1 progress bar, 2 one line per epoch.
    callbacks : sequence of keras.callbacks.Callback
        Extra callbacks.
    jit_compile : bool
        Compile the training step with XLA (``model.compile(jit_compile=...)``). Off by
        default: on 2 CPU cores it was not faster here (benchmarks/RESULTS.md).

    Returns
    -------
    model : keras.Model
        The trained network.
    history : keras.callbacks.History
        ``history.history`` has ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``
        (test set) and ``train_seconds`` per epoch.

    Examples
    --------
    >>> from cnn_course.data import load_mnist  # doctest: +SKIP
    >>> (x_train, y_train), (x_test, y_test) = load_mnist()  # doctest: +SKIP
    >>> model, history = train_fast_mnist(x_train, y_train, x_test, y_test)  # doctest: +SKIP
    >>> history.history["val_accuracy"][-1] >= 0.99  # doctest: +SKIP
    True
    """
    x_train, x_test = mnist_as_inputs(x_train), mnist_as_inputs(x_test)
    y_train, y_test = _check_labels(y_train, len(x_train)), _check_labels(y_test, len(x_test))
    if int(epochs) != epochs or epochs < 1:
        raise ValueError(f"epochs must be a whole number >= 1, got {epochs}")
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a whole number >= 1, got {batch_size}")

    model = fast_mnist_cnn(seed=seed)
    steps_per_epoch = math.ceil(len(x_train) / batch_size)
    schedule = OneCycleSchedule(peak_learning_rate, total_steps=max(2, epochs * steps_per_epoch))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=schedule),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"], jit_compile=jit_compile)
    history = model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs,
                        validation_data=(x_test, y_test), shuffle=True, verbose=verbose,
                        callbacks=[EpochTimer(), *callbacks])
    return model, history
