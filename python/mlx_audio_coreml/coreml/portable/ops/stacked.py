"""`portable.stacked_linear`: several linears of one input (Kokoro's AdaIN style products: each norm's
`style @ W + b`, split into scale and shift) as one product, each member's columns sliced back out and
carried through the small steps that followed it (fuse_style.py puts it in place of all those nodes).
Why: ~58 small products a call, each with ~5 nodes after it, were ~330 nodes of per-node overhead."""

from __future__ import annotations

from typing import Any

import mlx.core as mx

from .linear import linear
from .registry import OpContext

# a step on one output: ("permute", perm) or ("add", index into the addends)
Step = tuple[str, Any]
# one member: (output width, expand_dims axes or None, split axis, number of splits, steps per output)
Member = tuple[int, tuple[int, ...] | None, int, int, tuple[tuple[Step, ...], ...]]


def stacked_linear(
    ctx: OpContext,
    x: mx.array,
    weights: list[mx.array],
    biases: list[mx.array],
    members: tuple[Member, ...],
    addends: list[mx.array] | None = None,
) -> list[mx.array]:
    """x @ concat(weights).T + concat(biases) once; each member's columns, expanded then split as the
    nodes it replaced did, then each output's steps, in order."""
    w = ctx.derived("stacked_weight", "weights", lambda: mx.concatenate(weights, axis=0), tuple(weights))
    b = ctx.derived("stacked_bias", "biases", lambda: mx.concatenate(biases, axis=0), tuple(biases))
    product = linear(ctx, x, w, b)
    outputs: list[mx.array] = []
    start = 0
    for width, axes, split_axis, splits, chains in members:
        part = product[..., start : start + width]
        start += width
        parts = [part] if axes is None else mx.split(mx.expand_dims(part, list(axes)), splits, axis=split_axis)
        outputs.extend(_steps(p, chain, addends or []) for p, chain in zip(parts, chains, strict=True))
    return outputs


def _steps(value: mx.array, chain: tuple[Step, ...], addends: list[mx.array]) -> mx.array:
    for kind, arg in chain:
        value = mx.transpose(value, arg) if kind == "permute" else mx.add(value, addends[arg])
    return value
