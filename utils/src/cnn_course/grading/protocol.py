"""Messages and values that cross a sandbox boundary: framing and a pickle-free value codec.

This module runs on both sides of every boundary: in the coordinator, in the student
sandboxes (loaded by ``runner.py`` from its file path, because ``cnn_course`` itself may be
stubbed there) and in the judge sandbox. It therefore imports only the standard library and
NumPy at module level; Keras is imported only when a Keras model is encoded or decoded.

Framing
-------
A message is::

    u32 header length | UTF-8 JSON header | u32 number of blobs | (u32 blob length | blob bytes)*

with big-endian unsigned 32-bit lengths. The reader refuses a message larger than its limit
*before* reading it (:class:`MessageTooLarge`), so a hostile sender cannot make the reader
allocate more than that.

Values
------
:func:`encode_value` turns a Python value into a JSON-able description plus a list of blobs;
:func:`decode_value` turns it back. JSON scalars (None, bool, int, float, str) stay as they
are; containers and other types are tagged dictionaries: ``{"t": "list", "v": [...]}``,
``{"t": "tuple", ...}``, ``{"t": "dict", "v": [[key, value], ...]}``, ``{"t": "ndarray",
"blob": i}`` (``.npy`` bytes, never pickled), ``{"t": "keras", "blob": i}`` (``.keras``
bytes, loaded with ``safe_mode=True``), and ``{"unsupported": "<type name>"}`` for anything
else, which decodes to an :class:`UnsupportedValue`. Nothing is ever unpickled or evaluated.

Examples
--------
>>> import io
>>> import numpy as np
>>> description, blobs = encode_value({"kernel": np.eye(2), "size": (3, 3)})
>>> buffer = io.BytesIO()
>>> write_message(buffer, {"op": "value", "value": description}, blobs)
>>> _ = buffer.seek(0)
>>> header, blobs = read_message(buffer)
>>> decode_value(header["value"], blobs)["size"]
(3, 3)
"""

from __future__ import annotations

import builtins
import io
import json
import math
import os
import select
import struct
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any, BinaryIO

import numpy as np

#: Largest message a reader accepts unless told otherwise (a Keras model fits easily).
DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024**2
#: Largest JSON header; headers hold descriptions and text, the bulk travels as blobs.
MAX_HEADER_BYTES = 64 * 1024**2
#: Most blobs one message may carry.
MAX_BLOBS = 100_000
#: Deepest nesting of containers the codec follows; deeper values are "unsupported".
MAX_DEPTH = 64

_U32 = struct.Struct(">I")
_NPY_MAGIC = b"\x93NUMPY"


class ProtocolError(RuntimeError):
    """A message or value does not follow the protocol (the peer is broken or hostile)."""


class MessageTooLarge(ProtocolError):
    """A message is larger than the reader's limit; it was not read."""


class ChannelClosed(ProtocolError, EOFError):
    """The other end closed the channel (or died) before a whole message arrived."""


class ChannelTimeout(ProtocolError, TimeoutError):
    """No whole message arrived (or could be sent) within the time allowed."""


# --------------------------------------------------------------------------------------------
# Framing


def _pack(header: dict, blobs: Sequence[bytes]) -> bytes:
    try:
        header_bytes = json.dumps(header, ensure_ascii=False, allow_nan=True).encode("utf-8")
    except (TypeError, ValueError) as error:
        raise ProtocolError(f"the message header is not plain JSON data: {error}") from None
    parts = [_U32.pack(len(header_bytes)), header_bytes, _U32.pack(len(blobs))]
    for blob in blobs:
        blob = bytes(blob)
        parts += [_U32.pack(len(blob)), blob]
    return b"".join(parts)


def write_message(stream: BinaryIO, header: dict, blobs: Sequence[bytes] = ()) -> None:
    """Write one message (a JSON-able ``header`` dict and binary ``blobs``) and flush.

    Parameters
    ----------
    stream : binary file
        Where to write (a pipe, a socket file, ``io.BytesIO``).
    header : dict
        Plain JSON data (str keys; str, numbers, bool, None, lists, dicts).
    blobs : sequence of bytes
        Binary attachments, e.g. the ``.npy`` bytes of :func:`encode_value`.
    """
    if not isinstance(header, dict):
        raise ProtocolError(f"a message header must be a dict, got {type(header).__name__}")
    stream.write(_pack(header, blobs))
    stream.flush()


