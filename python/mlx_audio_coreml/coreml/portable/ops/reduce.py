"""Reductions (axes=None reduces everything), arg-reductions, and cumsum. float16 sums accumulate
in float32."""

from __future__ import annotations

from collections.abc import Callable

import mlx.core as mx

from ..values import CAST_DTYPES, mx_dtype
from .registry import OpContext, as_bool, as_int, as_ints, as_str, register


def _accumulating(x: mx.array) -> mx.array:
    return x.astype(mx.float32) if x.dtype in (mx.float16, mx.bfloat16) else x


_REDUCTIONS: dict[str, Callable[[mx.array, tuple[int, ...], bool], mx.array]] = {
    "reduce_sum": lambda x, a, k: mx.sum(_accumulating(x), axis=a, keepdims=k),
    "reduce_mean": lambda x, a, k: mx.mean(_accumulating(x), axis=a, keepdims=k),
    "reduce_prod": lambda x, a, k: mx.prod(x, axis=a, keepdims=k),
    "reduce_max": lambda x, a, k: mx.max(x, axis=a, keepdims=k),
    "reduce_min": lambda x, a, k: mx.min(x, axis=a, keepdims=k),
    "reduce_l1_norm": lambda x, a, k: mx.sum(mx.abs(_accumulating(x)), axis=a, keepdims=k),
    "reduce_l2_norm": lambda x, a, k: mx.sqrt(mx.sum(mx.square(_accumulating(x)), axis=a, keepdims=k)),
    "reduce_sum_square": lambda x, a, k: mx.sum(mx.square(_accumulating(x)), axis=a, keepdims=k),
    "reduce_log_sum": lambda x, a, k: mx.log(mx.sum(_accumulating(x), axis=a, keepdims=k)),
    "reduce_log_sum_exp": lambda x, a, k: mx.logsumexp(_accumulating(x), axis=a, keepdims=k),
}


def _reduction(name: str, fn: Callable[[mx.array, tuple[int, ...], bool], mx.array]) -> None:
    def op(ctx: OpContext, x: mx.array, axes=None, keep_dims=False) -> mx.array:
        axis = tuple(as_ints(axes)) if axes is not None else tuple(range(x.ndim))
        return fn(x, axis, as_bool(keep_dims))

    register(name, static=("axes", "keep_dims"))(op)


for _name, _fn in _REDUCTIONS.items():
    _reduction(_name, _fn)


def _arg_reduction(name: str, fn: Callable[..., mx.array]) -> None:
    def op(ctx: OpContext, x: mx.array, axis=-1, keep_dims=False, output_dtype="int32") -> mx.array:
        result = fn(x, axis=as_int(axis), keepdims=as_bool(keep_dims))
        return result.astype(mx_dtype(CAST_DTYPES[as_str(output_dtype)]))

    register(name, static=("axis", "keep_dims", "output_dtype"))(op)


_arg_reduction("reduce_argmax", mx.argmax)
_arg_reduction("reduce_argmin", mx.argmin)


@register("cumsum", static=("axis", "exclusive", "reverse"))
def cumsum(ctx: OpContext, x: mx.array, axis=0, exclusive=False, reverse=False) -> mx.array:
    return mx.cumsum(x, axis=as_int(axis), reverse=as_bool(reverse), inclusive=not as_bool(exclusive))
