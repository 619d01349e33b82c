"""Adversarial examples and what a network looks at: everything here follows the input gradient.

Week 6 asks two questions of a trained classifier, and both are answered by the gradient of a
class score with respect to the *input* pixels (not the weights):

* **How can an image be changed, invisibly, so that the network changes its mind?**
  :func:`fgsm` takes one step of size ε along the sign of the loss gradient (Goodfellow,
  Shlens & Szegedy, "Explaining and harnessing adversarial examples", 2014; the direction
  alone, to scale for many ε: :func:`gradient_sign`); :func:`pgd`
  takes many small steps and projects back into the ε-ball after each (Madry, Makelov,
  Schmidt, Tsipras & Vladu, "Towards deep learning models resistant to adversarial
  attacks", 2017); without its random start it is the basic iterative method, BIM
  (Kurakin, Goodfellow & Bengio, "Adversarial examples in the physical world", 2016).
  :func:`fooling_image` climbs the gradient from noise until the network is sure it sees a
  class (Nguyen, Yosinski & Clune, "Deep neural networks are easily fooled", 2015).
* **Which pixels does the prediction depend on?** :func:`saliency_map` (Simonyan, Vedaldi &
  Zisserman, "Deep inside convolutional networks: visualising image classification models
  and saliency maps", 2013), :func:`occlusion_map` (Zeiler & Fergus, "Visualizing and
  understanding convolutional networks", 2013) and :func:`grad_cam` (Selvaraju, Cogswell,
  Das, Vedantam, Parikh & Batra, "Grad-CAM: Visual explanations from deep networks via
  gradient-based localization", 2017).

Conventions shared by every function:

* **Images.** ``x`` is a batch ``(N, height, width, channels)`` or one image
  ``(height, width, channels)``; the result has the same layout. Values are in the units the
  model takes: [0, 1] floats, [0, 255] for the course's MNIST networks (which take ``uint8``
  and rescale inside), [-1, 1] for MobileNetV2 after :func:`cnn_course.pretrained.preprocess`.
  ``ε`` is measured in the same units.
* **Pixel range.** ``clip=(low, high)`` is the range a valid image lives in; attacks clip
  their results to it, and ``x`` must lie inside it (a [-1, 1] image with the default
  ``clip=(0.0, 1.0)`` is refused, with a hint). ``clip=None`` switches clipping off.
* **Scores.** When the model's last layer applies a softmax (a ``Dense`` layer with
  ``activation="softmax"``, a ``Softmax`` layer or an ``Activation("softmax")``), the
  functions read the values *before* the softmax, the logits ``z``: a confident network's
  softmax saturates in float32 (a probability of exactly 1.0 has a zero gradient), its logits
  do not. A model whose last layer applies no softmax is taken to output logits already. Where
  the softmax sits elsewhere (inside a convolution or a nested model) the logarithms of the
  probabilities stand in for the logits (equal up to a constant per image).
* **Loss.** The attacks follow the cross-entropy ``-log p_y``. Its gradient is computed as
  that of the log-odds against the class, ``log((1 - p_y) / p_y) = logsumexp_{j≠y} z_j - z_y``,
  which is the same direction (the cross-entropy's gradient is ``1 - p_y`` times it) but does
  not vanish when the network is certain: FGSM and PGD only use the gradient's direction.
* **Labels.** ``y`` and ``class_index`` are integer class numbers (not one-hot).
* **Any input size.** The model is re-run from a float32 input of ``x``'s size, so a model
  that takes ``uint8`` (the course's MNIST networks) can be attacked with fractional steps,
  and a convolutional network such as MobileNetV2 can be used at 96×96 or 128×128 px.
* **Backends.** Input gradients are computed with ``tf.GradientTape`` under Keras'
  TensorFlow backend (compiled with ``tf.function`` from the second gradient of the same
  model and kind on: one pause of a few seconds for MobileNetV2, then each gradient is many
  times faster) and with ``jax.value_and_grad`` under its JAX backend; batch normalisation
  and dropout run in inference mode.

Examples
--------
A linear classifier of two-pixel "images": the gradient sign of its loss is known by hand.

>>> import keras
>>> import numpy as np
>>> from cnn_course.adversarial import fgsm, pgd
>>> model = keras.Sequential([keras.Input((1, 2, 1)), keras.layers.Flatten(),
...                          keras.layers.Dense(2, activation="softmax")])
>>> model.set_weights([np.array([[1.0, -1.0], [-2.0, 2.0]]), np.zeros(2)])
>>> x = np.full((1, 2, 1), 0.5, np.float32)  # one image, logits (-0.5, 0.5): class 1
>>> fgsm(model, x, 1, 0.25).ravel()  # pushes class 1's logit down: pixel 1 up, pixel 2 down
array([0.75, 0.25], dtype=float32)
>>> pgd(model, x, 1, eps=0.25, step=0.1, steps=5, random_start=False).ravel()
array([0.75, 0.25], dtype=float32)
"""

from __future__ import annotations

import difflib
import numbers
import weakref

import numpy as np

from ._checks import check_positive_int, numeric_array
from ._geometry import as_pair, check_int, is_int

__all__ = ["fgsm", "fooling_image", "grad_cam", "gradient_sign", "occlusion_map", "pgd", "saliency_map"]

#: The norms :func:`pgd` can bound the perturbation in.
NORMS = ("inf", "2")

# Rewired copies of each model (float32 input, logits out), per layer and input shape.
_REWIRED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


# ----------------------------------------------------------------------------- gradients


