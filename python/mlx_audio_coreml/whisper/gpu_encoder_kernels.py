"""Fused CUDA kernels for the GPU encoder: residual add + bias + layer norm in one pass, and GELU.

`add_layer_norm(x, y, b, g, beta)` returns `(x + y + b, layer_norm(x + y + b))`, the sum rounded to
the activations' dtype before it is normed (as the module normalizes the stored residual). In the
encoder it replaces a residual add and a layer norm (two kernels, five passes over the rows) after
the out projection and after fc2, whose products then run without a bias epilogue.
`gelu(x)` is the exact (erf) GELU computed in float32.

On CUDA both are `mx.fast.cuda_kernel`s that move 16 bytes per load (8 halves): one thread block of
width / 8 threads per row for the norm, 8 values per thread for GELU. Elsewhere, or for shapes the
kernels do not take (a row width that is not a multiple of 256, a size not a multiple of 8), the
same arithmetic in MLX ops, so the data flow is testable on the CPU.
"""

from __future__ import annotations

import math
from typing import Any

import mlx.core as mx
import mlx.nn as nn

LN_EPS = 1e-5
VEC = 8  # values per 16-byte load of float16

_HEADER = """
__device__ inline float h34_block_sum(float v, float* scratch) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffff, v, o);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float total = 0.f;
  for (int i = 0; i < (int)(blockDim.x >> 5); ++i) total += scratch[i];
  return total;
}
"""

# One block per row, WIDTH / 8 threads (whole warps), each holding 8 values in registers.
_ADD_LN = """
  struct alignas(sizeof(T) * 8) Pack { T v[8]; };
  __shared__ float scratch[32];
  const long off = long(blockIdx.x) * WIDTH + threadIdx.x * 8;
  const Pack xp = *reinterpret_cast<const Pack*>(x + off);
  const Pack yp = *reinterpret_cast<const Pack*>(y + off);
  const Pack bp = *reinterpret_cast<const Pack*>(b + threadIdx.x * 8);
  Pack sum;
  float v[8];
  float s = 0.f;
  #pragma unroll
  for (int i = 0; i < 8; ++i) {
    sum.v[i] = static_cast<T>(static_cast<float>(xp.v[i]) + static_cast<float>(yp.v[i]) + static_cast<float>(bp.v[i]));
    v[i] = static_cast<float>(sum.v[i]);
    s += v[i];
  }
  *reinterpret_cast<Pack*>(out_x + off) = sum;
  const float mean = h34_block_sum(s, scratch) / WIDTH;
  float q = 0.f;
  #pragma unroll
  for (int i = 0; i < 8; ++i) q += (v[i] - mean) * (v[i] - mean);
  const float inv = rsqrtf(h34_block_sum(q, scratch) / WIDTH + 1e-5f);
  const Pack gp = *reinterpret_cast<const Pack*>(g + threadIdx.x * 8);
  const Pack ep = *reinterpret_cast<const Pack*>(beta + threadIdx.x * 8);
  Pack h;
  #pragma unroll
  for (int i = 0; i < 8; ++i) {
    h.v[i] = static_cast<T>((v[i] - mean) * inv * static_cast<float>(gp.v[i]) + static_cast<float>(ep.v[i]));
  }
  *reinterpret_cast<Pack*>(out_h + off) = h;
"""

_GELU = """
  struct alignas(sizeof(T) * 8) Pack { T v[8]; };
  const long i = (long(blockIdx.x) * blockDim.x + threadIdx.x) * 8;
  if (i >= SIZE) return;
  Pack p = *reinterpret_cast<const Pack*>(inp + i);
  #pragma unroll
  for (int k = 0; k < 8; ++k) {
    const float a = static_cast<float>(p.v[k]);
    p.v[k] = static_cast<T>(0.5f * a * (1.f + erff(a * 0.7071067811865476f)));
  }
  *reinterpret_cast<Pack*>(out + i) = p;
"""

_kernels: dict[str, Any] = {}  # built on first CUDA use (MLX JIT-compiles them, cached per template)


def _cuda() -> bool:
    return mx.default_device().type == mx.DeviceType.gpu and mx.cuda.is_available()


def _kernel(name: str, inputs: list[str], outputs: list[str], source: str) -> Any:
    if name not in _kernels:
        _kernels[name] = mx.fast.cuda_kernel(
            name=name, input_names=inputs, output_names=outputs, source=source, header=_HEADER
        )
    return _kernels[name]


def add_layer_norm(x: mx.array, y: mx.array, b: mx.array, g: mx.array, beta: mx.array) -> tuple[mx.array, mx.array]:
    """(x + y + b, layer_norm(x + y + b; g, beta)) over the last axis; x and y (..., D), the rest (D,)."""
    width = x.shape[-1]
    if not _cuda() or width % (32 * VEC):
        total = (x.astype(mx.float32) + y.astype(mx.float32) + b.astype(mx.float32)).astype(x.dtype)
        return total, mx.fast.layer_norm(total, g, beta, LN_EPS)
    kernel = _kernel("h34_add_layer_norm", ["x", "y", "b", "g", "beta"], ["out_x", "out_h"], _ADD_LN)
    threads = width // VEC
    out_x, out_h = kernel(
        inputs=[x, y.astype(x.dtype), b.astype(x.dtype), g.astype(x.dtype), beta.astype(x.dtype)],
        template=[("T", x.dtype), ("WIDTH", width)],
        grid=(x.size // width * threads, 1, 1),
        threadgroup=(threads, 1, 1),
        output_shapes=[x.shape, x.shape],
        output_dtypes=[x.dtype, x.dtype],
    )
    return out_x, out_h


def gelu(x: mx.array) -> mx.array:
    """Exact GELU, 0.5 x (1 + erf(x / sqrt 2)), computed in float32 and rounded once."""
    if not _cuda() or x.size % VEC:
        return nn.gelu(x) if x.dtype == mx.float32 else _gelu_float32(x)
    kernel = _kernel("h34_gelu", ["inp"], ["out"], _GELU)
    threads = x.size // VEC
    return kernel(
        inputs=[x],
        template=[("T", x.dtype), ("SIZE", x.size)],
        grid=(threads, 1, 1),
        threadgroup=(256, 1, 1),
        output_shapes=[x.shape],
        output_dtypes=[x.dtype],
    )[0]


def _gelu_float32(x: mx.array) -> mx.array:
    a = x.astype(mx.float32)
    return (0.5 * a * (1.0 + mx.erf(a * (1.0 / math.sqrt(2.0))))).astype(x.dtype)
