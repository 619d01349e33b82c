"""Nearest-neighbour explorer: the last hidden layer as an embedding, and the images closest to a query in it.

Krizhevsky, Sutskever and Hinton ("ImageNet Classification with Deep Convolutional Neural
Networks", NeurIPS 2012, Section 6.1 and Figure 4) showed test images next to the training
images whose last-hidden-layer feature vectors are nearest in Euclidean distance: the
neighbours often look quite different pixel by pixel (another pose, another colour) yet show
the same kind of object. This widget lets a student make that figure for any network: pick a
query image, the number of neighbours ``k`` and the distance, and see the neighbours, their
distances and whether their labels agree with the query's.
"""

from __future__ import annotations

import numbers

import ipywidgets
import numpy as np

from .._checks import numeric_array
from ..images import shrink, to_rgb
from .frame import Frame, FrameWidget, figure_png

__all__ = ["METRICS", "NeighbourExplorer", "nearest_neighbours", "neighbour_explorer", "neighbours_view"]

METRICS = ("euclidean", "cosine")
MAX_K = 10  # the k slider's end: more neighbours no longer fit one readable row
# A query picker with at most this many images is a drop-down menu (each entry can carry
# the image's label); more images get a slider, which a menu of hundreds would not beat.
MAX_DROPDOWN_QUERIES = 10
# Layout of the picture in screen pixels (the figure is drawn at 80 dpi, so 10 pt is 11 px).
# Each image is fitted into a PANEL × PANEL square: wide enough for a 10 pt title such as
# "ankle boot", and a 28×28 digit is enlarged 3 times; 11 panels still fit a notebook (1,100 px).
PANEL = 84
BORDER = 3  # coloured frame around the query and around neighbours with another label
GAP = 10  # between panels
MARGIN = 6
TITLE_LINE = 16  # height of one line of title
TITLE_FONT_SIZE = 10
DPI = 80
DIFFERENT_COLOUR = "#c62828"  # frame and title of a neighbour whose label is not the query's
QUERY_COLOUR = "#1565c0"  # frame of the query image


# --------------------------------------------------------------------- plain functions


def _check_embeddings(value, name: str) -> np.ndarray:
    """``value`` as a non-empty (N, D) float array of finite numbers, or a clear error."""
    array = numeric_array(value, name)
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(
            f"{name} must be a 2-D array (number of images, number of features), e.g. (1000, 1280), "
            f"got shape {array.shape}"
        )
    array = array.astype(np.float64, copy=False)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must hold finite numbers (no nan or inf)")
    return array


def _check_metric(metric) -> str:
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of: {', '.join(METRICS)}")
    return metric


