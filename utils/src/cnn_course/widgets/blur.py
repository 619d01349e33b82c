"""Blur explorer: Gaussian blur of a real photo with a sigma slider and a sharpness read-out.

Shown on the start page, ``course/00_start_here.ipynb``.
"""

from __future__ import annotations

import ipywidgets
import numpy as np

from .. import data
from ..images import check_image, check_sigma, gaussian_blur, sharpness, to_png_bytes
from .frame import Frame, FrameWidget

__all__ = ["BlurExplorer", "blur_explorer", "blur_view"]

# Blurring more than this makes every photo a smooth smear; the slider stops here.
MAX_BLUR_SIGMA = 10.0
BLUR_SIGMA_STEP = 0.5
_OWN_IMAGE = "(your image)"


# ------------------------------------------------------------------------ blur explorer


def blur_view(image, sigma: float, *, original_sharpness: float | None = None) -> Frame:
    """What the blur explorer shows for one ``image`` and ``sigma``.

    Parameters
    ----------
    image : array_like
        ``(H, W)`` or ``(H, W, 3)`` image, uint8 or float in [0, 1].
    sigma : float
        Standard deviation of the Gaussian blur in pixels, ``>= 0``.
    original_sharpness : float, optional
        :func:`~cnn_course.images.sharpness` of the unblurred image, if already
        known (saves recomputing it on every slider move).

    Returns
    -------
    Frame
        The blurred image as PNG and a caption such as
        ``"σ = 2.0 px · sharpness 0.0063 (13% of the original 0.0473)"``.

    Examples
    --------
    >>> import numpy as np
    >>> frame = blur_view(np.eye(8), sigma=0)
    >>> frame.caption
    'σ = 0.0 px · sharpness 0.8750 (100% of the original 0.8750)'
    """
    blurred = gaussian_blur(image, sigma)
    if original_sharpness is None:
        original_sharpness = sharpness(image)
    blurred_sharpness = sharpness(blurred)
    if original_sharpness > 0:
        share = f"{100 * blurred_sharpness / original_sharpness:.0f}%"
    else:  # a flat image has no edges to lose
        share = "100%"
    caption = (
        f"σ = {float(sigma):.1f} px · sharpness {blurred_sharpness:.4f} "
        f"({share} of the original {original_sharpness:.4f})"
    )
    return Frame(png=to_png_bytes(blurred), caption=caption)


class BlurExplorer(FrameWidget):
    """Blur a real photo with a Gaussian and watch edges (and "sharpness") fade.

    Use :func:`blur_explorer` to create one in a notebook.

    Attributes
    ----------
    sigma_slider : ipywidgets.FloatSlider
        Blur strength σ in pixels, 0 to 10 in steps of 0.5.
    photo_dropdown : ipywidgets.Dropdown
        Which photo to blur (the names of :data:`cnn_course.data.PHOTOS`, plus
        "(your image)" when an image was passed in).
    picture : ipywidgets.Image
        The blurred photo (PNG).
    caption : ipywidgets.Label
        σ and the sharpness of the blurred photo relative to the original.
    """

    def __init__(self, image=None, *, photo: str = "chelsea", sigma: float = 0.0):
        if photo not in data.PHOTOS:
            raise ValueError(f"unknown photo {photo!r}; choose one of: {', '.join(data.PHOTOS)}")
        self._photos: dict[str, np.ndarray] = {}
        if image is not None:
            own = check_image(image)
            if own.ndim == 3 and own.shape[2] not in (1, 3):
                raise ValueError(
                    f"image must be grayscale (H, W) or RGB (H, W, 3), got shape {own.shape}"
                )
            self._photos[_OWN_IMAGE] = own
            options, selected = (_OWN_IMAGE, *data.PHOTOS), _OWN_IMAGE
        else:
            options, selected = data.PHOTOS, photo
        sigma = check_sigma(sigma)
        if sigma > MAX_BLUR_SIGMA:
            raise ValueError(f"sigma must be at most {MAX_BLUR_SIGMA} for this widget, got {sigma}")

        self.sigma_slider = ipywidgets.FloatSlider(
            value=sigma,
            min=0.0,
            max=MAX_BLUR_SIGMA,
            step=BLUR_SIGMA_STEP,
            description="σ (px)",
            readout_format=".1f",
            # Recompute when the user lets go, not on every pixel of a drag:
            # a 512x512 photo takes ~0.1 s per frame on a slow laptop.
            continuous_update=False,
        )
        self.photo_dropdown = ipywidgets.Dropdown(
            options=options, value=selected, description="photo"
        )
        self._original_sharpness: dict[str, float] = {}
        super().__init__(
            [
                ipywidgets.HBox([self.photo_dropdown, self.sigma_slider]),
            ],
            css_class="cnn-course-blur-explorer",
        )
        self.sigma_slider.observe(self._redraw, names="value")
        self.photo_dropdown.observe(self._redraw, names="value")
        self._redraw()

    def _current_photo(self) -> np.ndarray:
        name = self.photo_dropdown.value
        if name not in self._photos:
            self._photos[name] = data.load_photo(name)
        return self._photos[name]

    def _redraw(self, _change=None) -> None:
        name = self.photo_dropdown.value
        photo = self._current_photo()
        if name not in self._original_sharpness:
            self._original_sharpness[name] = sharpness(photo)
        frame = blur_view(
            photo, self.sigma_slider.value, original_sharpness=self._original_sharpness[name]
        )
        self.show(frame)


def blur_explorer(image=None, *, photo: str = "chelsea", sigma: float = 0.0) -> BlurExplorer:
    """A slider that blurs a real photo with a Gaussian of σ = 0..10 pixels.

    Parameters
    ----------
    image : array_like, optional
        Your own ``(H, W)`` or ``(H, W, 3)`` image (uint8 or float in [0, 1]).
        If omitted, ``photo`` is shown.
    photo : str
        Which of :data:`cnn_course.data.PHOTOS` to start with.
    sigma : float
        Initial blur in pixels, 0..10.

    Returns
    -------
    BlurExplorer
        The widget; it displays itself when it is the last expression of a cell.

    Examples
    --------
    >>> explorer = blur_explorer(photo="coins")
    >>> explorer.sigma_slider.value = 3.0
    >>> explorer.caption.value.startswith("σ = 3.0 px")
    True
    """
    return BlurExplorer(image, photo=photo, sigma=sigma)
