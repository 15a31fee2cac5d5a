"""A fused CUDA kernel for the GPU encoder: residual add, bias and the next layer norm in one pass.

`add_layer_norm(x, y, b, g, beta)` returns `(x + y + b, layer_norm(x + y + b))`, the sum rounded to
the activations' dtype before it is normed (as the module normalizes the stored residual). In the
encoder it replaces a residual add and a layer norm (two kernels, five passes over the rows) after
the out projection and after fc2, whose products then run without a bias epilogue. On CUDA it is an
`mx.fast.cuda_kernel` (one thread block per row); elsewhere the same arithmetic in MLX ops, so the
data flow is testable on the CPU.
"""

from __future__ import annotations

from typing import Any

import mlx.core as mx

LN_EPS = 1e-5
_THREADS = 256

_HEADER = """
__device__ inline float h34_block_sum(float v, float* scratch) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffff, v, o);
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float total = 0.f;
  int warps = (blockDim.x + 31) >> 5;
  for (int i = 0; i < warps; ++i) total += scratch[i];
  return total;
}
"""

# One block per row of WIDTH values; the rounded sum is kept in shared memory for both passes.
_SOURCE = """
  __shared__ float vals[WIDTH];
  __shared__ float scratch[32];
  const long row = blockIdx.x;
  const long base = row * WIDTH;
  float s = 0.f;
  for (int j = threadIdx.x; j < WIDTH; j += blockDim.x) {
    T r = static_cast<T>(static_cast<float>(x[base + j]) + static_cast<float>(y[base + j]) + static_cast<float>(b[j]));
    out_x[base + j] = r;
    float v = static_cast<float>(r);
    vals[j] = v;
    s += v;
  }
  const float mean = h34_block_sum(s, scratch) / WIDTH;
  float q = 0.f;
  for (int j = threadIdx.x; j < WIDTH; j += blockDim.x) {
    float d = vals[j] - mean;
    q += d * d;
  }
  const float inv = rsqrtf(h34_block_sum(q, scratch) / WIDTH + 1e-5f);  // LN_EPS
  for (int j = threadIdx.x; j < WIDTH; j += blockDim.x) {
    out_h[base + j] = static_cast<T>((vals[j] - mean) * inv * static_cast<float>(g[j]) + static_cast<float>(beta[j]));
  }
"""

_kernel: Any = None  # built on the first CUDA call (JIT-compiled by MLX, cached per template)


def _cuda() -> bool:
    return mx.default_device().type == mx.DeviceType.gpu and mx.cuda.is_available()


def add_layer_norm(x: mx.array, y: mx.array, b: mx.array, g: mx.array, beta: mx.array) -> tuple[mx.array, mx.array]:
    """(x + y + b, layer_norm(x + y + b; g, beta)) over the last axis; x and y (..., D), the rest (D,)."""
    if not _cuda():
        total = (x.astype(mx.float32) + y.astype(mx.float32) + b.astype(mx.float32)).astype(x.dtype)
        return total, mx.fast.layer_norm(total, g, beta, LN_EPS)
    global _kernel
    if _kernel is None:
        _kernel = mx.fast.cuda_kernel(
            name="h34_add_layer_norm",
            input_names=["x", "y", "b", "g", "beta"],
            output_names=["out_x", "out_h"],
            source=_SOURCE,
            header=_HEADER,
        )
    width = x.shape[-1]
    rows = x.size // width
    out_x, out_h = _kernel(
        inputs=[x, y, b, g, beta],
        template=[("T", x.dtype), ("WIDTH", width)],
        grid=(rows * _THREADS, 1, 1),
        threadgroup=(_THREADS, 1, 1),
        output_shapes=[x.shape, x.shape],
        output_dtypes=[x.dtype, x.dtype],
    )
    return out_x, out_h
