"""Self-attention keys or values of the CPU host decoder, kept in a buffer that grows in place.

Why: a decoder step used to join each layer's cached keys and values with the new token's
(`np.concatenate`) and copy the result into a fresh MLX array: two copies of the whole cache per
layer per step, O(T) per token, O(T^2) per window. With a previous-text prompt (up to 224 tokens)
and 5 beams that is most of what a long-form step moves. Here a step writes its token's row into
spare room of a buffer (which doubles when full) and reads a view of the filled rows.

`HostKV` stands where the cache layout of `model.py` has an MLX (B, H, T, Dh) array: it has that
`shape`, row selection (`kv[rows]`, beam search's reorder) and `repeat` (one row per beam), and
`to_mlx()` for the MLX decoder path. It behaves as a value: appending to one that is not the
buffer's newest (a step taken twice from the same cache) copies instead of writing over the other.

Beam search's reorder is the exception, on purpose: `moved(rows)` rewrites the newest value's rows
where they lie, copying only the rows whose beam changed, instead of copying every beam into a new
buffer each step (~1.2 ms a step for tiny.en's 8 caches here, most of it first touches of the new
buffers' pages). The buffer's version then goes up, and every older value of it is stale: reading
or appending to one raises `StaleCache` rather than seeing rows written since.
"""

from __future__ import annotations

from typing import Any

import mlx.core as mx
import numpy as np

from ..errors import StaleCache

_FIRST_ROOM = 64  # token rows reserved at first; doubled whenever full (at most the context)


class _Buffer:
    """Storage (B, H, capacity, Dh), how many token rows of it some HostKV already claimed, and a
    version that goes up whenever claimed rows are rewritten in place (`HostKV.moved`)."""

    def __init__(self, data: np.ndarray, filled: int) -> None:
        self.data = data
        self.filled = filled
        self.version = 0


