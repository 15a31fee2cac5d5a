"""Long stride-1 1-D convolutions on the CPU host path through a short real DFT (overlap-save), as
three oneDNN products per call. Model-agnostic: the portable runtime's conv op (MIL weights) and
Kokoro's host generator (kokoro/model/host_conv_fft.py, a thin adapter) both use it.

Why: a kernel-7 or kernel-11 convolution costs k multiply-adds per (input, output) channel pair and
output frame directly; in the frequency domain of an N-point real transform it costs one complex
product per bin (3 real ones in Gauss's form) for N / 2 bins, shared by N - k + 1 output frames
(N = 64, k = 11: ~1.8 instead of 11), plus two small transforms. Measured on this CPU (CPU time,
busy machine): a 128-channel k = 11, dilation 5 conv over 31441 frames 156-171 ms im2col, 54-62 ms
here; Kokoro's generator on a 94-token sentence 6.7 s -> 3.3-3.9 s.

How, for dilation d: output frame t = p + d m (phase p) only reads input frames of the same phase, so
each phase is an undilated convolution of the subsequence x[p + d m], cut into tiles of N frames that
overlap by k - 1 (V = N - k + 1 new output frames each). Three steps, each spread over the host workers:
1. gather the tiles as (N, tiles, in) and transform: X = D @ tiles, D the (N, N) real DFT table (rows:
   real parts of bins 0..N/2, then imaginary parts of bins 1..N/2-1; bins 0 and N/2 are real);
2. per bin f, Y_f = X_f G_f with G_f = sum_j w_j exp(+2 pi i f j / N) (a correlation, as a conv layer
   computes), made per call from the taps in one tiny product (no spectra of the weights kept);
3. back: the first V frames of each tile = E @ Y, E the (V, N) inverse table, written to the output
   rows of that tile (stride d), or added to them (`accumulate`).
Long inputs go in segments of SEGMENT_ROWS output frames, so the work buffers stay a few MB.
"""

from __future__ import annotations

import threading

import numpy as np

from . import onednn
from . import pool as host_pool
from .conv1d import Conv1d, strided_rows

TILE_COLUMNS = 1 << 18  # floats per gathered tile block (1 MB): a cache-sized piece of step 1 and 3
SEGMENT_ROWS = 8192  # output frames per segment: ~5 MB of spectra at 128 channels
MIN_KERNEL = 7  # shorter kernels gain nothing: 4 N / V products per pair against 2 k directly


class _Buffers(threading.local):
    """Reusable work buffers per thread and role: fresh ones of tens of MB cost page faults on every call."""

    def __init__(self) -> None:
        self.buffers: dict[str, np.ndarray] = {}

    def get(self, role: str, shape: tuple[int, ...]) -> np.ndarray:
        size = int(np.prod(shape))
        buffer = self.buffers.get(role)
        if buffer is None or buffer.size < size:
            buffer = self.buffers[role] = np.empty(size, np.float32)
        return buffer[:size].reshape(shape)


_buffers = _Buffers()


def transform_size(kernel: int) -> int:
    """The DFT length N for a kernel of `kernel` taps (a sweep on this CPU: 32 for k = 7, 64 for k = 11)."""
    return 32 if kernel <= 7 else 64


