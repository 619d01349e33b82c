"""cnn_course.visualize (filters, feature maps) and the feature-map browser widget (no browser)."""

from __future__ import annotations

import io
import re

import keras
import matplotlib.figure
import numpy as np
import pytest
from cnn_course import visualize
from cnn_course.conv import correlate2d
from cnn_course.data import load_mnist
from cnn_course.widgets import FeatureMapBrowser, feature_map_browser, feature_map_view
from PIL import Image

CAPTION = re.compile(
    r"image (?P<index>\d+)(?: \(label (?P<label>.+?)\))? · layer (?P<layer>\S+) "
    r"\((?P<h>\d+)×(?P<w>\d+)×(?P<c>\d+)\), (?P<what>channel (?P<channel>\d+)|all (?P<all>\d+) channels): "
    r"mean activation (?P<mean>[\d.]+), (?P<zeros>\d+) % zeros"
)


def decode_png(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))


@pytest.fixture(scope="module")
def digits():
    """Twelve real MNIST test digits as (12, 28, 28, 1) floats in [0, 1], and their labels."""
    _, (x_test, y_test) = load_mnist(verbose=False)
    return x_test[:12, :, :, None].astype("float32") / 255, y_test[:12]


@pytest.fixture(scope="module")
def model():
    """A small untrained CNN (fixed seed): conv 8 -> pool -> conv 16 -> pool -> dense."""
    keras.utils.set_random_seed(3)
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(8, 3, activation="relu", name="conv1"),
        keras.layers.MaxPooling2D(name="pool1"),
        keras.layers.Conv2D(16, 3, activation="relu", padding="same", name="conv2"),
        keras.layers.MaxPooling2D(name="pool2"),
        keras.layers.Flatten(),
        keras.layers.Dense(10, activation="softmax"),
    ])


# ---------------------------------------------------------------------- feature maps


def test_conv_layers_are_the_convolutions_in_order(model):
    assert [layer.name for layer in visualize.conv_layers(model)] == ["conv1", "conv2"]


def test_first_layer_maps_equal_a_convolution_by_hand(model, digits):
    images, _ = digits
    maps = visualize.feature_maps(model, images[0])
    assert list(maps) == ["conv1", "conv2"]
    assert maps["conv1"].shape == (26, 26, 8) and maps["conv2"].shape == (13, 13, 16)
    kernel, bias = (np.asarray(w) for w in model.get_layer("conv1").weights)
    for channel in range(8):
        by_hand = np.maximum(correlate2d(images[0, :, :, 0], kernel[:, :, 0, channel]) + bias[channel], 0)
        np.testing.assert_allclose(maps["conv1"][:, :, channel], by_hand, atol=1e-5)


def test_deeper_maps_equal_a_direct_intermediate_model(model, digits):
    images, _ = digits
    direct = keras.Model(model.inputs[0], model.get_layer("conv2").output)(images[5:6])
    np.testing.assert_allclose(visualize.feature_maps(model, images[5])["conv2"], np.asarray(direct)[0],
                               atol=1e-6)
    # A grey (28, 28) image is accepted for a one-channel model, and named layers can be asked for.
    only_pool = visualize.feature_maps(model, images[5, :, :, 0], layer_names=["pool1"])
    assert list(only_pool) == ["pool1"] and only_pool["pool1"].shape == (13, 13, 8)


@pytest.mark.parametrize(("image_shape", "message"), [
    ((1, 28, 28, 1), r"expected one image of shape \(28, 28, 1\) or \(28, 28\).*got \(1, 28, 28, 1\).*not a batch"),
    ((28, 28, 3), r"expected one image of shape \(28, 28, 1\).*got \(28, 28, 3\)"),
    ((32, 32), r"got \(32, 32\)"),
])
def test_feature_maps_reject_images_of_the_wrong_shape(model, image_shape, message):
    with pytest.raises(ValueError, match=message):
        visualize.feature_maps(model, np.zeros(image_shape))


def test_feature_maps_reject_bad_models_and_layers(model):
    with pytest.raises(TypeError, match="expected a Keras model"):
        visualize.feature_maps(np.zeros(3), np.zeros((28, 28)))
    unbuilt = keras.Sequential([keras.layers.Conv2D(2, 3)])
    with pytest.raises(ValueError, match="no defined input"):
        visualize.feature_maps(unbuilt, np.zeros((28, 28)))
    dense_only = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="no Conv2D layers"):
        visualize.feature_maps(dense_only, np.zeros((28, 28)))
    with pytest.raises(ValueError, match="no layer 'conv9'.*conv1, pool1"):
        visualize.feature_maps(model, np.zeros((28, 28)), layer_names=["conv9"])
    with pytest.raises(ValueError, match="not a stack of feature maps"):
        visualize.feature_maps(model, np.zeros((28, 28)), layer_names=[model.layers[-1].name])


def test_activation_stats_measure_mean_and_zeros():
    assert visualize.activation_stats(np.array([[0.0, 3.0], [1.0, 0.0]])) == (1.0, 0.5)
    with pytest.raises(ValueError, match="empty"):
        visualize.activation_stats(np.zeros((0, 3)))


