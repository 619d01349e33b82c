"""Read a PyTorch checkpoint in torch's legacy (pre-1.6) format into numpy arrays, without torch.

Before version 1.6, ``torch.save`` wrote a file as several pickles one after another:

1. a magic number, 2. the protocol version, 3. a dictionary describing the machine
(byte order, sizes of C types), 4. the saved object itself (for a model: its
``state_dict``), in which every tensor refers to a *storage* through a pickle
"persistent id", 5. the list of storage keys in the order their data follows, and
6. for each storage: its element count as an 8-byte little-endian integer, then
its raw bytes.

We read it with a restricted :class:`pickle.Unpickler` that knows only the handful of
names such a checkpoint uses (anything else is refused, so a malicious file cannot
run code) and turn each tensor into a numpy array.

Examples
--------
>>> state = read_legacy_torch_checkpoint("mobilenet_v2-b0353104.pth")  # doctest: +SKIP
>>> state["classifier.1.weight"].shape  # doctest: +SKIP
(1000, 1280)
"""

from __future__ import annotations

import collections
import io
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["LEGACY_MAGIC_NUMBER", "read_legacy_torch_checkpoint"]

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL_VERSION = 1001

# torch's legacy storage classes and the numpy dtype of their elements.
_STORAGE_DTYPES = {
    "DoubleStorage": np.float64,
    "FloatStorage": np.float32,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


@dataclass(frozen=True)
class _StorageType:
    name: str

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(_STORAGE_DTYPES[self.name]).newbyteorder("<")


@dataclass
class _StorageRef:
    """A storage named in the main pickle; its bytes come later in the file."""

    key: str
    dtype: np.dtype
    numel: int
    data: np.ndarray | None = None


@dataclass
class _TensorRef:
    """A tensor as a view (offset, shape, strides in elements) into a storage."""

    storage: _StorageRef
    offset: int
    shape: tuple[int, ...]
    strides: tuple[int, ...]


def _rebuild_tensor(storage, storage_offset, size, stride, *unused_extra):
    # Stands in for torch._utils._rebuild_tensor(_v2); the extra arguments
    # (requires_grad, backward hooks, metadata) do not matter for weights.
    return _TensorRef(storage, int(storage_offset), tuple(size), tuple(stride))


class _RestrictedUnpickler(pickle.Unpickler):
    """Knows only the names a legacy state_dict uses; records storages as it meets them."""

    def __init__(self, file):
        super().__init__(file)
        self.storages: dict[str, _StorageRef] = {}

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name}: a weights checkpoint should not need it"
        )

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        _, storage_type, key, _location, numel = pid[:5]
        if len(pid) > 5 and pid[5] is not None:
            raise pickle.UnpicklingError("storage views (from very old torch versions) are not supported")
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"unexpected storage type {storage_type!r}")
        if key not in self.storages:
            self.storages[key] = _StorageRef(str(key), storage_type.dtype, int(numel))
        return self.storages[key]


def _load_plain_pickle(stream) -> object:
    """Load one of the small header pickles (numbers, dicts, lists of strings only)."""
    return _RestrictedUnpickler(stream).load()


