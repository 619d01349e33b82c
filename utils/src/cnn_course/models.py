"""MNIST networks of week 3: the course's fast network, the networks it is compared with, and the tools to time them.

Every builder takes ``uint8`` digits (0–255, rescaled to 0–1 inside the model by a
``Rescaling`` layer), returns class probabilities, and accepts ``input_shape`` and
``num_classes`` (MNIST's ``(28, 28, 1)`` and 10 by default):

* :func:`fast_mnist_cnn`: the course's network, built step by step in
  ``course/week3_building_blocks/05_mnist_99.ipynb``: strided convolutions with batch
  normalisation (Ioffe & Szegedy, "Batch Normalization", ICML 2015), trained by
  :func:`train_fast_mnist` with Adam and a one-cycle schedule (:class:`OneCycleSchedule`;
  Smith & Topin, "Super-Convergence: Very Fast Training of Neural Networks Using Large
  Learning Rates", 2017/2019).
* :func:`keras_io_mnist_convnet`: the "Simple MNIST convnet" of keras.io (conv 32 – pool –
  conv 64 – pool – dropout – dense; 34,826 parameters), trained there with Adam, batch 128.
* :func:`journal_club_mnist_cnn`: the Keras 1 example of the source lectures' journal club
  (two 3×3 convolutions of 32 filters, pooling, dropout, dense 128; Adadelta, batch 128).
* :func:`reference_mnist_cnn`: the retired Keras 2 example ``mnist_cnn.py`` (convolutions of
  32 and 64 filters, dense 128; 1.2 million parameters), compiled with Adam.

:func:`hold_out_validation` splits a validation set off the training images (the test
set is for the end). :class:`EpochTimer` records the training time of every epoch
without the time spent evaluating; :class:`TimeToAccuracy` also notes when the
validation accuracy first reached a target and can stop training there or when a time
budget is spent. :func:`layer_configs` describes an architecture for comparisons.

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
    "TimeToAccuracy",
    "fast_mnist_cnn",
    "hold_out_validation",
    "journal_club_mnist_cnn",
    "keras_io_mnist_convnet",
    "layer_configs",
    "mnist_as_inputs",
    "reference_mnist_cnn",
    "train_fast_mnist",
]

# Defaults of the fast recipe. Peak and schedule length were chosen on the validation split held out
# from the training images, never on the test set (benchmarks/mnist_one_cycle_search.py: the shortest
# schedule whose final validation accuracy cleared 99.15 % for seeds 0-2; figures in benchmarks/RESULTS.md).
FAST_EPOCHS = 3
FAST_BATCH_SIZE = 256
FAST_PEAK_LEARNING_RATE = 0.04

MNIST_SHAPE = (28, 28, 1)
MNIST_CLASSES = 10


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


def hold_out_validation(images, labels, fraction: float = 0.1):
    """Split the last ``fraction`` of the training images off as a validation set.

    The same split as ``model.fit(..., validation_split=fraction)`` (Keras takes the
    last images, before any shuffling), made explicit so that every network is
    trained and validated on exactly the same images. Choose epochs, learning
    rates and models by the validation accuracy; keep the test set for the end.

    Parameters
    ----------
    images, labels : array_like
        Training images and their labels, the same number of each.
    fraction : float
        Share of the images to hold out, in (0, 1).

    Returns
    -------
    (x_fit, y_fit), (x_val, y_val)
        The images to train on and the held-out validation images (views, no copies).

    Examples
    --------
    >>> import numpy as np
    >>> (x_fit, y_fit), (x_val, y_val) = hold_out_validation(np.arange(20), np.arange(20), 0.1)
    >>> len(x_fit), x_val.tolist()
    (18, [18, 19])
    """
    images, labels = np.asarray(images), np.asarray(labels)
    if len(images) != len(labels):
        raise ValueError(f"got {len(images)} images but {len(labels)} labels")
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be between 0 and 1, got {fraction}")
    n_validation = int(round(fraction * len(images)))
    if not 0 < n_validation < len(images):
        raise ValueError(f"a fraction of {fraction} of {len(images)} images leaves an empty part")
    cut = len(images) - n_validation
    return (images[:cut], labels[:cut]), (images[cut:], labels[cut:])


def _digits_input(input_shape):
    return keras.Input(tuple(input_shape), dtype="uint8", name="digits")


def fast_mnist_cnn(seed: int = 0, input_shape=MNIST_SHAPE, num_classes: int = MNIST_CLASSES,
                   batch_norm: bool = True):
    """Build (not compile) the course's fast MNIST network.

    ``uint8`` input → ``Rescaling(1/255)`` → conv 5×5, 24 filters, stride 2 (14×14) →
    conv 3×3, 48 filters, stride 2 (7×7) → conv 3×3, 96 filters, "valid" (5×5) →
    flatten → dense ``num_classes`` with softmax. Every convolution is followed by batch
    normalisation and ReLU, and has no bias of its own (batch normalisation's shift
    plays that role). Sizes in brackets are for 28×28 inputs. With ``batch_norm=False``
    each convolution has a bias and a ReLU activation and nothing else: the "strided
    convolutions" step of the notebook's ablation.

    ``course/week3_building_blocks/05_mnist_99.ipynb`` builds the same network in the
    open, one step at a time, and checks it against this function with :func:`layer_configs`.

    Parameters
    ----------
    seed : int
        Seeds Python, numpy and TensorFlow (``keras.utils.set_random_seed``) before the
        weights are drawn, so the same seed gives the same initial weights.
    input_shape : tuple of int
        ``(height, width, channels)`` of the ``uint8`` images.
    num_classes : int
        Number of classes.
    batch_norm : bool
        Follow every convolution by batch normalisation (the course's network), or not.

    Returns
    -------
    keras.Model
        Input ``(None, *input_shape)`` ``uint8``, output ``(None, num_classes)`` probabilities;
        for MNIST 77,122 parameters (76,786 trainable; batch normalisation keeps 336 running
        statistics).

    See Also
    --------
    train_fast_mnist : trains it with Adam and a one-cycle schedule.

    Examples
    --------
    >>> model = fast_mnist_cnn(seed=0)  # doctest: +SKIP
    >>> model.count_params()  # doctest: +SKIP
    77122
    """
    keras.utils.set_random_seed(seed)

    def conv_bn_relu(x, filters, kernel_size, strides, padding, name):
        if not batch_norm:
            return layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, activation="relu",
                                 name=f"{name}_conv")(x)
        x = layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, use_bias=False,
                          name=f"{name}_conv")(x)
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
        return layers.ReLU(name=f"{name}_relu")(x)

    inputs = _digits_input(input_shape)
    x = layers.Rescaling(1 / 255, name="scale_0_1")(inputs)
    x = conv_bn_relu(x, 24, 5, 2, "same", "block1")   # 14×14×24
    x = conv_bn_relu(x, 48, 3, 2, "same", "block2")   # 7×7×48
    x = conv_bn_relu(x, 96, 3, 1, "valid", "block3")  # 5×5×96
    x = layers.Flatten(name="flatten")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="fast_mnist_cnn" if batch_norm else "strided_mnist_cnn")


def keras_io_mnist_convnet(seed: int = 0, input_shape=MNIST_SHAPE, num_classes: int = MNIST_CLASSES):
    """Build (not compile) the "Simple MNIST convnet" of keras.io (fchollet, last modified 2020).

    ``uint8`` input → ``Rescaling(1/255)`` → conv 3×3, 32, ReLU → max pooling 2 →
    conv 3×3, 64, ReLU → max pooling 2 → flatten → dropout 0.5 → dense ``num_classes``,
    softmax. keras.io trains it with Adam (learning rate 0.001), batch 128, 15 epochs, and
    ``validation_split=0.1``. The ``Rescaling`` layer replaces keras.io's division of the
    data by 255 and has no weights.

    Parameters
    ----------
    seed : int
        Seed for the initial weights and the dropout masks.
    input_shape : tuple of int
        ``(height, width, channels)`` of the ``uint8`` images.
    num_classes : int
        Number of classes.

    Returns
    -------
    keras.Sequential
        34,826 parameters for MNIST.

    Examples
    --------
    >>> keras_io_mnist_convnet().count_params()  # doctest: +SKIP
    34826
    """
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            _digits_input(input_shape),
            layers.Rescaling(1 / 255, name="scale_0_1"),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(num_classes, activation="softmax"),
        ],
        name="keras_io_mnist_convnet",
    )


def journal_club_mnist_cnn(seed: int = 0, input_shape=MNIST_SHAPE, num_classes: int = MNIST_CLASSES):
    """Build (not compile) the Keras 1 MNIST example of the source lectures' journal club.

    ``uint8`` input → ``Rescaling(1/255)`` → conv 3×3, 32, ReLU → conv 3×3, 32, ReLU →
    max pooling 2 → dropout 0.25 → flatten → dense 128, ReLU → dropout 0.5 → dense
    ``num_classes``, softmax. The Keras 1 example (``examples/mnist_cnn.py``) trained it
    with Adadelta at Keras 1's default learning rate of 1.0, batch 128, 12 epochs; the
    lecture quotes "14 min on CPU, 42 s on GPU" for about 99 %. Keras 3's Adadelta
    defaults to a learning rate of 0.001: pass 1.0 to get the original recipe.

    Parameters
    ----------
    seed : int
        Seed for the initial weights and the dropout masks.
    input_shape : tuple of int
        ``(height, width, channels)`` of the ``uint8`` images.
    num_classes : int
        Number of classes.

    Returns
    -------
    keras.Sequential
        600,810 parameters for MNIST.

    Examples
    --------
    >>> journal_club_mnist_cnn().count_params()  # doctest: +SKIP
    600810
    """
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            _digits_input(input_shape),
            layers.Rescaling(1 / 255, name="scale_0_1"),
            layers.Conv2D(32, 3, activation="relu"),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Dropout(0.25),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dropout(0.5),
            layers.Dense(num_classes, activation="softmax"),
        ],
        name="journal_club_mnist_cnn",
    )


def reference_mnist_cnn(seed: int = 0, input_shape=MNIST_SHAPE, num_classes: int = MNIST_CLASSES):
    """Build and compile the retired Keras 2 example convnet (``examples/mnist_cnn.py``).

    ``uint8`` input → ``Rescaling(1/255)`` → conv 3×3, 32, ReLU → conv 3×3, 64, ReLU →
    max pooling 2 → dropout 0.25 → flatten → dense 128, ReLU → dropout 0.5 →
    dense ``num_classes``, softmax. Compiled with Adam (default learning rate 0.001) and
    sparse categorical cross-entropy; train it with batch size 128. keras.io has since
    replaced it by the smaller :func:`keras_io_mnist_convnet`.

    Parameters
    ----------
    seed : int
        Seed for the initial weights and dropout masks.
    input_shape : tuple of int
        ``(height, width, channels)`` of the ``uint8`` images.
    num_classes : int
        Number of classes.

    Returns
    -------
    keras.Model
        1,199,882 parameters for MNIST, compiled with ``metrics=["accuracy"]``.

    Examples
    --------
    >>> model = reference_mnist_cnn()  # doctest: +SKIP
    >>> model.count_params()  # doctest: +SKIP
    1199882
    """
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            _digits_input(input_shape),
            layers.Rescaling(1 / 255, name="scale_0_1"),
            layers.Conv2D(32, 3, activation="relu"),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Dropout(0.25),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dropout(0.5),
            layers.Dense(num_classes, activation="softmax"),
        ],
        name="reference_mnist_cnn",
    )
    model.compile(optimizer=keras.optimizers.Adam(), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


# Settings that name a layer or say how its weights are drawn, not what it computes.
_NOT_ARCHITECTURE = ("name", "seed", "kernel_initializer", "bias_initializer")


def layer_configs(model) -> list[tuple[str, dict]]:
    """What a network computes, layer by layer: ``(layer class, settings)`` without names.

    Two networks with equal ``layer_configs`` have the same layers in the same order
    with the same settings (filters, kernel sizes, strides, padding, activations,
    biases, dropout rates, input shape and dtype, ...), whatever their layers are
    called. The input's shape and dtype come first, so functional and ``Sequential``
    models compare equal when they compute the same thing.

    Parameters
    ----------
    model : keras.Model
        A built model.

    Returns
    -------
    list of (str, dict)
        ``("Input", {"shape": ..., "dtype": ...})``, then the class name and
        ``get_config()`` of every layer, minus its name and its initialisers' settings.

    Examples
    --------
    >>> import keras
    >>> a = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="a")])
    >>> b = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="b")])
    >>> c = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    >>> layer_configs(a) == layer_configs(b), layer_configs(a) == layer_configs(c)
    (True, False)
    """
    if len(model.inputs) != 1:
        raise ValueError(f"expected a model with one input, got {len(model.inputs)}")
    digits = model.inputs[0]
    described = [("Input", {"shape": tuple(digits.shape), "dtype": str(digits.dtype)})]
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":  # functional models list it, Sequential ones do not
            continue
        config = {key: value for key, value in layer.get_config().items() if key not in _NOT_ARCHITECTURE}
        described.append((type(layer).__name__, config))
    return described


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
    validation data). ``seconds`` keeps one entry per epoch. The times are not added
    to the epoch's logs, so the progress bar shows only loss and accuracy.

    Examples
    --------
    >>> timer = EpochTimer()  # doctest: +SKIP
    >>> model.fit(x, y, validation_data=(x_val, y_val), callbacks=[timer])  # doctest: +SKIP
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


class TimeToAccuracy(EpochTimer):
    """Keras callback: training time until the validation accuracy first reaches a target.

    Times every epoch like :class:`EpochTimer` (evaluation left out) and records the
    validation accuracy after it. ``seconds_to_target`` and ``epochs_to_target`` say when
    the target was first reached (``None`` while it has not been). Training stops after
    the epoch that reaches the target (if ``stop_at_target``), and before an epoch that
    would end beyond ``max_seconds`` of training at the pace of the epochs so far (the
    first epoch always runs): a budget is an upper limit, up to the noise in epoch times.

    Parameters
    ----------
    target : float
        Validation accuracy to reach, e.g. 0.99.
    max_seconds : float or None
        Time budget for training (evaluations not counted); ``None`` for no budget.
        Other limits (the ``epochs`` of ``fit``) still apply.
    stop_at_target : bool
        Stop as soon as the target is reached. Turn it off to run a fixed schedule to
        its end (a one-cycle schedule only ends at a low learning rate).
    monitor : str
        The log entry holding the validation accuracy.

    Attributes
    ----------
    seconds : list of float
        Training seconds of every epoch.
    accuracies : list of float
        Validation accuracy after every epoch.

    Examples
    --------
    >>> clock = TimeToAccuracy(target=0.99, max_seconds=60)  # doctest: +SKIP
    >>> model.fit(x, y, epochs=20, validation_data=(x_val, y_val), callbacks=[clock])  # doctest: +SKIP
    >>> clock.seconds_to_target, clock.epochs_to_target  # doctest: +SKIP
    (41.3, 3)
    """

    def __init__(self, target: float, max_seconds: float | None = None, stop_at_target: bool = True,
                 monitor: str = "val_accuracy"):
        super().__init__()
        if not 0 < target <= 1:
            raise ValueError(f"target must be an accuracy in (0, 1], got {target}")
        if max_seconds is not None and not max_seconds > 0:
            raise ValueError(f"max_seconds must be positive or None, got {max_seconds}")
        self.target, self.max_seconds = float(target), max_seconds
        self.stop_at_target, self.monitor = bool(stop_at_target), monitor
        self.accuracies: list[float] = []
        self.seconds_to_target: float | None = None
        self.epochs_to_target: int | None = None

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        if not logs or self.monitor not in logs:
            raise ValueError(f"TimeToAccuracy needs '{self.monitor}' in the epoch logs: pass "
                             "validation_data to fit and compile with metrics=['accuracy']")
        self.accuracies.append(float(logs[self.monitor]))
        reached = self.accuracies[-1] >= self.target
        if reached and self.seconds_to_target is None:
            self.seconds_to_target, self.epochs_to_target = sum(self.seconds), len(self.seconds)
        # Would one more epoch, as long as the average so far, end beyond the budget?
        spent = sum(self.seconds)
        over_budget = self.max_seconds is not None and spent + spent / len(self.seconds) > self.max_seconds
        if (reached and self.stop_at_target) or over_budget:
            self.model.stop_training = True


def train_fast_mnist(x_train, y_train, x_val, y_val, *, epochs: int = FAST_EPOCHS,
                     batch_size: int = FAST_BATCH_SIZE, peak_learning_rate: float = FAST_PEAK_LEARNING_RATE,
                     seed: int = 0, verbose: int = 1, callbacks=(), jit_compile=False, batch_norm: bool = True):
    """Build :func:`fast_mnist_cnn` and train it with Adam and a one-cycle schedule.

    The validation images (held out from the training images, see
    :func:`hold_out_validation`) are evaluated after every epoch
    (``history.history["val_accuracy"]``); keep the test set for one evaluation at the
    end. ``history.history["train_seconds"]`` holds each epoch's training time without
    that evaluation (see :class:`EpochTimer`); it is added after training, so the
    progress bar shows only loss and accuracy.

    Parameters
    ----------
    x_train, x_val : array_like
        ``uint8`` digits, ``(N, 28, 28)`` or ``(N, 28, 28, 1)``.
    y_train, y_val : array_like
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
    batch_norm : bool
        Build the network with batch normalisation (the course's network) or without it
        (to see what the high learning rates of the schedule do without it).

    Returns
    -------
    model : keras.Model
        The trained network.
    history : keras.callbacks.History
        ``history.history`` has ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``
        (validation set) and ``train_seconds`` per epoch.

    Examples
    --------
    >>> from cnn_course.data import load_mnist  # doctest: +SKIP
    >>> (x_train, y_train), (x_test, y_test) = load_mnist()  # doctest: +SKIP
    >>> (x_fit, y_fit), (x_val, y_val) = hold_out_validation(x_train, y_train)  # doctest: +SKIP
    >>> model, history = train_fast_mnist(x_fit, y_fit, x_val, y_val)  # doctest: +SKIP
    >>> history.history["val_accuracy"][-1] >= 0.99  # doctest: +SKIP
    True
    """
    x_train, x_val = mnist_as_inputs(x_train), mnist_as_inputs(x_val)
    y_train, y_val = _check_labels(y_train, len(x_train)), _check_labels(y_val, len(x_val))
    if int(epochs) != epochs or epochs < 1:
        raise ValueError(f"epochs must be a whole number >= 1, got {epochs}")
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a whole number >= 1, got {batch_size}")

    model = fast_mnist_cnn(seed=seed, batch_norm=batch_norm)
    steps_per_epoch = math.ceil(len(x_train) / batch_size)
    schedule = OneCycleSchedule(peak_learning_rate, total_steps=max(2, epochs * steps_per_epoch))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=schedule),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"], jit_compile=jit_compile)
    timer = EpochTimer()
    history = model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs,
                        validation_data=(x_val, y_val), shuffle=True, verbose=verbose,
                        callbacks=[timer, *callbacks])
    history.history["train_seconds"] = list(timer.seconds)
    return model, history
