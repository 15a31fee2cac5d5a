"""Read PyTorch checkpoints (torch.save's zip format) without torch, refusing anything but tensors.

A checkpoint is a zip: `<root>/data.pkl` (the pickled object tree), `<root>/data/<key>` (one raw
storage per key) and `<root>/byteorder`. The pickle names storages through persistent ids
('storage', <dtype class>, key, location, numel) and builds tensors with
`torch._utils._rebuild_tensor_v2`. Our unpickler resolves only those names (plus OrderedDict) to
numpy stand-ins; any other global is refused with UnsafePickle, so a malicious file cannot run code.
"""

from __future__ import annotations

import collections
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ...errors.kokoro import KokoroWeightsError, UnsafePickle

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "BFloat16Storage": np.uint16,  # widened to float32 after reading (numpy has no bfloat16)
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class _StorageType:
    """Stands in for torch.FloatStorage & co: only carries the element type."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


def read_pth(path: str | Path) -> Any:
    """The checkpoint's object tree with every tensor as a float32/int numpy array."""
    path = Path(path)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise KokoroWeightsError(str(path), f"not a torch zip checkpoint ({exc}); legacy pickles are not read") from exc
    with archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pickles) != 1:
            raise KokoroWeightsError(str(path), f"expected one data.pkl in the archive, found {len(pickles)}")
        root = pickles[0][: -len("data.pkl")]
        order_name = f"{root}byteorder"
        if order_name in archive.namelist() and archive.read(order_name).strip() != b"little":
            raise KokoroWeightsError(str(path), "big-endian checkpoints are not supported")
        with archive.open(pickles[0]) as f:
            return _Unpickler(f, archive, root, str(path)).load()


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: Any, archive: zipfile.ZipFile, root: str, source: str) -> None:
        super().__init__(file)
        self.archive, self.root, self.source = archive, root, source
        self.storages: dict[str, np.ndarray] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if (module, name) == ("torch._utils", "_rebuild_parameter"):
            return _rebuild_parameter
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise UnsafePickle(self.source, f"{module}.{name}")

    def persistent_load(self, pid: Any) -> np.ndarray:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage" and isinstance(pid[1], _StorageType)):
            raise UnsafePickle(self.source, f"persistent id {pid!r}")
        kind, key = pid[1], str(pid[2])
        if key not in self.storages:
            raw = self.archive.read(f"{self.root}data/{key}")
            self.storages[key] = np.frombuffer(raw, dtype=kind.dtype.newbyteorder("<"))
        data = self.storages[key]
        if kind.name == "BFloat16Storage":
            data = (data.astype(np.uint32) << 16).view(np.float32)
        return data


def _rebuild_tensor(storage: np.ndarray, offset: int, size: tuple, stride: tuple, *_: Any) -> np.ndarray:
    """torch._utils._rebuild_tensor_v2 on a numpy storage: a strided view, copied out."""
    if not size:
        return np.array(storage[offset])
    view = np.lib.stride_tricks.as_strided(
        storage[offset:], shape=tuple(size), strides=tuple(s * storage.itemsize for s in stride)
    )
    return np.array(view)


def _rebuild_parameter(data: np.ndarray, *_: Any) -> np.ndarray:
    return data
