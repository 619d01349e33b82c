"""Interactive widgets for the course notebooks (ipywidgets 8).

How every widget here is built
------------------------------
A widget is three layers, so that everything except the wiring is tested without
a browser or a running kernel:

1. **Plain computations** on arrays, in their own modules (e.g.
   :func:`cnn_course.images.gaussian_blur`). They validate their inputs and raise
   ``ValueError``/``TypeError`` with messages a student understands.
2. **A view function** ``<name>_view(<state>) -> Frame``: a pure function from the
   values of the controls to what is displayed, a :class:`Frame` (PNG bytes plus a
   caption). A plot is rendered to PNG bytes with :func:`frame.figure_png`, so the
   view stays pure and testable.
3. **A widget class**, a subclass of :class:`frame.FrameWidget`, that creates the
   controls as named attributes, passes them (in rows) to ``FrameWidget.__init__`` with
   its CSS class, and shows the view's frame with ``self.show(frame)`` from one
   ``observe`` callback. ``FrameWidget`` adds the ``ipywidgets.Image`` (``.picture``)
   and ``ipywidgets.Label`` (``.caption``) below the controls and gives the container,
   picture and caption the CSS classes ``cnn-course-<widget name>``,
   ``cnn-course-picture`` and ``cnn-course-caption`` so a browser test can find them.
   Tests set a control's ``value`` and read ``.picture.value`` / ``.caption.value``; the
   browser test moves the real slider and checks that the ``<img>`` and the caption
   change. A lower-case factory function (``blur_explorer(...)``) is what notebooks call.

Showing a PNG in an ``Image`` widget (instead of printing a matplotlib figure into
an ``Output``) renders the same in JupyterLab, Notebook 7 and VS Code, updates
without flicker, and can be checked in a browser by its ``src``.

Widgets (one module each)
-------------------------
:func:`blur_explorer` (``blur.py``)
    Gaussian blur of a real photo with a sigma slider and a sharpness read-out.
:func:`sliding_window_stepper` (``sliding_window.py``)
    A kernel stepped (or played) across a small image: window, products, sum, and
    a toggle between cross-correlation and true convolution.
:func:`convolution_explorer` (``convolution.py``)
    A kernel (preset or typed) applied to a binary image or a photo, with padding,
    stride and dilation; input, kernel and output side by side with the output shape.
:func:`receptive_field_explorer` (``receptive_field.py``)
    A stack of conv/pool layers typed as text (or a preset), a layer and a unit
    picked with sliders, and the input pixels that unit depends on, lit up on a photo.
:func:`feature_map_browser` (``feature_maps.py``)
    A Keras model's feature maps: pick an image, a conv layer and a channel (or all
    channels), with the map's mean activation and share of zeros.
:func:`neighbour_explorer` (``neighbours.py``)
    Week 5: a query image and its k nearest training images in a network's feature
    space (euclidean or cosine), each with its distance; other labels marked in red.
:func:`mask_viewer` (``masks.py``)
    Week 7: a segmentation's image, true mask, predicted mask and errors (false positives
    and false negatives in two colours), with a threshold slider and live IoU and Dice.
:func:`epsilon_explorer` (``adversarial.py``)
    Week 6: an ε slider (in grey levels) over one photo and its gradient sign, computed
    once: clean and perturbed image, the perturbation magnified and the live top-5.

``frame.py`` holds what they share (:class:`Frame`, :class:`FrameWidget`, the PNG
helper); ``_grids.py`` draws small arrays as grids of numbers for the two convolution
widgets. Photos are prepared by :mod:`cnn_course.images` (``to_grayscale``, ``to_rgb``,
``shrink``), never in a widget module.

Examples
--------
>>> from cnn_course.widgets import blur_view
>>> from cnn_course.data import load_photo
>>> frame = blur_view(load_photo("coins"), sigma=2.0)
>>> frame.caption.startswith("σ = 2.0 px")
True
"""

# One module per widget; each adds one import line here.
from .adversarial import EpsilonExplorer, EpsilonFrame, epsilon_explorer, epsilon_view
from .blur import BlurExplorer, blur_explorer, blur_view
from .convolution import ConvolutionExplorer, convolution_explorer, convolution_view
from .feature_maps import FeatureMapBrowser, feature_map_browser, feature_map_view
from .frame import Frame, FrameWidget, figure_png
from .masks import MaskFrame, MaskViewer, mask_view, mask_viewer
from .neighbours import NeighbourExplorer, nearest_neighbours, neighbour_explorer, neighbours_view
from .receptive_field import ReceptiveFieldExplorer, receptive_field_explorer, receptive_field_view
from .sliding_window import (
    SlidingWindowStepper,
    sliding_window_step,
    sliding_window_stepper,
    sliding_window_view,
)

__all__ = [
    "BlurExplorer",
    "ConvolutionExplorer",
    "EpsilonExplorer",
    "EpsilonFrame",
    "FeatureMapBrowser",
    "Frame",
    "FrameWidget",
    "MaskFrame",
    "MaskViewer",
    "NeighbourExplorer",
    "ReceptiveFieldExplorer",
    "SlidingWindowStepper",
    "blur_explorer",
    "blur_view",
    "convolution_explorer",
    "convolution_view",
    "epsilon_explorer",
    "epsilon_view",
    "feature_map_browser",
    "feature_map_view",
    "figure_png",
    "mask_view",
    "mask_viewer",
    "nearest_neighbours",
    "neighbour_explorer",
    "neighbours_view",
    "receptive_field_explorer",
    "receptive_field_view",
    "sliding_window_step",
    "sliding_window_stepper",
    "sliding_window_view",
]
