"""1-D convolutions and transposed convolutions on the CPU host path: numpy rows (channels last),
oneDNN float32 products, row blocks spread over the host workers. Model-agnostic (the portable
runtime's conv ops use it; any model's host path may).

Why: MLX's CPU convolution takes a naive loop for every dilated or input-dilated (transposed)
kernel: a converted Kokoro vocoder spent 27 of its 30 s (64-frame bucket, real weights, measured
here) in those loops. An im2col block of `ROWS` output frames (k taps side by side, small enough
to stay in cache) times the (out, k * in) weight is one single-threaded oneDNN sgemm per block,
each worker taking whole blocks.

Layouts: activations (L, C) float32 rows, weights given once at preparation in MIL's layouts
(conv: (out, in, k); transposed conv: (in, out, k)).
"""

from __future__ import annotations

import threading

import numpy as np

from . import onednn
from . import pool as host_pool

ROWS = 256  # output frames per im2col block
SPREAD_ELEMENTS = 1 << 16  # products per block of a transposed conv (256 kB: stays in cache)


class _Scratch(threading.local):
    """Reusable im2col buffers per thread and dtype (fresh large allocations cost page faults every call)."""

    def __init__(self) -> None:
        self.buffers: dict[str, np.ndarray] = {}

    def get(self, rows: int, cols: int, dtype: type = np.float32) -> np.ndarray:
        key = np.dtype(dtype).str
        buffer = self.buffers.get(key)
        if buffer is None or buffer.size < rows * cols:
            buffer = self.buffers[key] = np.empty(rows * cols, dtype)
        return buffer[: rows * cols].reshape(rows, cols)


_scratch = _Scratch()


def im2col(
    x: np.ndarray, rows: slice, kernel: int, stride: int, dilation: int, dtype: type = np.float32, begin: int = 0
) -> np.ndarray:
    """Output frames `rows` of a 1-D conv over x (L, C) as (rows, kernel * C), tap-major, in a per-thread
    scratch buffer of `dtype` (valid until this thread's next call). x is read as if `begin` zero rows
    came before it and zero rows after it (no padded copy of x is made)."""
    channels = x.shape[1]
    columns = _scratch.get(rows.stop - rows.start, kernel * channels, dtype)
    for tap in range(kernel):  # tap j reads padded frame t * stride + j * dilation
        target = columns[:, tap * channels : (tap + 1) * channels]
        strided_rows(x, rows.start * stride + tap * dilation - begin, stride, target)
    return columns