# ---------------------------------------------------------------------- grids


def test_filter_grid_scales_each_filter_and_places_it_by_index():
    rng = np.random.default_rng(0)
    kernels = rng.normal(size=(3, 3, 1, 5)) * np.array([1, 10, 100, 0.1, 1])   # very different ranges
    kernels[:, :, 0, 4] = 7.0                                                     # a constant filter
    grid = visualize.filter_grid(kernels, columns=3, padding=1)
    assert grid.shape == (2 * 3 + 1, 3 * 3 + 2)
    for k in range(5):
        top, left = (k // 3) * 4, (k % 3) * 4
        tile = grid[top:top + 3, left:left + 3]
        if k == 4:
            assert (tile == 0.5).all()
        else:
            assert tile.min() == 0 and tile.max() == 1
            expected = (kernels[:, :, 0, k] - kernels[:, :, 0, k].min()) / np.ptp(kernels[:, :, 0, k])
            np.testing.assert_allclose(tile, expected)
    assert (grid[3, :] == 1).all()   # white separator row
    assert visualize.filter_grid(rng.normal(size=(5, 5, 3, 4))).shape == (11, 11, 3)


def test_filter_grid_refuses_filters_it_cannot_show_as_images():
    with pytest.raises(ValueError, match="1 \\(grey\\) or 3 \\(RGB\\) input channels.*have 8"):
        visualize.filter_grid(np.zeros((3, 3, 8, 16)))
    with pytest.raises(ValueError, match=r"\(kh, kw, in_channels, filters\)"):
        visualize.filter_grid(np.zeros((3, 3)))


def test_feature_map_grid_uses_one_scale_for_all_channels():
    fmap = np.stack([np.full((2, 2), 1.0), np.full((2, 2), 4.0), np.full((2, 2), -3.0)], axis=-1)
    grid = visualize.feature_map_grid(fmap, padding=0, columns=3)
    np.testing.assert_allclose(grid[0], [0.25, 0.25, 1, 1, 0, 0])
    assert visualize.feature_map_grid(fmap, channels=[1], padding=0).shape == (2, 2)
    with pytest.raises(ValueError, match=r"channels must be in 0..2"):
        visualize.feature_map_grid(fmap, channels=[3])


def test_plots_are_returned_as_figures(model, digits):
    images, _ = digits
    maps = visualize.feature_maps(model, images[0])
    figures = [visualize.plot_filters(model.get_layer("conv1").kernel, title="conv1"),
               visualize.plot_feature_maps(maps, image=images[0], max_channels=4)]
    assert all(isinstance(fig, matplotlib.figure.Figure) for fig in figures)
    assert [ax.get_title() for ax in figures[1].axes] == ["input 28×28", "conv1 26×26×8", "conv2 13×13×16"]
    import matplotlib.pyplot as plt

    for fig in figures:
        plt.close(fig)


# ---------------------------------------------------------------------- view


@pytest.mark.parametrize(("layer", "channel"), [("conv1", 0), ("conv1", 7), ("conv2", 5), ("conv2", None)])
def test_view_shows_the_maps_of_the_model_and_describes_them(model, digits, layer, channel):
    images, labels = digits
    frame = feature_map_view(model, images, 3, layer, channel, labels=labels)
    direct = np.asarray(keras.Model(model.inputs[0], model.get_layer(layer).output)(images[3:4]))[0]
    np.testing.assert_allclose(frame.feature_map, direct, atol=1e-6)

    numbers = CAPTION.fullmatch(frame.caption)
    assert numbers, frame.caption
    assert numbers["index"] == "3" and numbers["label"] == str(labels[3]) and numbers["layer"] == layer
    assert tuple(int(numbers[k]) for k in "hwc") == direct.shape
    shown = direct if channel is None else direct[:, :, channel]
    assert float(numbers["mean"]) == pytest.approx(shown.mean(), abs=0.005)
    assert int(numbers["zeros"]) == round(100 * np.mean(shown == 0))
    if channel is None:
        assert int(numbers["all"]) == direct.shape[2]
    else:
        assert int(numbers["channel"]) == channel

    picture = decode_png(frame.png)
    assert picture.ndim == 3 and picture.shape[2] == 3 and picture.shape[0] >= 150


def test_view_pictures_differ_between_channels_and_images(model, digits):
    images, _ = digits
    pngs = {feature_map_view(model, images, i, "conv1", c).png for i in (0, 1) for c in (0, 1)}
    assert len(pngs) == 4


def test_view_rejects_indices_outside_the_data(model, digits):
    images, _ = digits
    with pytest.raises(ValueError, match=r"layer 'conv1' has channels 0..7, got channel 8"):
        feature_map_view(model, images, 0, "conv1", 8)
    with pytest.raises(ValueError, match=r"image_index must be in 0..11"):
        feature_map_view(model, images, 12, "conv1", 0)
    with pytest.raises(ValueError, match="no feature maps for layer 'pool1'; the layers shown are: conv1, conv2"):
        feature_map_view(model, images, 0, "pool1", 0, maps=visualize.feature_maps(model, images[0]))
    with pytest.raises(ValueError, match="not a stack of feature maps"):
        feature_map_view(model, images, 0, model.layers[-1].name, 0)


# ---------------------------------------------------------------------- widget


def test_channel_range_follows_the_layer(model, digits):
    images, labels = digits
    browser = feature_map_browser(model, images, labels)
    assert isinstance(browser, FeatureMapBrowser)
    assert browser.layer_dropdown.options == ("conv1", "conv2")
    assert browser.channel_slider.max == 7
    browser.layer_dropdown.value = "conv2"
    assert browser.channel_slider.max == 15
    browser.channel_slider.value = 12
    assert "layer conv2 (13×13×16), channel 12:" in browser.caption.value
    browser.layer_dropdown.value = "conv1"   # 12 does not exist there: the slider moves to the last channel
    assert browser.channel_slider.max == 7 and browser.channel_slider.value == 7
    assert "layer conv1 (26×26×8), channel 7:" in browser.caption.value


def test_controls_change_picture_and_caption(model, digits):
    images, labels = digits
    browser = feature_map_browser(model, images, labels)
    assert browser._dom_classes == ("cnn-course-feature-maps",)
    assert "cnn-course-picture" in browser.picture._dom_classes
    assert "cnn-course-caption" in browser.caption._dom_classes
    seen = [(browser.picture.value, browser.caption.value)]
    browser.image_slider.value = 4
    seen.append((browser.picture.value, browser.caption.value))
    assert f"image 4 (label {labels[4]})" in browser.caption.value
    browser.channel_slider.value = 3
    seen.append((browser.picture.value, browser.caption.value))
    browser.all_channels_checkbox.value = True
    seen.append((browser.picture.value, browser.caption.value))
    assert "all 8 channels" in browser.caption.value and browser.channel_slider.disabled
    assert len({png for png, _ in seen}) == len({caption for _, caption in seen}) == 4
    # What the widget shows is what the view computes for the same state.
    expected = feature_map_view(model, images, 4, "conv1", None, labels=labels)
    assert browser.picture.value == expected.png and browser.caption.value == expected.caption


def test_browser_rejects_bad_input_with_clear_messages(model, digits):
    images, labels = digits
    with pytest.raises(ValueError, match=r"expected one image of shape \(28, 28, 1\).*got \(32, 32, 1\)"):
        feature_map_browser(model, np.zeros((4, 32, 32, 1)))
    with pytest.raises(ValueError, match="non-empty stack of images"):
        feature_map_browser(model, np.zeros((28, 28)))
    with pytest.raises(ValueError, match="got 3 labels for 12 images"):
        feature_map_browser(model, images, labels[:3])
    dense_only = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="no Conv2D layers"):
        feature_map_browser(dense_only, images)


