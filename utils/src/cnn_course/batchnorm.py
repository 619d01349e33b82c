"""Batch normalisation in numpy: forward pass, moving averages and backward pass.

Batch normalisation (Ioffe & Szegedy, "Batch Normalization: Accelerating Deep Network
Training by Reducing Internal Covariate Shift", ICML 2015, Algorithm 1) rescales every
channel of a layer's input using statistics of the current mini-batch, in four steps:

1. the batch mean of each channel, ``mu = mean(x)``;
2. the batch variance of each channel, ``var = mean((x - mu) ** 2)`` (divided by the
   number of values ``m``, not ``m - 1``);
3. normalise: ``x_hat = (x - mu) / sqrt(var + eps)``, where the small ``eps`` inside the
   square root keeps the division finite when a channel is constant;
4. scale and shift with learned per-channel weights: ``out = gamma * x_hat + beta``.

The statistics are taken over **every axis but the last** (channels last, as in Keras):
over the batch for a dense layer's ``(N, C)`` output, over the batch *and* all pixels for a
convolution's ``(N, H, W, C)`` output, so one channel shares one ``gamma`` and ``beta``
wherever it appears in the image.

At inference time a prediction must not depend on which other examples share its batch, so
the layer uses *moving averages* of the batch statistics collected during training instead,
updated as ``keras.layers.BatchNormalization`` does::

    moving_mean = moving_mean * momentum + batch_mean * (1 - momentum)
    moving_var  = moving_var  * momentum + batch_var  * (1 - momentum)

with the same biased ``batch_var`` (divided by ``m``) as step 2. (PyTorch's ``BatchNorm2d``
puts the unbiased ``m / (m - 1)`` version in its running variance instead; Keras does not.)

Examples
--------
>>> import numpy as np
>>> from cnn_course.batchnorm import batch_norm_forward, batch_norm_backward
>>> x = np.array([[1.0, 2.0],
...               [3.0, 6.0]])
>>> ones, zeros = np.ones(2), np.zeros(2)
>>> out, mean, var, cache = batch_norm_forward(x, ones, zeros, zeros, ones, training=True)
>>> out.round(4)  # each column now has mean 0 and (almost) standard deviation 1
array([[-0.9995, -0.9999],
       [ 0.9995,  0.9999]])
>>> mean, var  # 1% of the way from (0, 1) to the batch mean (2, 4) and variance (1, 4)
(array([0.02, 0.04]), array([1.  , 1.03]))
>>> dx, dgamma, dbeta = batch_norm_backward(np.ones((2, 2)), cache)
>>> dbeta, dx.round(12)  # adding a constant to every output: BN removes it again
(array([2., 2.]), array([[0., 0.],
       [0., 0.]]))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._checks import numeric_array

__all__ = ["BatchNormCache", "batch_norm_backward", "batch_norm_forward"]


@dataclass(frozen=True)
class BatchNormCache:
    """What :func:`batch_norm_forward` keeps for :func:`batch_norm_backward`.

    Attributes
    ----------
    x_hat : numpy.ndarray
        The normalised input ``(x - mean) / sqrt(var + eps)``, the shape of ``x``.
    inv_std : numpy.ndarray
        ``1 / sqrt(var + eps)`` per channel, shape ``(C,)``: batch variance in training
        mode, running variance in inference mode.
    gamma : numpy.ndarray
        The scale used, shape ``(C,)``.
    training : bool
        Which mode the forward pass ran in; the two modes have different gradients.
    """

    x_hat: np.ndarray
    inv_std: np.ndarray
    gamma: np.ndarray
    training: bool


def batch_norm_forward(x, gamma, beta, running_mean, running_var, *, training,
                       momentum=0.99, eps=1e-3):
    """Batch normalisation of a channels-last batch, as ``keras.layers.BatchNormalization``.

    Parameters
    ----------
    x : array_like
        ``(N, C)`` (after a dense layer), ``(N, H, W, C)`` (after a convolution) or any
        other shape with at least two axes; the last axis holds the channels and every
        other axis is averaged over.
    gamma, beta : array_like
        Learned scale and shift, shape ``(C,)``.
    running_mean, running_var : array_like
        Moving averages of the batch mean and variance, shape ``(C,)``; the variance must
        not be negative. Keras starts them at 0 and 1.
    training : bool
        ``True``: normalise with this batch's statistics and update the moving averages.
        ``False``: normalise with ``running_mean``/``running_var`` and return them unchanged.
        Required, because forgetting it is the classic batch-norm bug.
    momentum : float
        How much of the old moving average survives each training step, in ``[0, 1]``
        (Keras's default 0.99: the averages follow roughly the last hundred batches).
    eps : float
        Added to the variance inside the square root, > 0 (Keras's default 0.001).

    Returns
    -------
    out : numpy.ndarray
        ``gamma * x_hat + beta``, the shape of ``x``.
    running_mean_new, running_var_new : numpy.ndarray
        The updated moving averages in training mode (new arrays; the arguments are
        never modified), copies of the old ones in inference mode.
    cache : BatchNormCache
        What :func:`batch_norm_backward` needs.

    All four arrays use the float type Keras computes in, ``numpy.result_type(x.dtype,
    float32)``: float32 or float64 stay as they are, float16 becomes float32 (its small
    range overflows in ``x ** 2``), int64 becomes float64.

    Raises
    ------
    ValueError
        ``x`` with fewer than two axes or no values, parameters not of shape ``(C,)``,
        values that are NaN or infinite, a negative running variance, ``momentum`` outside
        ``[0, 1]``, ``eps <= 0``, training mode with one value per channel, or values so
        large that the batch variance overflows.
    TypeError
        Arrays that do not hold numbers, ``training`` not a bool, ``momentum``/``eps`` not
        numbers.

    Notes
    -----
    Training mode refuses a batch with a single value per channel (e.g. ``x`` of shape
    ``(1, C)``): the batch variance is then 0, every output equals ``beta`` whatever ``x``
    was, and no gradient reaches ``x``. Keras does not check this and silently trains on
    nothing. A ``(1, H, W, C)`` image is fine: each channel has ``H * W`` values.

    Examples
    --------
    >>> x = np.arange(24.0).reshape(2, 3, 2, 2)  # two 3×2 images with 2 channels
    >>> out, _, _, _ = batch_norm_forward(x, np.array([1.0, 2.0]), np.array([0.0, 5.0]),
    ...                                   np.zeros(2), np.ones(2), training=True)
    >>> np.allclose(out.mean(axis=(0, 1, 2)), [0, 5]), out.std(axis=(0, 1, 2)).round(3)
    (True, array([1., 2.]))
    >>> out, mean, var, _ = batch_norm_forward(np.array([[3.0], [5.0]]), np.ones(1),
    ...                                        np.zeros(1), np.array([1.0]), np.array([3.75]),
    ...                                        training=False, eps=0.25)
    >>> out, mean, var  # (3 - 1) / sqrt(3.75 + 0.25) and (5 - 1) / sqrt(3.75 + 0.25)
    (array([[1.],
           [2.]]), array([1.]), array([3.75]))
    """
    array = _numbers(x, "x")
    if array.ndim < 2:
        raise ValueError(
            "x must have at least two axes, a batch axis first and channels last, e.g. (N, C) "
            f"or (N, H, W, C); got shape {array.shape}. For a single example use x[None]."
        )
    if array.size == 0:
        raise ValueError(f"x must not be empty, got shape {array.shape}")
    if not isinstance(training, (bool, np.bool_)):
        raise TypeError(f"training must be True or False, got {training!r}")
    momentum = _scalar(momentum, "momentum")
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"momentum must be between 0 and 1, got {momentum}")
    eps = _scalar(eps, "eps")
    if not (eps > 0 and np.isfinite(eps)):
        raise ValueError(
            f"eps must be a positive (finite) number, got {eps}; it keeps sqrt(var + eps) "
            "away from 0 for a channel whose values are all equal"
        )

    # Keras's rule: compute in the input's float type, but at least float32.
    dtype = np.result_type(array.dtype, np.float32)
    channels = array.shape[-1]
    array = _finite(array.astype(dtype, copy=False), "x")
    gamma, beta, running_mean, running_var = (
        _finite(_per_channel(value, name, channels).astype(dtype), name)
        for value, name in ((gamma, "gamma"), (beta, "beta"),
                            (running_mean, "running_mean"), (running_var, "running_var"))
    )
    if np.any(running_var < 0):
        raise ValueError(
            f"running_var holds variances, which cannot be negative; got {running_var}"
        )

    axes = tuple(range(array.ndim - 1))
    if training:
        per_channel = array.size // channels
        if per_channel == 1:
            raise ValueError(
                f"training mode needs more than one value per channel, but x of shape "
                f"{array.shape} has a single one: its batch variance is 0, so every output "
                "would equal beta and no gradient would reach x. Use a batch of two or more "
                "examples, or training=False."
            )
        mean = array.mean(axis=axes)
        with np.errstate(over="ignore"):  # reported below in words instead
            variance = ((array - mean) ** 2).mean(axis=axes)  # biased (/ m): what Keras uses
        if not np.all(np.isfinite(variance)):
            raise ValueError(
                f"the values of x are too large for {dtype}: their squares overflow, so the "
                "batch variance is infinite; rescale x or use float64"
            )
        new_mean = running_mean * momentum + mean * (1 - momentum)
        new_var = running_var * momentum + variance * (1 - momentum)
    else:
        mean, variance = running_mean, running_var
        new_mean, new_var = running_mean.copy(), running_var.copy()

    inv_std = 1 / np.sqrt(variance + eps)
    x_hat = (array - mean) * inv_std
    out = gamma * x_hat + beta
    return out, new_mean, new_var, BatchNormCache(x_hat, inv_std, gamma, bool(training))


def batch_norm_backward(dout, cache):
    """Gradients of :func:`batch_norm_forward` with respect to ``x``, ``gamma`` and ``beta``.

    ``dout`` is ``dL/dout`` for the ``out`` that produced ``cache``. With ``m`` values per
    channel and sums over all axes but the last:

    * ``dbeta = sum(dout)`` and ``dgamma = sum(dout * x_hat)`` in both modes;
    * inference mode: the running statistics are constants, so the layer is a per-channel
      affine map and ``dx = dout * gamma / sqrt(var + eps)``;
    * training mode: the batch mean and variance depend on every ``x`` too, which adds two
      terms::

          dx = gamma / sqrt(var + eps) / m * (m * dout - dbeta - x_hat * dgamma)

      They remove from ``dout`` its per-channel mean and its component along ``x_hat``: a
      change that shifts or rescales a whole channel is undone by the normalisation.

    Parameters
    ----------
    dout : array_like
        The shape of the forward input ``x``.
    cache : BatchNormCache
        The last value returned by :func:`batch_norm_forward`.

    Returns
    -------
    dx : numpy.ndarray
        The shape of ``x``.
    dgamma, dbeta : numpy.ndarray
        Shape ``(C,)``.

    Raises
    ------
    ValueError
        ``dout`` of another shape than ``x``, or holding NaN or infinite values.
    TypeError
        ``cache`` that does not come from :func:`batch_norm_forward`, or ``dout`` that does
        not hold numbers.

    Examples
    --------
    >>> x = np.array([[0.0], [1.0], [2.0]])
    >>> _, _, _, cache = batch_norm_forward(x, np.ones(1), np.zeros(1), np.zeros(1),
    ...                                     np.ones(1), training=False, eps=0.21)
    >>> dx, dgamma, dbeta = batch_norm_backward(np.array([[1.0], [2.0], [3.0]]), cache)
    >>> dx  # dout / sqrt(1 + 0.21) = dout / 1.1
    array([[0.90909091],
           [1.81818182],
           [2.72727273]])
    >>> dgamma, dbeta  # x_hat = x / 1.1: (1 * 0 + 2 * 1 + 3 * 2) / 1.1 and 1 + 2 + 3
    (array([7.27272727]), array([6.]))
    """
    if not isinstance(cache, BatchNormCache):
        raise TypeError(
            "cache must be the fourth value returned by batch_norm_forward, "
            f"got {type(cache).__name__}"
        )
    grad = _numbers(dout, "dout")
    if grad.shape != cache.x_hat.shape:
        raise ValueError(
            f"dout must have the shape of the forward input x, {cache.x_hat.shape}, "
            f"got {grad.shape}"
        )
    grad = _finite(grad.astype(cache.x_hat.dtype, copy=False), "dout")
    axes = tuple(range(grad.ndim - 1))
    dbeta = grad.sum(axis=axes)
    dgamma = (grad * cache.x_hat).sum(axis=axes)
    if not cache.training:
        return grad * (cache.gamma * cache.inv_std), dgamma, dbeta
    m = grad.size // grad.shape[-1]
    dx = (cache.gamma * cache.inv_std / m) * (m * grad - dbeta - cache.x_hat * dgamma)
    return dx, dgamma, dbeta


# ----------------------------------------------------------------------------- checks


def _numbers(value, name: str) -> np.ndarray:
    """``value`` as an array of ints or floats (booleans and everything else are refused)."""
    return numeric_array(value, name)


def _per_channel(value, name: str, channels: int) -> np.ndarray:
    array = _numbers(value, name)
    if array.shape != (channels,):
        raise ValueError(
            f"{name} must have shape ({channels},), one value per channel of x "
            f"(its last axis), got shape {array.shape}"
        )
    return array


def _finite(array: np.ndarray, name: str) -> np.ndarray:
    if not np.all(np.isfinite(array)):
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise ValueError(f"{name} must hold finite numbers, but {bad} value(s) are NaN or infinite")
    return array


def _scalar(value, name: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer,
                                                                      np.floating)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    return float(value)