def _call(model, inputs):
    """The rewired model's outputs in float32 (a model may compute in float64 or float16)."""
    import keras

    outputs = model(inputs, training=False)
    if isinstance(outputs, (list, tuple)):
        return [keras.ops.cast(output, "float32") for output in outputs]
    return keras.ops.cast(outputs, "float32")


def _log_scores(scores, logits: bool):
    """Logits as they are; probabilities as their logarithm (the logits up to a constant)."""
    import keras

    return scores if logits else keras.ops.log(keras.ops.maximum(scores, 1e-30))


def _log_odds_objective(model, images, onehot, logits):
    """The log-odds against the marked class, and (as an extra) its cross-entropy."""
    import keras

    z = _log_scores(_call(model, images), logits)
    odds = keras.ops.logsumexp(z - onehot * 1e9, axis=-1) - keras.ops.sum(z * onehot, axis=-1)
    return odds, (keras.ops.softplus(odds),)  # softplus(log-odds) = -log p_y


def _class_score_objective(model, images, onehot, logits):
    """The score (logit) of the marked class."""
    import keras

    return keras.ops.sum(_call(model, images) * onehot, axis=-1), ()


def _probe_objective(model, probe, images, onehot, logits):
    """The marked class's score as a function of the probe added to a layer's output; the layer's output."""
    import keras

    scores, maps = _call(model, [images, probe])
    return keras.ops.sum(scores * onehot, axis=-1), (maps,)


def _fooling_objective(model, images, onehot, l2, centre, logits):
    """log p of the marked class minus the L2 penalty; the probability."""
    import keras

    z = _log_scores(_call(model, images), logits)
    log_p = keras.ops.sum(keras.ops.log_softmax(z, axis=-1) * onehot, axis=-1)
    penalty = keras.ops.mean((images - centre) ** 2, axis=tuple(range(1, len(images.shape))))
    return log_p - l2 * penalty, (keras.ops.exp(log_p),)


# Per rewired model and objective: how often it was differentiated, and its compiled gradient.
_GRADIENTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _gradient(model, objective, logits: bool, variable, *arguments):
    """``objective(model, variable, *arguments, logits) -> (values, extras)``, differentiated.

    Returns ``values`` (one number per example), the ``extras`` and d sum(values) / d
    ``variable`` as numpy arrays; since examples do not interact in inference mode, the
    gradient of the sum holds each example's own gradient. This is the only place that knows
    which Keras backend is active. Under TensorFlow the first call for a model and objective
    runs eagerly (no tracing cost for a single gradient); later calls run a compiled
    ``tf.function`` (for MobileNetV2 tracing takes 4-8 s once; then one gradient took 0.15 s
    instead of 1.0 s at 224 px and 0.04 s instead of 0.8-1.4 s at 96 px, on 2 shared cores). Under JAX, ``jax.value_and_grad`` runs the
    model's layers on traced arrays, uncompiled (a ``jax.jit`` would freeze the weights).
    """
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        def differentiate(variable, *arguments):
            with tf.GradientTape() as tape:
                tape.watch(variable)
                values, extras = objective(model, variable, *arguments, logits)
                total = tf.reduce_sum(values)
            gradient = tape.gradient(total, variable, unconnected_gradients=tf.UnconnectedGradients.ZERO)
            return values, extras, gradient

        state = _GRADIENTS.setdefault(model, {}).setdefault((objective.__name__, logits), {"calls": 0})
        state["calls"] += 1
        if state["calls"] > 1 and "compiled" not in state:
            state["compiled"] = tf.function(differentiate, reduce_retracing=True)
        run = state.get("compiled", differentiate)
        values, extras, gradient = run(tf.convert_to_tensor(variable, tf.float32),
                                       *(tf.convert_to_tensor(a, tf.float32) for a in arguments))
    elif backend == "jax":
        import jax
        import jax.numpy as jnp

        def total(argument):
            values, extras = objective(model, argument, *arguments, logits)
            return jnp.sum(values), (values, extras)

        arguments = tuple(jnp.asarray(a, jnp.float32) for a in arguments)
        (_, (values, extras)), gradient = jax.value_and_grad(total, has_aux=True)(
            jnp.asarray(variable, jnp.float32))
    else:
        raise NotImplementedError(
            f"input gradients are written for Keras' TensorFlow and JAX backends; this Keras "
            f"runs on {backend!r}: set KERAS_BACKEND=tensorflow before importing keras"
        )
    to_numpy = keras.ops.convert_to_numpy
    return to_numpy(values), tuple(to_numpy(extra) for extra in extras), to_numpy(gradient)


# ----------------------------------------------------------------------------- the model, rewired


def _check_model(model):
    import keras

    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a Keras model, got {type(model).__name__}")
    try:
        inputs, outputs = model.inputs, model.outputs
    except (AttributeError, ValueError):
        inputs = outputs = None
    if not inputs or not outputs:
        raise TypeError(
            f"model must be a functional or Sequential Keras model that starts with keras.Input, "
            f"so that its layers can be followed; {model.name!r} has no known input"
        )
    if len(inputs) != 1 or len(outputs) != 1:
        raise ValueError(f"model must take one input (a batch of images) and give one output (class "
                         f"scores); {model.name!r} takes {len(inputs)} and gives {len(outputs)}")
    return model


def _is_softmax(activation) -> bool:
    return getattr(activation, "__name__", None) == "softmax"


def _output_layer(model):
    # The layer that made the model's output (Keras 3 keeps it in the tensor's history).
    return model.outputs[0]._keras_history[0]