def _tables(size: int, valid: int, kernel: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The forward (N, N) and inverse (V, N) real DFT tables and the (bins, 3, k) weight table
    [cos, -cos - sin, sin - cos] (Gauss's three products, see `_multiply`)."""
    half = size // 2
    n = np.arange(size)
    real_bins, imag_bins = np.arange(half + 1), np.arange(1, half)
    angle = 2.0 * np.pi / size
    forward = np.concatenate([np.cos(angle * np.outer(real_bins, n)), -np.sin(angle * np.outer(imag_bins, n))])
    weights = np.full(half + 1, 2.0)
    weights[0] = weights[half] = 1.0
    rows = np.arange(valid)
    inverse = (
        np.concatenate(
            [np.cos(angle * np.outer(rows, real_bins)) * weights, -2.0 * np.sin(angle * np.outer(rows, imag_bins))],
            axis=1,
        )
        / size
    )
    taps = angle * np.outer(real_bins, np.arange(kernel))
    spectral = np.stack([np.cos(taps), -np.cos(taps) - np.sin(taps), np.sin(taps) - np.cos(taps)], axis=1)
    return tuple(np.ascontiguousarray(t, np.float32) for t in (forward, inverse, spectral))  # type: ignore[return-value]


class SpectralConv1d(Conv1d):
    """Conv1d (stride 1, kernel >= MIN_KERNEL) through an N-point real DFT: same call, same result."""

    def __init__(
        self, weight: np.ndarray, bias: np.ndarray | None, stride: int = 1, dilation: int = 1, size: int | None = None
    ) -> None:
        super().__init__(weight, bias, stride, dilation)
        if self.stride != 1:
            raise ValueError("spectral convolutions take stride 1")
        self.size = size or transform_size(self.kernel)
        self.valid = self.size - self.kernel + 1
        if self.valid < 1:
            raise ValueError(f"a {self.size}-point transform cannot hold {self.kernel} taps")
        # taps (k, in * out): row j is W[:, j, :] transposed, so one product makes G_f for every pair
        taps = self.weight.reshape(self.out_channels, self.kernel, self.in_channels).transpose(1, 2, 0)
        self.taps = np.ascontiguousarray(taps.reshape(self.kernel, -1))
        self.forward, self.inverse, self.spectral = _tables(self.size, self.valid, self.kernel)

    def __call__(self, x_padded: np.ndarray, out: np.ndarray | None = None, accumulate: bool = False) -> np.ndarray:
        """As Conv1d: the convolution of already padded rows, into `out` when given (added to it when
        `accumulate`). Long inputs go in segments of SEGMENT_ROWS output frames (each reads its own
        (k - 1) d extra input frames)."""
        result = self._result(self.output_length(x_padded.shape[0]), out, accumulate)
        self._segments(x_padded, 0, result, accumulate)
        return result

    def from_rows(self, x: np.ndarray, begin: int, out: np.ndarray, accumulate: bool = False) -> np.ndarray:
        """As Conv1d.from_rows: the first len(out) frames of x read with `begin` zero rows before it and
        zeros after (added to `out` when `accumulate`), without a padded copy (tiles read x directly)."""
        self._segments(x, begin, out, accumulate)
        return out

    def _segments(self, x: np.ndarray, begin: int, result: np.ndarray, accumulate: bool) -> None:
        """Segment by segment: padded frame p is x[p - begin] (zero outside x); a segment reads only
        its own padded frames, as a slice of a padded array would."""
        span = (self.kernel - 1) * self.dilation
        for start in range(0, result.shape[0], SEGMENT_ROWS):
            stop = min(start + SEGMENT_ROWS, result.shape[0])
            first = min(x.shape[0], max(0, start - begin))
            rows = x[first : max(first, min(x.shape[0], stop + span - begin))]
            self._segment(rows, start - begin - first, result[start:stop], accumulate)

    def _segment(self, x: np.ndarray, shift: int, result: np.ndarray, accumulate: bool) -> None:
        """One segment's frames into `result`; its padded frame p is x[p + shift] (zero outside x)."""
        d, size = self.dilation, self.size
        per_phase = -(-result.shape[0] // d)  # output frames of phase 0 (the longest)
        tiles = -(-per_phase // self.valid)
        spectrum = _buffers.get("spectrum", (size, d * tiles, self.in_channels))  # the caller's own
        product = _buffers.get("product", (size, d * tiles, self.out_channels))
        blocks = self._blocks(d, tiles)
        host_pool.run_all(lambda block: self._transform(x, shift, block, tiles, spectrum), blocks)
        host_pool.run_all(lambda bins: self._multiply(spectrum, product, bins), host_pool.even_ranges(size // 2 + 1, 6))
        host_pool.run_all(lambda block: self._back(product, block, tiles, result, accumulate), blocks)

    def _blocks(self, phases: int, tiles: int) -> list[tuple[int, int, int]]:
        """(phase, first tile, end tile) pieces of about TILE_COLUMNS floats each, none across phases."""
        per_block = max(1, TILE_COLUMNS // (self.size * max(self.in_channels, self.out_channels)))
        return [(p, t, min(t + per_block, tiles)) for p in range(phases) for t in range(0, tiles, per_block)]

    def _transform(
        self, x: np.ndarray, shift: int, block: tuple[int, int, int], tiles: int, spectrum: np.ndarray
    ) -> None:
        """Step 1 for one block: gather its tiles as (N, count, in), then X = D @ tiles."""
        phase, first, end = block
        count, d, hop = end - first, self.dilation, self.dilation * self.valid
        gathered = _buffers.get("tiles", (self.size, count, self.in_channels))
        for n in range(self.size):  # frame n of tile t is padded frame phase + d (t V + n)
            strided_rows(x, phase + d * n + hop * first + shift, hop, gathered[n])
        columns = slice((phase * tiles + first) * self.in_channels, (phase * tiles + end) * self.in_channels)
        target = spectrum.reshape(self.size, -1)[:, columns]
        onednn.sgemm(self.forward, gathered.reshape(self.size, -1), target)

    def _multiply(self, spectrum: np.ndarray, product: np.ndarray, bins: slice) -> None:
        """Step 2 for a range of bins: Y_f = X_f G_f in 3 real products (Gauss's form of the complex
        product: (Xr + Xi) Gr, Xr (Gi - Gr), Xi (Gr + Gi)); bins 0 and N/2 are real, 1 product."""
        half, count = self.size // 2, bins.stop - bins.start
        table = self.spectral[bins].reshape(3 * count, self.kernel)
        weights = _buffers.get("weights", (3 * count, self.taps.shape[1]))
        onednn.sgemm(table, self.taps, weights)
        weights = weights.reshape(count, 3, self.in_channels, self.out_channels)
        summed = _buffers.get("summed", spectrum.shape[1:])
        for i, f in enumerate(range(bins.start, bins.stop)):
            real_w, minus_sum_w, diff_w = weights[i]  # Gr, -(Gr + Gi), Gi - Gr
            real_x, real_y = spectrum[f], product[f]  # (rows, in), (rows, out)
            if f == 0 or f == half:
                onednn.sgemm(real_x, real_w, real_y)
                continue
            imag_x, imag_y = spectrum[half + f], product[half + f]
            np.add(real_x, imag_x, out=summed)
            onednn.sgemm(summed, real_w, real_y)
            imag_y[:] = real_y
            onednn.sgemm(real_x, diff_w, imag_y, accumulate=True)
            onednn.sgemm(imag_x, minus_sum_w, real_y, accumulate=True)

    def _back(
        self, product: np.ndarray, block: tuple[int, int, int], tiles: int, result: np.ndarray, accumulate: bool
    ) -> None:
        """Step 3 for one block: frames = E @ Y, frame n of tile t to output row phase + d (t V + n), plus bias."""
        phase, first, end = block
        count, d, hop = end - first, self.dilation, self.dilation * self.valid
        columns = slice((phase * tiles + first) * self.out_channels, (phase * tiles + end) * self.out_channels)
        frames = _buffers.get("frames", (self.valid, count * self.out_channels))
        onednn.sgemm(self.inverse, product.reshape(self.size, -1)[:, columns], frames)
        frames = frames.reshape(self.valid, count, self.out_channels)
        if self.bias is not None:
            frames += self.bias
        for n in range(self.valid):
            start = phase + d * n + hop * first
            available = max(0, min(count, -(-(result.shape[0] - start) // hop)))
            rows = result[start : start + hop * available : hop]
            if accumulate:
                rows += frames[n, :available]
            else:
                rows[...] = frames[n, :available]


def uses_spectral(stride: int, kernel: int) -> bool:
    """Whether a convolution of this stride and kernel length is faster here than im2col."""
    return stride == 1 and kernel >= MIN_KERNEL


def spectral_or_direct(weight: np.ndarray, bias: np.ndarray | None, stride: int, dilation: int) -> Conv1d:
    """The faster prepared convolution for a MIL weight (out, in, k): spectral for stride-1 kernels of
    MIN_KERNEL taps or more, im2col otherwise."""
    if uses_spectral(stride, weight.shape[2]):
        return SpectralConv1d(weight, bias, stride, dilation)
    return Conv1d(weight, bias, stride, dilation)
