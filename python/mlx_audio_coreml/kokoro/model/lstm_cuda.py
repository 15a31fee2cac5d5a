"""Kokoro's LSTM recurrence as one CUDA kernel launch per call (MLX's `mx.fast.cuda_kernel`).

A batch-1 LSTM step is a (256) x (256, 1024) product and a few gate functions: far too little work
for a launch per op (the per-step MLX path costs ~40 launches a step), so the whole recurrence runs in
one launch. Two layouts:
- `split` (default where it fits): each (direction, row) sequence is spread over HIDDEN / UNITS blocks,
  each holding its gate columns of the recurrent weights in shared memory (32 KB) and owning UNITS
  hidden units; after each step the blocks trade their new hidden states through global memory and a
  counter (a spin barrier between the blocks of one sequence). All blocks must be resident at once,
  so it is used only for a few sequences (64 blocks for Kokoro's batch 1, of an H100's 132 SMs); the
  spin gives up after ~2^26 polls rather than hang the GPU (the output is then wrong, never stuck).
- `single`: one block per sequence reading the weights from L2 every step (no residency condition).
Measured on an H100 (bench/lstm_gpu.py, bench/results/kokoro_gpu_h100.md): single 14.0 ms for
1,513 steps against 64 ms for a compiled cell per step and 89 ms for plain MLX ops.
Sizes arrive in an int32 array, not as template values, so one compile serves every length.
"""

from __future__ import annotations

from typing import Any

import mlx.core as mx

_GATES = """
__device__ inline float lstm_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }
"""

_SINGLE = """
    const int rows = dims[0];
    const int steps = dims[1];
    const int block = blockIdx.x;           // direction * rows + row
    const int direction = block / rows;
    __shared__ float h[HIDDEN];
    __shared__ float c[HIDDEN];
    __shared__ float gates[4 * HIDDEN];
    for (int j = threadIdx.x; j < HIDDEN; j += blockDim.x) { h[j] = 0.0f; c[j] = 0.0f; }
    __syncthreads();
    const DT* w = w_hh + (size_t)direction * HIDDEN * 4 * HIDDEN;  // (H, 4H): thread j reads column j
    const DT* g_in = gx + (size_t)block * steps * 4 * HIDDEN;
    DT* h_out = hs + (size_t)block * steps * HIDDEN;
    for (int t = 0; t < steps; ++t) {
        for (int j = threadIdx.x; j < 4 * HIDDEN; j += blockDim.x) {
            float acc = static_cast<float>(g_in[(size_t)t * 4 * HIDDEN + j]);
            for (int k = 0; k < HIDDEN; ++k) {
                acc += h[k] * static_cast<float>(w[(size_t)k * 4 * HIDDEN + j]);
            }
            gates[j] = acc;
        }
        __syncthreads();
        for (int j = threadIdx.x; j < HIDDEN; j += blockDim.x) {
            const float cell = lstm_sigmoid(gates[HIDDEN + j]) * c[j] + lstm_sigmoid(gates[j]) * tanhf(gates[2 * HIDDEN + j]);
            c[j] = cell;
            h[j] = lstm_sigmoid(gates[3 * HIDDEN + j]) * tanhf(cell);
            h_out[(size_t)t * HIDDEN + j] = static_cast<DT>(h[j]);
        }
        __syncthreads();
    }
"""