def _split_at_softmax(layer) -> str:
    """How to read logits from the output layer: 'dense', 'input' (of a softmax layer), 'none' or 'probabilities'."""
    import keras

    if isinstance(layer, keras.layers.Softmax):
        return "input"
    if isinstance(layer, keras.layers.Activation) and _is_softmax(layer.activation):
        return "input"
    if isinstance(layer, keras.layers.Dense) and _is_softmax(layer.activation):
        return "dense"
    if _is_softmax(getattr(layer, "activation", None)):
        return "probabilities"  # e.g. a convolution with a softmax: its logits are not kept apart
    if isinstance(layer, keras.Model):
        inner = _output_layer(layer) if layer.outputs else None
        if inner is not None and _split_at_softmax(inner) != "none":
            return "probabilities"
    return "none"


def _dense_logits(dense):
    """A layer computing ``dense``'s output without its activation, with ``dense``'s own weights."""
    import keras

    class DenseLogits(keras.layers.Layer):
        def __init__(self, dense):
            super().__init__(name=f"{dense.name}_logits")
            self.dense = dense
            self.built = True

        def call(self, inputs):
            outputs = keras.ops.matmul(inputs, self.dense.kernel)
            return outputs if self.dense.bias is None else outputs + self.dense.bias

    return DenseLogits(dense)


def _conv_layers(model) -> list[str]:
    """Names of the model's layers whose output is a feature map (batch, height, width, channels)."""
    import keras

    kinds = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)
    return [layer.name for layer in model.layers if isinstance(layer, kinds)]


def _check_layer_name(model, layer_name) -> str:
    if not isinstance(layer_name, str):
        raise TypeError(f"layer_name must be the name of a layer (a string), got {layer_name!r}")
    names = [layer.name for layer in model.layers]
    if layer_name in names:
        return layer_name
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.Model) and layer_name in [inner.name for inner in layer.layers]:
            raise ValueError(
                f"layer {layer_name!r} is inside the nested model {layer.name!r}; grad_cam reads a "
                f"layer of the model itself ({', '.join(map(repr, names[-4:]))}, ...): call it on "
                f"the nested model, or build the model from the nested model's layers"
            )
    convs = _conv_layers(model)
    close = difflib.get_close_matches(layer_name, names, n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    if not convs:
        listed = "it has no convolutional layers"
    elif len(convs) <= 12:
        listed = "its convolutional layers are " + ", ".join(map(repr, convs))
    else:
        listed = (f"it has {len(convs)} convolutional layers, the last eight are "
                  + ", ".join(map(repr, convs[-8:])))
    return_hint = f" (Grad-CAM usually reads the last one, {convs[-1]!r})" if convs else ""
    raise ValueError(f"model {model.name!r} has no layer named {layer_name!r}; {listed}{return_hint}.{hint}")


def _rewired(model, image_shape, layer_name=None):
    """``model`` re-run from a float32 input of ``image_shape``; (rewired model, logits?).

    The rewired model gives the class scores (the logits where they can be read, see the module
    docstring). With ``layer_name`` it takes a second input, added to that layer's output (zeros
    leave the result unchanged; the gradient with respect to it is the gradient with respect to
    the layer's output, under any backend), and gives the layer's output as a second output.
    The same layer objects are called, so weights are shared and later training is seen.
    """
    import keras

    key = (tuple(image_shape), layer_name)
    cache = _REWIRED.setdefault(model, {})
    if key in cache:
        return cache[key]
    last = _output_layer(model)
    split = _split_at_softmax(last)
    image = keras.Input(tuple(image_shape), dtype="float32", name="image")
    found = {}

    def call(layer, *args, **kwargs):
        outputs = layer(*args, **kwargs)
        if layer_name is not None and layer.name == layer_name and "map" not in found:
            found["map"] = outputs
            if "delta" in found:  # second pass: add the zero input to the layer's output
                outputs = keras.layers.Add(name="cnn_course_gradient_probe")([outputs, found["delta"]])
        if layer is last and split in ("dense", "input"):
            found["logits"] = _dense_logits(layer)(args[0]) if split == "dense" else args[0]
        return outputs

    def run(inputs):
        found.pop("map", None)
        if isinstance(model, keras.Sequential):
            outputs = inputs
            for layer in model.layers:
                outputs = call(layer, outputs)
            return outputs
        # The graph's own runner (the one keras.models.clone_model uses), with every layer call
        # going through `call`; clone_model itself would refuse the extra probe input.
        return keras.tree.flatten(model._run_through_graph([inputs], operation_fn=lambda layer: layer,
                                                             call_fn=call))[0]

    try:
        outputs = run(image)
        if layer_name is not None:
            found["delta"] = keras.Input(tuple(found["map"].shape[1:]), dtype="float32", name="probe")
            outputs = run(image)
    except Exception as error:  # the layers reject this input size: say which sizes work
        raise ValueError(
            f"model {model.name!r} cannot take images of shape {tuple(image_shape)} (it was built "
            f"for {tuple(model.inputs[0].shape[1:])}): {error}"
        ) from None
    if len(outputs.shape) != 2 and split not in ("dense", "input"):
        raise ValueError(f"model {model.name!r} must give class scores (batch, classes), it gives "
                         f"shape {tuple(outputs.shape)}")
    scores = found.get("logits", outputs)
    if layer_name is None:
        rewired = keras.Model(image, scores)
    else:
        if len(found["map"].shape) != 4:
            raise ValueError(
                f"layer {layer_name!r} gives shape {tuple(found['map'].shape)}, not a feature map "
                f"(batch, height, width, channels); pick a convolutional layer: "
                f"{', '.join(map(repr, _conv_layers(model)[-8:]))}"
            )
        rewired = keras.Model([image, found["delta"]], [scores, found["map"]])
    cache[key] = (rewired, split != "probabilities")
    return cache[key]


def _probabilities(scores, logits: bool) -> np.ndarray:
    if not logits:
        return scores
    shifted = scores - scores.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


# ----------------------------------------------------------------------------- argument checks


def _images(model, x):
    """``x`` as a float32 batch, and whether it was a single image."""
    array = numeric_array(x, "x")
    rank = len(model.inputs[0].shape)
    if array.ndim == rank - 1:
        return array[None].astype(np.float32), True
    if array.ndim != rank:
        shape = tuple(model.inputs[0].shape[1:])
        raise ValueError(f"x must be a batch of images (N, *{shape}) or one image {shape}, "
                         f"got shape {array.shape}")
    if len(array) == 0:
        raise ValueError("x holds no images (its first axis has length 0)")
    if not np.isfinite(array).all():
        raise ValueError("x holds NaN or infinite values")
    return array.astype(np.float32), False


def _check_clip(clip, x):
    if clip is None:
        return None
    if (not isinstance(clip, (tuple, list)) or len(clip) != 2
            or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in clip)):
        raise TypeError(f"clip must be the pixel range (low, high), e.g. (0.0, 1.0), or None, got {clip!r}")
    low, high = float(clip[0]), float(clip[1])
    if not low < high:
        raise ValueError(f"clip must be (low, high) with low < high, got {clip!r}")
    if x is not None and (x.min() < low or x.max() > high):
        raise ValueError(
            f"x has values in [{x.min():g}, {x.max():g}], outside the pixel range clip={clip!r}: "
            "pass the range your images live in, e.g. clip=(-1.0, 1.0) for MobileNetV2 after "
            "pretrained.preprocess, clip=(0, 255) for the MNIST networks' uint8 pixels, "
            "or clip=None for no clipping"
        )
    return low, high


