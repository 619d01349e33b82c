"""The ε explorer: one gradient sign, scaled by a slider, and the network's top-5 on the result.

Goodfellow, Shlens and Szegedy ("Explaining and harnessing adversarial examples", 2014)
perturb an image by ``ε · sign(∇ₓ loss)``, the fast gradient sign method (FGSM). The
direction does not depend on ε, so it is computed once
(:func:`cnn_course.adversarial.gradient_sign`); each move of the slider then only adds
``ε`` times that direction, clips to the pixel range and classifies one image. The picture
shows the clean photo, the perturbed photo, the perturbation magnified (mid-grey is "no
change", white ``+ε``, black ``-ε``) and the top-5 classes with their probabilities; the
caption compares the top class with the clean one.

The slider counts ε in *grey levels*: steps of 1/255 of the pixel range, the smallest change
an 8-bit image can store (for MobileNetV2's [-1, 1] input one level is 2/255).
"""

from __future__ import annotations

import functools
import io
import numbers
from dataclasses import dataclass

import ipywidgets
import numpy as np

from .frame import Frame, FrameWidget

__all__ = ["EpsilonExplorer", "EpsilonFrame", "epsilon_explorer", "epsilon_view", "grey_level",
           "magnified_perturbation", "perturb"]

TOP = 5  # classes listed
MAX_LEVELS = 16.0  # the slider's end, in grey levels
STEP_LEVELS = 0.25  # the slider's step: a quarter of a grey level
# Layout in screen pixels; text in points at 80 dpi (11 pt is 12 px).
DPI = 80
MARGIN = 8
GAP = 12
TITLE_HEIGHT = 22
TITLE_FONT_SIZE = 11
BAR_WIDTH = 330  # the panel of top-5 bars
MIN_PANEL = 160  # smaller images are enlarged (whole-number factor) to at least this size: room for a title
BAR_HEIGHT = 14
BAR_LABEL_HEIGHT = 15  # the class name and probability above each bar
BAR_COLOUR = (0.55, 0.70, 0.86)
FIRST_BAR_COLOUR = (0.13, 0.40, 0.75)
CHANGED_COLOUR = "#c62828"  # caption word and title when the top class is no longer the clean one


# --------------------------------------------------------------------- plain functions


def _check_clip(clip) -> tuple[float, float]:
    if (not isinstance(clip, (tuple, list)) or len(clip) != 2
            or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in clip)):
        raise TypeError(f"clip must be the pixel range (low, high), e.g. (-1.0, 1.0), got {clip!r}")
    low, high = float(clip[0]), float(clip[1])
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise ValueError(f"clip must be a range (low, high) with low < high, got {clip!r}")
    return low, high


def _check_image(image, clip: tuple[float, float], name: str = "image") -> np.ndarray:
    array = np.asarray(image)
    if array.dtype == bool or not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise TypeError(f"{name} must hold pixel values (numbers), got dtype {array.dtype}")
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 3 or array.shape[2] not in (1, 3) or 0 in array.shape:
        raise ValueError(f"{name} must be one image (height, width, 1 or 3 channels), e.g. (160, 160, 3), "
                         f"got shape {np.shape(image)}")
    array = array.astype(np.float32)
    low, high = float(array.min()), float(array.max())
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ValueError(f"{name} must hold finite numbers (no nan or inf)")
    if low < clip[0] - 1e-5 or high > clip[1] + 1e-5:
        raise ValueError(f"{name} has values {low:.3g}..{high:.3g}, outside the pixel range clip={clip}; "
                         "MobileNetV2 images after pretrained.preprocess need clip=(-1.0, 1.0), "
                         "uint8 images clip=(0, 255)")
    return array


def _check_eps(eps) -> float:
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real):
        raise TypeError(f"eps must be a number, got {eps!r}")
    if not np.isfinite(eps) or eps < 0:
        raise ValueError(f"eps must be a finite number >= 0 (the size of the step per pixel), got {eps!r}")
    return float(eps)


def _check_direction(direction, shape) -> np.ndarray:
    array = np.asarray(direction, dtype=np.float32)
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.shape != tuple(shape):
        raise ValueError(f"direction must have the image's shape {tuple(shape)}, got {np.shape(direction)}")
    if not np.all(np.isfinite(array)):
        raise ValueError("direction must hold finite numbers (no nan or inf)")
    return array


def grey_level(clip=(-1.0, 1.0)) -> float:
    """One grey level, 1/255 of the pixel range, in the model's units.

    Examples
    --------
    >>> grey_level((0, 255)), round(grey_level((-1.0, 1.0)), 5)
    (1.0, 0.00784)
    """
    low, high = _check_clip(clip)
    return (high - low) / 255.0


def perturb(image, direction, eps, clip=(-1.0, 1.0)) -> np.ndarray:
    """``image + eps · direction``, clipped to the pixel range: the FGSM image for a gradient sign.

    Examples
    --------
    >>> perturb(np.full((1, 2, 1), 0.75), np.array([[[1.0], [-1.0]]]), 0.5, clip=(0.0, 1.0)).ravel()
    array([1.  , 0.25], dtype=float32)
    """
    low, high = _check_clip(clip)
    x = _check_image(image, (low, high))
    d = _check_direction(direction, x.shape)
    return np.clip(x + np.float32(_check_eps(eps)) * d, low, high).astype(np.float32)


def magnified_perturbation(perturbation, eps) -> np.ndarray:
    """A perturbation of at most ``eps`` per pixel, scaled to [0, 1] for display.

    ``0.5 + 0.5 · perturbation / eps``: mid-grey where a pixel did not change, 1 (white) at
    ``+eps``, 0 (black) at ``-eps``; all mid-grey for ``eps = 0``.

    Examples
    --------
    >>> magnified_perturbation(np.array([0.01, -0.01, 0.0, 0.005]), 0.01)
    array([1.  , 0.  , 0.5 , 0.75], dtype=float32)
    """
    delta = np.asarray(perturbation, dtype=np.float32)
    eps = _check_eps(eps)
    if eps == 0:
        return np.full(delta.shape, 0.5, np.float32)
    return np.clip(0.5 + 0.5 * delta / np.float32(eps), 0.0, 1.0).astype(np.float32)


def _probabilities(model, image: np.ndarray) -> np.ndarray:
    """The model's class probabilities for one image (a softmax is applied if the outputs are logits).

    ``predict_on_batch`` runs the model compiled (traced on the first call): for MobileNetV2 at
    160 px one image took 0.016-0.09 s, against 0.34-0.74 s for an eager ``model(x)``, on 2
    cores shared with other jobs (load average 9).
    """
    import keras

    scores = keras.ops.convert_to_numpy(model.predict_on_batch(image[None]))[0].astype(np.float64)
    if scores.ndim != 1:
        raise ValueError(f"the model must give one score per class, (batch, classes); it gives {scores.shape}")
    if scores.min() < 0 or abs(scores.sum() - 1) > 1e-3:  # logits
        scores = np.exp(scores - scores.max())
        scores /= scores.sum()
    return scores


def _names(class_names, classes: int) -> list[str]:
    if class_names is None:
        return [f"class {i}" for i in range(classes)]
    if isinstance(class_names, str) or len(class_names) != classes:
        raise ValueError(f"class_names must be a list of {classes} names (one per output of the model), "
                         f"got {'a string' if isinstance(class_names, str) else len(class_names)}")
    return [str(name) for name in class_names]


def _top(probabilities: np.ndarray, names: list[str]) -> tuple[tuple[int, str, float], ...]:
    order = np.argsort(-probabilities, kind="stable")[:TOP]
    return tuple((int(i), names[int(i)], float(probabilities[i])) for i in order)


# ------------------------------------------------------------------------------ view


@dataclass(frozen=True)
class EpsilonFrame(Frame):
    """A :class:`Frame` that also keeps what it shows, for check cells.

    Attributes
    ----------
    eps : float
        The step, in the model's units.
    adversarial : numpy.ndarray
        The perturbed image, float32 ``(H, W, C)``.
    perturbation : numpy.ndarray
        ``adversarial - image`` (at most ``eps`` per pixel).
    probabilities : numpy.ndarray
        The model's class probabilities for ``adversarial``.
    top : tuple of (int, str, float)
        The five most probable classes: (index, name, probability), most probable first.
    clean_top : tuple of (int, str, float)
        The same for the clean image.
    """

    eps: float
    adversarial: np.ndarray
    perturbation: np.ndarray
    probabilities: np.ndarray
    top: tuple
    clean_top: tuple


def _display(image: np.ndarray, clip) -> np.ndarray:
    rgb = (image - clip[0]) / (clip[1] - clip[0])
    return np.repeat(rgb, 3, axis=2) if rgb.shape[2] == 1 else rgb


@functools.lru_cache(maxsize=1)
def _font():
    """matplotlib's DejaVu Sans at TITLE_FONT_SIZE points (80 dpi), for PIL."""
    from matplotlib import font_manager
    from PIL import ImageFont

    path = font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans"))
    return ImageFont.truetype(path, size=round(TITLE_FONT_SIZE * DPI / 72))


def _picture(panels, titles, top, title_colour) -> bytes:
    """The panels side by side under their titles, then the top-5 bars, as PNG bytes.

    Pixels and words go straight into one PIL image: matplotlib axes and text took 0.1-0.2 s
    per slider move on 2 loaded cores, PIL takes a few milliseconds.
    """
    from PIL import Image, ImageDraw

    height_px, width_px = panels[0].shape[:2]
    bars_height = TOP * (BAR_LABEL_HEIGHT + BAR_HEIGHT + 4)
    body = max(height_px, bars_height)
    width = 2 * MARGIN + len(panels) * (width_px + GAP) + BAR_WIDTH
    height = TITLE_HEIGHT + body + MARGIN
    canvas = np.ones((height, width, 3))
    for position, panel in enumerate(panels):
        left = MARGIN + position * (width_px + GAP)
        canvas[TITLE_HEIGHT:TITLE_HEIGHT + height_px, left:left + width_px] = np.clip(panel, 0, 1)
    left = MARGIN + len(panels) * (width_px + GAP)
    usable = BAR_WIDTH - MARGIN
    rows = [TITLE_HEIGHT + rank * (BAR_LABEL_HEIGHT + BAR_HEIGHT + 4) for rank in range(len(top))]
    for rank, ((_, _, probability), y) in enumerate(zip(top, rows, strict=True)):
        top_y = y + BAR_LABEL_HEIGHT
        canvas[top_y:top_y + BAR_HEIGHT, left:left + usable] = 0.93  # the full scale, light grey
        length = int(round(usable * probability))
        canvas[top_y:top_y + BAR_HEIGHT, left:left + length] = FIRST_BAR_COLOUR if rank == 0 else BAR_COLOUR
    image = Image.fromarray(np.round(canvas * 255).astype(np.uint8))
    draw, font = ImageDraw.Draw(image), _font()
    for position, title in enumerate(titles):
        centre = MARGIN + position * (width_px + GAP) + width_px / 2
        draw.text((centre, TITLE_HEIGHT - 4), title, font=font, anchor="md",
                  fill=title_colour if position == 1 else "black")
    draw.text((left, TITLE_HEIGHT - 4), "top-5 after the perturbation", font=font, anchor="ld", fill="black")
    for rank, ((_, name, probability), y) in enumerate(zip(top, rows, strict=True)):
        draw.text((left, y + BAR_LABEL_HEIGHT - 2), f"{rank + 1}. {name}  {100 * probability:.1f} %", font=font,
                  anchor="ld", fill=title_colour if rank == 0 else "black")
    buffer = io.BytesIO()
    image.save(buffer, format="png", compress_level=1)
    return buffer.getvalue()


