"""The CIFAR-10 and GTSRB loaders read their real on-disk formats, and image_folder_copy writes what Keras reads.

Neither data set can be downloaded here, so each test writes a small folder in the data
set's real format: CIFAR-10's Python 2 pickles (as the official ``cifar-10-python.tar.gz``
holds them, https://www.cs.toronto.edu/~kriz/cifar.html: dicts with the byte-string keys
b"data", a uint8 array of one row per image, 1,024 red values then 1,024 green then 1,024
blue, each plane row by row, and b"labels", a list of ints; ``batches.meta`` with
b"label_names"), and GTSRB's training-set layout (readme of GTSRB_Final_Training_Images.zip:
``Final_Training/Images/000NN/GT-000NN.csv`` with ``Filename;Width;Height;Roi.X1;Roi.Y1;
Roi.X2;Roi.Y2;ClassId`` and ``TTTTT_FFFFF.ppm`` images, TTTTT the track, i.e. the physical
sign). Pixel checks use hand-made images whose expected pixels are written out here.
"""

from __future__ import annotations

import io
import os
import pickle
import struct

import numpy as np
import pytest
from cnn_course import data
from PIL import Image

# ----------------------------------------------------------------------------- CIFAR-10

PER_BATCH = 4  # images per batch in the small copy (10,000 in the real files)
LABEL_NAMES = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship",
               b"truck"]  # batches.meta of the official tarball


class Python2Pickler(pickle._Pickler):
    """Writes pickles as Python 2's cPickle wrote CIFAR-10: strings as 8-bit STRING opcodes.

    Python 3 writes bytes at protocol 2 as a call to ``_codecs.encode``, which the real
    files never contain; numpy 1 named ``numpy.core.multiarray`` (numpy 2 writes
    ``numpy._core``), fixed in :func:`python2_pickle`.
    """

    dispatch = dict(pickle._Pickler.dispatch)

    def save_python2_string(self, obj):
        if isinstance(obj, str):
            obj = obj.encode("latin-1")
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)

    dispatch[bytes] = save_python2_string
    dispatch[str] = save_python2_string


def python2_pickle(obj) -> bytes:
    buffer = io.BytesIO()
    Python2Pickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue().replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")


def planar_row(image_hwc) -> np.ndarray:
    """One CIFAR row by hand: the red plane, then green, then blue, each read row by row."""
    return np.concatenate([image_hwc[:, :, channel].reshape(-1) for channel in range(3)])


# Hand-made image: red = row number, green = column number, blue = 200, except one blue
# pixel of 7 at row 0, column 31. In the file (planar) the green value of pixel (r, c) is
# byte 1024 + 32 r + c, the blue of (0, 31) byte 2048 + 31.
HAND_MADE = np.zeros((32, 32, 3), np.uint8)
HAND_MADE[:, :, 0] = np.arange(32)[:, None]
HAND_MADE[:, :, 1] = np.arange(32)[None, :]
HAND_MADE[:, :, 2] = 200
HAND_MADE[0, 31, 2] = 7