def _check_number(value, name: str, *, positive: bool = False, meaning: str = "") -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    if positive and value <= 0:
        raise ValueError(f"{name} must be positive, got {value:g}")
    if value < 0:
        raise ValueError(f"{name} must be zero or positive{meaning}, got {value:g}")
    return value


def _labels(y, count: int, classes: int, single: bool, name: str = "y") -> np.ndarray:
    array = numeric_array(y, name)
    if not np.issubdtype(array.dtype, np.integer):
        if not np.all(np.equal(np.mod(array, 1), 0)):
            raise TypeError(f"{name} must hold integer class numbers (not one-hot or probabilities), "
                            f"got {array.dtype} values")
        array = array.astype(np.int64)
    if array.ndim == 0:
        array = np.full(count, int(array))
    elif single and array.shape == (1,):
        pass
    elif array.shape != (count,):
        raise ValueError(f"{name} must hold one class number per image ({count}), got shape {array.shape}")
    if array.min() < 0 or array.max() >= classes:
        raise ValueError(f"{name} must hold class numbers from 0 to {classes - 1} (the model has "
                         f"{classes} classes), got {array.min()}..{array.max()}")
    return array.astype(np.int64)


def _check_norm(norm) -> str:
    if isinstance(norm, numbers.Real) and not isinstance(norm, bool):
        norm = "inf" if norm == np.inf else ("2" if norm == 2 else str(norm))
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}: use norm='inf' (every pixel changes by at most eps) "
                         "or norm='2' (the Euclidean length of the whole change is at most eps)")
    return norm


def _batches(count: int, batch_size: int):
    for start in range(0, count, batch_size):
        yield slice(start, min(start + batch_size, count))


def _back(array, single: bool):
    return array[0] if single else array


# ----------------------------------------------------------------------------- attacks


def _loss_gradient(model, x, y, logits: bool):
    """The cross-entropy of class ``y`` and the direction of its gradient with respect to ``x``.

    The gradient is that of the log-odds against the class, ``log((1 - p_y) / p_y) =
    logsumexp_{j≠y} z_j - z_y``: the cross-entropy's gradient is ``(1 - p_y)`` times it, so
    both point the same way, but the log-odds keep their gradient when the network is so sure
    that ``1 - p_y`` rounds to zero (the cross-entropy's gradient is then exactly zero).
    """
    onehot = np.eye(model.output_shape[-1], dtype=np.float32)[y]
    _, (losses,), gradient = _gradient(model, _log_odds_objective, logits, x, onehot)
    return losses, gradient


def _attack_setup(model, x, y, eps, clip):
    _check_model(model)
    images, single = _images(model, x)
    eps = _check_number(eps, "eps", meaning=" (it is the size of the change, in pixel units)")
    bounds = _check_clip(clip, images)
    rewired, logits = _rewired(model, images.shape[1:])
    labels = _labels(y, len(images), rewired.output_shape[-1], single)
    return images, single, eps, bounds, rewired, logits, labels


def gradient_sign(model, x, y, *, targeted=False, clip=(0.0, 1.0), batch_size=32):
    """The direction of :func:`fgsm`: the sign of the loss gradient, -1, 0 or +1 per pixel.

    ``fgsm(model, x, y, eps)`` is ``numpy.clip(x + eps * gradient_sign(model, x, y), *clip)``.
    Computing the direction once and scaling it is what makes an ε slider fast: one gradient,
    then only predictions.

    Parameters
    ----------
    model, x, y, targeted, clip, batch_size
        As in :func:`fgsm` (``clip`` only checks that ``x`` lies in the pixel range).

    Returns
    -------
    numpy.ndarray
        float32, the shape of ``x``: ``+1`` where raising the pixel raises the loss (lowers it
        with ``targeted=True``), ``-1`` where lowering it does, ``0`` where the gradient is zero.

    Examples
    --------
    >>> import keras
    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="softmax")])
    >>> model.set_weights([np.array([[1.0, -1.0], [-2.0, 2.0]]), np.zeros(2)])
    >>> gradient_sign(model, np.array([[0.5, 0.5]]), [1])
    array([[ 1., -1.]], dtype=float32)
    """
    images, single, _, _, rewired, logits, labels = _attack_setup(model, x, y, 0.0, clip)
    batch_size = check_positive_int(batch_size, "batch_size")
    signs = np.empty_like(images)
    for part in _batches(len(images), batch_size):
        _, gradient = _loss_gradient(rewired, images[part], labels[part], logits)
        signs[part] = np.sign(gradient)
    return _back(-signs if targeted else signs, single)


