"""cnn_course.receptive_field: hand-worked stacks, and the real check against Keras gradients.

The gradient check: a unit of a linear network whose weights are all positive has a
non-zero gradient with respect to exactly the input pixels it depends on, so the
support of d(unit)/d(input), taken with tf.GradientTape on a real Keras model, must
be input_mask(...), and for a unit away from the border its bounding box must be the
receptive field r (Araujo, Norris & Sim, Distill 2019). Max pooling would route the
gradient to one pixel per window, so the gradient models use average pooling.
"""

from __future__ import annotations

import numpy as np
import pytest
from cnn_course.receptive_field import (
    Layer,
    conv,
    input_mask,
    input_region,
    parse_layers,
    pool,
    receptive_field_of_model,
    receptive_fields,
)

# ----------------------------------------------------------------------------- hand-worked


def sizes(layers, input_shape=None):
    return [row.receptive_field for row in receptive_fields(layers, input_shape)]


def test_stacked_3x3_convolutions_grow_the_field_by_two_each():
    assert sizes([conv(3), conv(3)]) == [(3, 3), (5, 5)]
    assert sizes([conv(3)] * 3) == [(3, 3), (5, 5), (7, 7)]


def test_pooling_with_stride_doubles_the_growth_of_later_layers():
    table = receptive_fields([conv(3), pool(2), conv(3)])
    assert [row.receptive_field[0] for row in table] == [3, 4, 8]
    assert [row.jump for row in table] == [(1, 1), (2, 2), (2, 2)]


def test_dilation_spreads_the_kernel():
    assert sizes([conv(3, dilation=2)]) == [(5, 5)]
    # Dilations 1, 2, 4 (Yu & Koltun's context module): 3, 7, 15 with no loss of resolution.
    table = receptive_fields("c3 c3d2 c3d4")
    assert [row.receptive_field[0] for row in table] == [3, 7, 15]
    assert all(row.jump == (1, 1) for row in table)


def test_resnet_stem():
    # 7x7 conv stride 2, then 3x3 max pooling stride 2: r = 7, then 7 + 2 * 2 = 11; jump 4.
    table = receptive_fields([conv(7, stride=2, padding="same"), pool(3, stride=2, padding="same")], 224)
    assert [(row.receptive_field, row.jump, row.output_size) for row in table] == [
        ((7, 7), (2, 2), (112, 112)),
        ((11, 11), (4, 4), (56, 56)),
    ]


def test_rows_and_columns_are_independent():
    table = receptive_fields([conv((1, 3)), conv((3, 1)), conv((3, 5), stride=(1, 2)), pool((2, 1))], (20, 30))
    assert [row.receptive_field for row in table] == [(1, 3), (3, 3), (5, 7), (6, 7)]
    assert [row.jump for row in table] == [(1, 1), (1, 1), (1, 2), (2, 2)]
    assert [row.output_size for row in table] == [(20, 28), (18, 28), (16, 12), (8, 12)]


def test_start_is_the_centre_of_the_first_field():
    assert receptive_fields("c3")[0].start == (1.0, 1.0)  # pixels 0..2
    assert receptive_fields("c3same")[0].start == (0.0, 0.0)  # pixels -1..1 (one of padding)
    assert receptive_fields("c3 p2")[1].start == (1.5, 1.5)  # pixels 0..3
    # TensorFlow's "same" padding with a stride depends on the input size:
    # 5 pixels -> 3 outputs, 2 pixels of padding, 1 before; 6 -> 3 outputs, 1 pixel, 0 before.
    assert receptive_fields("c3s2same", 5)[0].first_pixel == (-1, -1)
    assert receptive_fields("c3s2same", 6)[0].first_pixel == (0, 0)
    assert receptive_fields("c3s2same")[0].start is None


def test_explicit_integer_padding():
    table = receptive_fields([conv(3, padding=2), conv(3, padding=(0, 1))], (8, 8))
    assert table[0].first_pixel == (-2, -2)
    assert table[0].output_size == (10, 10)
    assert table[1].first_pixel == (-2, -3)
    assert table[1].output_size == (8, 10)


