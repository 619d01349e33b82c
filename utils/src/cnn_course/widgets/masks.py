"""The mask viewer: a segmentation's truth, prediction and errors, with a threshold slider.

A segmentation network with a sigmoid output gives every pixel a probability of being
foreground; a threshold turns them into a mask. The viewer shows four panels side by side,
the image, the true mask, the predicted mask at the slider's threshold and the errors
(false positives in orange, false negatives in blue, both from the Okabe-Ito palette that
colour-blind readers can tell apart; correct foreground light grey, correct background
black), and the caption gives IoU and Dice at that threshold, computed by
:func:`cnn_course.segmentation.iou_score` and :func:`cnn_course.segmentation.dice`.

The probabilities are computed once (by the notebook); a slider move only thresholds,
counts and draws, so it stays fast on large masks (0.05-0.06 s for a 512×128 strip on 2 cores
shared with other jobs, load average 5).
"""

from __future__ import annotations

import functools
import io
import numbers
from dataclasses import dataclass

import ipywidgets
import numpy as np

from ..segmentation import dice, iou_score
from .frame import Frame, FrameWidget

__all__ = ["ERROR_COLOURS", "MaskFrame", "MaskViewer", "error_picture", "mask_view", "mask_viewer"]

# Colours of the error panel, RGB in [0, 1]: Okabe & Ito's orange and blue (colour-blind safe).
ERROR_COLOURS = {
    "true negative": (0.0, 0.0, 0.0),
    "true positive": (0.75, 0.75, 0.75),
    "false positive": (0.902, 0.624, 0.0),
    "false negative": (0.0, 0.447, 0.698),
}
STEP = 0.05  # the slider's step
# Layout in screen pixels; text in points at 80 dpi (11 pt is 12 px).
DPI = 80
MARGIN = 8
GAP = 12
TITLE_HEIGHT = 22
TITLE_FONT_SIZE = 11
MIN_PANEL = 160  # smaller masks are enlarged (whole-number factor) to at least this size: room for a title
TITLES = ("image", "true mask", "prediction", "errors: FP orange, FN blue")


# --------------------------------------------------------------------- plain functions


def _plane(value, name: str) -> np.ndarray:
    """``value`` as one 2-D plane: (H, W), (H, W, 1) and (1, H, W, 1) are accepted."""
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be an array, got the string {value!r}")
    array = np.asarray(value)
    if array.dtype == object:
        raise TypeError(f"{name} must be an array of numbers, got dtype object")
    shape = array.shape
    if array.ndim == 4 and shape[0] == 1:
        array = array[0]
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim != 2 or 0 in array.shape:
        raise ValueError(f"{name} must be one image or mask of shape (H, W), (H, W, 1) or (1, H, W, 1), "
                         f"e.g. (512, 128, 1); got shape {shape}")
    return array


def _check_threshold(threshold) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
        raise TypeError(f"threshold must be a number between 0 and 1, got {threshold!r}")
    if not 0.0 <= float(threshold) <= 1.0:
        raise ValueError(f"threshold must be between 0 and 1 (a probability), got {threshold!r}")
    return float(threshold)


def _check_inputs(image, mask_true, probabilities):
    """The three planes, checked: same (H, W), a binary mask, probabilities in [0, 1]."""
    picture = _plane(image, "image").astype(np.float32)
    if not np.all(np.isfinite(picture)):
        raise ValueError("image must hold finite numbers (no nan or inf)")
    truth = _plane(mask_true, "mask_true")
    if truth.dtype != bool:
        if not (np.issubdtype(truth.dtype, np.number)) or not np.isin(truth, (0, 1)).all():
            raise ValueError("mask_true must be a binary mask of 0 and 1 (or False/True); for instance labels "
                             "use labels > 0")
        truth = truth.astype(bool)
    chances = _plane(probabilities, "probabilities")
    if not np.issubdtype(chances.dtype, np.number) or chances.dtype == bool:
        raise TypeError(f"probabilities must hold numbers between 0 and 1, got dtype {chances.dtype}")
    chances = chances.astype(np.float32)
    if not np.all(np.isfinite(chances)) or chances.min() < 0 or chances.max() > 1:
        raise ValueError("probabilities must be between 0 and 1 (a sigmoid's output), "
                         f"got values {np.nanmin(chances):.3g}..{np.nanmax(chances):.3g}")
    for name, plane in (("mask_true", truth), ("probabilities", chances)):
        if plane.shape != picture.shape:
            raise ValueError(f"image, mask_true and probabilities must have the same height and width; "
                             f"image is {picture.shape}, {name} is {plane.shape}")
    return picture, truth, chances