class HostKV:
    """The first `length` token rows of a shared buffer: keys or values (B, H, length, Dh)."""

    def __init__(self, buffer: _Buffer, length: int) -> None:
        self._buffer = buffer
        self.length = length
        self._version = buffer.version

    def _live(self) -> _Buffer:
        """The buffer, if its rows are still this value's; else `StaleCache`."""
        buffer = self._buffer
        if buffer.version != self._version:
            raise StaleCache(self.length, self._version, buffer.version)
        return buffer

    @classmethod
    def from_rows(cls, rows: np.ndarray, limit: int, extra: int = 0) -> HostKV:
        """A copy of (B, H, T, Dh) rows with room for at least `extra` more, and to grow up to `limit`."""
        batch, heads, length, head_dim = rows.shape
        room = max(min(max(_FIRST_ROOM, 2 * length), limit), length + extra)
        data = np.empty((batch, heads, room, head_dim), np.float32)
        data[:, :, :length] = rows
        return cls(_Buffer(data, length), length)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        batch, heads, _, head_dim = self._buffer.data.shape
        return batch, heads, self.length, head_dim

    def view(self) -> np.ndarray:
        """The filled rows (B, H, length, Dh): a view into the buffer, not a copy."""
        return self._live().data[:, :, : self.length]

    def appended(self, rows: np.ndarray, limit: int) -> HostKV:
        """This cache with new token rows (B, H, n, Dh) after it, written in place when this is the
        buffer's newest value and it has room; else into a copy with room to grow."""
        grown = self.claimed(rows.shape[2], limit)
        grown._buffer.data[:, :, self.length : grown.length] = rows
        return grown

    def claimed(self, new: int, limit: int) -> HostKV:
        """`appended` without the rows: the new value's last `new` token rows are the caller's to
        write (into `storage()`, as the C decoder block does) before anything reads them."""
        buffer, length = self._live(), self.length
        if buffer.filled != length or length + new > buffer.data.shape[2]:
            buffer = HostKV.from_rows(self.view(), limit, extra=new)._buffer
        buffer.filled = length + new
        return HostKV(buffer, length + new)

    def storage(self) -> np.ndarray:
        """The whole buffer (B, H, capacity, Dh), C-contiguous: the first `length` token rows are this value's."""
        return self._live().data

    def __getitem__(self, rows: Any) -> HostKV:
        """The batch rows `rows` (an index array: beam search's survivors), copied once each into a
        buffer with this one's room (fancy indexing then a copy into spare room moved every beam's
        keys twice: 12 MB a step for 5 beams of 200 tokens on tiny.en)."""
        index = np.asarray(rows).reshape(-1).tolist()
        _, heads, room, head_dim = self._buffer.data.shape
        data = np.empty((len(index), heads, room, head_dim), np.float32)
        filled, length = self.view(), self.length
        for target, source in enumerate(index):
            data[target, :, :length] = filled[source]
        return HostKV(_Buffer(data, length), length)

    def moved(self, rows: Any) -> HostKV:
        """`self[rows]` (a new value per batch row i: old row rows[i]), rewritten in place when this is
        the buffer's newest value: only rows whose source differs are copied. This value and every
        older one of the buffer go stale. Otherwise (an older value, other row count) a copy."""
        index = [int(i) for i in np.asarray(rows).reshape(-1).tolist()]
        buffer = self._live()
        if buffer.filled != self.length or len(index) != buffer.data.shape[0]:
            return self[rows]
        if any(source != target for target, source in enumerate(index)):
            _gather_in_place(buffer.data, index, self.length)
            buffer.version += 1
        return HostKV(buffer, self.length)

    def repeat(self, repeats: int) -> HostKV:
        """Row i becomes rows i*r .. i*r+r-1 (one per beam or sample), copied."""
        return HostKV.from_rows(np.repeat(self.view(), repeats, axis=0), self._buffer.data.shape[2])

    def to_mlx(self) -> mx.array:
        return mx.array(self.view())

    def __mlx_array__(self) -> mx.array:
        """`mx.array(kv)` works as on an MLX cache entry (batch_decode joins per-row caches so)."""
        return self.to_mlx()

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        """`np.array(kv)` reads the filled rows, as it would an MLX array of the same layout."""
        view = self.view()
        return np.array(view, dtype=dtype) if copy or dtype is not None else view


def _gather_in_place(data: np.ndarray, index: list[int], length: int) -> None:
    """data[t, :, :length] = (old) data[index[t], :, :length] for every batch row t, copying only
    rows that change. A row is overwritten only once no pending row still reads it; rows on a cycle
    (beams swapping places) have one row parked in a copy first."""
    pending = {target: source for target, source in enumerate(index) if source != target}
    readers = [0] * len(index)  # pending targets still reading each row
    for source in pending.values():
        readers[source] += 1
    parked: dict[int, np.ndarray] = {}
    while pending:
        ready = [target for target in pending if readers[target] == 0]
        if not ready:  # every pending row is still read: a cycle
            row = next(iter(pending))
            parked[row] = data[row, :, :length].copy()
            readers[row] = 0
            continue
        for target in ready:
            source = pending.pop(target)
            if source in parked:
                data[target, :, :length] = parked[source]
            else:
                data[target, :, :length] = data[source, :, :length]
                readers[source] -= 1


def as_numpy(value: HostKV | mx.array) -> np.ndarray:
    """Cached keys or values as a numpy (B, H, T, Dh) array (a view where possible)."""
    return value.view() if isinstance(value, HostKV) else np.asarray(value)


def to_mlx(kv_cache: Any) -> Any:
    """The cache with every HostKV as an MLX array (for the MLX decoder path); others unchanged."""
    if not kv_cache or not any(isinstance(self_kv[0], HostKV) for self_kv, _ in kv_cache if self_kv):
        return kv_cache
    return [
        (None if self_kv is None else tuple(v.to_mlx() if isinstance(v, HostKV) else v for v in self_kv), cross)
        for self_kv, cross in kv_cache
    ]