def test_input_region_of_a_hand_worked_unit():
    # Two valid 3x3 convs: unit (0, 4) sees rows 0..4 and columns 4..8.
    assert input_region("c3 c3", 0, 4, (10, 10)) == (slice(0, 5), slice(4, 9))
    # conv 3x3, pool 2, conv 3x3: unit (1, 2) starts at 0 + 1 * 2 = 2 and 0 + 2 * 2 = 4, 8 wide.
    assert input_region("c3 p2 c3", 1, 2, (20, 20)) == (slice(2, 10), slice(4, 12))
    # At the border the field is clipped to the image.
    assert input_region("c5same", 0, 9, (10, 10)) == (slice(0, 3), slice(7, 10))


def test_input_mask_leaves_holes_for_dilation_and_large_strides():
    mask = input_mask("c3d2", 0, 0, (5, 5))
    assert mask.sum() == 9
    np.testing.assert_array_equal(mask[0], [True, False, True, False, True])
    # Dilations 1, 2, 4 fill each other's holes; 2, 2 do not.
    assert input_mask("c3 c3d2 c3d4", 20, 20, (60, 60)).sum() == 15 * 15
    np.testing.assert_array_equal(np.flatnonzero(input_mask("c3d2 c3d2", 0, 0, (9, 9))[0]), [0, 2, 4, 6, 8])
    # A 1x1 conv with stride 3, then a 2x2 conv: pixels 0 and 3 per axis.
    np.testing.assert_array_equal(np.flatnonzero(input_mask("c1s3 c2", 0, 0, (9, 9))[0]), [0, 3])
    # Without holes the mask is the (clipped) region.
    region_only = np.zeros((12, 12), bool)
    region_only[input_region("c3 p2 c3", 2, 1, (12, 12))] = True
    np.testing.assert_array_equal(input_mask("c3 p2 c3", 2, 1, (12, 12)), region_only)


def test_table_prints_one_line_per_layer():
    text = receptive_fields("c3 p2 c3d2", (32, 32)).to_text()
    lines = text.splitlines()
    assert len(lines) == 5
    assert lines[0].split() == ["#", "layer", "output", "receptive", "field", "jump", "start"]
    assert lines[4].split() == ["3", "conv", "3×3", "dilation", "2", "11×11", "12×12", "2", "5.5"]
    assert str(receptive_fields("c3s2same c3")).splitlines()[2].split()[-1] == "?"


def test_parse_layers():
    layers = parse_layers("c3, C5x1s2x1  p3s1 c3d2same p2x1", padding="valid")
    assert layers == [
        Layer("conv", 3, name="c3"),
        Layer("conv", (5, 1), stride=(2, 1), name="c5x1s2x1"),
        Layer("pool", 3, stride=1, name="p3s1"),
        Layer("conv", 3, dilation=2, padding="same", name="c3d2same"),
        Layer("pool", (2, 1), stride=(2, 1), name="p2x1"),
    ]
    assert parse_layers("c3 c3valid", padding="same")[0].padding == "same"
    assert parse_layers("c3 c3valid", padding="same")[1].padding == "valid"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the stack is empty"),
        ("c3 x3", "cannot read layer 2 'x3'"),
        ("c3 p2d2", "pooling layers have no dilation"),
        ("c0", "kernel size must be positive, got 0"),
        ("c3s0", "stride must be positive, got 0"),
    ],
)
def test_parse_layers_explains_what_it_cannot_read(text, message):
    with pytest.raises(ValueError, match=message):
        parse_layers(text)


