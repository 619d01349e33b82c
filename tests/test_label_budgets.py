"""cnn_course.label_budgets: nested labelled subsets and the ridge linear probe."""

import numpy as np
import pytest
from cnn_course.label_budgets import DEFAULT_ALPHAS, labelled_subset, linear_probe
from hypothesis import given, settings
from hypothesis import strategies as st

# --- labelled_subset ---------------------------------------------------------------------------------


def test_without_a_seed_the_first_images_of_each_class_in_class_order():
    labels = np.array([1, 0, 2, 0, 1, 2, 0, 1, 2])
    assert labelled_subset(labels, 2).tolist() == [1, 3, 0, 4, 2, 5]


def test_the_shuffle_is_numpys_one_permutation_per_class_in_order():
    # The notebooks' numbers were measured with exactly this draw: keep it.
    labels = np.random.default_rng(7).integers(0, 4, size=200)
    rng = np.random.default_rng(3)
    by_hand = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:5] for c in range(4)])
    assert np.array_equal(labelled_subset(labels, 5, seed=3), by_hand)


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 6), st.integers(0, 10_000), st.lists(st.integers(1, 12), min_size=2, max_size=4, unique=True),
       st.integers(0, 2**32 - 1))
def test_balanced_nested_and_inside_the_pool(classes, data_seed, budgets, seed):
    rng = np.random.default_rng(data_seed)
    labels = np.concatenate([np.arange(classes)] * 15 + [rng.integers(0, classes, 40)])   # ≥ 15 per class
    pool = np.sort(rng.choice(len(labels), size=len(labels) - 10, replace=False))
    pool = labelled_subset(labels, 12, pool=pool) if np.bincount(labels[pool]).min() >= 12 else None
    budgets = sorted(budgets)
    subsets = [labelled_subset(labels, n, seed=seed, pool=pool) for n in budgets]
    for n, subset in zip(budgets, subsets, strict=True):
        assert np.bincount(labels[subset], minlength=classes).tolist() == [n] * classes
        assert len(set(subset.tolist())) == len(subset)
        if pool is not None:
            assert set(subset.tolist()) <= set(pool.tolist())
    for small, large in zip(subsets, subsets[1:], strict=False):
        assert set(small.tolist()) <= set(large.tolist())


def test_seeds_draw_different_images_and_the_same_seed_the_same():
    labels = np.repeat(np.arange(3), 50)
    assert np.array_equal(labelled_subset(labels, 10, seed=1), labelled_subset(labels, 10, seed=1))
    assert set(labelled_subset(labels, 10, seed=1).tolist()) != set(labelled_subset(labels, 10, seed=2).tolist())


@pytest.mark.parametrize("labels, per_class, kwargs, error, message", [
    ([0, 1, 1], 2, {}, ValueError, r"class 0 has only 1 images in labels; you asked for 2 per class"),
    ([0, 1, 0, 1], 2, {"pool": [0, 1, 2]}, ValueError, r"class 1 has only 1 images in the pool"),
    ([[0, 1]], 1, {}, ValueError, r"labels must be one class number per image, a 1-D array; got shape \(1, 2\)"),
    ([0.0, 1.0], 1, {}, TypeError, r"labels must be whole class numbers"),
    ([0, -1], 1, {}, ValueError, r"labels must be class numbers 0, 1, 2, \.\.\.; got -1"),
    ([0, 1], 0, {}, ValueError, r"per_class must be positive, got 0"),
    ([0, 1], True, {}, TypeError, r"per_class must be a whole number"),
    ([0, 1], 1, {"pool": [0, 5]}, ValueError, r"pool holds indices outside 0 \.\.\. 1"),
    ([0, 1], 1, {"pool": [0.5]}, ValueError, r"pool must be a 1-D array of image indices"),
])
def test_bad_arguments_say_what_was_expected(labels, per_class, kwargs, error, message):
    with pytest.raises(error, match=message):
        labelled_subset(np.array(labels), per_class, **kwargs)


# --- linear_probe ------------------------------------------------------------------------------------


def ridge_by_hand(train, labels, alpha, classes):
    # Standardise with the training mean and (population) spread, then minimise
    # ||X W + b - T||² + alpha ||W||² with targets +1 for the class, -1 otherwise: centring X and T
    # takes the bias out, and W = (XᵀX + alpha I)⁻¹ Xᵀ (T - mean T).
    mean, spread = train.mean(axis=0), train.std(axis=0)
    spread[spread == 0] = 1.0
    x = (train - mean) / spread
    targets = 2.0 * np.eye(classes)[labels] - 1.0
    w = np.linalg.solve(x.T @ x + alpha * np.eye(x.shape[1]), x.T @ (targets - targets.mean(axis=0)))
    bias = targets.mean(axis=0)
    return lambda f: np.argmax(((f - mean) / spread) @ w + bias, axis=1)


@pytest.mark.parametrize("classes", [2, 4])
def test_linear_probe_is_ridge_regression_with_the_penalty_chosen_on_validation(classes):
    rng = np.random.default_rng(classes)
    centres = rng.normal(scale=1.5, size=(classes, 6))
    labels = rng.integers(0, classes, 160)
    features = centres[labels] + rng.normal(size=(160, 6))
    train, val = slice(0, 100), slice(100, 160)
    alphas = (0.01, 1.0, 30.0, 1000.0, 1e5)
    classifier, accuracy, alpha = linear_probe(features[train], labels[train], features[val], labels[val],
                                               alphas=alphas)
    by_hand = {a: np.mean(ridge_by_hand(features[train], labels[train], a, classes)(features[val]) == labels[val])
               for a in alphas}
    best = max(by_hand.values())
    assert accuracy == pytest.approx(best)
    assert alpha == next(a for a in alphas if by_hand[a] == best)       # ties: the first (smallest)
    # The returned classifier is the fit with that penalty: same predictions as by hand, on new points.
    new = rng.normal(scale=2.0, size=(50, 6))
    assert np.array_equal(classifier.predict(new), ridge_by_hand(features[train], labels[train], alpha, classes)(new))
    # A huge penalty flattens every score to the class frequencies: worse than the best here.
    assert by_hand[1e5] < best


def test_the_default_penalties_are_tenfold_steps_from_a_tenth_to_a_hundred_thousand():
    assert DEFAULT_ALPHAS == pytest.approx((0.1, 1, 10, 100, 1e3, 1e4, 1e5))


@pytest.mark.parametrize("change, error, message", [
    ({"train_features": np.zeros(8)}, ValueError, r"train_features must be a 2-D array \(images, features\)"),
    ({"val_features": np.zeros((4, 2))}, ValueError, r"train_features have 3 features per image, val_features 2"),
    ({"train_labels": np.zeros(7, dtype=int)}, ValueError, r"train_features has 8 rows but train_labels has 7"),
    ({"train_labels": np.zeros(8, dtype=int)}, ValueError, r"train_labels hold a single class"),
    ({"alphas": (1.0, 0.0)}, ValueError, r"alphas must be positive penalties"),
    ({"val_features": np.array([["a"] * 3] * 4)}, TypeError, r"val_features must hold numbers"),
])
def test_linear_probe_bad_arguments(change, error, message):
    arguments = {"train_features": np.arange(24.0).reshape(8, 3), "train_labels": np.array([0, 1] * 4),
                 "val_features": np.ones((4, 3)), "val_labels": np.array([0, 1, 0, 1])}
    arguments.update(change)
    with pytest.raises(error, match=message):
        linear_probe(**arguments)
