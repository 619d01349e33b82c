"""Framing and value codec of the grader's channel (cnn_course.grading.protocol)."""

import io
import os
import pickle
import struct
import threading
import time

import numpy as np
import pytest
from cnn_course.grading import protocol
from cnn_course.grading.protocol import (
    Channel,
    ChannelClosed,
    ChannelTimeout,
    MessageTooLarge,
    ProtocolError,
    UnsupportedValue,
    decode_value,
    encode_value,
    read_message,
    write_message,
)


def round_trip(value):
    description, blobs = encode_value(value)
    buffer = io.BytesIO()
    write_message(buffer, {"op": "value", "value": description}, blobs)
    buffer.seek(0)
    header, blobs = read_message(buffer)
    assert buffer.read() == b"", "the reader should consume exactly one message"
    return decode_value(header["value"], blobs)


@pytest.mark.parametrize("value", [
    None, True, False, 0, -7, 2**100, 1.5, float("inf"), "text with ünïcode ✓", "",
    [1, [2, 3]], (1, (2.5, "a")), {"a": 1, "b": [None]}, {1: "one", (2, 3): "pair"},
    {1, 2}, frozenset({"x"}), 3 + 4j, b"\x00bytes", bytearray(b"ab"), [], (), {},
])
def test_plain_values_round_trip_with_their_types(value):
    result = round_trip(value)
    assert result == value
    assert type(result) is type(value)


def test_nan_round_trips():
    assert np.isnan(round_trip(float("nan")))


@pytest.mark.parametrize("array", [
    np.arange(12, dtype=np.uint8).reshape(3, 4),
    np.asfortranarray(np.random.default_rng(0).normal(size=(4, 5))),
    np.zeros((0, 3), dtype=np.float32),
    np.array([True, False]),
    np.array(["ab", "c"]),
    np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")]),
    np.arange(6).reshape(2, 3)[:, ::2],  # not contiguous
])
def test_arrays_round_trip_with_shape_dtype_and_values(array):
    result = round_trip(array)
    assert isinstance(result, np.ndarray)
    assert result.shape == array.shape and result.dtype == array.dtype
    assert np.array_equal(result, array)
    assert result.flags.writeable, "the hidden tests may change the arrays they get"


def test_numpy_scalars_and_types_round_trip():
    assert type(round_trip(np.float32(1.5))) is np.float32
    assert round_trip(np.int64(-3)) == -3 and type(round_trip(np.int64(-3))) is np.int64
    assert round_trip(np.float32) is np.float32
    assert round_trip(np.dtype("uint8")) == np.dtype("uint8")


def test_nested_arrays_inside_containers():
    value = {"kernels": [np.eye(2), np.ones(3)], "size": (3, 3)}
    result = round_trip(value)
    assert np.array_equal(result["kernels"][0], np.eye(2)) and result["size"] == (3, 3)


@pytest.mark.parametrize("value, type_name", [
    (lambda x: x, "function"),
    (iter([1]), "list_iterator"),
    (np.array([object()]), "numpy.ndarray of Python objects"),
    (object(), "object"),
])
def test_other_values_become_unsupported_with_their_type_name(value, type_name):
    description, blobs = encode_value(value)
    assert description == {"unsupported": type_name} and blobs == []
    result = decode_value(description, blobs)
    assert isinstance(result, UnsupportedValue) and result.type_name == type_name
    assert type_name in repr(result)


def test_subclasses_of_plain_types_are_not_trusted():
    class Sneaky(int):
        def __eq__(self, other):
            return True

    description, _ = encode_value(Sneaky(3))
    assert description["unsupported"].endswith("<locals>.Sneaky")


def test_deeply_nested_values_are_cut_off_not_crashing():
    value = []
    for _ in range(protocol.MAX_DEPTH + 10):
        value = [value]
    result = round_trip(value)
    depth = 0
    while isinstance(result, list):
        result, depth = result[0], depth + 1
    assert isinstance(result, UnsupportedValue) and depth == protocol.MAX_DEPTH + 1


def test_a_pickle_in_place_of_npy_bytes_is_refused_without_unpickling():
    class Bomb:
        def __reduce__(self):
            return (os.system, ("echo pwned > /dev/null",))

    for blob in [pickle.dumps(Bomb()), pickle.dumps(np.eye(2))]:
        with pytest.raises(ProtocolError, match=".npy format"):
            decode_value({"t": "ndarray", "blob": 0}, [blob])


