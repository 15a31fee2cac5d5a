"""A host decoder step's block in one C call (`cpu/native_block.py`) instead of ~60 Python calls.

Applies to int8 models and small enough float32 ones (host_decoder.in_one_call) with our C
kernels built, up to 8 rows (greedy's one, beams' five), when every product of the block is a
prepared one-call product on this thread and the cache's keys and values are host buffers. int8:
the results are host_decoder's route's, bit for bit (tested); float32: within float32 rounding of
it (its products are BLAS's there). Anything else returns None and the caller takes that route.
Products with large enough weights (host_decoder._SPLIT_BLOCK_BYTES) run as column pieces on the
step's team: the same arithmetic per output column, the same bits.
Measured on this AMD EPYC (2 cores, tiny.en int8, 3 min of real speech, in turns in one process,
`bench/longform_phases.py --ab-block`): a greedy step 3.48 against 3.97 ms with the kernels called
one by one; beam 5 6.76 against 7.04 ms.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from ..cpu import native_block, native_kernels
from ..cpu.native_block import BlockCall
from ..cpu.native_pieces import PiecesCall
from ..cpu.team import TeamState
from .host_cache import HostKV

# (q_rows, audio keys_t, audio values, heads) -> attended rows: the caller's cross-attention,
# split over its worker threads
CrossAttention = Callable[[np.ndarray, np.ndarray, np.ndarray, int], np.ndarray]


class BlockCalls(threading.local):
    """One layer's `BlockCall` per row count, for the thread that asks (None: this count cannot),
    with what points its products back at their own source buffers."""

    def __init__(self) -> None:
        self.by_rows: dict[int, tuple[BlockCall, list[Callable[[], None]]] | None] = {}


def _made(w: Any, rows: int) -> BlockCall | None:
    """This thread's block call for `rows` rows of layer weights `w` (host_decoder's), or None."""
    calls: BlockCalls = w.block_calls
    if rows not in calls.by_rows:
        made = [layer.block_product(rows) for layer in (w.qkv, w.out, w.cross_q, w.cross_out, w.mlp1, w.mlp2)]
        calls.by_rows[rows] = None
        if all(m is not None for m in made):
            products = [m if isinstance(m, PiecesCall) else m[0] for m in made if m is not None]
            owners = [m.own_sources if isinstance(m, PiecesCall) else m[1].own_source for m in made if m is not None]
            calls.by_rows[rows] = (BlockCall(products, w.norms, w.heads, rows), owners)
    found = calls.by_rows[rows]
    if found is None:
        return None
    for own_source in found[1]:  # a `_few` call (an output given) may have moved a product's source
        own_source()
    return found[0]


def applies(w: Any) -> bool:
    """The layer's block runs in one C call (host_decoder.in_one_call: int8, or a float32 decoder
    small enough for its products' second copy) and our C kernels are built (row counts are
    checked per step)."""
    return bool(w.one_call) and native_kernels.available()


def _host_kv(cached: Any, limit: int) -> HostKV:
    if isinstance(cached, HostKV):
        return cached
    return HostKV.from_rows(np.asarray(cached), limit, extra=1)


def run(
    w: Any, x: np.ndarray, cache: Any, limit: int, split: bool, cross: CrossAttention, team: TeamState | None
) -> tuple[np.ndarray, tuple[HostKV, HostKV], np.ndarray] | None:
    """host_decoder._block in C: (x after the block, the grown keys and values, the scaled cross
    queries (B, D)), or None where it does not apply. `x` (B, D) C-contiguous float32 is updated
    in place. `cache`: (the self-attention keys and values, (audio keys_t, values) as numpy blocks
    our kernel takes: host_decoder._native_attention checked them). `split`: cross-attention runs
    through `cross` (the caller's, split over workers) between two C calls; `team` (an open one):
    its heads are split in C."""
    rows = x.shape[0]
    call = _made(w, rows) if x.flags.c_contiguous and x.dtype == np.float32 else None
    if call is None:
        return None
    keys_t, audio_values = cache[1]
    keys, values = _host_kv(cache[0][0], limit), _host_kv(cache[0][1], limit)
    if keys.shape[0] != rows or values.shape != keys.shape:
        return None
    keys, values = keys.claimed(1, limit), values.claimed(1, limit)
    call.set_cache(keys.storage(), values.storage(), keys.length)
    call.set_audio(keys_t, audio_values, team)
    cross_q, attended = np.empty_like(x), np.empty_like(x)
    if split:
        call.run(x, cross_q, attended, native_block.STAGE_SELF | native_block.STAGE_CROSS_QUERY)
        attended = cross(cross_q, keys_t, audio_values, w.heads)
        call.run(x, cross_q, attended, native_block.STAGE_CROSS_OUT_MLP)
    else:
        call.run(x, cross_q, attended, native_block.ALL_STAGES)
    return x, (keys, values), cross_q
