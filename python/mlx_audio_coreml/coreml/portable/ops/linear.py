"""Matrix products: linear (weight (D_out, D_in)), matmul (numpy broadcasting, optional transposes),
einsum."""

from __future__ import annotations

import mlx.core as mx

from .registry import OpContext, as_bool, as_str, compute_dtype, register


@register("linear")
def linear(ctx: OpContext, x: mx.array, weight: mx.array, bias: mx.array | None = None) -> mx.array:
    dtype = compute_dtype(x.dtype)
    w = ctx.derived("weight", "weight", lambda: weight.astype(dtype))
    if bias is None:
        return mx.matmul(x.astype(dtype), w.T).astype(x.dtype)  # the transpose is a BLAS flag: no copy
    return mx.addmm(bias.astype(dtype), x.astype(dtype), w.T).astype(x.dtype)  # bias added by the GEMM


def _swap_last(a: mx.array) -> mx.array:
    return mx.swapaxes(a, -1, -2) if a.ndim >= 2 else a


@register("matmul", static=("transpose_x", "transpose_y"))
def matmul(
    ctx: OpContext, x: mx.array, y: mx.array, transpose_x: bool = False, transpose_y: bool = False
) -> mx.array:
    if as_bool(transpose_x):
        x = _swap_last(x)
    if as_bool(transpose_y):
        y = _swap_last(y)
    out = x.dtype
    if x.dtype != y.dtype:  # iOS17 allows an int8/fp16 const operand: compute in the wider float
        out = mx.float32 if mx.float32 in (x.dtype, y.dtype) else mx.float16
    dtype = compute_dtype(out)
    return mx.matmul(x.astype(dtype), y.astype(dtype)).astype(out)


@register("einsum", static=("equation",), variadic=("values",))
def einsum(ctx: OpContext, values: list[mx.array], equation: str) -> mx.array:
    return mx.einsum(as_str(equation).replace(" ", ""), *values)