def _materialise(tensor: _TensorRef) -> np.ndarray:
    if not isinstance(tensor.storage, _StorageRef) or tensor.storage.data is None:
        raise ValueError("a tensor refers to something that is not one of the file's storages")
    data = tensor.storage.data
    itemsize = data.dtype.itemsize
    # A hostile or damaged file could describe a view that reads outside its storage;
    # as_strided would then read arbitrary memory. Torch itself never writes negative
    # sizes, strides or offsets, so anything but counts >= 0 is refused.
    fields = (("offset", (tensor.offset,)), ("size", tensor.shape), ("stride", tensor.strides))
    for what, values in fields:
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values):
            raise ValueError(
                f"tensor view of storage {tensor.storage.key} has a negative or non-integer {what} "
                f"({values}): not a valid checkpoint"
            )
    if len(tensor.shape) != len(tensor.strides):
        raise ValueError(f"tensor view of storage {tensor.storage.key} has {len(tensor.shape)} sizes "
                         f"but {len(tensor.strides)} strides: not a valid checkpoint")
    if any(n == 0 for n in tensor.shape):
        return np.zeros(tensor.shape, data.dtype.newbyteorder("="))
    needed = tensor.offset + sum((n - 1) * s for n, s in zip(tensor.shape, tensor.strides, strict=True)) + 1
    if needed > data.size:
        raise ValueError(f"tensor view runs past the end of storage {tensor.storage.key}")
    if tensor.shape == ():
        # A 0-d tensor (e.g. BatchNorm's num_batches_tracked); as_strided would ignore shape ().
        return np.array(data[tensor.offset], dtype=data.dtype.newbyteorder("="))
    view = np.lib.stride_tricks.as_strided(
        data[tensor.offset:],
        shape=tensor.shape,
        strides=tuple(s * itemsize for s in tensor.strides),
        writeable=False,
    )
    # Copy into a fresh, native-byte-order, C-contiguous array we own.
    return np.ascontiguousarray(view, dtype=data.dtype.newbyteorder("="))


def read_legacy_torch_checkpoint(path) -> dict[str, np.ndarray]:
    """Read a legacy-format (torch < 1.6) ``state_dict`` checkpoint into numpy arrays.

    Parameters
    ----------
    path : str or pathlib.Path
        The ``.pth`` file.

    Returns
    -------
    dict[str, numpy.ndarray]
        Parameter name -> array, in the file's order (e.g. ``"features.0.0.weight"``
        -> float32 array of shape ``(32, 3, 3, 3)``).

    Raises
    ------
    ValueError
        If the file is not a legacy torch checkpoint, is truncated, or holds
        something other than a dictionary of tensors.

    Examples
    --------
    >>> state = read_legacy_torch_checkpoint(path)  # doctest: +SKIP
    >>> sum(a.size for a in state.values())  # doctest: +SKIP
    3538984
    """
    path = Path(path)
    stream = io.BytesIO(path.read_bytes())
    try:
        magic = _load_plain_pickle(stream)
        if magic != LEGACY_MAGIC_NUMBER:
            raise ValueError(
                f"{path} is not a legacy (pre-1.6) torch checkpoint (newer ones are zip files)"
            )
        protocol = _load_plain_pickle(stream)
        if protocol != _LEGACY_PROTOCOL_VERSION:
            raise ValueError(f"{path}: unsupported legacy protocol version {protocol!r}")
        sys_info = _load_plain_pickle(stream)
        if not (isinstance(sys_info, dict) and sys_info.get("little_endian", False)):
            raise ValueError(f"{path}: only little-endian checkpoints are supported")

        unpickler = _RestrictedUnpickler(stream)
        state = unpickler.load()
        storage_keys = _load_plain_pickle(stream)
    except (pickle.UnpicklingError, EOFError) as error:
        raise ValueError(f"{path} is not a readable legacy torch checkpoint: {error}") from error

    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state_dict (a dictionary), got {type(state).__name__}")
    if not isinstance(storage_keys, list) or set(storage_keys) != set(unpickler.storages):
        raise ValueError(f"{path}: the list of storages does not match the tensors")

    for key in storage_keys:
        storage = unpickler.storages[key]
        header = stream.read(8)
        if len(header) != 8:
            raise ValueError(f"{path} is truncated (storage {key} is missing)")
        numel = int.from_bytes(header, "little", signed=True)
        if numel != storage.numel:
            raise ValueError(f"{path}: storage {key} says {numel} elements, expected {storage.numel}")
        raw = stream.read(numel * storage.dtype.itemsize)
        if len(raw) != numel * storage.dtype.itemsize:
            raise ValueError(f"{path} is truncated (storage {key} is incomplete)")
        storage.data = np.frombuffer(raw, dtype=storage.dtype)

    arrays = {}
    for name, value in state.items():
        if not isinstance(value, _TensorRef):
            raise ValueError(f"{path}: entry {name!r} is not a tensor")
        arrays[name] = _materialise(value)
    return arrays