def test_bad_layers_and_inputs_are_rejected_with_clear_messages():
    with pytest.raises(ValueError, match="kind must be 'conv' or 'pool'"):
        Layer("dense")
    with pytest.raises(ValueError, match="padding must be 'valid', 'same' or a number"):
        conv(3, padding="full")
    with pytest.raises(ValueError, match="padding must be zero or more"):
        conv(3, padding=-1)
    with pytest.raises(TypeError, match="kernel size must be an int or a pair"):
        conv(2.5)
    with pytest.raises(TypeError, match="list of Layer objects"):
        receptive_fields([3, 3])
    with pytest.raises(ValueError, match=r"layer 3 \(conv 3×3\) gets a 2×2 input, too small"):
        receptive_fields("c3 c3 c3", (6, 6))
    with pytest.raises(ValueError, match=r"out_row must be in 0\.\.5 \(the output is 6×8\), got 6"):
        input_region("c3 c3", 6, 0, (10, 12))
    with pytest.raises(ValueError, match="input_shape must be"):
        input_mask("c3", 0, 0, (1, 10, 10, 3))


# ----------------------------------------------------------------------------- Keras gradients


@pytest.fixture(scope="module")
def keras():
    # Imported here, so the pure-geometry tests above do not wait for TensorFlow; a broken
    # install fails these tests, it never skips them.
    import keras

    return keras


def keras_model(keras, layers, input_shape, *, max_pooling=False, seed=0):
    """A linear model with positive random weights and the geometry of ``layers``."""
    model = keras.Sequential([keras.Input((*input_shape, 1))])
    for number, layer in enumerate(layers):
        padding = layer.padding
        if not isinstance(padding, str):
            model.add(keras.layers.ZeroPadding2D(padding))
            padding = "valid"
        if layer.kind == "conv":
            model.add(keras.layers.Conv2D(
                2, layer.kernel, strides=layer.stride, dilation_rate=layer.dilation, padding=padding,
                use_bias=False,
                kernel_initializer=keras.initializers.RandomUniform(0.5, 1.5, seed=seed + number),
            ))
        else:
            pooling = keras.layers.MaxPooling2D if max_pooling else keras.layers.AveragePooling2D
            model.add(pooling(layer.kernel, strides=layer.stride, padding=padding))
    return model


def gradient_supports(model, input_shape, units):
    """For each output unit (row, col), where d(unit)/d(input) is non-zero: bool (len(units), H, W)."""
    import tensorflow as tf

    # One batch element per unit: the gradient of the sum of one unit per element gives
    # each unit's own input gradient in one backward pass.
    x = tf.constant(np.random.default_rng(0).uniform(0.5, 1.5, (len(units), *input_shape, 1)), tf.float32)
    indices = [[b, row, col, 0] for b, (row, col) in enumerate(units)]
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(tf.gather_nd(model(x), indices))
    return tape.gradient(total, x).numpy()[..., 0] != 0


def random_stack(rng):
    """A random chain of 1..4 conv/pool layers that Keras can build."""
    layers = []
    for _ in range(rng.integers(1, 5)):
        kernel = tuple(int(k) for k in rng.choice([1, 2, 3, 5], size=2)) if rng.random() < 0.3 else int(
            rng.choice([1, 2, 3, 5]))
        padding = ["valid", "same", int(rng.integers(0, 3))][rng.integers(0, 3)]
        if rng.random() < 0.7:
            # TensorFlow cannot combine a stride > 1 with a dilation > 1.
            if rng.random() < 0.5:
                layers.append(conv(kernel, dilation=int(rng.integers(1, 4)), padding=padding))
            else:
                layers.append(conv(kernel, stride=int(rng.integers(1, 4)), padding=padding))
        else:
            layers.append(pool(kernel, stride=int(rng.integers(1, 4)), padding=padding))
    return layers


HAND_PICKED_STACKS = [
    ("c3 c3 c3", (13, 11)),
    ("c3 p2 c3", (16, 17)),
    ("c3d2 c3d2", (15, 15)),
    ("c3same c3s2same c3same p2same", (13, 14)),
    ("c3s2same c3s2same c3s2same", (17, 16)),
    ("c1s3 c2 p2s1", (14, 15)),
    ("c3x1 c1x3 c3x5s2x1", (12, 19)),
    ([conv(3, padding=2), pool(2, padding=1), conv(2, dilation=4, padding=1)], (11, 12)),
    ("c7s2same p3s2same", (23, 24)),
]