def write_cifar10_folder(folder, *, batch_sizes=None, label_names=LABEL_NAMES):
    """A small cifar-10-batches-py: image j of training batch k is uniform grey 10 k + j, except
    HAND_MADE (training batch 2, position 1) and HAND_MADE flipped left-right (test, position 3)."""
    folder.mkdir(parents=True)
    (folder / "batches.meta").write_bytes(python2_pickle(
        {b"num_cases_per_batch": PER_BATCH, b"label_names": label_names, b"num_vis": 3072}))
    labels = {}
    for k, name in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"], start=1):
        n = (batch_sizes or {}).get(name, PER_BATCH)
        rows = np.stack([np.full(3072, 10 * k + j, np.uint8) for j in range(n)])
        if name == "data_batch_2":
            rows[1] = planar_row(HAND_MADE)
        if name == "test_batch":
            rows[3] = planar_row(HAND_MADE[:, ::-1])
        labels[name] = [(3 * k + j) % 10 for j in range(n)]
        (folder / name).write_bytes(python2_pickle(
            {b"batch_label": f"batch {k}".encode(), b"labels": labels[name], b"data": rows,
             b"filenames": [f"image_{j}.png".encode() for j in range(n)]}))
    return labels


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    """An empty Keras cache; the real ~/.keras is never read or written."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(data, "_CIFAR10_IMAGES_PER_BATCH", PER_BATCH)
    return tmp_path / "keras"


@pytest.fixture
def no_internet(monkeypatch):
    def download_fails():
        print("Downloading data from https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz")
        raise OSError("no internet")

    monkeypatch.setattr(data, "_cifar10_from_keras", download_fails)


def test_hand_made_row_is_in_the_real_byte_order():
    # The test's own writer, checked against the byte positions worked out above.
    row = planar_row(HAND_MADE)
    assert row[1024 + 32 * 5 + 9] == 9  # green of (5, 9) is its column
    assert row[32 * 5 + 9] == 5  # red of (5, 9) is its row
    assert row[2048 + 31] == 7 and row[2048 + 30] == 200


@pytest.mark.parametrize("subfolder", ["cifar-10-batches-py", "cifar-10-batches-py-target/cifar-10-batches-py"])
def test_cifar10_reads_the_keras_cache_folder_pixel_exactly(keras_home, no_internet, capsys, subfolder):
    # Keras 2 unpacked into datasets/cifar-10-batches-py; Keras >= 3.5 one folder deeper.
    labels = write_cifar10_folder(keras_home / "datasets" / subfolder)
    (x_train, y_train), (x_test, y_test) = data.load_cifar10()
    assert x_train.shape == (5 * PER_BATCH, 32, 32, 3) and x_test.shape == (PER_BATCH, 32, 32, 3)
    assert x_train.dtype == np.uint8 and y_train.shape == (5 * PER_BATCH,)
    # The planar rows come back as (row, column, colour).
    hand_made = x_train[PER_BATCH + 1]
    assert hand_made[5, 9].tolist() == [5, 9, 200]
    assert hand_made[0, 31].tolist() == [0, 31, 7]
    assert hand_made[31, 0].tolist() == [31, 0, 200]
    np.testing.assert_array_equal(hand_made, HAND_MADE)
    np.testing.assert_array_equal(x_test[3], HAND_MADE[:, ::-1])
    # Batches in order 1..5: image j of batch k is grey 10 k + j.
    assert x_train[0].min() == x_train[0].max() == 10
    assert x_train[2 * PER_BATCH + 3].min() == x_train[2 * PER_BATCH + 3].max() == 33
    assert x_test[0].min() == x_test[0].max() == 60
    expected_train = sum((labels[f"data_batch_{i}"] for i in range(1, 6)), [])
    assert y_train.tolist() == expected_train and y_test.tolist() == labels["test_batch"]
    out = " ".join(capsys.readouterr().out.split())  # the line is wrapped at 90 columns
    assert out.startswith("CIFAR-10: Keras cache folder (") and subfolder.split("/")[-1] in out
    assert "Downloading" not in out  # the cache is read first: no download is even tried


def test_cifar10_offline_error_says_how_to_get_it(keras_home, no_internet, capsys):
    with pytest.raises(data.DataUnavailableError) as error:
        data.load_cifar10()
    message = str(error.value)
    assert "not available offline" in message
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in message
    assert "internet" in message and "cifar-10-batches-py" in message
    assert str(keras_home / "datasets" / "cifar-10-batches-py") in message  # where to put the folder
    # Both sources are named, in the order they were tried, with their reasons.
    assert message.index("Keras cache folder") < message.index("Keras download: OSError: no internet")
    assert capsys.readouterr().out == ""  # Keras' "Downloading data from" is not shown for a failed source


def test_cifar10_falls_back_to_the_keras_download(keras_home, monkeypatch, capsys):
    # What keras.datasets.cifar10.load_data() returns: labels of shape (N, 1).
    x = np.zeros((5 * PER_BATCH, 32, 32, 3), np.uint8)
    y = (np.arange(5 * PER_BATCH) % 10).astype(np.uint8).reshape(-1, 1)
    x_t, y_t = np.ones((PER_BATCH, 32, 32, 3), np.uint8), np.full((PER_BATCH, 1), 9, np.uint8)
    monkeypatch.setattr(data, "_cifar10_from_keras", lambda: ((x, y), (x_t, y_t)))
    (x_train, y_train), (_, y_test) = data.load_cifar10()
    assert y_train.shape == (5 * PER_BATCH,) and y_train.tolist() == y[:, 0].tolist()
    assert y_test.tolist() == [9] * PER_BATCH
    out = " ".join(capsys.readouterr().out.split())
    assert out.startswith("CIFAR-10: Keras download (keras.datasets.cifar10")


def test_cifar10_truncated_batch_is_refused(keras_home, no_internet):
    write_cifar10_folder(keras_home / "datasets" / "cifar-10-batches-py", batch_sizes={"data_batch_3": 3})
    with pytest.raises(data.DataUnavailableError, match=r"data_batch_3: the images have shape \(3, 3072\)"):
        data.load_cifar10(verbose=False)


def test_cifar100_folder_is_not_taken_for_cifar10(keras_home, no_internet):
    write_cifar10_folder(keras_home / "datasets" / "cifar-10-batches-py",
                         label_names=[b"apple", b"aquarium_fish"] + LABEL_NAMES[2:])
    with pytest.raises(data.DataUnavailableError, match="CIFAR-100 or another data set"):
        data.load_cifar10(verbose=False)


class RunsCode:
    """What a tampered pickle could hold: a call of any function while it is read."""

    def __reduce__(self):
        return (os.getcwd, ())


def test_cifar10_pickle_that_calls_a_function_is_refused(keras_home, no_internet):
    folder = keras_home / "datasets" / "cifar-10-batches-py"
    write_cifar10_folder(folder)
    (folder / "data_batch_1").write_bytes(python2_pickle({b"data": RunsCode(), b"labels": []}))
    with pytest.raises(data.DataUnavailableError, match=r"refusing to read (posix|os)\.getcwd from a CIFAR-10 file"):
        data.load_cifar10(verbose=False)


def test_cifar10_class_names():
    assert data.CIFAR10_CLASS_NAMES == tuple(name.decode() for name in LABEL_NAMES)


# ----------------------------------------------------------------------------- GTSRB

HEADER = "Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId"


def sign_image(width, height, box, colour):
    """A width×height photo: grey 50 border, and inside ``box`` (x1, y1, x2, y2) a pattern:
    red = row within the box, green = column within the box, blue = ``colour``."""
    image = np.full((height, width, 3), 50, np.uint8)
    x1, y1, x2, y2 = box
    rows, cols = np.mgrid[0:y2 - y1, 0:x2 - x1]
    image[y1:y2, x1:x2, 0] = rows
    image[y1:y2, x1:x2, 1] = cols
    image[y1:y2, x1:x2, 2] = colour
    return image


# class id -> [(file name, width, height, box, blue)]
GTSRB_FILES = {
    0: [("00000_00000.ppm", 12, 14, (2, 3, 8, 9), 100),
        ("00000_00001.ppm", 13, 13, (3, 3, 9, 9), 101),
        ("00001_00000.ppm", 11, 12, (1, 4, 7, 10), 102)],
    2: [("00000_00000.ppm", 10, 10, (2, 2, 8, 8), 200)],
}


def write_gtsrb_folder(root, files=GTSRB_FILES):
    images = root / "GTSRB" / "Final_Training" / "Images"
    for class_id, rows in files.items():
        folder = images / f"{class_id:05d}"
        folder.mkdir(parents=True)
        lines = [HEADER]
        for name, width, height, box, blue in rows:
            Image.fromarray(sign_image(width, height, box, blue)).save(folder / name)  # binary PPM (P6)
            lines.append(";".join(map(str, [name, width, height, *box, class_id])))
        (folder / f"GT-{class_id:05d}.csv").write_text("\n".join(lines) + "\n")
    return images


def test_written_ppm_is_the_real_binary_format(tmp_path):
    images = write_gtsrb_folder(tmp_path)
    assert (images / "00002" / "00000_00000.ppm").read_bytes().startswith(b"P6\n10 10\n255\n")


def test_gtsrb_crops_each_image_to_its_sign(tmp_path, capsys):
    write_gtsrb_folder(tmp_path)
    # 6×6 boxes read at image_size 6: no resizing, so the crop shows pixel for pixel.
    x, y, tracks = data.load_gtsrb(tmp_path / "GTSRB", image_size=6)
    assert x.shape == (4, 6, 6, 3) and x.dtype == np.uint8
    first = x[0]
    # Box (2, 3)-(8, 9): columns 2..7, rows 3..8 of the photo; no grey-50 border pixel left.
    assert first[0, 0].tolist() == [0, 0, 100] and first[5, 5].tolist() == [5, 5, 100]
    assert first[2, 4].tolist() == [2, 4, 100]
    assert (x[..., 2] != 50).all()
    assert x[:, 0, 0, 2].tolist() == [100, 101, 102, 200]
    assert y.tolist() == [0, 0, 0, 2]
    assert capsys.readouterr().out.startswith("GTSRB: 4 images of 2 classes (3 tracks) from ")


def test_gtsrb_tracks_group_the_images_of_one_physical_sign(tmp_path):
    write_gtsrb_folder(tmp_path)
    _, _, tracks = data.load_gtsrb(tmp_path / "GTSRB", image_size=6, verbose=False)
    # Class 0: track 00000 twice, track 00001; class 2: its own track 00000, another sign.
    assert tracks.tolist() == [0, 0, 1, 2]


def test_gtsrb_resizes_with_pil_bilinear(tmp_path):
    write_gtsrb_folder(tmp_path)
    x, _, _ = data.load_gtsrb(tmp_path, image_size=3, verbose=False)  # the unzip folder works too
    crop = sign_image(12, 14, (2, 3, 8, 9), 100)[3:9, 2:8]
    expected = np.asarray(Image.fromarray(crop).resize((3, 3), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(x[0], expected)
    assert (x[:, :, :, 2] == np.array([100, 101, 102, 200])[:, None, None]).all()  # uniform stays uniform


def test_gtsrb_missing_folder_says_where_to_get_it(tmp_path):
    with pytest.raises(data.DataUnavailableError) as error:
        data.load_gtsrb(tmp_path / "nowhere")
    assert "Final_Training/Images" in str(error.value) and "https://benchmark.ini.rub.de" in str(error.value)


def malformed(tmp_path, change):
    images = write_gtsrb_folder(tmp_path)
    change(images)
    return tmp_path / "GTSRB"


def replace_in_csv(old, new):
    def change(images):
        csv = images / "00000" / "GT-00000.csv"
        csv.write_text(csv.read_text().replace(old, new))
    return change


@pytest.mark.parametrize(("change", "message"), [
    (lambda images: (images / "00000" / "GT-00000.csv").unlink(), "has no annotation file GT-00000.csv"),
    (lambda images: (images / "extra").mkdir(), r"folders \['extra'\]; expected only class folders 00000 to 00042"),
    (lambda images: (images / "00043").mkdir(), r"folders \['00043'\]"),
    (lambda images: (images / "00000" / "00000_00001.ppm").unlink(), "00000_00001.ppm does not exist"),
    (replace_in_csv(HEADER, HEADER.replace(";", ",")), "the first line must be the header"),
    (replace_in_csv("12;14;2;3;8;9;0", "12;14;2;3;8;9;5"), "ClassId 5 in the folder of class 0"),
    (replace_in_csv("12;14;2;3;8;9;0", "12;14;2;3;13;9;0"), r"box \(2, 3\)-\(13, 9\) does not lie inside the 12×14"),
    (replace_in_csv("12;14;2;3;8;9;0", "12;15;2;3;8;9;0"), "is 12×14 pixels, but the csv says 12×15"),
    (replace_in_csv("12;14;2;3;8;9;0", "12;14;2;3;8;0"), "expected 8 fields separated by ';', got 7"),
    (replace_in_csv("00001_00000.ppm", "sign.ppm"), "expected a file name TTTTT_FFFFF.ppm"),
])
def test_gtsrb_malformed_folder_is_named(tmp_path, change, message):
    with pytest.raises(ValueError, match=message):
        data.load_gtsrb(malformed(tmp_path, change), verbose=False)


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"folder": None}, TypeError, "folder must be a path"),
    ({"image_size": 0}, ValueError, "image_size must be at least 1 pixel, got 0"),
    ({"image_size": 32.0}, TypeError, "image_size must be a whole number"),
    ({"image_size": True}, TypeError, "image_size must be a whole number"),
])
def test_gtsrb_bad_arguments(tmp_path, kwargs, error, message):
    kwargs = {"folder": tmp_path, **kwargs}
    with pytest.raises(error, match=message):
        data.load_gtsrb(**kwargs)


# ----------------------------------------------------------------------------- image folders


def test_image_folder_copy_writes_one_folder_per_class(tmp_path):
    x = np.arange(5 * 4 * 3, dtype=np.uint8).reshape(5, 4, 3)
    names = data.image_folder_copy(x, np.array([2, 0, 2, 1, 0]), tmp_path / "copy")
    assert names == ["00", "01", "02"]
    assert sorted(p.relative_to(tmp_path / "copy").as_posix() for p in (tmp_path / "copy").rglob("*.png")) == [
        "00/00001.png", "00/00004.png", "01/00003.png", "02/00000.png", "02/00002.png"]
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "copy" / "01" / "00003.png")), x[3])


def test_image_folder_copy_names_with_slashes_keep_label_order(tmp_path):
    x = np.zeros((2, 2, 2, 3), np.uint8)
    names = data.image_folder_copy(x, [0, 1], tmp_path / "copy", ["T-shirt/top", "Trouser", "Bag"])
    assert names == ["00_T-shirt_top", "01_Trouser", "02_Bag"]
    assert (tmp_path / "copy" / "02_Bag").is_dir()  # an empty class is still a class


@pytest.mark.parametrize("colour", [False, True])
def test_image_dataset_from_directory_reads_the_labels_back(tmp_path, colour):
    keras = pytest.importorskip("keras")
    rng = np.random.default_rng(0)
    shape = (7, 5, 6, 3) if colour else (7, 5, 6)
    x = rng.integers(0, 256, size=shape, dtype=np.uint8)
    y = np.array([1, 0, 2, 1, 1, 0, 2])
    names = data.image_folder_copy(x, y, tmp_path / "copy")
    dataset = keras.utils.image_dataset_from_directory(
        tmp_path / "copy", image_size=(5, 6), batch_size=32, shuffle=False,
        color_mode="rgb" if colour else "grayscale", verbose=False)
    images, labels = next(iter(dataset))
    assert dataset.class_names == names
    # Unshuffled, Keras lists class by class, files in sorted (= our index) order.
    order = sorted(range(len(y)), key=lambda i: (y[i], i))
    assert np.asarray(labels).tolist() == y[order].tolist()
    np.testing.assert_array_equal(np.asarray(images).reshape(x.shape), x[order].astype(np.float32))


@pytest.mark.parametrize(("x", "y", "class_names", "error", "message"), [
    (np.zeros((2, 3, 3), np.float32), [0, 1], None, TypeError, "expected uint8 images"),
    (np.zeros((2, 3, 3, 2), np.uint8), [0, 1], None, ValueError, r"got \(2, 3, 3, 2\)"),
    (np.zeros((2, 3, 3), np.uint8), [0, 1, 1], None, ValueError, "expected 2 integer labels"),
    (np.zeros((2, 3, 3), np.uint8), [0, -1], None, ValueError, "integer labels >= 0"),
    (np.zeros((2, 3, 3), np.uint8), [0, 2], ["a", "b"], ValueError, "got 2 class names, but the labels go up to 2"),
])
def test_image_folder_copy_bad_arguments(tmp_path, x, y, class_names, error, message):
    with pytest.raises(error, match=message):
        data.image_folder_copy(x, y, tmp_path / "copy", class_names)


def test_image_folder_copy_refuses_a_folder_with_files(tmp_path):
    (tmp_path / "old.png").write_bytes(b"")
    with pytest.raises(FileExistsError, match="not an empty folder"):
        data.image_folder_copy(np.zeros((1, 2, 2), np.uint8), [0], tmp_path)


def test_keras_own_batch_reader_reads_the_small_copy_the_same(tmp_path, keras_home, no_internet):
    # Keras' reader of the real files (keras.src.datasets.cifar.load_batch, private: skipped if it
    # moves) refuses anything but numpy's array rebuild, as ours does: it accepting our files
    # shows they have the real files' format; its arrays are the reference for ours.
    cifar = pytest.importorskip("keras.src.datasets.cifar")
    folder = keras_home / "datasets" / "cifar-10-batches-py"
    write_cifar10_folder(folder)
    (x_train, y_train), (x_test, y_test) = data.load_cifar10(verbose=False)
    planes, labels = cifar.load_batch(str(folder / "data_batch_2"))
    np.testing.assert_array_equal(x_train[PER_BATCH:2 * PER_BATCH], planes.transpose(0, 2, 3, 1))
    assert y_train[PER_BATCH:2 * PER_BATCH].tolist() == list(labels)
    planes, labels = cifar.load_batch(str(folder / "test_batch"))
    np.testing.assert_array_equal(x_test, planes.transpose(0, 2, 3, 1))
    assert y_test.tolist() == list(labels)
