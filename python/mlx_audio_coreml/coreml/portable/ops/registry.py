"""The op table: MIL op name -> an MLX implementation and how its parameters are passed.

An implementation is called as `fn(ctx, **params)`. Tensor parameters arrive as `mx.array`;
parameters listed in `static` arrive as host values (numpy arrays, str, or lists of them),
resolved once at load when they are constants; parameters listed in `variadic` arrive as a list.
Optional parameters the program leaves out are simply not passed (each function has defaults that
follow coremltools' op definitions).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import mlx.core as mx
import numpy as np

from .. import shared
from ..values import TensorType


class NeedsHostValue(Exception):
    """A parameter that must be known on the host was computed inside a traced (compiled) graph."""


@dataclass
class OpContext:
    """What an implementation may know besides its parameters: the opset, declared output types,
    and a per-node memo for values derived once from constant inputs (e.g. a transposed weight)."""

    op_type: str
    opset: int  # the N of "CoreML<N>": 5 is iOS15, 8 is iOS18
    output_types: tuple[TensorType | None, ...]
    constant_params: frozenset[str] = frozenset()
    memo: dict[str, Any] = field(default_factory=dict)
    run_block: Callable[..., Any] | None = None  # control flow: runs a nested block
    blocks: tuple[Any, ...] = ()

    def derived(self, key: str, depends_on: str, make: Callable[[], Any], share: tuple[Any, ...] | None = None) -> Any:
        """`make()` computed once when the parameter `depends_on` is a constant, else each call.
        A memoized value is evaluated at once, so it is concrete (never part of a compiled trace).
        `share`: everything `make` reads (arrays by identity, the rest by value); nodes of any loaded
        program that derive `key` from the same parts then hold one value (shared.py)."""
        if depends_on not in self.constant_params:
            return make()
        if key not in self.memo:
            self.memo[key] = self.prepared(key, make, share)
        return self.memo[key].value

    def prepared(self, key: str, make: Callable[[], Any], share: tuple[Any, ...] | None) -> shared.Prepared:
        """`make()`'s value (evaluated), shared process-wide when `share` names its parts, else this node's."""

        def made() -> Any:
            value = make()
            mx.eval(value)
            return value

        if share is None:
            return shared.Prepared(made(), ())
        return shared.prepared(f"{self.op_type}:{key}", share, made)

    def out_dtype(self, index: int = 0) -> np.dtype | None:
        declared = self.output_types[index] if index < len(self.output_types) else None
        return None if declared is None or declared.is_string else declared.dtype


@dataclass(frozen=True)
class OpDef:
    name: str
    fn: Callable[..., Any]
    static: frozenset[str]
    variadic: frozenset[str]
    foldable: bool  # may be evaluated at load when every input is a constant


_OPS: dict[str, OpDef] = {}


def register(
    *names: str, static: Iterable[str] = (), variadic: Iterable[str] = (), foldable: bool = True
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register `fn` under each of `names`."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        for name in names:
            _OPS[name] = OpDef(name, fn, frozenset(static), frozenset(variadic), foldable)
        return fn

    return wrap


def lookup(name: str) -> OpDef | None:
    return _OPS.get(name)


def supported_ops() -> frozenset[str]:
    return frozenset(_OPS)


# --- host-parameter helpers used by the implementations -------------------------------------------


def to_host(value: Any) -> Any:
    """A parameter as a host value; NeedsHostValue when it only exists inside a traced graph."""
    if isinstance(value, (list, tuple)):
        return [to_host(v) for v in value]
    if isinstance(value, (str, np.ndarray, np.generic, int, float, bool)) or value is None:
        return value
    try:
        return np.array(value)
    except ValueError as exc:  # MLX refuses to evaluate a tracer inside mx.compile
        raise NeedsHostValue(str(exc)) from exc


def as_int(value: Any) -> int:
    return int(np.asarray(value).reshape(-1)[0])


def as_ints(value: Any) -> list[int]:
    return [int(v) for v in np.asarray(value).reshape(-1)]


def as_float(value: Any) -> float:
    return float(np.asarray(value).reshape(-1)[0])


def as_bool(value: Any) -> bool:
    return bool(np.asarray(value).reshape(-1)[0])


def as_bools(value: Any) -> list[bool]:
    return [bool(v) for v in np.asarray(value).reshape(-1)]


def as_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    return str(np.asarray(value).reshape(-1)[0])


def compute_dtype(dtype: mx.Dtype) -> mx.Dtype:
    """The dtype matrix products and convolutions run in: float16 is widened to float32 on the CPU,
    where MLX has no fast float16 kernels (Core ML's CPU path also computes float16 in float32)."""
    if dtype in (mx.float16, mx.bfloat16) and mx.default_device() == mx.cpu:
        return mx.float32
    return dtype


def norm_axis(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis
