"""Process-wide sharing of weights among loaded programs: blob constants and the values prepared from them.

Why: the functions of a multi-function package (one per vocoder bucket) and separate packages made from
the same weights read the same blobs; loaded one by one, each kept its own MLX copy of every weight and
each node its own prepared copy (DFT kernels, reordered or transposed weights): ~800 MB per Kokoro
vocoder bucket. Here a blob constant is copied into MLX once per content (dtype, shape, bytes: so
separate packages of the same weights share as a package's functions do) and a prepared value is made
once per (kind, source arrays by identity, parameters).

Both tables hold their entries weakly: a constant lives while a loaded program holds it, a prepared
value while a node's memo holds its `Prepared` (which holds its sources, so an identity in a key can
never be reused while the entry lives). Closing every model that uses them frees them.
"""

from __future__ import annotations

import threading
import weakref
import zlib
from collections.abc import Callable, Hashable
from typing import Any

import mlx.core as mx
import numpy as np

_lock = threading.Lock()
_ENDS = 1 << 16  # bytes at each end of a blob that its checksum reads
# blob constants by (dtype, shape, size, checksums of the ends): the arrays alive with those
_constants: dict[tuple[Hashable, ...], list[weakref.ref[mx.array]]] = {}
_prepared: weakref.WeakValueDictionary[tuple[Hashable, ...], Prepared] = weakref.WeakValueDictionary()


class Prepared:
    """A value made from constant sources, with the sources it was made from (kept alive with it)."""

    __slots__ = ("value", "sources", "__weakref__")

    def __init__(self, value: Any, sources: tuple[Any, ...]) -> None:
        self.value = value
        self.sources = sources


def blob_constant(host: np.ndarray, to_device: Callable[[np.ndarray], mx.array]) -> mx.array:
    """The MLX array of a constant's values `host` (a blob: a view of the weight file; or a literal of
    the spec): one a loaded program already holds with the same dtype, shape and bytes (found by a
    checksum of its ends, then compared whole: weight files are not trusted to be unchanged or
    distinct), else `to_device(host)`."""
    raw = np.ascontiguousarray(host).reshape(-1).view(np.uint8)  # no copy for a plain block
    key = (
        host.dtype.str,
        host.shape,
        raw.size,
        zlib.crc32(raw[:_ENDS].tobytes()),
        zlib.crc32(raw[-_ENDS:].tobytes()),
    )
    with _lock:
        candidates = [c for c in (ref() for ref in _constants.get(key, ())) if c is not None]
    for candidate in candidates:
        if _same_bytes(candidate, host):
            return candidate
    value = to_device(host)
    mx.eval(value)
    with _lock:
        alive = [ref for ref in _constants.get(key, ()) if ref() is not None]
        _constants[key] = [*alive, weakref.ref(value)]
    return value


def _same_bytes(candidate: mx.array, host: np.ndarray) -> bool:
    held = np.asarray(candidate)  # a view of MLX's buffer
    return (
        held.dtype == host.dtype
        and held.shape == host.shape
        and np.array_equal(held.reshape(-1).view(np.uint8), np.ascontiguousarray(host).reshape(-1).view(np.uint8))
    )


def _part_key(part: Any) -> Hashable:
    if isinstance(part, (mx.array, np.ndarray)):
        return ("array", id(part))
    if isinstance(part, (list, tuple)):
        return tuple(_part_key(p) for p in part)
    return part


def prepared(kind: str, parts: tuple[Any, ...], make: Callable[[], Any]) -> Prepared:
    """The `Prepared` value of `kind` made from `parts`: arrays among them are keyed by identity (the
    shared constants above), anything else by value. The caller keeps the returned holder (a node's
    memo); `make()` runs outside the lock."""
    key = (kind, *(_part_key(p) for p in parts))
    with _lock:
        found = _prepared.get(key)
    if found is not None:
        return found
    sources = tuple(p for p in parts if isinstance(p, (mx.array, np.ndarray)))
    held = Prepared(make(), sources)
    with _lock:
        return _prepared.setdefault(key, held)


def counts() -> dict[str, int]:
    """How many shared constants and prepared values are alive (for tests and measurements)."""
    with _lock:
        alive = sum(ref() is not None for refs in _constants.values() for ref in refs)
        return {"constants": alive, "prepared": len(_prepared)}