def stacks_for_the_gradient_check():
    rng = np.random.default_rng(2024)
    stacks = list(HAND_PICKED_STACKS)
    while len(stacks) < len(HAND_PICKED_STACKS) + 12:
        layers, shape = random_stack(rng), (int(rng.integers(9, 25)), int(rng.integers(9, 25)))
        try:
            receptive_fields(layers, shape)
        except ValueError:  # too small an input for this stack; draw another
            continue
        stacks.append((layers, shape))
    return stacks


def units_to_check(output_size, rng):
    rows, cols = output_size
    units = {(0, 0), (rows - 1, cols - 1), (rows // 2, cols // 2), (0, cols - 1)}
    units.add((int(rng.integers(rows)), int(rng.integers(cols))))
    return sorted(units)


@pytest.mark.parametrize(("layers", "input_shape"), stacks_for_the_gradient_check(),
                         ids=lambda value: value if isinstance(value, str) else None)
def test_the_field_is_where_the_gradient_of_a_keras_model_is_non_zero(keras, layers, input_shape):
    layers = parse_layers(layers) if isinstance(layers, str) else layers
    table = receptive_fields(layers, input_shape)
    model = keras_model(keras, layers, input_shape)
    assert tuple(model.output_shape[1:3]) == table[-1].output_size

    units = units_to_check(table[-1].output_size, np.random.default_rng(len(layers)))
    supports = gradient_supports(model, input_shape, units)
    for (row, col), support in zip(units, supports, strict=True):
        described = f"unit ({row}, {col}) of {[layer.describe() for layer in layers]} on {input_shape}"
        np.testing.assert_array_equal(support, input_mask(layers, row, col, input_shape), err_msg=described)

        in_region = np.zeros(input_shape, bool)
        in_region[input_region(layers, row, col, input_shape)] = True
        assert not (support & ~in_region).any(), described

        (top, bottom), (left, right) = table[-1].field_box(row, col)
        if top >= 0 and left >= 0 and bottom <= input_shape[0] and right <= input_shape[1]:
            # A unit whose whole field lies in the image: the gradient spans exactly r x r.
            rows, cols = np.flatnonzero(support.any(axis=1)), np.flatnonzero(support.any(axis=0))
            assert (rows[0], rows[-1] + 1, cols[0], cols[-1] + 1) == (top, bottom, left, right), described
            assert (rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1) == table[-1].receptive_field


def test_the_gradient_check_covers_interior_units_holes_and_clipping():
    # Guard against a check that passes vacuously: the stacks above must include
    # interior units, dilation/stride holes, and fields clipped at the border.
    interior = holes = clipped = 0
    for layers, shape in stacks_for_the_gradient_check():
        layers = parse_layers(layers) if isinstance(layers, str) else layers
        last = receptive_fields(layers, shape)[-1]
        for row, col in units_to_check(last.output_size, np.random.default_rng(len(layers))):
            (top, bottom), (left, right) = last.field_box(row, col)
            inside = top >= 0 and left >= 0 and bottom <= shape[0] and right <= shape[1]
            interior += inside
            clipped += not inside
            region = input_region(layers, row, col, shape)
            holes += bool((~input_mask(layers, row, col, shape)[region]).any())
    assert interior >= 20 and holes >= 5 and clipped >= 20, (interior, holes, clipped)


def test_max_pooling_sends_the_gradient_to_part_of_the_field(keras):
    layers, shape = parse_layers("c3 p2 c3"), (12, 12)
    support = gradient_supports(keras_model(keras, layers, shape, max_pooling=True), shape, [(1, 1)])[0]
    mask = input_mask(layers, 1, 1, shape)
    assert support.any() and not (support & ~mask).any()
    assert support.sum() < mask.sum()


# ----------------------------------------------------------------------------- Keras models


def geometry(table):
    return [(row.receptive_field, row.jump, row.first_pixel, row.output_size) for row in table]


def test_receptive_field_of_model_reads_conv_and_pool_layers_and_skips_per_pixel_ones(keras):
    layers = keras.layers
    model = keras.Sequential([
        keras.Input((32, 30, 3)),
        layers.Conv2D(8, 3, padding="same"),
        layers.BatchNormalization(),
        layers.ReLU(),
        layers.MaxPooling2D(2),
        layers.DepthwiseConv2D((3, 5), dilation_rate=2),
        layers.Dropout(0.3),
        layers.SeparableConv2D(4, 3, strides=2, padding="same"),
        layers.Activation("relu"),
        layers.AveragePooling2D(3, strides=1),
    ])
    table = receptive_field_of_model(model)
    expected = receptive_fields(
        [conv(3, padding="same"), pool(2), conv((3, 5), dilation=2), conv(3, stride=2, padding="same"),
         pool(3, stride=1)],
        (32, 30),
    )
    assert geometry(table) == geometry(expected)
    assert table[-1].output_size == tuple(model.output_shape[1:3])
    assert [row.layer.name for row in table][:2] == [model.layers[0].name, model.layers[3].name]


def test_receptive_field_of_model_follows_functional_chains_and_nested_models(keras):
    layers = keras.layers
    inputs = keras.Input((28, 28, 1))
    block = keras.Sequential([layers.Conv2D(4, 3), layers.Conv2D(4, 3), layers.MaxPooling2D()])
    outputs = layers.Conv2D(8, 3)(block(layers.Rescaling(1 / 255)(inputs)))
    table = receptive_field_of_model(keras.Model(inputs, outputs))
    assert [row.receptive_field[0] for row in table] == [3, 5, 6, 10]
    assert table[-1].output_size == (10, 10)


def test_receptive_field_of_model_without_an_input_size(keras):
    model = keras.Sequential([keras.layers.Conv2D(2, 5), keras.layers.Conv2D(2, 3)])
    table = receptive_field_of_model(model)
    assert [row.receptive_field for row in table] == [(5, 5), (7, 7)]
    assert table[-1].output_size is None


def test_receptive_field_of_model_rejects_layers_it_cannot_follow(keras):
    layers = keras.layers
    with pytest.raises(ValueError, match=r"'flatten' \(Flatten\) mixes all positions"):
        receptive_field_of_model(keras.Sequential([
            keras.Input((8, 8, 1)), layers.Conv2D(2, 3), layers.Flatten(name="flatten"), layers.Dense(2)]))
    with pytest.raises(ValueError, match=r"through layer 'up' \(UpSampling2D\)"):
        receptive_field_of_model(keras.Sequential([keras.Input((8, 8, 1)), layers.UpSampling2D(name="up")]))
    inputs = keras.Input((8, 8, 1))
    first = layers.Conv2D(2, 3, padding="same")(inputs)
    residual = layers.Add(name="add")([first, layers.Conv2D(2, 3, padding="same")(first)])
    with pytest.raises(ValueError, match="'add' does not simply take the output of .* chains of layers only"):
        receptive_field_of_model(keras.Model(inputs, residual))
    with pytest.raises(TypeError, match="must be a keras.Model"):
        receptive_field_of_model([conv(3)])


def test_receptive_field_of_model_reads_models_that_share_their_layers(keras):
    # A feature extractor shares its base's layers, and a model rebuilt at another input size calls
    # them a second time: each layer then has several inbound nodes, and the chain is this model's own.
    from cnn_course.transfer import feature_extractor

    layers = keras.layers
    base = keras.Sequential([keras.Input((32, 32, 3)), layers.Conv2D(4, 3, name="a"), layers.MaxPooling2D(name="p"),
                             layers.Conv2D(4, 3, name="b")])
    expected = [row.receptive_field for row in receptive_field_of_model(base)]
    extractor = feature_extractor(base, "b", pooling=None, input_shape=(64, 64, 3))
    inputs = keras.Input((48, 48, 3))
    x = inputs
    for layer in base.layers:
        x = layer(x)
    rebuilt = keras.Model(inputs, x)
    for model, side in ((extractor, 64), (rebuilt, 48)):
        table = receptive_field_of_model(model)
        assert [row.receptive_field for row in table] == expected == [(3, 3), (4, 4), (8, 8)]
        assert table[-1].output_size == ((side - 2) // 2 - 2,) * 2