def error_picture(mask_true, mask_pred) -> np.ndarray:
    """An RGB picture of a prediction's errors: :data:`ERROR_COLOURS` for TN, TP, FP and FN.

    Examples
    --------
    >>> truth = np.array([[1, 1, 0, 0]], bool)
    >>> guess = np.array([[1, 0, 1, 0]], bool)
    >>> np.round(255 * error_picture(truth, guess)[0]).astype(int).tolist()  # TP, FN, FP, TN
    [[191, 191, 191], [0, 114, 178], [230, 159, 0], [0, 0, 0]]
    """
    truth, guess = np.asarray(mask_true, bool), np.asarray(mask_pred, bool)
    if truth.shape != guess.shape:
        raise ValueError(f"mask_true and mask_pred must have the same shape; got {truth.shape} and {guess.shape}")
    rgb = np.zeros((*truth.shape, 3), np.float32)
    for name, where in (("true positive", truth & guess), ("false positive", ~truth & guess),
                        ("false negative", truth & ~guess)):
        rgb[where] = ERROR_COLOURS[name]
    return rgb


# ------------------------------------------------------------------------------ view


@dataclass(frozen=True)
class MaskFrame(Frame):
    """A :class:`Frame` that also keeps what it shows, for check cells.

    Attributes
    ----------
    threshold : float
        The threshold: a pixel is predicted foreground when its probability is **above** it.
    prediction : numpy.ndarray
        The predicted mask, bool (H, W).
    iou, dice : float
        IoU and Dice of the prediction against the true mask (1.0 when both are empty).
    false_positives, false_negatives : int
        Pixels predicted foreground that are background, and the reverse.
    """

    threshold: float
    prediction: np.ndarray
    iou: float
    dice: float
    false_positives: int
    false_negatives: int


@functools.lru_cache(maxsize=1)
def _font():
    """matplotlib's DejaVu Sans at TITLE_FONT_SIZE points (80 dpi), for PIL."""
    from matplotlib import font_manager
    from PIL import ImageFont

    path = font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans"))
    return ImageFont.truetype(path, size=round(TITLE_FONT_SIZE * DPI / 72))