def test_an_object_array_in_npy_format_is_refused():
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ProtocolError, match="Python objects"):
        decode_value({"t": "ndarray", "blob": 0}, [buffer.getvalue()])


def test_an_npy_header_claiming_more_data_than_sent_is_refused_before_allocating():
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)})
    with pytest.raises(ProtocolError, match="should hold"):
        decode_value({"t": "ndarray", "blob": 0}, [buffer.getvalue() + b"\x00" * 8])


@pytest.mark.parametrize("description", [
    {"t": "ndarray", "blob": 5}, {"t": "list"}, {"t": "dict", "v": [[1]]}, {"t": "nope"}, [1, 2],
    {"t": "dtype", "v": "O"}, {"t": "dtype", "v": "[('a', 'O')]"}, {"t": "set", "v": [{"t": "list", "v": []}]},
])
def test_malformed_descriptions_raise_protocol_errors(description):
    with pytest.raises(ProtocolError):
        decode_value(description, [])


def test_a_frame_over_the_limit_is_refused_before_its_body_is_read():
    buffer = io.BytesIO()
    write_message(buffer, {"op": "x"}, [b"\x00" * 5000])
    buffer.seek(0)
    with pytest.raises(MessageTooLarge):
        read_message(buffer, max_bytes=1000)
    # The claimed length alone is enough: a huge header length is refused without reading it.
    hostile = io.BytesIO(struct.pack(">I", 2**32 - 1) + b"{}")
    with pytest.raises(MessageTooLarge):
        read_message(hostile)


@pytest.mark.parametrize("data", [
    b"", b"\x00\x00", struct.pack(">I", 10) + b"{}",
])
def test_truncated_messages_mean_a_closed_channel(data):
    with pytest.raises(ChannelClosed):
        read_message(io.BytesIO(data))


@pytest.mark.parametrize("header", [b"not json", b"[1, 2]", b"\xff\xfe", b"[" * 100_000])
def test_headers_that_are_not_json_objects_are_refused(header):
    data = struct.pack(">I", len(header)) + header + struct.pack(">I", 0)
    with pytest.raises(ProtocolError):
        read_message(io.BytesIO(data))


def test_channel_times_out_when_the_peer_is_silent_or_stops_reading():
    request_read, request_write = os.pipe()
    reply_read, reply_write = os.pipe()
    channel = Channel(reply_read, request_write)
    started = time.monotonic()
    with pytest.raises(ChannelTimeout):
        channel.receive(timeout=0.2)
    # Nobody reads the requests: the pipe fills up and send gives up at its deadline.
    with pytest.raises(ChannelTimeout):
        channel.send({"op": "x"}, [b"\x00" * (4 * 1024**2)], timeout=0.3)
    assert time.monotonic() - started < 5
    for fd in (request_read, request_write, reply_read, reply_write):
        os.close(fd)


def test_channel_request_and_reply_through_pipes():
    request_read, request_write = os.pipe()
    reply_read, reply_write = os.pipe()

    def echo():
        with os.fdopen(request_read, "rb") as requests, os.fdopen(reply_write, "wb") as replies:
            header, blobs = read_message(requests)
            write_message(replies, {"op": "echo", "got": header}, blobs[::-1])

    thread = threading.Thread(target=echo)
    thread.start()
    channel = Channel(reply_read, request_write)
    header, blobs = channel.request({"op": "ping"}, [b"a", b"b" * 100_000], timeout=10)
    thread.join()
    assert header == {"op": "echo", "got": {"op": "ping"}} and blobs == [b"b" * 100_000, b"a"]
    with pytest.raises(ChannelClosed):
        channel.receive(timeout=5)
    os.close(reply_read)
    os.close(request_write)


def test_keras_models_travel_as_keras_files_and_load_in_safe_mode():
    keras = pytest.importorskip("keras")
    model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(2)])
    description, blobs = encode_value({"model": model})
    assert blobs[0][:2] == b"PK", "a .keras file is a zip archive"
    loaded = decode_value(description, blobs)["model"]
    x = np.ones((1, 4), dtype=np.float32)
    assert np.allclose(keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(model(x)))
    # A Lambda layer carries Python code: safe mode refuses to load it.
    sneaky = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Lambda(lambda t: t * 2)])
    description, blobs = encode_value(sneaky)
    with pytest.raises(ProtocolError, match="loaded safely"):
        decode_value(description, blobs)
