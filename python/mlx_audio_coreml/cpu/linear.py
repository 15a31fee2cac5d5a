"""Linear layers for the CPU host path: y = x @ W.T + b on numpy rows, in float32 or int8.

float32 goes through oneDNN's sgemm when it is installed (OpenBLAS's gemv for one row, which is
as fast there). int8 follows the scheme CTranslate2 uses for faster-whisper's int8 models:
each weight row (output channel) is quantized symmetrically to int8 with its own scale once, at
preparation; each input row is quantized the same way at call time; oneDNN multiplies the int8
matrices into exact int32 sums, and the result is scaled back by both scales. Measured on one
Zen 4 core here: a (1500 x 384) @ (384 x 1536) product, quantization and scaling included, took
7.3 ms in int8 against 16 ms in float32; tiny.en's 51864 x 384 logits product 1.2-1.8 ms
against 6.5 ms (it is memory-bound: 20 MB of int8 weights against 80 MB).
Which oneDNN route gives the int32 sums: a few rows (decoder steps), prepared 1x1 convolutions that
also apply the scales (`_few`); more rows (encoder pieces, audio keys/values, prompts), prepared
1x1 convolutions giving the sums alone (`_many_product`), scaled here exactly as the gemm route.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import CPUKernelFailed
from . import host_math, native_kernels, native_pieces, onednn, onednn_eltwise, onednn_rows, scratch
from . import pool as host_pool
from . import team as host_team
from .int8_rows import INPUT_SHIFT, QUANTIZATION, quantize_into, quantize_rows

# Inputs from this many rows are split between cores by rows. float32 from 32: a prompt's products
# (9-227 rows) ran on one core before, and its prefill took 70.3 against 64.0 ms a window split
# (tiny.en, greedy, 3.2 min, in turns, this 2-core EPYC); int8 from 256: its prompt rows go to
# kernels made per 32-row bucket, and halves gained nothing there (40.7 against 40.8 ms).
_SPLIT_ROWS = {False: 32, True: 256}
_SPLIT_MIN = 4_000_000  # weights from this size (one or a few rows in) are split between cores
_FEW_ROWS = 8  # "a few rows": a greedy step's one, a beam search's five
_PIECES_PER_WORKER = 4  # column pieces of a split product per worker
# More than `_FEW_ROWS` int8 rows (encoder pieces, the audio keys/values, prompts): prepared 1x1
# convolutions giving the exact sums as float32 (`onednn_rows`, sums_only), scaled here as the gemm
# route does. float32 sums, not int32: numpy's int32 x float32 multiply runs a casting loop, 222 us
# against 151 us for (375 x 1152) here, and the kernel's conversion rounds as numpy's cast does.
_BUCKET_ROWS = 32  # counts up to `_BUCKETED_UP_TO` (prompts, 9-227 rows) round up to a multiple of this
_BUCKETED_UP_TO = 256  # above it each count has its own kernel (the encoder's and audio's few fixed counts)
_MANY_KERNELS = 16  # kernels per layer at most (8 buckets + fixed counts); past that, the gemm route
many_rows_conv = True  # False: the gemm route for many rows (to compare both in one process)


class HostLinear:
    """A prepared (N, K) weight with optional bias; `int8` keeps int8 rows and their scales instead."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray | None, *, int8: bool = False) -> None:
        if int8 and not onednn.available():
            raise RuntimeError("int8 host products need oneDNN (pip install onednn-cpu-gomp)")
        self.int8 = int8
        self.out_features, self.in_features = weight.shape
        self.bias = None if bias is None else np.ascontiguousarray(bias, np.float32)
        self.offsets: np.ndarray | None = None
        if int8:
            # weights are oneDNN's second operand: 7 bits on CPUs whose int8 products would saturate
            self.weight, self.scales = quantize_rows(np.asarray(weight, np.float32), onednn.int8_weight_limit())
            # inputs go in as unsigned bytes q + 128 (oneDNN's faster kernels); this takes the 128s back out
            offsets = (-INPUT_SHIFT * self.weight.sum(axis=1, dtype=np.int32)).astype(np.int32)
            self.offsets = offsets
            self._weight_at, self._offsets_at = self.weight.ctypes.data, offsets.ctypes.data
        else:
            self.weight, self.scales = np.ascontiguousarray(weight, np.float32), None
        # a few rows in (decoder steps): oneDNN's 1x1 convolution, prepared on first use per row count
        self._row_kernels: dict[int, onednn_rows.RowKernel | None] = {}
        self._row_lock = threading.Lock()
        # int8 products of one piece, by row count: the shortcuts `_single_row` and `_several_rows`
        self._direct: dict[int, onednn_rows.RowProduct] = {}
        # many int8 rows: int32-sum kernels by (bucketed) row count, None where oneDNN has none
        self._many: dict[int, onednn_rows.RowProduct | None] = {}
        self._team_pieces = native_pieces.ThreadPieces()  # a large weight's pieces on a step's team
        self._few_rows_pieces = 1  # column pieces of a small weight's few-row products (`split_for_team`)

    def __call__(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """x (M, K) or (K,) float32 -> (M, N) or (N,); writes into `out` when given (M, N)."""
        direct = self._direct.get(x.shape[0]) if out is None and x.ndim == 2 else None
        if direct is not None:  # most of a decoder step's calls (greedy: one row; beams: a row each)
            return self._single_row(direct, x) if x.shape[0] == 1 else self._several_rows(direct, x)
        rows = x.reshape(1, -1) if x.ndim == 1 else x
        result = out if out is not None else np.empty((rows.shape[0], self.out_features), np.float32)
        if rows.shape[0] >= _SPLIT_ROWS[self.int8] and host_pool.worker_count() > 1 and not host_pool.in_worker():
            host_pool.run_all(lambda part: self(rows[part], out=result[part]), host_pool.even_ranges(rows.shape[0]))
            return result  # many rows (the audio keys/values of a prompt): each core takes a share
        if (
            self._few_rows_apply(rows)
            and result.flags.c_contiguous
            and (self._in_team(rows, result) or self._few(rows, result))
        ):
            return result.reshape(-1) if x.ndim == 1 else result  # scales and bias applied
        if self.int8 and rows.shape[0] == 1:
            self._int8_row(rows, result)
        elif self.int8:
            self._int8(rows, result)
        elif rows.shape[0] == 1 or not onednn.available():
            result[:] = host_math.matvec(self.weight, rows[0]) if rows.shape[0] == 1 else rows @ self.weight.T
        else:
            self._by_columns(
                rows, lambda cols: onednn.sgemm(rows, self.weight[cols], result[:, cols], b_transposed=True)
            )
        if self.bias is not None:
            result += self.bias
        return result.reshape(-1) if x.ndim == 1 else result

    def _few_rows_apply(self, rows: np.ndarray) -> bool:
        """int8: a decoder step's products (1 to 8 rows). float32: a large weight's (the logits') 2 to 8
        rows of beams and samples (5.8 ms against 14 ms for sgemm on 5 rows), and its one row when a
        step's team is open, which shares its pieces (a greedy tiny.en step on this 2-core EPYC, jfk.wav,
        in turns: 5.85 against 6.19 ms with OpenBLAS's sgemv; 80 MB of weights a step is memory-bound
        either way; the cost: the weights' second, reordered copy). Small weights are as fast through
        gemv / sgemm."""
        if self.int8:
            return rows.shape[0] <= _FEW_ROWS
        several = rows.shape[0] > 1 or host_team.current() is not None
        return several and rows.shape[0] <= _FEW_ROWS and self.weight.size >= _SPLIT_MIN and onednn.available()

    def _int8(self, rows: np.ndarray, result: np.ndarray) -> None:
        count = rows.shape[0]
        product = self._many_product(count) if count > _FEW_ROWS else None
        height = count if product is None else product.rows  # a bucket's rows past `count` are ignored
        padded = scratch.block_scratch.get("q", (height, self.in_features), np.uint8)
        quantized = padded[:count]
        row_scales = quantize_into(rows, scratch.block_scratch.get("scaled", rows.shape, np.float32), quantized)
        offsets, scales = self.offsets, self.scales
        assert offsets is not None and scales is not None  # set with the int8 weights
        if product is not None:  # the same sums (as float32), scaled in the same two passes: the same floats
            sums_f32 = scratch.block_scratch.get("sums-f32", (height, self.out_features), np.float32)
            product.run_sums(padded.ctypes.data, sums_f32.ctypes.data)
            np.multiply(sums_f32[:count], row_scales, out=result)  # float32 only: no casting loop
            result *= scales
            return
        sums = scratch.block_scratch.get("sums", result.shape, np.int32)

        def part(cols: slice) -> None:  # output channels `cols`: weight rows, a column block of the sums
            onednn.gemm_u8s8(quantized, self.weight[cols], sums[:, cols], offsets[cols])
            # int32 -> float32 times both scales, in two passes over the block
            np.multiply(sums[:, cols], row_scales, out=result[:, cols], dtype=np.float32)
            result[:, cols] *= scales[cols]

        self._by_columns(rows, part)

    def prepare_rows(self, count: int) -> None:
        """Make the kernel for int8 calls of `count` rows now (callers whose row counts are fixed,
        such as the encoder's pieces) rather than in the first call."""
        if self.int8 and count > _FEW_ROWS:
            self._many_product(count)

    def _many_product(self, count: int) -> onednn_rows.RowProduct | None:
        """The int32-sum kernel for `count` (> `_FEW_ROWS`) rows, made on first use: of `count` rows
        above `_BUCKETED_UP_TO`, else of `count` rounded up to a multiple of `_BUCKET_ROWS`. None
        where oneDNN has none, when switched off, or past `_MANY_KERNELS` counts (the gemm route).

        Why: oneDNN's gemm_u8s8 repacks the weights at every call; the prepared kernel reads them
        reordered once. Exact sums either way. Measured one thread, this AVX2 EPYC: 1152 x 384 at 375
        rows 1.80 vs 1.95 ms, 3072 x 384 at 750 rows 9.8 vs 14.1 ms; a Xeon with AMX (bench/xeon_cpu.gemm.py,
        scales included in the convolution) 1152 x 384 at 375 rows 0.35 vs 0.74 ms."""
        if not many_rows_conv:
            return None
        height = count if count > _BUCKETED_UP_TO else -(-count // _BUCKET_ROWS) * _BUCKET_ROWS
        if height in self._many:
            return self._many[height]
        with self._row_lock:
            if height not in self._many:
                if len(self._many) >= _MANY_KERNELS:
                    return None
                # one reordered copy of the weights where the layouts agree (a decoder step's kernel's too)
                shared = next((k for k in self._many.values() if k is not None), None)
                shared = shared or next(iter(self._direct.values()), None)
                try:
                    made = onednn_rows.RowProduct(self.weight, None, None, height, shared, sums_only=True)
                except CPUKernelFailed:  # this oneDNN or CPU has no such kernel: the gemm route
                    made = None
                self._many[height] = made
        return self._many[height]

    def _in_team(self, rows: np.ndarray, result: np.ndarray) -> bool:
        """A large weight's column pieces on the open team of this thread's decoder step (cpu/team.py),
        in one C call: `_few`'s results, bit for bit. False where none is open or the pieces cannot
        run so (then `_few` does)."""
        team = host_team.current()
        if team is None or rows.strides[-1] != 4:
            return False
        call = self._thread_pieces(rows.shape[0])
        if call is None:
            return False
        call(team, rows, result)
        return True

    def _thread_pieces(self, count: int) -> native_pieces.PiecesCall | None:
        """This thread's column-pieces call for `count` rows (made on first use), or None."""
        made = self._team_pieces.by_rows
        if count not in made:
            made[count] = self._pieces_call(count)
        return made[count]

    def _pieces_call(self, count: int) -> native_pieces.PiecesCall | None:
        kernel = self._row_kernel(count)
        if kernel is None or kernel.single is not None:  # one piece: nothing to share
            return None
        pieces = []
        for cols, product in kernel.pieces:
            bound = product.bound()
            bias = None if self.bias is None or count == 1 else self.bias[cols]  # one row: the primitive's
            call = native_kernels.row_product_call(product, bound, QUANTIZATION, bias)
            if call is None:
                return None
            call.use_stream(onednn_eltwise.new_stream())  # any worker may run the piece: a stream of its own
            pieces.append((cols.start or 0, call, bound, bound.block))
        return native_pieces.PiecesCall(pieces, count)

    def _few(self, rows: np.ndarray, result: np.ndarray) -> bool:
        """A few rows through prepared 1x1-convolution products (`onednn_rows`), bias included; False
        where oneDNN cannot make them (the caller takes the gemm route then).

        int8: the same quantization as `_int8` (one scale per row); with one row oneDNN applies its
        scale, with several they are applied here, after the weights' scales (each row has its own)."""
        kernel = self._row_kernel(rows.shape[0])
        if kernel is None:
            return False
        if not self.int8:
            kernel.run(np.ascontiguousarray(rows, np.float32).ctypes.data, 1.0, result)
            return True
        if kernel.single is not None and rows.shape[0] == 1:  # most of a decoder step's calls: fewest steps
            scaled = scratch.row_scratch.get(self.in_features, self.out_features).scaled
            row_scales = quantize_into(rows, scaled, kernel.single.input_buffer())
            kernel.single.run(float(row_scales[0, 0]), result.ctypes.data)
            return True
        scaled = scratch.block_scratch.get("few-scaled", rows.shape, np.float32)
        quantized = scratch.block_scratch.get("few-q", rows.shape, np.uint8)
        row_scales = quantize_into(rows, scaled, quantized)
        single = rows.shape[0] == 1
        kernel.run(quantized.ctypes.data, float(row_scales[0, 0]) if single else 1.0, result)
        if not single:
            result *= row_scales
            if self.bias is not None:
                result += self.bias
        return True

    def _single_row(self, product: onednn_rows.RowProduct, row: np.ndarray) -> np.ndarray:
        """`_few` for one row and one piece in fewer Python steps (its buffers looked up once, the
        same numpy operations in the same order: the same float32 results). Each call saves ~10 us
        of a ~30 us total here; a greedy tiny.en step makes 24 of them."""
        bound = product.bound()
        done = self._in_one_call(product, bound, row)
        if done is not None:
            return done
        row_scales = quantize_into(row, bound.scaled, bound.quantized)
        result = np.empty((1, self.out_features), np.float32)
        product.run_bound(bound, float(row_scales[0, 0]), result.ctypes.data)
        return result

    def _in_one_call(self, product: onednn_rows.RowProduct, bound: Any, rows: np.ndarray) -> np.ndarray | None:
        """`_single_row`'s and `_several_rows`' work as one C call (native_kernels.row_product_call,
        the same bits), or None where there is none (kernels not built). The call is made once and
        kept on the thread's `bound` (False: none). A loaded EPYC, tiny.en's shapes, one row: 18-35
        against 35-69 us a call (a greedy step makes 24)."""
        call = self._native_call(product, bound)
        if call is None or rows.strides[-1] != 4:
            return None
        bound.own_source()  # a `_few` call of several rows may have pointed the source elsewhere
        result = np.empty((rows.shape[0], self.out_features), np.float32)
        call(rows, result)
        return result

    def _native_call(self, product: onednn_rows.RowProduct, bound: Any) -> native_kernels.RowProductCall | None:
        """This thread's one-call product (made on first use), or None where none can be made."""
        call = bound.native_call
        if call is None:
            call = native_kernels.row_product_call(
                product, bound, QUANTIZATION, self.bias if product.rows > 1 else None
            )
            bound.native_call = call if call is not None else False
        return call or None

    def one_call(self, rows: int) -> tuple[native_kernels.RowProductCall, Any] | None:
        """For products of `rows` (1-8) rows in one piece: this thread's one-call product and the
        binding it runs on (whose `src_at` must still be its `own_at` when it runs), or None.
        float32: made on first call, with the weights reordered for oneDNN (a second copy of them)."""
        kernel = self._row_kernel(rows) if 1 <= rows <= _FEW_ROWS else None
        product = None if kernel is None else kernel.single
        if product is None:  # none, or split in column pieces (a large weight)
            return None
        bound = product.bound()
        call = self._native_call(product, bound)
        return None if call is None else (call, bound)

    def _several_rows(self, product: onednn_rows.RowProduct, rows: np.ndarray) -> np.ndarray:
        """`_few` for 2-8 rows (beams) and one piece, in fewer Python steps: the same operations in
        the same order (each row's scale applied after oneDNN's weight scales, then the bias)."""
        bound = product.bound()
        done = self._in_one_call(product, bound, rows)
        if done is not None:
            return done
        row_scales = quantize_into(rows, bound.scaled, bound.quantized)
        result = np.empty((rows.shape[0], self.out_features), np.float32)
        product.run_bound(bound, 1.0, result.ctypes.data)
        result *= row_scales
        if self.bias is not None:
            result += self.bias
        return result

    def split_for_team(self, pieces: int) -> None:
        """Cut this (small) weight's few-row products into `pieces` column pieces, for a decoder step's
        team to share (`block_product`); before its first few-row product. Why: a float32 decoder's
        block weights are memory-bound reads, which one core streamed through oneDNN's prepared
        products at ~11 GB/s on this AMD EPYC and two at ~29 GB/s."""
        if self._row_kernels:
            raise RuntimeError("split_for_team comes before the layer's first few-row product")
        self._few_rows_pieces = max(1, pieces)

    def block_product(self, rows: int) -> tuple[native_kernels.RowProductCall, Any] | native_pieces.PiecesCall | None:
        """A decoder block's product of `rows` (1-8) rows: `one_call`'s, or its column pieces where the
        weight is cut in pieces (`split_for_team`, or a large one); None where neither can be made."""
        single = self.one_call(rows)
        if single is not None or not 1 <= rows <= _FEW_ROWS:
            return single
        return self._thread_pieces(rows)

    def _row_kernel(self, count: int) -> onednn_rows.RowKernel | None:
        """The products for `count` input rows, split in column pieces for a large weight (as
        `_by_columns` splits); made once per row count (sharing one reordered copy of the weights),
        None where oneDNN cannot."""
        if count in self._row_kernels:
            return self._row_kernels[count]
        with self._row_lock:
            if count not in self._row_kernels:
                pieces = [slice(0, self.out_features)]
                if self.weight.size >= _SPLIT_MIN:
                    pieces = host_pool.even_ranges(self.out_features, _PIECES_PER_WORKER * host_pool.worker_count())
                elif self._few_rows_pieces > 1:
                    pieces = host_pool.even_ranges(self.out_features, self._few_rows_pieces)
                # int8 with several rows: each row's scale is applied here first, then the bias
                bias = self.bias if count == 1 or not self.int8 else None
                shared = next((k for k in self._row_kernels.values() if k is not None), None)
                try:
                    made = onednn_rows.RowKernel(self.weight, self.scales, bias, count, pieces, shared)
                except CPUKernelFailed:  # this oneDNN or CPU has no such kernel: the gemm route
                    made = None
                self._row_kernels[count] = made
                if self.int8 and made is not None and made.single is not None:
                    self._direct[count] = made.single
        return self._row_kernels[count]

    def _int8_row(self, row: np.ndarray, result: np.ndarray) -> None:
        """`_int8` for one row (a decoder step's products), in fewer numpy calls and through raw
        addresses: the same arithmetic in the same order, so the same float32 results."""
        n, k = self.out_features, self.in_features
        buffers, scales = scratch.row_scratch.get(k, n), self.scales
        assert scales is not None  # set with the int8 weights
        row_scale = quantize_into(row, buffers.scaled, buffers.quantized)
        sums = buffers.sums

        def part(cols: slice) -> None:
            start, stop = cols.indices(n)[:2]
            onednn.gemm_u8s8_at(
                1, stop - start, k, buffers.quantized_at, self._weight_at + start * k,
                buffers.sums_at + 4 * start, n, self._offsets_at + 4 * start,
            )  # fmt: skip
            np.multiply(sums[:, cols], row_scale, out=result[:, cols], dtype=np.float32)
            result[:, cols] *= scales[cols]

        self._by_columns(row, part)

    def _by_columns(self, rows: np.ndarray, part: Callable[[slice], object]) -> None:
        """part(output channels) for all of them: split between the workers for a few rows against a
        large weight (memory-bound: every core reads its share), else at once."""
        if self.weight.size >= _SPLIT_MIN and rows.shape[0] <= _FEW_ROWS:
            # a few pieces per worker: one that no helper started in time, the caller takes
            host_pool.run_all(
                part, host_pool.even_ranges(self.out_features, _PIECES_PER_WORKER * host_pool.worker_count())
            )
        else:
            part(slice(None))


def from_layer(layer: Any, int8: bool) -> HostLinear:
    """An MLX `nn.Linear` as a host layer (its weights read through zero-copy numpy views)."""
    return fused([layer], int8)


def fused(layers: Sequence[Any], int8: bool, scales: Sequence[float] | None = None) -> HostLinear:
    """Linear layers that read the same input as one product: weights stacked, outputs side by side.

    A layer without a bias (Whisper's keys) contributes zeros; `scales` multiply a layer's weight and
    bias (Whisper's queries, pre-scaled by 1/sqrt(Dh) so no pass over the scores is needed)."""
    scales = scales or [1.0] * len(layers)
    weights, biases, any_bias = [], [], False
    for layer, scale in zip(layers, scales, strict=True):
        weight = np.asarray(layer.weight)
        bias = getattr(layer, "bias", None)
        any_bias = any_bias or bias is not None
        weights.append(weight * np.float32(scale) if scale != 1.0 else weight)
        bias = np.zeros(weight.shape[0], np.float32) if bias is None else np.asarray(bias)
        biases.append(bias * np.float32(scale) if scale != 1.0 else bias)
    weight = weights[0] if len(weights) == 1 else np.concatenate(weights)
    return HostLinear(
        weight, (biases[0] if len(biases) == 1 else np.concatenate(biases)) if any_bias else None, int8=int8
    )
