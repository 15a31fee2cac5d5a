"""Control flow: cond and while_loop, whose nested blocks run through `ctx.run_block`.
A predicate computed from the inputs is only known after evaluation, so such programs run eagerly
(the host lookup raises NeedsHostValue inside a compiled trace and the executor falls back)."""

from __future__ import annotations

from typing import Any

from .registry import OpContext, as_bool, register, to_host

_LOOP_LIMIT = 1_000_000  # a runaway loop is a broken program, not a long computation


def _single(values: list[Any]) -> Any:
    return values[0] if len(values) == 1 else values


def _run(ctx: OpContext, block: Any, *values: Any) -> list[Any]:
    if ctx.run_block is None:
        raise RuntimeError(f"{ctx.op_type} was run without a program to run its blocks")
    return ctx.run_block(block, *values)


@register("cond", static=("pred",), foldable=False)
def cond(ctx: OpContext, pred) -> Any:
    true_block, false_block = ctx.blocks
    return _single(_run(ctx, true_block if as_bool(pred) else false_block))


@register("while_loop", variadic=("loop_vars",), foldable=False)
def while_loop(ctx: OpContext, loop_vars: list[Any]) -> Any:
    cond_block, body_block = ctx.blocks
    values = list(loop_vars)
    for _ in range(_LOOP_LIMIT):
        if not as_bool(to_host(_run(ctx, cond_block, values)[0])):
            return _single(values)
        values = _run(ctx, body_block, values)
    raise RuntimeError(f"while_loop ran {_LOOP_LIMIT} iterations without its condition turning false")
