"""Element-wise ops: binary arithmetic and comparisons (broadcasting), unary math, cast, select, clip.

Semantics follow coremltools' iOS15/iOS17 definitions: `floor_div` and `mod` round toward negative
infinity (Python's operators), `round` rounds halves to even, `log`/`rsqrt`/`inverse` add their
`epsilon` first (defaults 1e-45, 1e-12, 1e-4).
"""

from __future__ import annotations

from collections.abc import Callable

import mlx.core as mx

from ..values import CAST_DTYPES, mx_dtype
from . import host_unary
from .registry import OpContext, as_str, register


def _binary(name: str, fn: Callable[[mx.array, mx.array], mx.array]) -> None:
    def op(ctx: OpContext, x: mx.array, y: mx.array) -> mx.array:
        return fn(x, y)

    register(name)(op)


def _floor_div(x: mx.array, y: mx.array) -> mx.array:
    if mx.issubdtype(x.dtype, mx.floating) or mx.issubdtype(y.dtype, mx.floating):
        return mx.floor(x / y)
    return mx.floor_divide(x, y)


def _mod(x: mx.array, y: mx.array) -> mx.array:
    if host_unary.applies(x) and y.ndim <= x.ndim and host_unary.is_one(y):  # numpy: ~40x faster on the CPU
        return host_unary.mod_one(x)
    return mx.remainder(x, y)


def _real_div(x: mx.array, y: mx.array) -> mx.array:
    if mx.issubdtype(x.dtype, mx.integer) and mx.issubdtype(y.dtype, mx.integer):
        return mx.floor_divide(x, y)  # MIL's real_div on int32 inputs yields int32 (floored)
    return mx.divide(x, y)


for _name, _fn in {
    "add": mx.add,
    "sub": mx.subtract,
    "mul": mx.multiply,
    "real_div": _real_div,
    "floor_div": _floor_div,
    "mod": _mod,
    "pow": mx.power,
    "maximum": mx.maximum,
    "minimum": mx.minimum,
    "equal": mx.equal,
    "not_equal": mx.not_equal,
    "greater": mx.greater,
    "greater_equal": mx.greater_equal,
    "less": mx.less,
    "less_equal": mx.less_equal,
    "logical_and": mx.logical_and,
    "logical_or": mx.logical_or,
    "logical_xor": lambda x, y: mx.not_equal(x.astype(mx.bool_), y.astype(mx.bool_)),
}.items():
    _binary(_name, _fn)


def _unary(name: str, fn: Callable[[mx.array], mx.array]) -> None:
    kernel = host_unary.UNARY.get(name)  # vectorized numpy where MLX's CPU loop is scalar

    def op(ctx: OpContext, x: mx.array) -> mx.array:
        if kernel is not None and host_unary.applies(x):
            return host_unary.unary(kernel, x)
        return fn(x)

    register(name)(op)


for _name, _fn in {
    "abs": mx.abs,
    "acos": mx.arccos,
    "asin": mx.arcsin,
    "atan": mx.arctan,
    "atanh": mx.arctanh,
    "ceil": mx.ceil,
    "cos": mx.cos,
    "cosh": mx.cosh,
    "erf": mx.erf,
    "exp": mx.exp,
    "exp2": lambda x: mx.power(mx.array(2.0, dtype=_float_of(x)), x),
    "floor": mx.floor,
    "round": mx.round,
    "sign": mx.sign,
    "sin": mx.sin,
    "sinh": mx.sinh,
    "sqrt": mx.sqrt,
    "square": mx.square,
    "tan": mx.tan,
    "tanh": mx.tanh,
    "logical_not": mx.logical_not,
}.items():
    _unary(_name, _fn)


def _float_of(x: mx.array) -> mx.Dtype:
    return x.dtype if mx.issubdtype(x.dtype, mx.floating) else mx.float32


@register("log")
def log(ctx: OpContext, x: mx.array, epsilon: mx.array | None = None) -> mx.array:
    eps = mx.array(1e-45, dtype=x.dtype) if epsilon is None else epsilon
    return mx.log(x + eps)


@register("rsqrt")
def rsqrt(ctx: OpContext, x: mx.array, epsilon: mx.array | None = None) -> mx.array:
    eps = mx.array(1e-12, dtype=x.dtype) if epsilon is None else epsilon
    return mx.rsqrt(x + eps)


@register("inverse")
def inverse(ctx: OpContext, x: mx.array, epsilon: mx.array | None = None) -> mx.array:
    eps = mx.array(1e-4, dtype=x.dtype) if epsilon is None else epsilon
    return mx.reciprocal(x + eps)


@register("clip")
def clip(ctx: OpContext, x: mx.array, alpha: mx.array, beta: mx.array) -> mx.array:
    return mx.minimum(mx.maximum(x, alpha), beta)


@register("threshold")
def threshold(ctx: OpContext, x: mx.array, alpha: mx.array) -> mx.array:
    return mx.maximum(x, alpha)


@register("cast", static=("dtype",))
def cast(ctx: OpContext, x: mx.array, dtype: str) -> mx.array:
    target = ctx.out_dtype() or CAST_DTYPES[as_str(dtype)]
    wanted = mx_dtype(target)
    if mx.issubdtype(x.dtype, mx.floating) and mx.issubdtype(wanted, mx.integer):
        x = mx.where(x < 0, mx.ceil(x), mx.floor(x))  # truncate toward zero, as C casts do
    return x.astype(wanted)


@register("select")
def select(ctx: OpContext, cond: mx.array, a: mx.array, b: mx.array) -> mx.array:
    return mx.where(cond.astype(mx.bool_), a, b)