def _picture(panels, titles) -> bytes:
    """RGB panels in [0, 1] side by side under their titles, as PNG bytes (PIL: milliseconds, not matplotlib)."""
    from PIL import Image, ImageDraw

    height_px, width_px = panels[0].shape[:2]
    font = _font()
    # A panel is at least as wide as its title, so that titles never overlap.
    column = max(width_px, *(round(font.getlength(title)) + 4 for title in titles))
    width = 2 * MARGIN + len(panels) * column + (len(panels) - 1) * GAP
    canvas = np.ones((TITLE_HEIGHT + height_px + MARGIN, width, 3), np.float32)
    centres = []
    for position, panel in enumerate(panels):
        left = MARGIN + position * (column + GAP) + (column - width_px) // 2
        canvas[TITLE_HEIGHT:TITLE_HEIGHT + height_px, left:left + width_px] = panel
        centres.append(left + width_px // 2)
    image = Image.fromarray(np.round(canvas * 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for centre, title in zip(centres, titles, strict=True):
        draw.text((centre, TITLE_HEIGHT - 4), title, font=font, anchor="md", fill="black")
    buffer = io.BytesIO()
    image.save(buffer, format="png", compress_level=1)
    return buffer.getvalue()


def _grey(plane: np.ndarray) -> np.ndarray:
    """A plane scaled to [0, 1] by its own minimum and maximum, as RGB."""
    low, high = float(plane.min()), float(plane.max())
    scaled = (plane - low) / (high - low) if high > low else np.zeros_like(plane)
    return np.repeat(scaled[..., None], 3, axis=2)


def mask_view(image, mask_true, probabilities, threshold: float = 0.5) -> MaskFrame:
    """What the mask viewer shows at one threshold: image, truth, prediction, errors; IoU and Dice.

    Parameters
    ----------
    image : array_like
        The image, (H, W), (H, W, 1) or (1, H, W, 1); shown scaled by its own range.
    mask_true : array_like
        The true binary mask (0/1 or bool), the image's height and width.
    probabilities : array_like
        The network's foreground probability per pixel, in [0, 1], the same size.
    threshold : float
        A pixel is predicted foreground when its probability is above ``threshold``.

    Returns
    -------
    MaskFrame
        The PNG, a caption such as ``"threshold 0.50 · IoU 0.333 · Dice 0.500 · 1 false positive,
        1 false negative of 4 pixels"``, and the numbers it shows.

    Examples
    --------
    >>> frame = mask_view(np.zeros((1, 4)), [[1, 1, 0, 0]], [[0.9, 0.2, 0.7, 0.1]], threshold=0.5)
    >>> frame.prediction.astype(int).tolist(), frame.iou, frame.dice
    ([[1, 0, 1, 0]], 0.3333333333333333, 0.5)
    >>> frame.caption
    'threshold 0.50 · IoU 0.333 · Dice 0.500 · 1 false positive, 1 false negative of 4 pixels'
    """
    picture, truth, chances = _check_inputs(image, mask_true, probabilities)
    threshold = _check_threshold(threshold)
    prediction = chances > threshold
    iou, overlap = float(iou_score(truth, prediction)), float(dice(truth, prediction))
    false_positives = int(np.count_nonzero(prediction & ~truth))
    false_negatives = int(np.count_nonzero(truth & ~prediction))
    factor = max(1, -(-MIN_PANEL // max(truth.shape)))  # small masks enlarged, pixels kept square
    panels = [np.kron(panel, np.ones((factor, factor, 1), np.float32)) for panel in (
        _grey(picture), _grey(truth.astype(np.float32)), _grey(prediction.astype(np.float32)),
        error_picture(truth, prediction))]
    png = _picture(panels, TITLES)
    caption = (f"threshold {threshold:.2f} · IoU {iou:.3f} · Dice {overlap:.3f} · "
               f"{false_positives:,} false positive{'s' if false_positives != 1 else ''}, "
               f"{false_negatives:,} false negative{'s' if false_negatives != 1 else ''} of {truth.size:,} pixels")
    return MaskFrame(png=png, caption=caption, threshold=threshold, prediction=prediction, iou=iou, dice=overlap,
                     false_positives=false_positives, false_negatives=false_negatives)


# ---------------------------------------------------------------------------- widget


class MaskViewer(FrameWidget):
    """A threshold slider over one image's true mask and predicted probabilities.

    Use :func:`mask_viewer` to create one in a notebook.

    Attributes
    ----------
    threshold_slider : ipywidgets.FloatSlider
        The threshold, 0.05 to 0.95 in steps of 0.05.
    frame : MaskFrame
        What is shown now (prediction, IoU, Dice, error counts), for check cells.
    seconds : float
        How long the last update took (threshold, score, draw).
    picture, caption
        The picture and caption (see :class:`FrameWidget`).
    """

    def __init__(self, image, mask_true, probabilities, threshold: float = 0.5):
        self._image, self._truth, self._probabilities = _check_inputs(image, mask_true, probabilities)
        threshold = _check_threshold(threshold)
        self.threshold_slider = ipywidgets.FloatSlider(value=threshold, min=STEP, max=1 - STEP, step=STEP,
                                                       description="threshold", readout_format=".2f",
                                                       continuous_update=True)
        super().__init__([self.threshold_slider], css_class="cnn-course-mask-viewer")
        self.threshold_slider.observe(self._redraw, names="value")
        self._redraw()

    @property
    def threshold(self) -> float:
        """The slider's threshold, rounded to 4 decimals (0.1 + 0.2 is shown and used as 0.3)."""
        return round(float(self.threshold_slider.value), 4)

    def _redraw(self, _change=None) -> None:
        self.show_computed(lambda: mask_view(self._image, self._truth, self._probabilities, self.threshold))


def mask_viewer(image, mask_true, probabilities, threshold: float = 0.5) -> MaskViewer:
    """Ground truth vs prediction vs errors of a segmentation, with a threshold slider and live IoU/Dice.

    Parameters
    ----------
    image : array_like
        The image, (H, W), (H, W, 1) or (1, H, W, 1), e.g. a held-out strip of the nuclei image.
    mask_true : array_like
        Its true binary mask, the same height and width.
    probabilities : array_like
        The network's foreground probabilities, e.g. ``model.predict(image)``, the same size.
    threshold : float
        The slider's start.

    Returns
    -------
    MaskViewer
        The widget; it displays itself when it is the last expression of a cell.

    Examples
    --------
    >>> viewer = mask_viewer(np.zeros((2, 2)), [[1, 0], [1, 1]], [[0.9, 0.6], [0.3, 0.8]])
    >>> viewer.frame.iou
    0.5
    >>> viewer.threshold_slider.value = 0.25
    >>> viewer.caption.value
    'threshold 0.25 · IoU 0.750 · Dice 0.857 · 1 false positive, 0 false negatives of 4 pixels'
    """
    return MaskViewer(image, mask_true, probabilities, threshold)