def fgsm(model, x, y, eps, *, targeted=False, clip=(0.0, 1.0), batch_size=32):
    """The fast gradient sign method: one step of size ``eps`` that raises the loss.

    ``x + eps * sign(∇ₓ loss(x, y))``, then clipped to the pixel range (Goodfellow, Shlens &
    Szegedy 2014). Before clipping every pixel moves by exactly ``eps`` (unless the gradient
    is exactly zero there): the largest change allowed in the L∞ norm, spent in the
    direction that raises a linear approximation of the loss the most.

    Parameters
    ----------
    model : keras.Model
        A classifier; see the module docstring for the logits it reads.
    x : array_like
        Images ``(N, H, W, C)`` or one image ``(H, W, C)``, inside ``clip``.
    y : int or array_like of int
        The true class of each image (one number for all); with ``targeted=True``, the
        class to push each image towards.
    eps : float
        Size of the step per pixel, in the units of ``x``; ``>= 0``.
    targeted : bool
        Step *down* the gradient of the target's loss (towards class ``y``) instead of up
        the true class's loss (away from ``y``).
    clip : (float, float) or None
        The valid pixel range.
    batch_size : int
        Images per gradient computation.

    Returns
    -------
    numpy.ndarray
        float32 adversarial images, the shape of ``x``.

    Examples
    --------
    >>> import keras
    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="softmax")])
    >>> model.set_weights([np.array([[1.0, -1.0], [-2.0, 2.0]]), np.zeros(2)])
    >>> fgsm(model, np.array([[0.5, 0.5]]), [1], 0.25, targeted=True)  # towards class 1
    array([[0.25, 0.75]], dtype=float32)
    """
    images, single, eps, bounds, _, _, labels = _attack_setup(model, x, y, eps, clip)
    signs = gradient_sign(model, images, labels, targeted=targeted, clip=clip, batch_size=batch_size)
    result = images + np.float32(eps) * signs
    if bounds is not None:
        np.clip(result, *bounds, out=result)
    return _back(result, single)


def _project(delta, eps: float, norm: str):
    """``delta`` moved to the nearest point of the ε-ball (per example)."""
    if norm == "inf":
        return np.clip(delta, -eps, eps)
    lengths = np.sqrt(np.sum(delta.astype(np.float64) ** 2, axis=tuple(range(1, delta.ndim)), keepdims=True))
    # Outside the ball: scaled back to its surface, and one part in a million further, so that
    # float32 rounding cannot leave the length a hair above eps. Inside: unchanged.
    scale = np.where(lengths > eps, eps / np.maximum(lengths, 1e-30) * (1 - 1e-6), 1.0)
    return (delta * scale).astype(delta.dtype)


def _step(gradient, size: float, norm: str):
    if norm == "inf":
        return size * np.sign(gradient)
    lengths = np.sqrt(np.sum(gradient.astype(np.float64) ** 2, axis=tuple(range(1, gradient.ndim)),
                             keepdims=True))
    return (size * gradient / np.maximum(lengths, 1e-30)).astype(gradient.dtype)


def _random_start(shape, eps: float, norm: str, rng):
    if norm == "inf":
        return rng.uniform(-eps, eps, size=shape).astype(np.float32)
    # Uniform in the L2 ball: a Gaussian direction, a radius eps * u^(1/d).
    direction = rng.standard_normal(shape)
    direction /= np.sqrt(np.sum(direction ** 2, axis=tuple(range(1, len(shape))), keepdims=True))
    dimension = int(np.prod(shape[1:]))
    radius = eps * rng.uniform(size=(shape[0],) + (1,) * (len(shape) - 1)) ** (1 / dimension)
    return _project((direction * radius).astype(np.float32), eps, "2")


