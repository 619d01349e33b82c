"""Drawing small arrays as grids of numbers: shared by the convolution explorer and the stepper (private)."""

from __future__ import annotations

import numpy as np

HOLE_COLOUR = "#e8e8e8"  # cells of a dilated kernel that hold no weight
SIGNED_COLOURMAP = "RdBu_r"  # negative blue, zero white, positive red
# Numbers written into the cells, and panel titles: readable at a glance (>= 10 pt).
CELL_FONT_SIZE = 10
TITLE_FONT_SIZE = 11


def value_text(value) -> str:
    """A number as at most 3 significant digits, never "-0"."""
    return f"{float(value) + 0.0:.3g}"


def size_text(shape) -> str:
    """``(8, 6)`` as ``"8×6"``."""
    return f"{shape[0]}×{shape[1]}"


def check_kernel(kernel, name: str = "kernel") -> np.ndarray:
    """``kernel`` as a 2-D array of finite numbers, or a ValueError/TypeError saying what is wrong."""
    weights = np.asarray(kernel)
    if weights.ndim != 2 or weights.size == 0:
        raise ValueError(f"{name} must be a 2-D array (kh, kw), got shape {weights.shape}")
    if weights.dtype == bool or not np.issubdtype(weights.dtype, np.number):
        raise TypeError(f"{name} must hold numbers, got dtype {weights.dtype}")
    if not np.all(np.isfinite(weights)):
        raise ValueError(f"{name} must hold finite numbers (no nan or inf)")
    return weights


def draw_grid(ax, values, *, cmap, vmin, vmax, annotate, title):
    """imshow with one cell per value, optionally its number written in it, no ticks; NaN cells are holes."""
    from matplotlib import colormaps
    from matplotlib.colors import Normalize

    colour_map = colormaps[cmap].with_extremes(bad=HOLE_COLOUR)
    image = ax.imshow(values, cmap=colour_map, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=TITLE_FONT_SIZE)
    if annotate and _numbers_fit(ax, values):
        norm = Normalize(vmin, vmax)
        for (row, col), value in np.ndenumerate(values):
            if np.isnan(value):
                continue
            red, green, blue, _ = colour_map(norm(value))
            # Text colour by the cell's brightness (BT.709 luma), so every number stays legible.
            dark = 0.2126 * red + 0.7152 * green + 0.0722 * blue < 0.5
            ax.text(col, row, value_text(value), ha="center", va="center", fontsize=CELL_FONT_SIZE,
                    color="white" if dark else "black")
    return image


def _numbers_fit(ax, values) -> bool:
    """Whether every value's text, at CELL_FONT_SIZE, fits inside its (square) cell of ``ax``.

    Call after the figure's margins are set. A grid too fine for readable numbers shows
    only its colours (and the colour bar); smaller type would not be readable at a glance.
    """
    finite = values[~np.isnan(values)] if np.issubdtype(np.asarray(values).dtype, np.floating) else values
    if np.size(finite) == 0:
        return True
    box = ax.get_position()
    figure = ax.get_figure()
    rows, cols = np.shape(values)[:2]
    # imshow keeps cells square, so the smaller of the two sizes is what each cell gets (points).
    cell = min(box.width * figure.get_figwidth() / cols, box.height * figure.get_figheight() / rows) * 72
    widest = max(len(value_text(value)) for value in np.ravel(finite))
    return widest * 0.62 * CELL_FONT_SIZE <= 0.95 * cell and 1.3 * CELL_FONT_SIZE <= cell


def signed_limits(*arrays) -> tuple[float, float]:
    """Symmetric colour limits around 0, so 0 is always the middle (white) colour."""
    largest = max((float(np.nanmax(np.abs(a))) for a in arrays if a is not None and a.size), default=0.0)
    # 0 would give an empty range; beyond float64's max / 4 the width of the range overflows.
    largest = min(largest or 1.0, float(np.finfo(np.float64).max) / 4)
    return -largest, largest
