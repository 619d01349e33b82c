"""The :class:`Frame` every widget view function returns, and turning a figure into its PNG."""

from __future__ import annotations

import io
from dataclasses import dataclass

__all__ = ["Frame", "figure_png"]


def figure_png(fig, *, dpi: int = 80) -> bytes:
    """PNG bytes of a matplotlib figure, for a :class:`Frame` (the figure is left open).

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> figure_png(Figure(figsize=(1, 1)))[:4]
    b'\\x89PNG'
    """
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


@dataclass(frozen=True)
class Frame:
    """What a widget shows for one state of its controls.

    Attributes
    ----------
    png : bytes
        The picture, PNG-encoded (for ``ipywidgets.Image(format="png")``).
    caption : str
        One line of text describing the picture, with the numbers that matter.
    """

    png: bytes
    caption: str