def pgd(model, x, y, eps, step, steps, *, norm="inf", targeted=False, random_start=True,
        clip=(0.0, 1.0), seed=0, batch_size=32, verbose=False):
    """Projected gradient descent: many small steps, each followed by a projection into the ε-ball.

    From a random point of the ball around ``x`` (``random_start``), ``steps`` times: a step
    of size ``step`` (the sign of the gradient for ``norm="inf"``, the gradient scaled to
    length ``step`` for ``norm="2"``), then the change is projected onto the ε-ball around
    ``x`` (per image) and the image onto the pixel range (Madry et al. 2017). Clipping to the
    pixel range never moves a change out of the ball (``x`` itself is a valid image), so the
    result lies in both, up to the float32 rounding of ``x + change``. With
    ``random_start=False`` and ``norm="inf"`` this is the basic iterative method (BIM,
    Kurakin, Goodfellow & Bengio 2016).

    Parameters
    ----------
    model, x, y, targeted, clip, batch_size
        As in :func:`fgsm`.
    eps : float
        Radius of the ball the change stays in (``>= 0``), in the units of ``x``.
    step : float
        Size of each step (``> 0``); a common choice is ``2.5 * eps / steps``.
    steps : int
        Number of steps.
    norm : {"inf", "2"}
        L∞ (no pixel changes by more than ``eps``) or L2 (the whole change has Euclidean
        length at most ``eps``); ``numpy.inf`` and ``2`` are accepted too.
    random_start : bool
        Start from a uniformly random point of the ball instead of ``x`` itself.
    seed : int
        Seed of the random start.
    verbose : bool
        Show a Keras progress bar over the steps (the loss averaged over the images).

    Returns
    -------
    numpy.ndarray
        float32 adversarial images, the shape of ``x``.

    Examples
    --------
    >>> import keras
    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="softmax")])
    >>> model.set_weights([np.array([[1.0, -1.0], [-2.0, 2.0]]), np.zeros(2)])
    >>> x = np.array([[0.5, 0.5]])
    >>> adversarial = pgd(model, x, [1], eps=0.1, step=0.05, steps=4, norm="2")
    >>> float(np.round(np.linalg.norm(adversarial - x), 4))
    0.1
    """
    images, single, eps, bounds, rewired, logits, labels = _attack_setup(model, x, y, eps, clip)
    step = _check_number(step, "step", positive=True)
    steps = check_positive_int(steps, "steps")
    norm = _check_norm(norm)
    batch_size = check_positive_int(batch_size, "batch_size")
    direction = -1.0 if targeted else 1.0
    rng = np.random.default_rng(seed)
    current = images.copy()
    if random_start and eps > 0:
        current = images + _random_start(images.shape, eps, norm, rng)
        if bounds is not None:
            np.clip(current, *bounds, out=current)
    progress = None
    if verbose:
        import keras

        progress = keras.utils.Progbar(steps, stateful_metrics=["loss"])
    for index in range(steps):
        losses = np.empty(len(images), np.float32)
        for part in _batches(len(images), batch_size):
            losses[part], gradient = _loss_gradient(rewired, current[part], labels[part], logits)
            moved = current[part] + direction * _step(gradient, step, norm)
            moved = images[part] + _project(moved - images[part], eps, norm)
            if bounds is not None:
                np.clip(moved, *bounds, out=moved)
            current[part] = moved
        if progress is not None:
            progress.update(index + 1, [("loss", float(losses.mean()))])
    return _back(current.astype(np.float32), single)


def fooling_image(model, target_class, *, steps, step_size=None, clip=(0.0, 1.0), l2=0.0,
                  seed=0, stop_at=None, image_shape=None, verbose=False):
    """An image the model assigns to ``target_class``, grown from noise by gradient ascent.

    Starts from uniform noise over the pixel range and repeats: compute the gradient of the
    target's log probability minus ``l2`` times the mean squared distance of the pixels from
    the middle of the range, step ``step_size`` along it (scaled so that the pixel that
    changes most changes by ``step_size``), clip to the range. Nguyen, Yosinski & Clune
    (2015) found such images, unrecognisable to people, classified with > 99 % confidence.

    Parameters
    ----------
    model : keras.Model
        A classifier.
    target_class : int
        The class the image should be taken for.
    steps : int
        Most gradient steps to take.
    step_size : float, optional
        Largest change of one pixel per step; default 1/100 of the pixel range.
    clip : (float, float)
        The pixel range (for MobileNetV2 after ``preprocess``: ``(-1.0, 1.0)``).
    l2 : float
        Weight of the L2 penalty (0: none); larger values keep the image greyer.
    seed : int
        Seed of the starting noise.
    stop_at : float, optional
        Stop as soon as the target's probability reaches this value.
    image_shape : tuple of int, optional
        ``(height, width, channels)``; default the model's input shape.
    verbose : bool
        Show a Keras progress bar with the confidence.

    Returns
    -------
    image : numpy.ndarray
        float32, ``image_shape``.
    confidences : numpy.ndarray
        The target's probability before each step and after the last (length ``steps + 1``,
        shorter when ``stop_at`` stopped early).

    Examples
    --------
    >>> import keras
    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((2, 2, 1)), keras.layers.Flatten(),
    ...                          keras.layers.Dense(2, activation="softmax")])
    >>> model.set_weights([np.array([[1.0, -1.0]] * 4), np.zeros(2)])  # bright means class 0
    >>> image, confidences = fooling_image(model, 0, steps=50, step_size=0.1, stop_at=0.98)
    >>> bool(confidences[-1] >= 0.98 > confidences[0]), image.shape
    (True, (2, 2, 1))
    """
    import keras

    _check_model(model)
    steps = check_positive_int(steps, "steps")
    if clip is None:
        raise ValueError("fooling_image needs a pixel range clip=(low, high) to draw its noise from")
    low, high = _check_clip(clip, None)
    if image_shape is None:
        image_shape = tuple(model.inputs[0].shape[1:])
        if any(side is None for side in image_shape):
            raise ValueError(f"model {model.name!r} takes images of any size {image_shape}: "
                             "give image_shape=(height, width, channels)")
    elif (not isinstance(image_shape, (tuple, list)) or not all(is_int(s) and s > 0 for s in image_shape)):
        raise TypeError(f"image_shape must be (height, width, channels), positive whole numbers, got {image_shape!r}")
    image_shape = tuple(int(side) for side in image_shape)
    step_size = (high - low) / 100 if step_size is None else _check_number(step_size, "step_size", positive=True)
    l2 = _check_number(l2, "l2")
    if stop_at is not None:
        stop_at = _check_number(stop_at, "stop_at", positive=True)
        if stop_at > 1:
            raise ValueError(f"stop_at is a probability, at most 1, got {stop_at:g}")
    rewired, logits = _rewired(model, image_shape)
    target = check_int(target_class, "target_class")
    classes = rewired.output_shape[-1]
    if not 0 <= target < classes:
        raise ValueError(f"target_class must be a class number from 0 to {classes - 1}, got {target}")
    centre = (low + high) / 2
    onehot = np.eye(classes, dtype=np.float32)[[target]]
    rng = np.random.default_rng(seed)
    image = rng.uniform(low, high, size=(1, *image_shape)).astype(np.float32)
    confidences = []
    progress = keras.utils.Progbar(steps, stateful_metrics=["confidence"]) if verbose else None
    for index in range(steps + 1):
        _, (confidence,), gradient = _gradient(rewired, _fooling_objective, logits, image, onehot,
                                               np.float32(l2), np.float32(centre))
        confidences.append(float(confidence[0]))
        if index == steps or (stop_at is not None and confidences[-1] >= stop_at):
            break
        largest = np.abs(gradient).max()
        if largest > 0:
            image = np.clip(image + np.float32(step_size / largest) * gradient, low, high).astype(np.float32)
        if progress is not None:
            progress.update(index + 1, [("confidence", confidences[-1])])
    return image[0], np.array(confidences)