def epsilon_view(model, image, direction, eps, *, clip=(-1.0, 1.0), class_names=None,
                 clean_probabilities=None) -> EpsilonFrame:
    """What the ε explorer shows for one ε: the perturbed image, the perturbation magnified, the top-5.

    Parameters
    ----------
    model : keras.Model
        A classifier that takes ``image`` (its size) and gives class probabilities (or logits).
    image : array_like
        One image ``(H, W, C)`` (C = 1 or 3) in the model's units, inside ``clip``.
    direction : array_like
        The step's direction, the image's shape: usually
        :func:`cnn_course.adversarial.gradient_sign` of the image.
    eps : float
        Size of the step per pixel in the model's units, ``>= 0`` (one grey level is
        :func:`grey_level`).
    clip : (float, float)
        The pixel range: ``(-1.0, 1.0)`` for MobileNetV2, ``(0, 255)`` for uint8 networks.
    class_names : sequence of str, optional
        One name per class (e.g. ``pretrained.imagenet_class_names()``); default "class i".
    clean_probabilities : array_like, optional
        The model's probabilities for the clean image, if already known (saves one prediction).

    Returns
    -------
    EpsilonFrame
        The PNG (clean image, perturbed image, magnified perturbation, top-5 bars), a caption
        such as ``"ε = 0.25 grey levels (0.00196) · 'tiger cat' 77.3 % (clean: 'Egyptian cat'
        70.6 %) · the top class changed"``, and the arrays and top-5 it shows.

    Examples
    --------
    A linear two-class model of 1×2 grey images; its gradient sign is known by hand:

    >>> import keras
    >>> model = keras.Sequential([keras.Input((1, 2, 1)), keras.layers.Flatten(),
    ...                          keras.layers.Dense(2, activation="softmax")])
    >>> model.set_weights([np.array([[1.0, -1.0], [-1.0, 1.0]]), np.zeros(2)])
    >>> x = np.array([[[0.625], [0.375]]])  # logits (0.25, -0.25): class 0
    >>> frame = epsilon_view(model, x, [[[-1.0], [1.0]]], 0.25, clip=(0.0, 1.0), class_names=["a", "b"])
    >>> frame.adversarial.ravel(), [name for _, name, _ in frame.top]
    (array([0.375, 0.625], dtype=float32), ['b', 'a'])
    >>> frame.caption
    "ε = 63.75 grey levels (0.25) · 'b' 62.2 % (clean: 'a' 62.2 %) · the top class changed"
    """
    import keras

    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a Keras model, got {type(model).__name__}")
    low, high = _check_clip(clip)
    x = _check_image(image, (low, high))
    eps = _check_eps(eps)
    adversarial = perturb(x, direction, eps, (low, high))
    probabilities = _probabilities(model, adversarial)
    names = _names(class_names, len(probabilities))
    if clean_probabilities is None:
        clean = _probabilities(model, x)
    else:
        clean = np.asarray(clean_probabilities, np.float64).reshape(-1)
        if clean.shape != probabilities.shape:
            raise ValueError(f"clean_probabilities must hold {len(probabilities)} numbers, got shape "
                             f"{np.shape(clean_probabilities)}")
    top, clean_top = _top(probabilities, names), _top(clean, names)
    changed = top[0][0] != clean_top[0][0]
    colour = CHANGED_COLOUR if changed else "black"
    levels = eps / grey_level((low, high))
    perturbation = adversarial - x
    factor = max(1, -(-MIN_PANEL // max(x.shape[:2])))  # small images enlarged, pixels kept square
    panels = [np.kron(panel, np.ones((factor, factor, 1))) for panel in (
        _display(x, (low, high)), _display(adversarial, (low, high)),
        _display(magnified_perturbation(perturbation, eps), (0.0, 1.0)))]
    titles = ["clean", f"perturbed, ε = {levels:.2f}", "perturbation, magnified"]
    png = _picture(panels, titles, top, colour)
    unit = "grey level" if levels == 1 else "grey levels"
    caption = (f"ε = {levels:.2f} {unit} ({eps:.3g}) · '{top[0][1]}' {100 * top[0][2]:.1f} % "
               f"(clean: '{clean_top[0][1]}' {100 * clean_top[0][2]:.1f} %)")
    if changed:
        caption += " · the top class changed"
    return EpsilonFrame(png=png, caption=caption, eps=eps, adversarial=adversarial, perturbation=perturbation,
                        probabilities=probabilities, top=top, clean_top=clean_top)


# ---------------------------------------------------------------------------- widget


class EpsilonExplorer(FrameWidget):
    """A slider for ε over one image and its gradient sign; the top-5 follows.

    Use :func:`epsilon_explorer` to create one in a notebook.

    Attributes
    ----------
    eps_slider : ipywidgets.FloatSlider
        ε in grey levels (1/255 of the pixel range), 0 to ``max_levels`` in quarter steps.
    direction : numpy.ndarray
        The gradient sign, computed once.
    frame : EpsilonFrame
        What is shown now (perturbed image, probabilities, top-5), for check cells.
    seconds : float
        How long the last update took (perturb, predict, draw).
    picture, caption
        The picture and caption (see :class:`FrameWidget`).
    """

    def __init__(self, model, image, label=None, *, clip=(-1.0, 1.0), class_names=None, levels: float = 1.0,
                 max_levels: float = MAX_LEVELS, targeted: bool = False, direction=None):
        import keras

        from .. import adversarial

        if not isinstance(model, keras.Model):
            raise TypeError(f"model must be a Keras model, got {type(model).__name__}")
        self._clip = _check_clip(clip)
        self._image = _check_image(image, self._clip)
        self._model = model
        self._clean = _probabilities(model, self._image)
        self._names = _names(class_names, len(self._clean))
        if label is None:
            if targeted:
                raise ValueError("a targeted explorer needs label=<the target class>")
            label = int(np.argmax(self._clean))
        if isinstance(label, bool) or not isinstance(label, numbers.Integral) or not 0 <= label < len(self._clean):
            raise ValueError(f"label must be a class number 0..{len(self._clean) - 1}, got {label!r}")
        max_levels = _check_eps(max_levels)
        if max_levels == 0:
            raise ValueError("max_levels must be > 0 (the slider's end, in grey levels)")
        levels = _check_eps(levels)
        if levels > max_levels:
            raise ValueError(f"levels must be between 0 and max_levels={max_levels:g}, got {levels:g}")
        if direction is None:
            direction = adversarial.gradient_sign(model, self._image, int(label), targeted=targeted, clip=self._clip)
        self.direction = _check_direction(direction, self._image.shape)
        self.label = int(label)
        self.eps_slider = ipywidgets.FloatSlider(value=levels, min=0.0, max=max_levels, step=STEP_LEVELS,
                                                 description="ε (levels)", readout_format=".2f",
                                                 continuous_update=True)
        super().__init__([self.eps_slider], css_class="cnn-course-epsilon")
        self.eps_slider.observe(self._redraw, names="value")
        self._redraw()

    @property
    def eps(self) -> float:
        """The slider's ε in the model's units."""
        return float(self.eps_slider.value) * grey_level(self._clip)

    def _redraw(self, _change=None) -> None:
        self.show_computed(lambda: epsilon_view(self._model, self._image, self.direction, self.eps, clip=self._clip,
                                                class_names=self._names, clean_probabilities=self._clean))


def epsilon_explorer(model, image, label=None, *, clip=(-1.0, 1.0), class_names=None, levels: float = 1.0,
                     max_levels: float = MAX_LEVELS, targeted: bool = False, direction=None) -> EpsilonExplorer:
    """An ε slider over one image: FGSM's perturbation grows, the model's top-5 follows live.

    The gradient sign of the loss is computed once (:func:`cnn_course.adversarial.gradient_sign`);
    each slider move adds ε times it, clips to the pixel range and classifies one image.

    Parameters
    ----------
    model : keras.Model
        A classifier that takes images of ``image``'s size, e.g. MobileNetV2 rebuilt for
        160×160 (``transfer.feature_extractor(base, base.layers[-1].name, pooling=None,
        input_shape=(160, 160, 3))``): one prediction there is what keeps a move fast.
    image : array_like
        One image ``(H, W, C)`` in the model's units, inside ``clip``.
    label : int, optional
        The class whose loss the step raises (default: the predicted class); with
        ``targeted=True`` the class to push the image towards.
    clip : (float, float)
        The pixel range, ``(-1.0, 1.0)`` for MobileNetV2 after ``pretrained.preprocess``.
    class_names : sequence of str, optional
        One name per class.
    levels, max_levels : float
        The slider's start and end, in grey levels (1/255 of the pixel range).
    targeted : bool
        Step towards ``label`` instead of away from it.
    direction : array_like, optional
        A direction computed already (the image's shape), instead of the gradient sign.

    Returns
    -------
    EpsilonExplorer
        The widget; it displays itself when it is the last expression of a cell.

    Examples
    --------
    >>> import keras
    >>> model = keras.Sequential([keras.Input((1, 2, 1)), keras.layers.Flatten(),
    ...                          keras.layers.Dense(2, activation="softmax")])
    >>> model.set_weights([np.array([[1.0, -1.0], [-1.0, 1.0]]), np.zeros(2)])
    >>> explorer = epsilon_explorer(model, np.array([[[130.0], [125.0]]]), clip=(0, 255), levels=0)
    >>> explorer.direction.ravel()  # lowers pixel 1, raises pixel 2: away from class 0
    array([-1.,  1.], dtype=float32)
    >>> explorer.eps_slider.value = 16.0
    >>> explorer.frame.adversarial.ravel(), explorer.frame.top[0][1]
    (array([114., 141.], dtype=float32), 'class 1')
    """
    return EpsilonExplorer(model, image, label, clip=clip, class_names=class_names, levels=levels,
                           max_levels=max_levels, targeted=targeted, direction=direction)