def _read_exactly(read, size: int) -> bytes:
    chunks, remaining = [], size
    while remaining:
        chunk = read(min(remaining, 1024**2))
        if not chunk:
            raise ChannelClosed("the channel closed in the middle of a message"
                                if chunks or size != remaining else "the channel is closed")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _unpack(read, max_bytes: int) -> tuple[dict, list[bytes]]:
    """Read one message with ``read(n)`` (which returns at most n bytes, b"" at the end)."""
    (header_size,) = _U32.unpack(_read_exactly(read, 4))
    total = 4 + header_size
    if header_size > MAX_HEADER_BYTES or total > max_bytes:
        raise MessageTooLarge(f"a message header of {header_size:,} bytes is over the limit "
                              f"of {min(MAX_HEADER_BYTES, max_bytes):,} bytes")
    header_bytes = _read_exactly(read, header_size)
    (blob_count,) = _U32.unpack(_read_exactly(read, 4))
    total += 4
    if blob_count > MAX_BLOBS:
        raise MessageTooLarge(f"a message with {blob_count:,} attachments is over the limit of {MAX_BLOBS:,}")
    blobs = []
    for _ in range(blob_count):
        (blob_size,) = _U32.unpack(_read_exactly(read, 4))
        total += 4 + blob_size
        if total > max_bytes:
            raise MessageTooLarge(f"a message of more than {total:,} bytes is over the limit of {max_bytes:,} bytes")
        blobs.append(_read_exactly(read, blob_size))
    try:
        header = json.loads(header_bytes.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise ProtocolError(f"a message header is not valid JSON: {type(error).__name__}") from None
    if not isinstance(header, dict):
        raise ProtocolError(f"a message header must be a JSON object, got {type(header).__name__}")
    return header, blobs


def read_message(stream: BinaryIO, *, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> tuple[dict, list[bytes]]:
    """Read one message from a blocking binary stream.

    Parameters
    ----------
    stream : binary file
        Where to read from.
    max_bytes : int
        Largest message accepted; a larger one raises :class:`MessageTooLarge` before its
        body is read.

    Returns
    -------
    header : dict
    blobs : list of bytes

    Raises
    ------
    ChannelClosed
        The stream ended before a whole message.
    MessageTooLarge, ProtocolError
        The message is too large or malformed.
    """
    return _unpack(stream.read, max_bytes)


def _wait(fd: int, event: int, deadline: float | None) -> bool:
    """Wait until ``fd`` is ready (or hung up); False when the deadline passed first.

    ``poll`` rather than ``select``: no limit on descriptor numbers in a busy worker.
    """
    poller = select.poll()
    poller.register(fd, event)
    while True:
        remaining = None if deadline is None else max(deadline - time.monotonic(), 0.0)
        try:
            return bool(poller.poll(None if remaining is None else math.ceil(remaining * 1000)))
        except InterruptedError:
            continue


class Channel:
    """Both directions of a pipe pair to a sandbox, with deadlines on every read and write.

    The coordinator uses it so that a sandbox that stops reading or writing can never block
    it: :meth:`receive` and :meth:`send` raise :class:`ChannelTimeout` when their deadline
    passes. Both ends are used through their file descriptors, without Python buffering.

    Parameters
    ----------
    reader : binary file or int
        The end to read replies from (a sandbox's ``channel_out``).
    writer : binary file or int
        The end to write requests to (a sandbox's ``channel_in``).
    max_bytes : int
        Largest message :meth:`receive` accepts.
    """

    def __init__(self, reader: BinaryIO | int, writer: BinaryIO | int, *,
                 max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES):
        self._reader_fd = reader if isinstance(reader, int) else reader.fileno()
        self._writer_fd = writer if isinstance(writer, int) else writer.fileno()
        self.max_bytes = max_bytes
        os.set_blocking(self._writer_fd, False)

    def send(self, header: dict, blobs: Sequence[bytes] = (), *, timeout: float | None = None) -> None:
        """Send one message; raise :class:`ChannelTimeout` if the peer does not take it in time."""
        data = memoryview(_pack(header, blobs))
        deadline = None if timeout is None else time.monotonic() + timeout
        while data:
            if not _wait(self._writer_fd, select.POLLOUT, deadline):
                raise ChannelTimeout("the sandbox did not read its request in time")
            try:
                written = os.write(self._writer_fd, data[:1024**2])
            except BlockingIOError:
                continue
            except (BrokenPipeError, OSError) as error:
                raise ChannelClosed(f"the sandbox closed its channel ({type(error).__name__})") from None
            data = data[written:]

    def receive(self, *, timeout: float | None = None, max_bytes: int | None = None) -> tuple[dict, list[bytes]]:
        """Receive one message within ``timeout`` seconds (None: wait as long as it takes)."""
        deadline = None if timeout is None else time.monotonic() + timeout

        def read(size: int) -> bytes:
            if not _wait(self._reader_fd, select.POLLIN, deadline):
                raise ChannelTimeout("the sandbox did not answer in time")
            try:
                return os.read(self._reader_fd, size)
            except OSError:
                return b""

        return _unpack(read, self.max_bytes if max_bytes is None else max_bytes)

    def request(self, header: dict, blobs: Sequence[bytes] = (), *, timeout: float | None = None,
                max_bytes: int | None = None) -> tuple[dict, list[bytes]]:
        """Send a message and wait for the answer; ``timeout`` covers both."""
        started = time.monotonic()
        self.send(header, blobs, timeout=timeout)
        remaining = None if timeout is None else max(timeout - (time.monotonic() - started), 0.0)
        return self.receive(timeout=remaining, max_bytes=max_bytes)


# --------------------------------------------------------------------------------------------
# Values


class UnsupportedValue:
    """Stands for a value that could not cross the boundary (its type is not data).

    It is what the hidden tests see when a student function returns, say, a generator or an
    object of the student's own class: comparisons with it are false and using it fails with
    a message that names the type.
    """

    __slots__ = ("type_name",)

    def __init__(self, type_name: str):
        self.type_name = str(type_name)[:200]

    def __repr__(self) -> str:
        return f"<a {self.type_name} value, which the grader cannot pass between processes>"

    def __eq__(self, other) -> bool:
        return isinstance(other, UnsupportedValue) and other.type_name == self.type_name

    def __hash__(self) -> int:
        return hash(("UnsupportedValue", self.type_name))


def is_keras_model(value: Any) -> bool:
    """True for a Keras model, checked only if Keras is already imported (never imports it)."""
    # Only when Keras is already loaded (the student used it): never import it just to check.
    # A stubbed Keras (restricted run) may raise on any attribute, hence the broad except.
    try:
        model_class = getattr(sys.modules.get("keras"), "Model", None)
        return isinstance(model_class, type) and isinstance(value, model_class)
    except Exception:
        return False


def _encode_array(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _decode_array(blob: bytes) -> np.ndarray:
    """Load ``.npy`` bytes without pickles, checking the header against the data length first."""
    if not blob.startswith(_NPY_MAGIC):
        raise ProtocolError("an array attachment is not in .npy format")
    stream = io.BytesIO(blob)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version in ((2, 0), (3, 0)):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise ProtocolError(f"unknown .npy version {version}")
    except ProtocolError:
        raise
    except Exception as error:
        raise ProtocolError(f"an array attachment has a broken .npy header: {error}") from None
    if dtype.hasobject:
        raise ProtocolError("an array attachment holds Python objects (pickled data); refused")
    count = math.prod(shape)
    data = blob[stream.tell():]
    if count * dtype.itemsize != len(data):
        raise ProtocolError(f"an array attachment of shape {shape} and dtype {dtype} should hold "
                            f"{count * dtype.itemsize:,} bytes of data, it holds {len(data):,}")
    array = np.frombuffer(data, dtype=dtype, count=count) if count else np.empty(0, dtype=dtype)
    order = "F" if fortran_order else "C"
    return array.reshape(shape, order=order).copy(order=order)


def _encode_keras(model: Any) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.keras")
        model.save(path)
        with open(path, "rb") as file:
            return file.read()


def _decode_keras(blob: bytes) -> Any:
    import keras  # only the judge (full environment) decodes models

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.keras")
        with open(path, "wb") as file:
            file.write(blob)
        try:
            return keras.saving.load_model(path, safe_mode=True)
        except Exception as error:  # e.g. a Lambda layer, which safe mode refuses to deserialise
            message = str(error).splitlines()[0][:300] if str(error) else type(error).__name__
            raise ProtocolError(f"the Keras model could not be loaded safely: {message}") from None


def _type_name(value: Any) -> str:
    kind = type(value)
    module = getattr(kind, "__module__", "") or ""
    name = getattr(kind, "__qualname__", getattr(kind, "__name__", "object"))
    return name if module in ("builtins", "__main__", "") else f"{module}.{name}"


def encode_value(value: Any, blobs: list[bytes] | None = None, *,
                 encode_callable: Callable[[Any], Any] | None = None) -> tuple[Any, list[bytes]]:
    """Describe ``value`` as JSON data plus binary blobs (see the module docstring).

    Parameters
    ----------
    value : object
        The value to send.
    blobs : list of bytes, optional
        The list to append attachments to (a new one if omitted).
    encode_callable : callable, optional
        Called with each function found in ``value``; returns its description (e.g.
        ``{"t": "function", "id": 3, "name": "smooth"}`` for a function the peer may call
        back) or None for "unsupported". Without it, functions are unsupported.

    Returns
    -------
    description : JSON-able object
    blobs : list of bytes
    """
    if blobs is None:
        blobs = []
    return _encode(value, blobs, encode_callable, 0), blobs


def _encode(value: Any, blobs: list[bytes], encode_callable, depth: int) -> Any:
    if depth > MAX_DEPTH:
        return {"unsupported": "value nested too deeply"}

    def inner(item):
        return _encode(item, blobs, encode_callable, depth + 1)

    # bool before int: bool is a subclass of int. Exact types only, so a student's subclass of
    # int or str with surprising methods is not passed on as if it were a plain int or str.
    kind = type(value)
    if value is None or kind in (bool, str, int):
        return value
    if kind is float:
        return value if math.isfinite(value) else {"t": "float", "v": repr(value)}
    if kind is complex:
        return {"t": "complex", "v": [value.real, value.imag]}
    if kind in (bytes, bytearray):
        blobs.append(bytes(value))
        return {"t": kind.__name__, "blob": len(blobs) - 1}
    if kind in (list, tuple, set, frozenset):
        return {"t": kind.__name__, "v": [inner(item) for item in value]}
    if kind is dict:
        return {"t": "dict", "v": [[inner(key), inner(item)] for key, item in value.items()]}
    if isinstance(value, (np.ndarray, np.generic)):
        array = np.asarray(value)
        if array.dtype.hasobject:
            return {"unsupported": f"{_type_name(value)} of Python objects"}
        blobs.append(_encode_array(array))
        return {"t": "ndarray" if isinstance(value, np.ndarray) else "npscalar", "blob": len(blobs) - 1}
    if isinstance(value, np.dtype) and not value.hasobject and value.fields is None:
        return {"t": "dtype", "v": value.str}
    if isinstance(value, type) and issubclass(value, np.generic) and value is not np.object_:
        try:
            return {"t": "nptype", "v": np.dtype(value).str}
        except TypeError:
            return {"unsupported": f"type {value.__name__}"}
    if is_keras_model(value):
        try:
            blobs.append(_encode_keras(value))
        except Exception as error:  # a model Keras cannot save (e.g. a custom layer)
            return {"unsupported": f"{_type_name(value)} that Keras could not save ({type(error).__name__})"}
        return {"t": "keras", "blob": len(blobs) - 1}
    if encode_callable is not None and callable(value) and not isinstance(value, type):
        description = encode_callable(value)
        if description is not None:
            return description
    return {"unsupported": _type_name(value)}


_SIMPLE_DTYPE_CHARS = set("<>|=?bBhHiIlLqQeEfdgFDGSUVmMcp0123456789[]sun")


def _blob(description: dict, blobs: Sequence[bytes]) -> bytes:
    index = description.get("blob")
    if type(index) is not int or not 0 <= index < len(blobs):
        raise ProtocolError(f"a value refers to attachment {index!r}, which is not in the message")
    return blobs[index]


def decode_value(description: Any, blobs: Sequence[bytes] = (), *,
                 decode_function: Callable[[dict], Any] | None = None) -> Any:
    """Rebuild a value from :func:`encode_value`'s description and blobs.

    Arrays are read from ``.npy`` bytes with pickles refused; Keras models are loaded with
    ``safe_mode=True``; unsupported values become :class:`UnsupportedValue`.

    Parameters
    ----------
    description : JSON data
    blobs : sequence of bytes
    decode_function : callable, optional
        Turns a function description (tag ``"function"`` or ``"student_function"``) into a
        callable; without it such values become :class:`UnsupportedValue`.

    Raises
    ------
    ProtocolError
        The description is malformed (which an honest encoder never produces).
    """
    return _decode(description, blobs, decode_function, 0)


def _decode(description: Any, blobs: Sequence[bytes], decode_function, depth: int) -> Any:
    if depth > MAX_DEPTH + 1:
        raise ProtocolError("a value is nested too deeply")

    def inner(item):
        return _decode(item, blobs, decode_function, depth + 1)

    if description is None or type(description) in (bool, int, float, str):
        return description
    if type(description) is not dict:
        raise ProtocolError(f"a value description must be JSON scalar or object, got {type(description).__name__}")
    if "unsupported" in description:
        return UnsupportedValue(str(description["unsupported"]))
    tag = description.get("t")
    content = description.get("v")
    if tag in ("list", "tuple", "set", "frozenset"):
        if type(content) is not list:
            raise ProtocolError(f"a {tag} value has no item list")
        items = [inner(item) for item in content]
        try:
            return {"list": list, "tuple": tuple, "set": set, "frozenset": frozenset}[tag](items)
        except TypeError as error:
            raise ProtocolError(f"a {tag} value cannot be rebuilt: {error}") from None
    if tag == "dict":
        if type(content) is not list or not all(type(pair) is list and len(pair) == 2 for pair in content):
            raise ProtocolError("a dict value has no list of key-value pairs")
        try:
            return {inner(key): inner(item) for key, item in content}
        except TypeError as error:
            raise ProtocolError(f"a dict value cannot be rebuilt: {error}") from None
    if tag == "float" and content in ("nan", "inf", "-inf"):
        return float(content)
    if tag == "complex" and type(content) is list and len(content) == 2:
        return complex(float(content[0]), float(content[1]))
    if tag in ("bytes", "bytearray"):
        data = _blob(description, blobs)
        return bytes(data) if tag == "bytes" else bytearray(data)
    if tag in ("ndarray", "npscalar"):
        array = _decode_array(_blob(description, blobs))
        if tag == "npscalar":
            if array.ndim != 0:
                raise ProtocolError("a NumPy scalar attachment is not 0-dimensional")
            return array[()]
        return array
    if tag in ("dtype", "nptype"):
        if type(content) is not str or len(content) > 20 or not set(content) <= _SIMPLE_DTYPE_CHARS:
            raise ProtocolError(f"{content!r} is not a simple NumPy dtype")
        try:
            dtype = np.dtype(content)
        except TypeError:
            raise ProtocolError(f"{content!r} is not a NumPy dtype") from None
        return dtype if tag == "dtype" else dtype.type
    if tag == "keras":
        return _decode_keras(_blob(description, blobs))
    if tag in ("function", "student_function"):
        name = description.get("name")
        if type(name) is not str:
            raise ProtocolError("a function value has no name")
        if decode_function is None:
            return UnsupportedValue(f"function {name[:100]}")
        return decode_function(description)
    raise ProtocolError(f"unknown value tag {tag!r}")


# --------------------------------------------------------------------------------------------
# Errors that cross the boundary

#: Builtin exception classes an error from the other side may come back as.
_REBUILDABLE_ERRORS = {name: cls for name, cls in vars(builtins).items()
                       if isinstance(cls, type) and issubclass(cls, Exception)}


def describe_error(error: BaseException) -> dict:
    """``{type, builtin, message, name}`` of an exception, for an ``error`` message.

    ``builtin`` is the first builtin class among the exception's bases, so that a student's
    ``class ShapeError(ValueError)`` is still caught by ``except ValueError`` on the other side.
    """
    builtin = "Exception"
    for cls in getattr(type(error), "__mro__", ()):
        if getattr(cls, "__module__", None) == "builtins" and getattr(builtins, cls.__name__, None) is cls:
            builtin = cls.__name__
            break
    try:
        message = str(error)
    except Exception:
        message = f"<{type(error).__name__} whose message cannot be shown>"
    name = getattr(error, "name", None)
    return {"type": type(error).__name__[:200], "builtin": builtin, "message": message[:10_000],
            "name": name[:200] if isinstance(name, str) else None}


def rebuild_error(description: dict) -> Exception:
    """The exception to raise for an ``error`` message from the other side.

    Builtin classes that are ``Exception`` subclasses come back as themselves (ValueError,
    TypeError, NotImplementedError, AssertionError, ...), with the message; anything else
    (SystemExit, KeyboardInterrupt, classes that need more arguments) as RuntimeError.
    """
    if not isinstance(description, dict):
        return RuntimeError("the other side reported an error it did not describe")
    kind = description.get("builtin")
    message = description.get("message")
    message = message if isinstance(message, str) else ""
    cls = _REBUILDABLE_ERRORS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        original = description.get("type")
        original = original if isinstance(original, str) else "error"
        return RuntimeError(f"{original}: {message}" if message else original)
    try:
        error = cls(message) if message else cls()
    except Exception:
        return RuntimeError(f"{kind}: {message}")
    name = description.get("name")
    if isinstance(name, str) and isinstance(error, (NameError, AttributeError)):
        error.name = name
    return error