# ----------------------------------------------------------------------------- what the network looks at


def _class_indices(rewired, images, class_index, single, batch_size):
    """``class_index`` checked, or the predicted class of each image when it is None."""
    classes = rewired.output_shape[-1]
    if class_index is None:
        import keras

        scores = [keras.ops.convert_to_numpy(rewired(images[part], training=False))
                  for part in _batches(len(images), batch_size)]
        return np.concatenate(scores).argmax(axis=-1)
    return _labels(class_index, len(images), classes, single, name="class_index")


def saliency_map(model, x, class_index=None, *, batch_size=32):
    """How strongly each pixel moves the class score: ``|d score / d pixel|``, largest over channels.

    Simonyan, Vedaldi & Zisserman (2013): the gradient of the class score (the logit, before
    the softmax, where the model has one) with respect to the image, in absolute value, and
    for colour images the largest of the channels at each pixel.

    Parameters
    ----------
    model : keras.Model
        A classifier.
    x : array_like
        Images ``(N, H, W, C)`` or one image ``(H, W, C)``.
    class_index : int or array_like of int, optional
        The class whose score is explained; default the predicted class of each image.
    batch_size : int
        Images per gradient computation.

    Returns
    -------
    numpy.ndarray
        float32 ``(N, H, W)``, or ``(H, W)`` for one image; zero or positive.

    Examples
    --------
    >>> import keras
    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((1, 3, 2)), keras.layers.Flatten(),
    ...                          keras.layers.Dense(2, activation="softmax")])
    >>> model.set_weights([np.array([[1, 0], [-3, 0], [0, 0], [2, 0], [0, 0], [0, 0]], float),
    ...                    np.zeros(2)])
    >>> saliency_map(model, np.zeros((1, 3, 2)), class_index=0)  # logit 0 = x₁ − 3x₂ + 2x₄
    array([[3., 2., 0.]], dtype=float32)
    """
    _check_model(model)
    images, single = _images(model, x)
    batch_size = check_positive_int(batch_size, "batch_size")
    rewired, logits = _rewired(model, images.shape[1:])
    indices = _class_indices(rewired, images, class_index, single, batch_size)
    maps = np.empty(images.shape[:-1], np.float32)
    for part in _batches(len(images), batch_size):
        onehot = np.eye(rewired.output_shape[-1], dtype=np.float32)[indices[part]]
        _, _, gradient = _gradient(rewired, _class_score_objective, logits, images[part], onehot)
        maps[part] = np.abs(gradient).max(axis=-1)
    return _back(maps, single)


def occlusion_map(model, x, patch, stride, *, class_index=None, fill=0.0, batch_size=64):
    """How much the class probability drops when a patch of the image is hidden.

    Zeiler & Fergus (2013): a ``patch`` of constant value ``fill`` slides over the image with
    ``stride``; at each position the map holds the probability of the class for the whole
    image minus its probability with that patch hidden. Large values mark the parts the
    prediction relies on. Position ``(i, j)`` covers rows ``i * stride`` to
    ``i * stride + patch - 1`` and the matching columns; positions that would leave the image
    are not used. The occluded images are classified in batches of ``batch_size``.

    Parameters
    ----------
    model : keras.Model
        A classifier.
    x : array_like
        Images ``(N, H, W, C)`` or one image ``(H, W, C)``.
    patch : int or (int, int)
        Height and width of the hidden square (or rectangle).
    stride : int or (int, int)
        Distance between two positions of the patch.
    class_index : int or array_like of int, optional
        The class to follow; default the predicted class of each image.
    fill : float
        Value of the hidden pixels: 0.0 is grey for MobileNetV2's [-1, 1] input, black for
        [0, 1] images; pass the image mean for a neutral patch.
    batch_size : int
        Occluded images per call of the model.

    Returns
    -------
    numpy.ndarray
        float32 ``(N, rows, columns)``, or ``(rows, columns)`` for one image, with
        ``rows = (H - patch) // stride + 1`` (columns likewise).

    Examples
    --------
    >>> import keras
    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((2, 4, 1)), keras.layers.Flatten(),
    ...                          keras.layers.Dense(2, activation="softmax")])
    >>> model.set_weights([np.array([[1, 0]] * 4 + [[0, 0]] * 4, float), np.zeros(2)])
    >>> # logit 0 = sum of the top row: 4 → 2 when half of it is hidden; p₀ = 0.982 → 0.881
    >>> occlusion_map(model, np.ones((2, 4, 1)), patch=2, stride=2, class_index=0).round(3)
    array([[0.101, 0.101]], dtype=float32)
    """
    _check_model(model)
    images, single = _images(model, x)
    patch = as_pair(patch, "patch", minimum=1)
    stride = as_pair(stride, "stride", minimum=1)
    height, width = images.shape[1:3]
    if patch[0] > height or patch[1] > width:
        raise ValueError(f"patch {patch} is larger than the images ({height}, {width})")
    fill = np.float32(_check_finite(fill, "fill"))
    batch_size = check_positive_int(batch_size, "batch_size")
    rewired, logits = _rewired(model, images.shape[1:])
    indices = _class_indices(rewired, images, class_index, single, batch_size)
    rows = (height - patch[0]) // stride[0] + 1
    columns = (width - patch[1]) // stride[1] + 1
    corners = [(i * stride[0], j * stride[1]) for i in range(rows) for j in range(columns)]
    maps = np.empty((len(images), rows * columns), np.float32)

    def probabilities(batch):
        import keras

        return _probabilities(keras.ops.convert_to_numpy(rewired(batch, training=False)), logits)

    for n, image in enumerate(images):
        clean = probabilities(image[None])[0, indices[n]]
        for part in _batches(len(corners), batch_size):
            batch = np.repeat(image[None], part.stop - part.start, axis=0)
            for k, (top, left) in enumerate(corners[part]):
                batch[k, top:top + patch[0], left:left + patch[1]] = fill
            maps[n, part] = clean - probabilities(batch)[:, indices[n]]
    return _back(maps.reshape(len(images), rows, columns), single)


