"""The LSTM recurrence off the CPU host path: one fused kernel per sequence on CUDA, a compiled cell elsewhere.

Why: written as plain MLX ops, each timestep is ~10 kernels (a slice, the recurrent product, the gate
split, three sigmoids, two tanh, the state updates), and Kokoro runs five LSTMs over the tokens and one
over the frames: at 510 tokens (1,513 frames) that is ~40,000 tiny launches, which made our H100 run
3.4x slower than PyTorch's cuDNN LSTM (bench/results/kokoro_gpu_h100.md). So:
- on a CUDA GPU, when MLX_AUDIO_COREML_LSTM_CUDA_KERNEL=1, `_CUDA_SOURCE` runs the whole recurrence of one (direction, batch row) in one thread
  block: each thread owns gate rows, the hidden and cell states stay in shared memory, and one launch
  covers every timestep;
- elsewhere (Metal, or the CPU with host kernels off), the cell's elementwise work is one `mx.compile`d
  function, so a step is the product plus one fused kernel.
The fused kernel is opt-in because it has not run on a GPU yet: it was written after the session's GPU
time was spent (bench/lstm_gpu.py checks it against the per-step ops and times it; run that first).
Inputs are the time-major gate projections of both directions, the backward one already reversed in time.
"""

from __future__ import annotations

from typing import Any

import mlx.core as mx

from ... import config

_CUDA_SOURCE = """
    const int rows = gx_shape[1];
    const int steps = gx_shape[2];
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
            const float i = 1.0f / (1.0f + expf(-gates[j]));
            const float f = 1.0f / (1.0f + expf(-gates[HIDDEN + j]));
            const float g = tanhf(gates[2 * HIDDEN + j]);
            const float o = 1.0f / (1.0f + expf(-gates[3 * HIDDEN + j]));
            const float cell = f * c[j] + i * g;
            c[j] = cell;
            h[j] = o * tanhf(cell);
            h_out[(size_t)t * HIDDEN + j] = static_cast<DT>(h[j]);
        }
        __syncthreads();
    }
"""

_kernel: Any = None


def cuda_available() -> bool:
    """True when the fused kernel can run: MLX's CUDA backend, the default device a GPU."""
    return mx.default_device() == mx.gpu and mx.cuda.is_available()


def cuda_applies(x: mx.array) -> bool:
    """True when `run` takes the fused kernel: it can run, it is switched on, and x's dtype suits it."""
    wanted = config.setting(config.LSTM_CUDA_KERNEL) == "1"
    return wanted and cuda_available() and x.dtype in (mx.float32, mx.float16, mx.bfloat16)


def _cuda_kernel() -> Any:
    global _kernel
    if _kernel is None:
        _kernel = mx.fast.cuda_kernel(
            name="kokoro_lstm_recurrence",
            input_names=["gx", "w_hh"],
            output_names=["hs"],
            source=_CUDA_SOURCE,
        )
    return _kernel


def run_cuda(gx: mx.array, w_hh: mx.array) -> mx.array:
    """gx (2, B, T, 4H), w_hh (2, H, 4H) -> hidden states (2, B, T, H), one launch."""
    directions, rows, steps, gates = gx.shape
    hidden = gates // 4
    threads = min(1024, gates)
    (hs,) = _cuda_kernel()(
        inputs=[gx, w_hh.astype(gx.dtype)],
        template=[("DT", gx.dtype), ("HIDDEN", hidden)],
        grid=(directions * rows * threads, 1, 1),
        threadgroup=(threads, 1, 1),
        output_shapes=[(directions, rows, steps, hidden)],
        output_dtypes=[gx.dtype],
    )
    return hs


@mx.compile
def _cell(gates_x: mx.array, h: mx.array, c: mx.array, w_hh: mx.array) -> tuple[mx.array, mx.array]:
    i, f, g, o = mx.split(gates_x + h @ w_hh, 4, axis=-1)
    c = mx.sigmoid(f) * c + mx.sigmoid(i) * mx.tanh(g)
    return mx.sigmoid(o) * mx.tanh(c), c


def run_stepwise(gx: mx.array, w_hh: mx.array) -> mx.array:
    """The same recurrence one compiled cell per timestep (any device)."""
    directions, rows, steps, gates = gx.shape
    h = mx.zeros((directions, rows, gates // 4), dtype=gx.dtype)
    c = mx.zeros_like(h)
    outs = []
    for t in range(steps):
        h, c = _cell(gx[:, :, t], h, c, w_hh)
        outs.append(h)
    return mx.stack(outs, axis=2)


def run(gx: mx.array, w_hh: mx.array) -> mx.array:
    """gx (2, B, T, 4H) and w_hh (2, H, 4H) -> (2, B, T, H) on whichever path the device allows."""
    if cuda_applies(gx):
        return run_cuda(gx, w_hh)
    return run_stepwise(gx, w_hh)