def strided_rows(x: np.ndarray, start: int, step: int, target: np.ndarray) -> None:
    """target[i] = x[start + i * step] for the rows of target, zeros where that index is outside x."""
    count, length = target.shape[0], x.shape[0]
    lo = min(count, max(0, -(start // step)))  # the first i with start + i * step >= 0
    hi = max(lo, min(count, -(-(length - start) // step)))  # past the last i with start + i * step < length
    target[:lo] = 0.0
    target[hi:] = 0.0
    if lo < hi:
        first = start + lo * step
        target[lo:hi] = x[first : first + (hi - lo - 1) * step + 1 : step]


def zero_padded(x: np.ndarray, begin: int, end: int) -> np.ndarray:
    """(L, C) -> (begin + L + end, C) with zero rows at the ends (x itself when there are none)."""
    if begin == 0 and end == 0:
        return x
    full = np.empty((begin + x.shape[0] + end, x.shape[1]), np.float32)
    full[:begin] = 0.0
    full[begin + x.shape[0] :] = 0.0
    full[begin : begin + x.shape[0]] = x
    return full


_windows = _Scratch()


def window(x: np.ndarray, begin: int, total: int) -> np.ndarray:
    """A (total, C) float32 array: `begin` zero rows, then as many rows of x (L, C) as fit, then zero rows
    (`zero_padded` cut or extended to `total` rows). It is this thread's scratch buffer, valid until its
    next call here: a fresh one of a vocoder's 9 MB cost its page faults on every convolution."""
    full = _windows.get(total, x.shape[1])
    count = max(0, min(x.shape[0], total - begin))
    full[: min(begin, total)] = 0.0
    full[begin + count :] = 0.0
    full[begin : begin + count] = x[:count]
    return full


def nonzero_rows(x: np.ndarray, block_elements: int = 1 << 16) -> int:
    """The number of rows of x (L, C) up to its last row holding a value other than zero (NaN counts as
    one): the rows after it are all zeros. Scanned from the end a block at a time, so a tail of zeros
    costs one read of it and a full activation one block."""
    stop, step = x.shape[0], max(1, block_elements // max(1, x.shape[1]))
    while stop > 0:
        start = max(0, stop - step)
        block = x[start:stop]
        if _any_bits(block):
            hits = np.flatnonzero(block.any(axis=1))  # none when the only bits set were signs of -0.0
            if hits.size:
                return start + int(hits[-1]) + 1
        stop = start
    return 0


def _any_bits(block: np.ndarray) -> bool:
    """Whether any bit of a float32 block is set (-0.0 counts): its bytes as 64-bit words counted by
    numpy's vectorized count_nonzero, ~8x faster than a float `any` here; a strided block uses `any`."""
    if not block.flags.c_contiguous or block.dtype != np.float32:
        return bool(block.any())
    flat = block.reshape(-1)
    words = flat.view(np.uint64) if flat.size % 2 == 0 else flat.view(np.uint32)
    return bool(np.count_nonzero(words))


def plain_rows(x: np.ndarray) -> np.ndarray:
    """x (L, C) float32 with rows laid out one after another (a copy only when they are not; numpy
    calls a strided (L, 1) view contiguous, oneDNN does not)."""
    if x.dtype == np.float32 and x.flags.c_contiguous and (x.shape[1] != 1 or x.strides[1] == 4):
        return x
    return np.array(x, np.float32, order="C")


class Conv1d:
    """A prepared convolution (no groups): padded rows (L, in) -> (L_out, out), any stride and dilation."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray | None, stride: int = 1, dilation: int = 1) -> None:
        out_channels, self.in_channels, self.kernel = weight.shape  # MIL: (out, in, k)
        # (out, k * in): tap-major columns, as `columns` lays the input out
        self.weight = np.ascontiguousarray(np.asarray(weight, np.float32).transpose(0, 2, 1).reshape(out_channels, -1))
        self.bias = None if bias is None else np.ascontiguousarray(bias, np.float32).reshape(-1)
        self.out_channels = out_channels
        self.stride, self.dilation = int(stride), int(dilation)

    def output_length(self, padded_length: int) -> int:
        return (padded_length - self.dilation * (self.kernel - 1) - 1) // self.stride + 1

    def input_length(self, outputs: int) -> int:
        """The padded input rows the first `outputs` output frames read (0 for none)."""
        return 0 if outputs <= 0 else (outputs - 1) * self.stride + self.dilation * (self.kernel - 1) + 1

    def reaching(self, rows: int, begin: int) -> int:
        """How many leading output frames read any of the first `rows` input rows when `begin` zero rows
        pad the front: frame t reads padded rows from t * stride on, so later frames read only zeros
        past those rows (their output is the bias)."""
        return 0 if rows <= 0 else -(-(rows + begin) // self.stride)

    def __call__(self, x_padded: np.ndarray, out: np.ndarray | None = None, accumulate: bool = False) -> np.ndarray:
        """The convolution of already padded rows; written into `out` ((L_out, out) rows) when given, or
        added to it when `accumulate` (a residual sum without another full-size array)."""
        length = self.output_length(x_padded.shape[0])
        result = self._result(length, out, accumulate)
        if length > 0:
            host_pool.run_all(
                lambda rows: self._rows(x_padded, rows, result[rows], accumulate), host_pool.row_blocks(length, ROWS)
            )
        return result

    def _result(self, length: int, out: np.ndarray | None, accumulate: bool) -> np.ndarray:
        """`out`, or a fresh (length, out) array when there is none to write or add into."""
        if out is not None:
            return out
        if accumulate:
            raise ValueError("accumulate needs out")
        return np.empty((length, self.out_channels), np.float32)

    def from_rows(self, x: np.ndarray, begin: int, out: np.ndarray, accumulate: bool = False) -> np.ndarray:
        """The first len(out) output frames of the convolution of x (L, in) read with `begin` zero rows
        before it and zero rows after, written into `out` (added when `accumulate`): the same values as
        `self(window(...))` without copying a padded window of x (a pass over the activation per conv)."""
        if out.shape[0] > 0:
            host_pool.run_all(
                lambda rows: self._rows(x, rows, out[rows], accumulate, begin), host_pool.row_blocks(out.shape[0], ROWS)
            )
        return out

    def columns(self, x: np.ndarray, rows: slice, begin: int = 0) -> np.ndarray:
        """The im2col block of output frames `rows`: (rows, k * in), tap-major (a scratch buffer)."""
        if self.kernel == 1 and self.stride == 1 and begin == 0 and rows.stop <= x.shape[0]:
            return plain_rows(x[rows])
        return im2col(x, rows, self.kernel, self.stride, self.dilation, begin=begin)

    def _rows(self, x: np.ndarray, rows: slice, out: np.ndarray, accumulate: bool, begin: int = 0) -> None:
        onednn.sgemm(self.columns(x, rows, begin), self.weight, out, b_transposed=True, accumulate=accumulate)
        if self.bias is not None:
            out += self.bias


class ConvTranspose1d:
    """A prepared transposed convolution (no groups, dilation 1): products and an overlap-add per block
    of output groups, on the host workers.

    Input frame t spreads over output frames t * stride .. t * stride + k - 1 of the full output
    ((L - 1) stride + k frames), from which the caller's crop is cut. With the taps padded with zeros
    to `pieces * stride`, output group q (frames q * stride .. q * stride + stride - 1) is the sum over
    c < pieces of piece c of input frame q - c: each block of groups is made from a block-sized product,
    into a reused buffer (no full-size temporaries: Kokoro's last one made four of 16-26 MB a call;
    its transposed convs took 0.065 s before and 0.069 s after at bucket 148, one core: the products)."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray | None, stride: int) -> None:
        self.in_channels, self.out_channels, self.kernel = weight.shape  # MIL: (in, out, k)
        self.stride = int(stride)
        self.pieces = -(-self.kernel // self.stride)
        taps = np.zeros((self.pieces * self.stride, self.out_channels, self.in_channels), np.float32)
        taps[: self.kernel] = np.asarray(weight, np.float32).transpose(2, 1, 0)
        self.weight = taps.reshape(-1, self.in_channels)  # (pieces * stride * out, in): row j * out + o
        self.bias = None if bias is None else np.ascontiguousarray(bias, np.float32).reshape(-1)

    def full_length(self, length: int) -> int:
        return (length - 1) * self.stride + self.kernel

    def __call__(
        self, x: np.ndarray, crop: tuple[int, int], out: np.ndarray | None = None, live: int | None = None
    ) -> np.ndarray:
        """(L, in) -> (full_length(L) - crop[0] - crop[1], out) rows, into `out` when given. `live`: the
        rows of x past it are known to be zeros (`nonzero_rows`), so their products are not computed:
        the groups they alone reach are the bias, as they would be (zero rows add exactly zero)."""
        length, width = x.shape[0], self.stride * self.out_channels
        rows = plain_rows(x)[: length if live is None else max(0, min(live, length))]
        groups = _group_buffers.get(length + self.pieces - 1, width)
        # blocks of at least ROWS groups and about SPREAD_ELEMENTS products: narrow outputs (an inverse
        # STFT's one channel) in few blocks, as a block's fixed cost outweighed its products there
        per_block = max(ROWS, SPREAD_ELEMENTS // (self.pieces * width))
        host_pool.run_all(
            lambda block: self._groups(rows, block, groups), host_pool.row_blocks(groups.shape[0], per_block)
        )
        frames = groups.reshape(-1, self.out_channels)
        y = frames[crop[0] : self.full_length(length) - crop[1]]
        if out is None:
            return y.copy()
        out[...] = y
        return out

    def _groups(self, x: np.ndarray, block: slice, groups: np.ndarray) -> None:
        first, last = max(block.start - self.pieces + 1, 0), min(block.stop, x.shape[0])
        width = self.stride * self.out_channels
        target = groups[block]
        if self.bias is None:
            target[...] = 0.0
        else:
            target.reshape(target.shape[0], self.stride, -1)[...] = self.bias
        if last <= first:
            return
        spread = _spread_buffers.get(last - first, self.pieces * width)
        onednn.sgemm(x[first:last], self.weight, spread, b_transposed=True)
        for piece in range(self.pieces):  # group q takes piece c of input frame q - c
            lo, hi = max(block.start, first + piece), min(block.stop, last + piece)
            if lo < hi:
                target[lo - block.start : hi - block.start] += spread[
                    lo - piece - first : hi - piece - first, piece * width : (piece + 1) * width
                ]


class DepthwiseTranspose1d:
    """A prepared depthwise transposed convolution (groups = channels, one output per channel,
    dilation 1): input frame t adds x[t] * w[:, j] to output frame t * stride + j, per channel.

    Why: MLX's CPU route for a grouped transposed conv is an input-dilated convolution, a naive loop
    (a Kokoro decoder's upsampling `pool`, 160 x 1090 frames: ~5.7 ms, here a pass per tap, ~0.5 ms)."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray | None, stride: int) -> None:
        channels, one, self.kernel = weight.shape  # MIL: (C_in, C_out / groups, k)
        if one != 1:
            raise ValueError("a depthwise transposed conv has one output channel per group")
        self.taps = np.ascontiguousarray(np.asarray(weight, np.float32)[:, 0, :].T)  # (k, C)
        self.bias = None if bias is None else np.ascontiguousarray(bias, np.float32).reshape(-1)
        self.stride, self.out_channels = int(stride), channels

    def full_length(self, length: int) -> int:
        return (length - 1) * self.stride + self.kernel

    def __call__(
        self, x: np.ndarray, crop: tuple[int, int], out: np.ndarray | None = None, live: int | None = None
    ) -> np.ndarray:
        """(L, C) -> (full_length(L) - crop[0] - crop[1], C), into `out` when given: the bias, then each
        tap's frames added. `live`: the rows of x past it are zeros (`nonzero_rows`) and add nothing."""
        if out is None:
            out = np.empty((self.full_length(x.shape[0]) - crop[0] - crop[1], self.out_channels), np.float32)
        out[...] = 0.0 if self.bias is None else self.bias
        length, s = x.shape[0] if live is None else min(live, x.shape[0]), self.stride
        for j in range(self.kernel):  # output row r = t s + j - crop[0]
            first = max(0, -(-(crop[0] - j) // s))
            last = min(length - 1, (out.shape[0] - 1 + crop[0] - j) // s)
            if first <= last:
                start = first * s + j - crop[0]
                out[start : start + (last - first) * s + 1 : s] += x[first : last + 1] * self.taps[j]
        return out


_group_buffers = _Scratch()  # the caller's full group buffer (valid until its next transposed conv)
_spread_buffers = _Scratch()  # each worker's block of products
