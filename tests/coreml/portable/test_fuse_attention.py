"""The load-time attention fusion (coreml/portable/fuse.py): per-head attention programs give the
same outputs fused as unfused, and programs that differ from the pattern in any way stay unfused."""

from __future__ import annotations

import numpy as np
import pytest
from portable_helpers import assert_close, load, mb, save_program

rng = np.random.default_rng(11)
HEADS, HEAD_DIM, LENGTH = 3, 4, 7
WIDTH = HEADS * HEAD_DIM


def _softmax(s: np.ndarray) -> np.ndarray:
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def reference(q: np.ndarray, k: np.ndarray, v: np.ndarray, scale: float, channels_first: bool) -> np.ndarray:
    """Per-head attention in numpy over (B, D, S) (channels first) or (B, S, D) inputs."""
    if channels_first:
        q, k, v = (t.swapaxes(1, 2) for t in (q, k, v))
    heads = []
    for h in range(HEADS):
        part = slice(h * HEAD_DIM, (h + 1) * HEAD_DIM)
        heads.append(_softmax(scale * q[..., part] @ k[..., part].swapaxes(1, 2)) @ v[..., part])
    out = np.concatenate(heads, axis=-1)  # (B, S, D)
    return out.swapaxes(1, 2) if channels_first else out


def per_head(
    channels_first=True,
    scale=None,
    divide=False,
    softmax_axis=-1,
    sizes=None,
    order=None,
    scales=None,
    mix_transpose=True,
    expose_scores=False,
    bias=None,
):
    """A builder of the per-head pattern with knobs that each break it in one place."""
    axis = 1 if channels_first else 2

    def build(q, k, v):
        split = sizes or [HEAD_DIM] * HEADS
        qs, ks, vs = (mb.split(x=t, split_sizes=split, axis=axis) for t in (q, k, v))
        heads, extra = [], []
        for h in range(len(split)):
            scores = mb.matmul(x=qs[h], y=ks[h], transpose_x=channels_first, transpose_y=not channels_first)
            if h == 0 and expose_scores:
                extra.append(scores)
            factor = scales[h] if scales else scale
            if factor is not None:
                scores = mb.real_div(x=scores, y=1.0 / factor) if divide else mb.mul(x=scores, y=factor)
            if bias is not None:
                scores = mb.mul(x=scores, y=bias)
            weights = mb.softmax(x=scores, axis=softmax_axis)
            if channels_first:
                heads.append(mb.matmul(x=vs[h], y=weights, transpose_y=mix_transpose))
            else:
                heads.append(mb.matmul(x=weights, y=vs[h]))
        heads = [heads[i] for i in order] if order else heads
        return [mb.concat(values=heads, axis=axis)] + extra

    return build


def _inputs(channels_first: bool) -> list[np.ndarray]:
    shape = (2, WIDTH, LENGTH) if channels_first else (2, LENGTH, WIDTH)
    return [rng.standard_normal(shape).astype(np.float32) for _ in range(3)]


def _both(tmp_path, build, inputs, precision="fp32"):
    """(fused model, its outputs, unfused outputs) for the same package and inputs."""
    path = save_program(tmp_path, build, [x.shape for x in inputs], precision=precision)
    fused, plain = load(path), load(path, optimize=False)
    feeds = {spec.name: x.astype(spec.dtype) for spec, x in zip(fused.description.inputs, inputs)}
    outputs = [list(m.predict(feeds).outputs.values()) for m in (fused, plain)]
    return fused, outputs[0], outputs[1]


@pytest.mark.parametrize("channels_first", [True, False])
@pytest.mark.parametrize("scale,divide", [(None, False), (0.35, False), (0.35, True)])
def test_per_head_attention_is_fused_and_unchanged(tmp_path, channels_first, scale, divide):
    inputs = _inputs(channels_first)
    model, fused, plain = _both(tmp_path, per_head(channels_first, scale, divide), inputs)
    assert model.program.rewrites["attention"] == 1
    assert not any(n.op.name in ("softmax", "split") for n in model.program.block.nodes)
    assert_close(fused[0], plain[0])
    assert_close(fused[0], reference(*inputs, scale or 1.0, channels_first))


def test_float16_per_head_attention_is_fused_and_close(tmp_path):
    inputs = _inputs(True)
    model, fused, plain = _both(tmp_path, per_head(True, 0.5), inputs, precision="fp16")
    assert model.program.rewrites["attention"] == 1
    assert_close(fused[0], plain[0], "fp16")
    assert_close(fused[0], reference(*inputs, 0.5, True), "fp16")


NOT_THE_PATTERN = {
    "softmax over the query axis": dict(softmax_axis=1),
    "unequal head sizes": dict(sizes=[HEAD_DIM + 2, HEAD_DIM - 2, HEAD_DIM]),
    "heads joined out of order": dict(order=[1, 0, 2]),
    "a different scale per head": dict(scales=[0.5, 0.5, 0.25]),
    "weights not transposed in the mix": dict(mix_transpose=False),
    "scores also read elsewhere": dict(expose_scores=True),
    "scores times a constant tensor": dict(bias=rng.uniform(0.5, 1.5, (1, LENGTH, LENGTH)).astype(np.float32)),
}


@pytest.mark.parametrize("knobs", NOT_THE_PATTERN.values(), ids=NOT_THE_PATTERN.keys())
def test_near_miss_patterns_are_left_unfused(tmp_path, knobs):
    inputs = _inputs(True)
    model, fused, plain = _both(tmp_path, per_head(True, **knobs), inputs)
    assert model.program.rewrites["attention"] == 0
    assert any(n.op.name == "softmax" for n in model.program.block.nodes)
    for got, want in zip(fused, plain):
        assert_close(got, want)


def test_optimize_false_keeps_the_program_as_written(tmp_path):
    inputs = _inputs(True)
    path = save_program(tmp_path, per_head(True), [x.shape for x in inputs])
    model = load(path, optimize=False)
    assert model.program.rewrites == {}
    assert sum(n.op.name == "softmax" for n in model.program.block.nodes) == HEADS