def _check_finite(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def grad_cam(model, x, class_index, layer_name, *, normalize=True, upsample=True, batch_size=32):
    """Grad-CAM: where in the image the evidence for a class sits, read from one convolutional layer.

    Selvaraju et al. (2017). With ``A`` the layer's feature maps (``h × w × K``) and ``s`` the
    class score (the logit, before the softmax, where the model has one), each map ``k`` gets
    the weight ``α_k = mean over positions of ds/dA_k``, and the map is ``ReLU(Σ_k α_k A_k)``:
    the positions whose features raise the score. It is then upsampled bilinearly to the
    image size (``skimage.transform.resize``, ``order=1``, pixel centres aligned, edge values
    repeated) and divided by its largest value.

    Parameters
    ----------
    model : keras.Model
        A functional or Sequential classifier; the layer must be one of ``model.layers``
        (not inside a nested model).
    x : array_like
        Images ``(N, H, W, C)`` or one image ``(H, W, C)``.
    class_index : int, array_like of int or None
        The class to explain; None: the predicted class of each image.
    layer_name : str
        Name of a layer that gives feature maps, usually the last convolution
        (``"features_18_0"`` in the course's MobileNetV2, ``"block3_conv"`` in
        :func:`cnn_course.models.fast_mnist_cnn`) or the activation after it
        (``"features_18_2"``, ``"block3_relu"``).
    normalize : bool
        Divide each map by its largest value (maps that are all zero stay zero).
    upsample : bool
        Resize to the image size; False gives the layer's ``h × w`` map.
    batch_size : int
        Images per gradient computation.

    Returns
    -------
    numpy.ndarray
        float32 ``(N, H, W)`` (or ``(N, h, w)``), without the first axis for one image.

    Examples
    --------
    >>> import keras
    >>> import numpy as np
    >>> inputs = keras.Input((2, 2, 1))
    >>> maps = keras.layers.Conv2D(1, 1, use_bias=False, name="conv")(inputs)  # A = x
    >>> logits = keras.layers.Dense(2)(keras.layers.Flatten()(maps))
    >>> model = keras.Model(inputs, keras.layers.Softmax()(logits))
    >>> model.set_weights([np.ones((1, 1, 1, 1)), np.array([[4, 0], [0, 0], [0, 0], [0, 0]], float),
    ...                    np.zeros(2)])
    >>> x = np.array([[[1.0], [2.0]], [[3.0], [4.0]]])  # α = mean(4, 0, 0, 0) = 1, map = 1·A
    >>> grad_cam(model, x, 0, "conv", normalize=False, upsample=False)
    array([[1., 2.],
           [3., 4.]], dtype=float32)
    >>> grad_cam(model, x, 0, "con")
    Traceback (most recent call last):
    ...
    ValueError: model ... has no layer named 'con'; its convolutional layers are 'conv' (...). Did you mean 'conv'?
    """
    _check_model(model)
    layer_name = _check_layer_name(model, layer_name)
    images, single = _images(model, x)
    batch_size = check_positive_int(batch_size, "batch_size")
    rewired, logits = _rewired(model, images.shape[1:], layer_name)
    plain, _ = _rewired(model, images.shape[1:])
    indices = _class_indices(plain, images, class_index, single, batch_size)
    probe_shape = tuple(rewired.inputs[1].shape[1:])
    cams = []
    for part in _batches(len(images), batch_size):
        onehot = np.eye(rewired.output_shape[0][-1], dtype=np.float32)[indices[part]]
        zeros = np.zeros((part.stop - part.start, *probe_shape), np.float32)
        _, (maps,), gradient = _gradient(rewired, _probe_objective, logits, zeros, images[part], onehot)
        weights = gradient.mean(axis=(1, 2))  # α_k, one per map and image
        cams.append(np.maximum(np.einsum("nhwk,nk->nhw", maps, weights), 0).astype(np.float32))
    cams = np.concatenate(cams)
    if upsample and cams.shape[1:] != images.shape[1:3]:
        from skimage.transform import resize

        cams = np.stack([resize(cam, images.shape[1:3], order=1, mode="edge", anti_aliasing=False)
                         for cam in cams]).astype(np.float32)
    if normalize:
        largest = cams.max(axis=(1, 2), keepdims=True)
        cams = np.where(largest > 0, cams / np.where(largest > 0, largest, 1), 0).astype(np.float32)
    return _back(cams, single)
