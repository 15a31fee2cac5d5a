"""The LSTM recurrence off the CPU host path: one fused kernel per sequence on CUDA, a compiled cell elsewhere.

Why: written as plain MLX ops, each timestep is ~10 kernels (a slice, the recurrent product, the gate
split, three sigmoids, two tanh, the state updates), and Kokoro runs five LSTMs over the tokens and one
over the frames: at 510 tokens (1,513 frames) that is ~40,000 tiny launches, which made our H100 run
3.4x slower than PyTorch's cuDNN LSTM (bench/results/kokoro_gpu_h100.md). So:
- on a CUDA GPU the whole recurrence is one kernel launch (lstm_cuda.py; on by default since it was
  checked and timed on an H100: 13.8 ms for 1,513 steps against 69 ms; MLX_AUDIO_COREML_LSTM_CUDA_KERNEL=0
  switches it off);
- elsewhere (Metal, or the CPU with host kernels off), the cell's elementwise work is one `mx.compile`d
  function, so a step is the product plus one fused kernel.
Inputs are the time-major gate projections of both directions, the backward one already reversed in time.
"""

from __future__ import annotations

import mlx.core as mx

from ... import config
from . import lstm_cuda


def cuda_available() -> bool:
    """True when the fused kernel can run: MLX's CUDA backend, the default device a GPU."""
    return mx.default_device() == mx.gpu and mx.cuda.is_available()


def cuda_applies(x: mx.array) -> bool:
    """True when `run` takes the fused kernel: it can run, it is not switched off, and x's dtype suits it."""
    wanted = config.setting(config.LSTM_CUDA_KERNEL) != "0"
    return wanted and cuda_available() and x.dtype in (mx.float32, mx.float16, mx.bfloat16)


def run_cuda(gx: mx.array, w_hh: mx.array) -> mx.array:
    """gx (2, B, T, 4H), w_hh (2, H, 4H) -> hidden states (2, B, T, H), one launch (lstm_cuda.py)."""
    return lstm_cuda.run(gx, w_hh)


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
