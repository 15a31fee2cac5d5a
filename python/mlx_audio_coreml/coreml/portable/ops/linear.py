"""Matrix products: linear (weight (D_out, D_in)), matmul (numpy broadcasting, optional transposes),
einsum. On the CPU in float32 with oneDNN, products by a constant weight go to host_products.py."""

from __future__ import annotations

import mlx.core as mx

from ..values import mx_dtype
from . import host_products
from .registry import OpContext, as_bool, as_str, compute_dtype, register


@register("linear")
def linear(ctx: OpContext, x: mx.array, weight: mx.array, bias: mx.array | None = None) -> mx.array:
    if host_products.applies(ctx, x, {"weight": weight, "bias": bias}):  # oneDNN, as the product encoder
        return host_products.linear(ctx, x, weight, bias)
    dtype = compute_dtype(x.dtype)
    w = ctx.derived("weight", "weight", lambda: weight.astype(dtype), (weight, dtype))
    if bias is None:
        return mx.matmul(x.astype(dtype), w.T).astype(x.dtype)  # the transpose is a BLAS flag: no copy
    return mx.addmm(bias.astype(dtype), x.astype(dtype), w.T).astype(x.dtype)  # bias added by the GEMM


def _swap_last(a: mx.array) -> mx.array:
    return mx.swapaxes(a, -1, -2) if a.ndim >= 2 else a


@register("matmul", static=("transpose_x", "transpose_y"))
def matmul(ctx: OpContext, x: mx.array, y: mx.array, transpose_x: bool = False, transpose_y: bool = False) -> mx.array:
    if as_bool(transpose_x):
        x = _swap_last(x)
    if as_bool(transpose_y):
        y = _swap_last(y)
    if not (mx.issubdtype(x.dtype, mx.floating) or mx.issubdtype(y.dtype, mx.floating)):
        return _integer_matmul(x, y)
    if x.ndim >= 1 and y.ndim == 2 and host_products.applies(ctx, x, {"y": y}):  # a constant weight: oneDNN
        return host_products.matmul(ctx, x, y)
    # iOS17 allows mixed operands (int32, float16, float32): those compute in float32
    dtype = compute_dtype(x.dtype if x.dtype == y.dtype else mx.float32)
    declared = ctx.out_dtype()
    out = mx_dtype(declared) if declared is not None else dtype
    return mx.matmul(x.astype(dtype), y.astype(dtype)).astype(out)


def _integer_matmul(x: mx.array, y: mx.array) -> mx.array:
    """Exact integer products (MLX multiplies floating-point matrices only): broadcast multiply
    and sum over the shared axis, in int32 as Core ML computes int32 matmul."""
    if x.ndim == 1:
        return _integer_matmul(x[None], y)[..., 0, :]
    if y.ndim == 1:
        return _integer_matmul(x, y[:, None])[..., 0]
    a = x.astype(mx.int32)[..., :, :, None]  # (..., M, K, 1)
    b = y.astype(mx.int32)[..., None, :, :]  # (..., 1, K, N)
    return mx.sum(a * b, axis=-2)  # (..., M, N)


@register("einsum", static=("equation",), variadic=("values",))
def einsum(ctx: OpContext, values: list[mx.array], equation: str) -> mx.array:
    return mx.einsum(as_str(equation).replace(" ", ""), *values)