def test_browser_explains_an_impossible_state_in_its_caption(model, digits):
    images, _ = digits
    browser = feature_map_browser(model, images)
    picture_before = browser.picture.value
    # Someone widens the slider by hand beyond the layer's 8 channels: the caption says what is wrong.
    browser.channel_slider.max = 20
    browser.channel_slider.value = 15
    assert browser.caption.value == "⚠ layer 'conv1' has channels 0..7, got channel 15"
    assert browser.picture.value == picture_before
    browser.channel_slider.value = 2
    assert browser.caption.value.startswith("image 0 · layer conv1 (26×26×8), channel 2:")


def test_browser_can_show_the_relu_layers_of_a_conv_bn_relu_model(digits):
    images, _ = digits
    keras.utils.set_random_seed(0)
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(4, 3, use_bias=False, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU(name="relu")(x)
    x = keras.layers.Conv2D(6, 3, strides=2, name="conv_b")(x)
    x = keras.layers.ReLU(name="relu_b")(x)
    model = keras.Model(inputs, x)
    browser = feature_map_browser(model, images, layer_names=["relu", "relu_b"])
    assert browser.layer_dropdown.options == ("relu", "relu_b") and browser.channel_slider.max == 3
    browser.layer_dropdown.value = "relu_b"
    assert browser.channel_slider.max == 5
    direct = np.asarray(keras.Model(inputs, model.get_layer("relu_b").output)(images[:1]))[0]
    assert "layer relu_b (12×12×6), channel 0:" in browser.caption.value
    assert f"{100 * np.mean(direct[:, :, 0] == 0):.0f} % zeros" in browser.caption.value
    frame = feature_map_view(model, images, 0, "relu", 2)
    np.testing.assert_allclose(frame.feature_map, visualize.feature_maps(model, images[0], ["relu"])["relu"])
    assert frame.feature_map.min() == 0   # after the ReLU: no negative activations
    with pytest.raises(ValueError, match="no layer 'relu_c'"):
        feature_map_browser(model, images, layer_names=["relu_c"])
