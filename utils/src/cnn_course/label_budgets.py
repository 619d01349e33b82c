"""Experiments with few labels: nested labelled subsets and a linear classifier on features.

Week 5 asks how accuracy grows with the number of labelled images per class, for transfer
learning and for training from scratch. Two pieces every such experiment needs:

* :func:`labelled_subset`: ``n`` images of each class, drawn so that for one seed the subset
  of 10 per class lies inside the one of 50, which lies inside the one of 500 (the budgets
  are *nested*: a bigger budget only adds labels, it does not swap them);
* :func:`linear_probe`: a linear classifier on fixed features (a ridge classifier from
  scikit-learn on standardised features), its regularisation chosen on a validation split.

Examples
--------
>>> import numpy as np
>>> labels = np.array([0, 1, 0, 1, 0, 1, 0, 1])
>>> labelled_subset(labels, 2)                  # no seed: the first two of each class
array([0, 2, 1, 3])
>>> small, big = labelled_subset(labels, 1, seed=0), labelled_subset(labels, 3, seed=0)
>>> bool(np.isin(small, big).all())             # nested
True
"""

from __future__ import annotations

import numpy as np

from ._checks import check_positive_int

DEFAULT_ALPHAS = tuple(10.0 ** np.arange(-1, 6))    # 0.1 ... 100,000


def _class_labels(labels) -> np.ndarray:
    array = np.asarray(labels)
    if array.ndim != 1:
        raise ValueError(f"labels must be one class number per image, a 1-D array; got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"labels must be whole class numbers (an integer array), got dtype {array.dtype}")
    if array.size and array.min() < 0:
        raise ValueError(f"labels must be class numbers 0, 1, 2, ...; got {array.min()}")
    return array


def labelled_subset(labels, per_class: int, *, seed=None, pool=None) -> np.ndarray:
    """Indices of ``per_class`` images of every class, nested across budgets for one seed.

    Parameters
    ----------
    labels : 1-D integer array
        The class of every image (0, 1, 2, ...).
    per_class : int
        Images to take from each class.
    seed : int, optional
        With a seed, each class's candidates are shuffled by
        ``numpy.random.default_rng(seed)`` (one permutation per class, classes in order) and
        the first ``per_class`` are taken, so the same seed with a bigger ``per_class``
        gives a superset. Without one, the first ``per_class`` candidates of each class.
    pool : 1-D integer array, optional
        Indices into ``labels`` to draw from (default: all images).

    Returns
    -------
    numpy.ndarray
        Indices into ``labels``: class 0's first, then class 1's, and so on.

    Raises
    ------
    ValueError
        If a class has fewer than ``per_class`` candidates.

    Examples
    --------
    >>> labels = np.array([2, 0, 1, 0, 2, 1, 1])
    >>> labelled_subset(labels, 1)
    array([1, 2, 0])
    >>> labelled_subset(labels, 3)
    Traceback (most recent call last):
    ...
    ValueError: class 0 has only 2 images in labels; you asked for 3 per class
    """
    labels = _class_labels(labels)
    per_class = check_positive_int(per_class, "per_class")
    candidates = np.arange(len(labels)) if pool is None else np.asarray(pool)
    if candidates.ndim != 1 or not np.issubdtype(candidates.dtype, np.integer):
        raise ValueError(f"pool must be a 1-D array of image indices, got {candidates.dtype} of shape "
                         f"{candidates.shape}")
    if candidates.size and (candidates.min() < 0 or candidates.max() >= len(labels)):
        raise ValueError(f"pool holds indices outside 0 ... {len(labels) - 1} (the images of labels)")
    rng = None if seed is None else np.random.default_rng(seed)
    chosen = []
    for c in range(int(labels.max()) + 1 if labels.size else 0):
        of_class = candidates[labels[candidates] == c]
        if len(of_class) < per_class:
            raise ValueError(f"class {c} has only {len(of_class)} images "
                             f"{'in the pool' if pool is not None else 'in labels'}; you asked for "
                             f"{per_class} per class")
        if rng is not None:
            of_class = rng.permutation(of_class)
        chosen.append(of_class[:per_class])
    return np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)


def linear_probe(train_features, train_labels, val_features, val_labels, *, alphas=DEFAULT_ALPHAS):
    """A ridge classifier on standardised features, its penalty chosen on the validation split.

    For every penalty ``alpha`` a scikit-learn pipeline ``StandardScaler → RidgeClassifier(alpha)``
    is fitted on the training features (one closed-form least-squares fit, no iterations: a
    second at most for thousands of images); the one with the best validation accuracy is kept
    (ties: the first, i.e. the smallest ``alpha``).

    Parameters
    ----------
    train_features, val_features : 2-D arrays
        One feature vector per image, e.g. a frozen network's pooled features.
    train_labels, val_labels : 1-D integer arrays
        The classes of those images.
    alphas : sequence of float
        Penalties to try (positive); default 0.1, 1, ..., 100,000.

    Returns
    -------
    classifier : sklearn.pipeline.Pipeline
        Fitted; ``classifier.predict(features)`` gives classes.
    val_accuracy : float
        Its accuracy on the validation features.
    alpha : float
        The penalty chosen.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat([0, 1], 20)
    >>> features = rng.normal(size=(40, 5)) + 3 * labels[:, None]   # two well-separated clouds
    >>> classifier, accuracy, alpha = linear_probe(features[::2], labels[::2], features[1::2], labels[1::2])
    >>> accuracy, alpha
    (1.0, 0.1)
    """
    from sklearn.linear_model import RidgeClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train_features, val_features = (_feature_matrix(f, name) for f, name in
                                     ((train_features, "train_features"), (val_features, "val_features")))
    train_labels, val_labels = _class_labels(train_labels), _class_labels(val_labels)
    for features, labels, split in ((train_features, train_labels, "train"), (val_features, val_labels, "val")):
        if len(features) != len(labels):
            raise ValueError(f"{split}_features has {len(features)} rows but {split}_labels has {len(labels)} labels")
    if train_features.shape[1] != val_features.shape[1]:
        raise ValueError(f"train_features have {train_features.shape[1]} features per image, val_features "
                         f"{val_features.shape[1]}: they must come from the same extractor")
    if len(np.unique(train_labels)) < 2:
        raise ValueError("train_labels hold a single class: a classifier needs at least two")
    alphas = tuple(float(a) for a in np.atleast_1d(alphas))
    if not alphas or min(alphas) <= 0:
        raise ValueError(f"alphas must be positive penalties, got {alphas}")
    best = None
    for alpha in alphas:
        classifier = make_pipeline(StandardScaler(), RidgeClassifier(alpha=alpha))
        classifier.fit(train_features, train_labels)
        accuracy = float(np.mean(classifier.predict(val_features) == val_labels))
        if best is None or accuracy > best[1]:
            best = (classifier, accuracy, alpha)
    return best


def _feature_matrix(features, name: str) -> np.ndarray:
    array = np.asarray(features)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (images, features), got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.number):
        raise TypeError(f"{name} must hold numbers, got dtype {array.dtype}")
    return array