def _whole_number(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a whole number, got {value!r} ({type(value).__name__})")
    return int(value)


def _distances(query: np.ndarray, gallery: np.ndarray, metric: str, rows: np.ndarray) -> np.ndarray:
    """Distance from one ``(D,)`` query to every row of ``(M, D)`` ``gallery`` (row numbers ``rows``)."""
    if metric == "euclidean":
        # The difference is taken row by row rather than through |a|² + |b|² - 2 a·b: that
        # shortcut loses digits to cancellation, so two equal rows could get different
        # distances and ties would no longer be broken by index alone.
        return np.sqrt(np.einsum("nd,nd->n", gallery - query, gallery - query))
    query_norm = np.linalg.norm(query)
    gallery_norms = np.linalg.norm(gallery, axis=1)
    if query_norm == 0:
        raise ValueError("the cosine distance needs a direction, but the query's embedding is all zeros; "
                         "use metric='euclidean'")
    if np.any(gallery_norms == 0):
        zero = int(rows[np.flatnonzero(gallery_norms == 0)[0]])
        raise ValueError(f"the cosine distance needs a direction, but the embedding of gallery image {zero} "
                         "is all zeros; use metric='euclidean'")
    # einsum works row by row, the same way for every row, so equal rows get equal distances
    # (a BLAS matrix product may treat rows differently, in blocks).
    cosine = np.einsum("nd,d->n", gallery, query) / (gallery_norms * query_norm)
    # Round-off can push the cosine of (anti-)parallel vectors a hair past ±1.
    return 1.0 - np.clip(cosine, -1.0, 1.0)


def nearest_neighbours(query_embedding, embeddings, k: int, *, metric: str = "euclidean",
                       exclude=None) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` rows of ``embeddings`` nearest to ``query_embedding``, nearest first.

    Parameters
    ----------
    query_embedding : array_like
        ``(D,)``: the feature vector of the query image (e.g. its last hidden layer).
    embeddings : array_like
        ``(N, D)``: one feature vector per gallery image (e.g. the training images).
    k : int
        How many neighbours, ``1 <= k <= N`` (minus the excluded rows).
    metric : {"euclidean", "cosine"}
        ``"euclidean"``: the length of the difference, ``|a - b|``. ``"cosine"``:
        ``1 - a·b / (|a| |b|)``, 0 for the same direction, 1 at right angles, 2 for
        opposite directions; it ignores the vectors' lengths (all-zero vectors have no
        direction and are refused).
    exclude : int or sequence of int, optional
        Rows of ``embeddings`` never returned, e.g. the query itself when it is one of
        the gallery images (it would be its own nearest neighbour, at distance 0).

    Returns
    -------
    indices : numpy.ndarray
        ``(k,)`` int64 row numbers of the neighbours, nearest first; equal distances are
        ordered by row number.
    distances : numpy.ndarray
        ``(k,)`` float64 distances from the query, in the same order (non-decreasing).

    Examples
    --------
    Four points on a line and one off it; the query sits at (1, 0):

    >>> gallery = [[0, 0], [3, 0], [1, 2], [2, 0], [-1, 0]]
    >>> indices, distances = nearest_neighbours([1, 0], gallery, k=4)
    >>> indices.tolist(), distances.tolist()
    ([0, 3, 1, 2], [1.0, 1.0, 2.0, 2.0])
    >>> nearest_neighbours([1, 0], gallery, k=2, exclude=0)[0].tolist()
    [3, 1]

    By angle alone, (3, 0) and (2, 0) point exactly the query's way (the all-zero row 0,
    which has no direction, is excluded):

    >>> indices, distances = nearest_neighbours([1, 0], gallery, k=3, metric="cosine", exclude=0)
    >>> indices.tolist(), distances.round(3).tolist()
    ([1, 3, 2], [0.0, 0.0, 0.553])
    """
    gallery = _check_embeddings(embeddings, "embeddings")
    query = numeric_array(query_embedding, "query_embedding")
    if query.shape != (gallery.shape[1],):
        raise ValueError(
            f"query_embedding must be one vector of {gallery.shape[1]} features (shape ({gallery.shape[1]},)), "
            f"like a row of embeddings {gallery.shape}, got shape {query.shape}"
        )
    query = query.astype(np.float64)
    if not np.all(np.isfinite(query)):
        raise ValueError("query_embedding must hold finite numbers (no nan or inf)")
    metric = _check_metric(metric)
    n = len(gallery)
    keep = np.ones(n, dtype=bool)
    if exclude is not None:
        excluded = np.atleast_1d(np.asarray(exclude))
        if excluded.ndim != 1 or not (excluded.size == 0 or np.issubdtype(excluded.dtype, np.integer)):
            raise TypeError(f"exclude must be a row number or a list of row numbers, got {exclude!r}")
        if excluded.size and (excluded.min() < 0 or excluded.max() >= n):
            raise ValueError(f"exclude must hold row numbers of embeddings, 0..{n - 1}, got {excluded.tolist()}")
        keep[excluded.astype(np.int64)] = False  # (an empty list arrives as floats)
    available = int(keep.sum())
    k = _whole_number(k, "k")
    if not 1 <= k <= available:
        left = f"the {n} rows of embeddings" + ("" if available == n else f" minus {n - available} excluded")
        raise ValueError(f"k must be between 1 and {available} ({left}), got {k}")
    candidates = np.flatnonzero(keep)
    distances = _distances(query, gallery[candidates] if available < n else gallery, metric, candidates)
    # A stable sort keeps equal distances in row order: ties are broken by index.
    nearest = np.argsort(distances, kind="stable")[:k]
    return candidates[nearest].astype(np.int64), distances[nearest]


# ------------------------------------------------------------------------------ view


def _check_images(value, name: str) -> np.ndarray:
    """A stack of images: ``(N, H, W)``, ``(N, H, W, 1)`` or ``(N, H, W, 3)``, uint8 or floats in [0, 1]."""
    array = np.asarray(value)
    if array.dtype == bool or not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise TypeError(f"{name} must hold pixel values (uint8, or floats in [0, 1]), got dtype {array.dtype}")
    if not (array.ndim == 3 or (array.ndim == 4 and array.shape[3] in (1, 3))) or 0 in array.shape:
        raise ValueError(
            f"{name} must be a non-empty stack of grey (N, H, W) or (N, H, W, 1) or RGB (N, H, W, 3) images, "
            f"got shape {array.shape}"
        )
    if np.issubdtype(array.dtype, np.integer) and array.dtype != np.uint8:
        raise TypeError(f"integer {name} must be uint8 (0..255), got {array.dtype}; "
                        "for other values divide by their maximum to get floats in [0, 1]")
    if np.issubdtype(array.dtype, np.floating):
        low, high = float(array.min()), float(array.max())
        if not (np.isfinite(low) and np.isfinite(high)) or low < -1e-6 or high > 1 + 1e-6:
            raise ValueError(f"float {name} must have values in [0, 1], got {low:.3g}..{high:.3g}; "
                             "for 0..255 values use images.astype(np.uint8) or images / 255")
    return array


def _label_text(label, class_names) -> str:
    if class_names is not None:
        return str(class_names[int(label)])
    return str(label.item() if isinstance(label, np.generic) else label)


def _check_labels(labels, n_queries: int, n_gallery: int, class_names):
    """``labels`` as a pair (query labels, gallery labels) of the right lengths, or None."""
    if labels is None:
        return None
    if not (isinstance(labels, (tuple, list)) and len(labels) == 2):
        raise TypeError("labels must be a pair (query labels, gallery labels), "
                        f"e.g. labels=(y_test[:20], y_train[:1000]), got {type(labels).__name__}")
    query_labels, gallery_labels = (np.asarray(part) for part in labels)
    for what, part, n in (("query", query_labels, n_queries), ("gallery", gallery_labels, n_gallery)):
        if part.ndim != 1 or len(part) != n:
            raise ValueError(f"expected {n} {what} labels (one per {what} image), got shape {part.shape}")
        if class_names is not None:
            if not np.issubdtype(part.dtype, np.integer):
                raise TypeError(f"with class_names, the {what} labels must be class numbers, got dtype {part.dtype}")
            if part.size and (part.min() < 0 or part.max() >= len(class_names)):
                raise ValueError(f"{what} labels must be class numbers 0..{len(class_names) - 1} "
                                 f"(there are {len(class_names)} class_names), got {part.min()}..{part.max()}")
    return query_labels, gallery_labels


def _caption(query_index, query_label, neighbour_labels, distances, metric) -> str:
    k = len(distances)
    spread = f"{metric} distance {distances[0]:.3g}" + ("" if k == 1 else f" to {distances[-1]:.3g}")
    if query_label is None:
        nearest = "the nearest training image" if k == 1 else f"the {k} nearest training images"
        return f"query {query_index} · {nearest}, {spread}"
    same = sum(label == query_label for label in neighbour_labels)
    if k == 1:
        agreement = (f"the nearest training image is '{query_label}', like the query" if same else
                     f"the nearest training image is '{neighbour_labels[0]}', not '{query_label}' like the query")
    elif same == 0:
        agreement = f"none of the {k} nearest training images is '{query_label}' like the query"
    else:
        verb = "is" if same == 1 else "are"
        agreement = f"{same} of the {k} nearest training images {verb} '{query_label}', like the query"
    marked = "" if same == k else " (red: another label)"
    return f"query {query_index} · {agreement}{marked} · {spread}"


def _panel(image) -> np.ndarray:
    """``image`` as RGB in [0, 1], fitted into a PANEL × PANEL square (whole-number enlargement or block means)."""
    picture = to_rgb(shrink(to_rgb(image), PANEL))
    factor = max(1, PANEL // max(picture.shape[:2]))
    # Nearest-neighbour enlargement keeps the pixels of a small image sharp and square.
    return picture.repeat(factor, axis=0).repeat(factor, axis=1)


def _row_picture(images, titles, colours, lines: int) -> bytes:
    """PNG of ``images`` in one row, each under its title (in its colour) and framed in its colour (or not).

    The images are placed pixel for pixel into one canvas and matplotlib only writes the
    titles: eleven separate axes would take most of a slider move's time.
    """
    from matplotlib.figure import Figure

    cell = PANEL + 2 * BORDER
    title_height = lines * TITLE_LINE + 6
    width = 2 * MARGIN + len(images) * cell + (len(images) - 1) * GAP
    height = title_height + cell + MARGIN
    canvas = np.ones((height, width, 3))
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    for position, (image, title, colour) in enumerate(zip(images, titles, colours, strict=True)):
        left = MARGIN + position * (cell + GAP)
        if colour is not None:
            rgb = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
            canvas[title_height:title_height + cell, left:left + cell] = rgb
            canvas[title_height + BORDER:title_height + BORDER + PANEL, left + BORDER:left + BORDER + PANEL] = 1.0
        picture = _panel(image)
        top = title_height + BORDER + (PANEL - picture.shape[0]) // 2
        start = left + BORDER + (PANEL - picture.shape[1]) // 2
        canvas[top:top + picture.shape[0], start:start + picture.shape[1]] = picture
        fig.text((left + cell / 2) / width, 1 - (title_height - 3) / height, title, ha="center", va="bottom",
                 fontsize=TITLE_FONT_SIZE, color=colour or "black", linespacing=1.1)
    fig.figimage(canvas, 0, 0, origin="upper")
    return figure_png(fig, dpi=DPI)


def neighbours_view(query_index: int, query_images, embeddings_of_queries, gallery_images, gallery_embeddings,
                    k: int, metric: str = "euclidean", *, labels=None, class_names=None) -> Frame:
    """What the nearest-neighbour explorer shows: a query image and its ``k`` nearest gallery images.

    Parameters
    ----------
    query_index : int
        Which query image, ``0 <= query_index < Q``.
    query_images, gallery_images : array_like
        ``(Q, H, W)`` and ``(N, H', W')`` stacks (or ``(..., 1)`` grey or ``(..., 3)``
        RGB), uint8 or floats in [0, 1]: e.g. test images and training images.
    embeddings_of_queries, gallery_embeddings : array_like
        ``(Q, D)`` and ``(N, D)``: their feature vectors (e.g. the last hidden layer).
    k : int
        How many neighbours to show, ``1 <= k <= N``.
    metric : {"euclidean", "cosine"}
        The distance (see :func:`nearest_neighbours`).
    labels : pair of sequences, optional
        ``(query labels, gallery labels)``. Each neighbour's title then names its label,
        a neighbour whose label is not the query's is framed and titled in red, and the
        caption counts the neighbours that share the query's label.
    class_names : sequence of str, optional
        Names of the classes, when ``labels`` are class numbers.

    Returns
    -------
    Frame
        One row of pictures, the query (framed in blue) and then its neighbours, nearest
        first, each titled with its distance; a caption such as ``"query 3 · 4 of the 5
        nearest training images are 'sneaker', like the query (red: another label) ·
        euclidean distance 2.1 to 3.4"``.

    Examples
    --------
    Three 2×2 training images with 1-D embeddings and one query at 0.9:

    >>> import numpy as np
    >>> train = np.zeros((3, 2, 2), np.uint8)
    >>> frame = neighbours_view(0, np.zeros((1, 2, 2)), [[0.9]], train, [[0.0], [1.0], [3.0]], k=2,
    ...                         labels=([1], [0, 1, 1]), class_names=["cat", "dog"])
    >>> frame.caption
    "query 0 · 1 of the 2 nearest training images is 'dog', like the query (red: another label) · euclidean distance 0.1 to 0.9"
    """
    queries = _check_images(query_images, "query_images")
    gallery = _check_images(gallery_images, "gallery_images")
    query_embeddings = _check_embeddings(embeddings_of_queries, "embeddings_of_queries")
    gallery_embeddings = _check_embeddings(gallery_embeddings, "gallery_embeddings")
    if len(query_embeddings) != len(queries):
        raise ValueError(f"got {len(query_embeddings)} query embeddings for {len(queries)} query images")
    if len(gallery_embeddings) != len(gallery):
        raise ValueError(f"got {len(gallery_embeddings)} gallery embeddings for {len(gallery)} gallery images")
    if query_embeddings.shape[1] != gallery_embeddings.shape[1]:
        raise ValueError(f"query embeddings have {query_embeddings.shape[1]} features but gallery embeddings have "
                         f"{gallery_embeddings.shape[1]}; both must come from the same layer")
    index = _whole_number(query_index, "query_index")
    if not 0 <= index < len(queries):
        raise ValueError(f"query_index must be between 0 and {len(queries) - 1}, got {index}")
    pair = _check_labels(labels, len(queries), len(gallery), class_names)
    indices, distances = nearest_neighbours(query_embeddings[index], gallery_embeddings, k, metric=metric)

    query_label = neighbour_labels = None
    if pair is not None:
        query_label = _label_text(pair[0][index], class_names)
        neighbour_labels = [_label_text(pair[1][i], class_names) for i in indices]

    titles = [f"query {index}" + ("" if pair is None else f"\n{query_label}")]
    colours = [QUERY_COLOUR]
    for position, distance in enumerate(distances):
        titles.append(f"d = {distance:.3g}" + ("" if pair is None else f"\n{neighbour_labels[position]}"))
        different = pair is not None and neighbour_labels[position] != query_label
        colours.append(DIFFERENT_COLOUR if different else None)
    png = _row_picture([queries[index], *gallery[indices]], titles, colours, lines=1 if pair is None else 2)
    caption = _caption(index, query_label, neighbour_labels, distances, metric)
    return Frame(png=png, caption=caption)


# ---------------------------------------------------------------------------- widget


class NeighbourExplorer(FrameWidget):
    """Pick a query image and see its nearest gallery images in feature space.

    Use :func:`neighbour_explorer` to create one in a notebook.

    Attributes
    ----------
    query_picker : ipywidgets.IntSlider or ipywidgets.Dropdown
        Which query image: a slider ``0..Q-1``, or a menu when there are at most
        :data:`MAX_DROPDOWN_QUERIES` queries (its values are the same numbers).
    k_slider : ipywidgets.IntSlider
        How many neighbours, ``1..min(10, N)``.
    metric_buttons : ipywidgets.ToggleButtons
        ``"euclidean"`` or ``"cosine"``.
    picture : ipywidgets.Image
        The query and its neighbours (PNG).
    caption : ipywidgets.Label
        How many neighbours share the query's label, and the range of distances.
    """

    def __init__(self, query_images, query_embeddings, gallery_images, gallery_embeddings, *,
                 labels=None, class_names=None, k: int = 5, metric: str = "euclidean"):
        self._queries = _check_images(query_images, "query_images")
        self._gallery = _check_images(gallery_images, "gallery_images")
        self._query_embeddings = _check_embeddings(query_embeddings, "query_embeddings")
        self._gallery_embeddings = _check_embeddings(gallery_embeddings, "gallery_embeddings")
        n_queries, n_gallery = len(self._queries), len(self._gallery)
        if len(self._query_embeddings) != n_queries:
            raise ValueError(f"got {len(self._query_embeddings)} query embeddings for {n_queries} query images")
        if len(self._gallery_embeddings) != n_gallery:
            raise ValueError(f"got {len(self._gallery_embeddings)} gallery embeddings for {n_gallery} gallery images")
        if self._query_embeddings.shape[1] != self._gallery_embeddings.shape[1]:
            raise ValueError(
                f"query embeddings have {self._query_embeddings.shape[1]} features but gallery embeddings have "
                f"{self._gallery_embeddings.shape[1]}; both must come from the same layer"
            )
        if class_names is not None and (isinstance(class_names, str) or len(class_names) == 0):
            raise TypeError(f"class_names must be a list of names, e.g. ['cat', 'dog'], got {class_names!r}")
        self._labels = _check_labels(labels, n_queries, n_gallery, class_names)
        self._class_names = class_names
        metric = _check_metric(metric)
        largest_k = min(MAX_K, n_gallery)
        k = _whole_number(k, "k")
        if not 1 <= k <= largest_k:
            raise ValueError(f"k must be between 1 and {largest_k} (at most {MAX_K}, and at most the "
                             f"{n_gallery} gallery images), got {k}")

        if n_queries <= MAX_DROPDOWN_QUERIES:
            options = [(f"{i}" if self._labels is None else
                        f"{i} · {_label_text(self._labels[0][i], class_names)}", i) for i in range(n_queries)]
            self.query_picker = ipywidgets.Dropdown(options=options, value=0, description="query")
        else:
            self.query_picker = ipywidgets.IntSlider(value=0, min=0, max=n_queries - 1, description="query")
        self.k_slider = ipywidgets.IntSlider(value=k, min=1, max=largest_k, description="k")
        self.metric_buttons = ipywidgets.ToggleButtons(options=list(METRICS), value=metric, description="distance")
        super().__init__(
            [
                ipywidgets.HBox([self.query_picker, self.k_slider]),
                self.metric_buttons,
            ],
            css_class="cnn-course-neighbours",
        )
        for control in (self.query_picker, self.k_slider, self.metric_buttons):
            control.observe(self._redraw, names="value")
        self._redraw()

    def _redraw(self, _change=None) -> None:
        # A setting the view cannot draw (e.g. cosine of an all-zero embedding) gets a ⚠ caption.
        self.show_computed(lambda: neighbours_view(
            self.query_picker.value, self._queries, self._query_embeddings, self._gallery,
            self._gallery_embeddings, self.k_slider.value, self.metric_buttons.value,
            labels=self._labels, class_names=self._class_names))


def neighbour_explorer(query_images, query_embeddings, gallery_images, gallery_embeddings, *, labels=None,
                       class_names=None, k: int = 5, metric: str = "euclidean") -> NeighbourExplorer:
    """Choose a query image and see its ``k`` nearest gallery images in feature space, with their distances.

    Parameters
    ----------
    query_images : array_like
        ``(Q, H, W)``, ``(Q, H, W, 1)`` or ``(Q, H, W, 3)``, uint8 or floats in [0, 1]:
        the images to pick from (e.g. a few test images).
    query_embeddings : array_like
        ``(Q, D)``: their feature vectors, e.g. a network's last hidden layer.
    gallery_images : array_like
        ``(N, H', W')`` (or with 1 or 3 channels): the images searched (e.g. training images).
    gallery_embeddings : array_like
        ``(N, D)``: their feature vectors, from the same layer.
    labels : pair of sequences, optional
        ``(query labels, gallery labels)``, e.g. ``(y_test[:20], y_train[:1000])``.
    class_names : sequence of str, optional
        Names of the classes when the labels are class numbers.
    k : int
        Initial number of neighbours, ``1..min(10, N)``.
    metric : {"euclidean", "cosine"}
        Initial distance (see :func:`nearest_neighbours`).

    Returns
    -------
    NeighbourExplorer
        The widget; it displays itself when it is the last expression of a cell.

    Examples
    --------
    >>> import numpy as np
    >>> explorer = neighbour_explorer(np.zeros((2, 4, 4)), [[0.0, 1.0], [1.0, 0.0]],
    ...                               np.zeros((3, 4, 4)), [[0.0, 2.0], [3.0, 0.0], [1.0, 1.0]], k=1)
    >>> explorer.caption.value
    'query 0 · the nearest training image, euclidean distance 1'
    >>> explorer.metric_buttons.value = "cosine"
    >>> explorer.caption.value
    'query 0 · the nearest training image, cosine distance 0'
    """
    return NeighbourExplorer(query_images, query_embeddings, gallery_images, gallery_embeddings, labels=labels,
                             class_names=class_names, k=k, metric=metric)
