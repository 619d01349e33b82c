"""What every course widget shares: the :class:`Frame` a view returns, its PNG, and the layout."""

from __future__ import annotations

import io
import time
from dataclasses import dataclass

import ipywidgets

__all__ = ["Frame", "FrameWidget", "figure_png"]

# ipywidgets draws a Label on one line and cuts what does not fit ("…"). Captions can be
# long (an error message that says how to fix it, a sum of nine products), so ours wrap
# at the width of the notebook instead. A <style> element inside an (invisible) HTML widget
# is the one way to style a widget class from Python that JupyterLab, Notebook 7 and
# VS Code all honour; the class names keep it from touching anything else.
WRAPPING_STYLE = """<style>
.cnn-course-caption, .cnn-course-hint {
  white-space: normal !important;
  overflow: visible !important;
  text-overflow: clip !important;
  height: auto !important;
  line-height: 1.4 !important;
  overflow-wrap: anywhere;
}
.cnn-course-hint .widget-html-content, .cnn-course-hint .jupyter-widget-html-content {
  line-height: 1.4 !important;
}
</style>"""


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


class FrameWidget(ipywidgets.VBox):
    """Rows of controls above a picture and a caption: the layout of every course widget.

    Subclasses create their controls, call ``super().__init__(control_rows, css_class=...)``
    and show each new :class:`Frame` with :meth:`show`. The container, picture and caption
    get the CSS classes ``css_class``, ``cnn-course-picture`` and ``cnn-course-caption``,
    stable handles for the browser tests (and for custom styling). The caption, and any
    control with the class ``cnn-course-hint``, wraps onto several lines when it is long
    (:data:`WRAPPING_STYLE`), and so does a row of controls (an ``HBox``) that is wider
    than the notebook.

    Examples
    --------
    >>> widget = FrameWidget([ipywidgets.IntSlider()], css_class="cnn-course-example")
    >>> widget.show(Frame(png=b"", caption="hello"))
    >>> widget.caption.value
    'hello'
    """

    def __init__(self, control_rows, *, css_class: str):
        self.picture = ipywidgets.Image(format="png", layout=ipywidgets.Layout(max_width="100%"))
        self.caption = ipywidgets.Label()
        style = ipywidgets.HTML(WRAPPING_STYLE, layout=ipywidgets.Layout(display="none"))
        for row in control_rows:
            # A row of controls wider than the notebook continues on the next line
            # instead of being cut off behind a horizontal scroll bar.
            if isinstance(row, ipywidgets.HBox):
                row.layout.flex_flow = "row wrap"
        # Left-aligned children keep a picture at its own size (1 image pixel = 1 screen
        # pixel, so sizes in pixels mean what they say) instead of stretching it.
        super().__init__(children=[style, *control_rows, self.picture, self.caption],
                         layout=ipywidgets.Layout(align_items="flex-start"))
        self.add_class(css_class)
        self.picture.add_class("cnn-course-picture")
        self.caption.add_class("cnn-course-caption")
        self.frame = None
        self.seconds = float("nan")

    def show(self, frame: Frame) -> None:
        """Display ``frame``: its PNG as the picture and its caption below."""
        self.picture.value = frame.png
        self.caption.value = frame.caption

    def show_computed(self, compute) -> None:
        """Display the frame that ``compute()`` returns and keep it in ``frame``, its time in ``seconds``.

        A ``ValueError`` or ``TypeError`` (a setting the view cannot draw) becomes a "⚠ ..."
        caption saying what is wrong, instead of a traceback; the picture stays as it was.
        """
        started = time.perf_counter()
        try:
            frame = compute()
        except (ValueError, TypeError) as error:
            self.caption.value = f"⚠ {error}"
            return
        self.frame = frame
        self.show(frame)
        self.seconds = time.perf_counter() - started