_SPLIT = """
    const int rows = dims[0];
    const int steps = dims[1];
    const int parts = HIDDEN / UNITS;       // blocks per sequence
    const int seq = blockIdx.x / parts;     // direction * rows + row
    const int part = blockIdx.x % parts;
    const int direction = seq / rows;
    const int unit0 = part * UNITS;
    const int cols = 4 * UNITS;             // this block's gate columns: (gate q, unit u) at q * UNITS + u
    __shared__ float w_s[HIDDEN * 4 * UNITS];
    __shared__ float partial[KSPLIT * 4 * UNITS];
    __shared__ float h_s[HIDDEN];
    __shared__ float c_s[UNITS];
    const DT* w = w_hh + (size_t)direction * HIDDEN * 4 * HIDDEN;
    for (int idx = threadIdx.x; idx < HIDDEN * cols; idx += blockDim.x) {
        const int k = idx / cols, q = (idx % cols) / UNITS, u = idx % UNITS;
        w_s[idx] = static_cast<float>(w[(size_t)k * 4 * HIDDEN + q * HIDDEN + unit0 + u]);
    }
    for (int j = threadIdx.x; j < HIDDEN; j += blockDim.x) h_s[j] = 0.0f;
    if (threadIdx.x < UNITS) c_s[threadIdx.x] = 0.0f;
    __syncthreads();
    const DT* g_in = gx + (size_t)seq * steps * 4 * HIDDEN;
    DT* h_out = hs + (size_t)seq * steps * HIDDEN;
    float* trade = exchange + (size_t)seq * 2 * HIDDEN;  // two slots: step t writes slot t & 1
    int* arrived = counters + seq;
    const int col = threadIdx.x % cols;
    const int k0 = (threadIdx.x / cols) * (HIDDEN / KSPLIT);
    for (int t = 0; t < steps; ++t) {
        float acc = 0.0f;
        for (int k = k0; k < k0 + HIDDEN / KSPLIT; ++k) acc += h_s[k] * w_s[k * cols + col];
        partial[(threadIdx.x / cols) * cols + col] = acc;
        __syncthreads();
        if (threadIdx.x < UNITS) {
            const int u = threadIdx.x;
            float z[4];
            for (int q = 0; q < 4; ++q) {
                float s = static_cast<float>(g_in[(size_t)t * 4 * HIDDEN + q * HIDDEN + unit0 + u]);
                for (int p = 0; p < KSPLIT; ++p) s += partial[p * cols + q * UNITS + u];
                z[q] = s;
            }
            const float cell = lstm_sigmoid(z[1]) * c_s[u] + lstm_sigmoid(z[0]) * tanhf(z[2]);
            c_s[u] = cell;
            const float h = lstm_sigmoid(z[3]) * tanhf(cell);
            h_out[(size_t)t * HIDDEN + unit0 + u] = static_cast<DT>(h);
            trade[(t & 1) * HIDDEN + unit0 + u] = h;
        }
        __threadfence();
        __syncthreads();
        if (threadIdx.x == 0) {
            atomicAdd(arrived, 1);
            const int target = parts * (t + 1);
            long long polls = 0;
            while (atomicAdd(arrived, 0) < target && ++polls < (1LL << 26)) { }
            __threadfence();
        }
        __syncthreads();
        for (int j = threadIdx.x; j < HIDDEN; j += blockDim.x) h_s[j] = __ldcg(&trade[(t & 1) * HIDDEN + j]);
        __syncthreads();
    }
"""

SPLIT_UNITS = 8  # hidden units per block: 32 gate columns x 256 rows of float32 = 32 KB of shared memory
SPLIT_KSPLIT = 8  # threads sharing one column's dot product: 4 * 8 * 8 = 256 threads a block
SPLIT_MAX_BLOCKS = 96  # all blocks must be resident together: well under an H100's 132 SMs

_kernels: dict[str, Any] = {}


def _kernel(layout: str) -> Any:
    if layout not in _kernels:
        outputs = ["hs"] if layout == "single" else ["hs", "exchange", "counters"]
        _kernels[layout] = mx.fast.cuda_kernel(
            name=f"kokoro_lstm_{layout}",
            input_names=["gx", "w_hh", "dims"],
            output_names=outputs,
            source=_SINGLE if layout == "single" else _SPLIT,
            header=_GATES,
        )
    return _kernels[layout]


def split_fits(sequences: int, hidden: int) -> bool:
    """True when the split layout applies: whole units per block and few enough blocks to be resident."""
    divides = hidden % SPLIT_UNITS == 0 and hidden % SPLIT_KSPLIT == 0
    return divides and sequences * hidden // SPLIT_UNITS <= SPLIT_MAX_BLOCKS


def run(gx: mx.array, w_hh: mx.array, layout: str = "auto") -> mx.array:
    """gx (2, B, T, 4H), w_hh (2, H, 4H) -> hidden states (2, B, T, H), one launch.

    layout: "split", "single" or "auto" (split where `split_fits`)."""
    directions, rows, steps, gates = gx.shape
    hidden = gates // 4
    sequences = directions * rows
    if layout == "auto":
        layout = "split" if split_fits(sequences, hidden) else "single"
    dims = mx.array([rows, steps], dtype=mx.int32)
    inputs = [gx, w_hh.astype(gx.dtype), dims]
    if layout == "single":
        threads = min(1024, gates)
        (hs,) = _kernel("single")(
            inputs=inputs,
            template=[("DT", gx.dtype), ("HIDDEN", hidden)],
            grid=(sequences * threads, 1, 1),
            threadgroup=(threads, 1, 1),
            output_shapes=[(directions, rows, steps, hidden)],
            output_dtypes=[gx.dtype],
        )
        return hs
    threads = 4 * SPLIT_UNITS * SPLIT_KSPLIT
    blocks = sequences * hidden // SPLIT_UNITS
    hs, _, _ = _kernel("split")(
        inputs=inputs,
        template=[("DT", gx.dtype), ("HIDDEN", hidden), ("UNITS", SPLIT_UNITS), ("KSPLIT", SPLIT_KSPLIT)],
        grid=(blocks * threads, 1, 1),
        threadgroup=(threads, 1, 1),
        output_shapes=[(directions, rows, steps, hidden), (sequences, 2, hidden), (sequences,)],
        output_dtypes=[gx.dtype, mx.float32, mx.int32],
        init_value=0,  # the counters must start at zero (the other outputs are overwritten)
    )
    return hs
