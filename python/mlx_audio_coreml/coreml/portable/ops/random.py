"""Random draws: random_bernoulli, random_normal, random_uniform, random_categorical.

Values come from MLX's generator, not Core ML's: the distributions are the ones the ops define,
never Core ML's exact numbers. A `seed` >= 0 fixes the draw (the same values on every
prediction, as the op's "reproducible across invokes" asks); without one each prediction draws
anew from MLX's global generator, whose state program.py threads through mx.compile. None of these
ops is folded at load, even with a constant shape: a folded draw would repeat on every prediction.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np

from .registry import OpContext, as_float, as_int, as_ints, as_str, register

_NO_SEED = -1


def _key(seed) -> mx.array | None:
    """An explicit key for a seeded op; None (MLX's global generator) for the default seed -1."""
    if seed is None or as_int(seed) < 0:
        return None
    return mx.random.key(as_int(seed))


def _float_dtype(ctx: OpContext) -> mx.Dtype:
    declared = ctx.out_dtype()
    return mx.float16 if declared is not None and np.dtype(declared) == np.float16 else mx.float32


@register("random_bernoulli", static=("shape", "prob", "seed"), foldable=False)
def random_bernoulli(ctx: OpContext, shape, prob=0.5, seed=_NO_SEED) -> mx.array:
    draws = mx.random.bernoulli(as_float(prob), as_ints(shape), key=_key(seed))
    return draws.astype(_float_dtype(ctx))


@register("random_normal", static=("shape", "mean", "stddev", "seed"), foldable=False)
def random_normal(ctx: OpContext, shape, mean=0.0, stddev=1.0, seed=_NO_SEED) -> mx.array:
    draws = mx.random.normal(as_ints(shape), dtype=mx.float32, key=_key(seed))
    return (as_float(mean) + as_float(stddev) * draws).astype(_float_dtype(ctx))


@register("random_uniform", static=("shape", "low", "high", "seed"), foldable=False)
def random_uniform(ctx: OpContext, shape, low=0.0, high=1.0, seed=_NO_SEED) -> mx.array:
    lo, hi = as_float(low), as_float(high)
    draws = mx.random.uniform(shape=as_ints(shape), dtype=mx.float32, key=_key(seed))
    return (lo + (hi - lo) * draws).astype(_float_dtype(ctx))


@register("random_categorical", static=("mode", "size", "seed"), foldable=False)
def random_categorical(ctx: OpContext, x: mx.array, mode="logits", size=1, seed=_NO_SEED) -> mx.array:
    """`size` draws (with replacement) per distribution along the last axis: (*D[:-1], size) indices."""
    logits = x.astype(mx.float32)
    if as_str(mode) == "probs":
        logits = mx.log(logits)
    draws = mx.random.categorical(logits, axis=-1, num_samples=as_int(size), key=_key(seed))
    return draws.astype(_float_dtype(ctx))
