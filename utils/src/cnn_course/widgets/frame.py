"""The :class:`Frame` every widget view function returns."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Frame"]


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
