"""A masked instance norm with an affine (AdaIN as vocoders' converted programs spell it), with the
Snake or leaky ReLU and the mask multiply after it, becomes one node at load (fuse_norm.py); it computes
the same values on the host path (numpy) and in MLX, over either axis, and a pattern whose intermediate
value has another reader is left as written; a norm shared by several affines is fused once per affine."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
from portable_helpers import load, mb, save_program

from mlx_audio_coreml.coreml.portable.ops import masked_norm as norm_op
from mlx_audio_coreml.cpu import host_math

rng = np.random.default_rng(5)
on_cpu = host_math.available(mx.float32)
C, T = 16, 2000  # large enough for the host path
EPS = 1e-5


def per_channel(axis: int, values: np.ndarray) -> np.ndarray:
    """(C,) values shaped to broadcast along the channel axis of a (1, C, T) or (1, T, C) tensor."""
    return values.reshape((1, C, 1) if axis == 2 else (1, 1, C)).astype(np.float32)


SCALE = rng.random(C) + 0.5
SHIFT = rng.standard_normal(C)
ALPHA = rng.random(C) + 0.5


def inputs(axis: int) -> tuple[np.ndarray, np.ndarray]:
    shape = (1, C, T) if axis == 2 else (1, T, C)
    x = (rng.standard_normal(shape) * 3 + 1).astype(np.float32)
    mask = np.zeros(T, np.float32)
    mask[: T - 300] = 1.0  # the padded tail of a bucket
    return x, mask.reshape((1, 1, T) if axis == 2 else (1, T, 1))


def reference(
    x: np.ndarray, mask: np.ndarray, axis: int, activation: str, gated: bool, scale: np.ndarray = SCALE
) -> np.ndarray:
    x64, m = x.astype(np.float64), mask.astype(np.float64)
    count = m.sum()
    mean = (x64 * m).sum(axis=axis, keepdims=True) / count
    var = (((x64 - mean) * m) ** 2).sum(axis=axis, keepdims=True) / count
    y = (x64 - mean) / np.sqrt(var + EPS) * per_channel(axis, scale) + per_channel(axis, SHIFT)
    if activation == "snake":
        alpha = per_channel(axis, ALPHA).astype(np.float64)
        y = y + np.sin(alpha * y) ** 2 / alpha
    elif activation == "leaky":
        y = np.where(y >= 0, y, 0.2 * y)
    return y * m if gated else y


def adain(x, mask, axis: int, activation: str, gated: bool, leak_mean: bool = False):
    count = mb.reduce_sum(x=mask, axes=[axis], keep_dims=True)
    mean = mb.real_div(x=mb.reduce_sum(x=mb.mul(x=x, y=mask), axes=[axis], keep_dims=True), y=count)
    centred = mb.sub(x=x, y=mean)
    masked = mb.mul(x=mask, y=centred)  # operands swapped on purpose
    var = mb.real_div(x=mb.reduce_sum(x=mb.mul(x=masked, y=masked), axes=[axis], keep_dims=True), y=count)
    normed = mb.mul(x=centred, y=mb.rsqrt(x=var, epsilon=EPS))
    y = mb.add(x=per_channel(axis, SHIFT), y=mb.mul(x=normed, y=per_channel(axis, SCALE)))
    if activation == "snake":
        alpha = per_channel(axis, ALPHA)
        s = mb.sin(x=mb.mul(x=y, y=alpha))
        y = mb.add(x=y, y=mb.mul(x=mb.mul(x=s, y=s), y=(1.0 / alpha).astype(np.float32)))
    elif activation == "leaky":
        y = mb.leaky_relu(x=y, alpha=0.2)
    if gated:
        y = mb.mul(x=y, y=mask)
    return (y, mb.add(x=mean, y=1.0)) if leak_mean else y


@pytest.mark.parametrize(
    ("axis", "activation", "gated"),
    [(2, "snake", True), (1, "snake", True), (2, "leaky", False), (1, "leaky", True), (1, "none", True)],
)
def test_masked_adain_is_one_node_with_the_same_values_on_host_and_in_mlx(
    tmp_path, monkeypatch, axis, activation, gated
):
    x, mask = inputs(axis)
    host_calls: list[int] = []
    original = norm_op._on_host
    monkeypatch.setattr(norm_op, "_on_host", lambda *a: host_calls.append(1) or original(*a))
    build = lambda x, m: adain(x, m, axis, activation, gated)  # noqa: E731
    model = load(save_program(tmp_path, build, [x.shape, mask.shape]))
    feeds = dict(zip([s.name for s in model.description.inputs], [x, mask]))
    got = next(iter(model.predict(feeds).outputs.values()))
    with host_math.disabled():
        plain = next(iter(model.predict(feeds).outputs.values()))

    fused = [n for n in model.program.block.nodes if n.op.name == "portable.masked_norm"]
    assert model.program.rewrites["masked_norm"] == 1 and len(fused) == 1
    assert {n.op.name for n in model.program.block.nodes} == {"reduce_sum", "portable.masked_norm"}
    assert len(host_calls) == (1 if on_cpu else 0)
    want = reference(x, mask, axis, activation, gated)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(plain, want, rtol=1e-4, atol=1e-4)


def test_adain_whose_mean_is_read_elsewhere_is_not_fused(tmp_path):
    x, mask = inputs(2)
    build = lambda x, m: adain(x, m, 2, "snake", True, leak_mean=True)  # noqa: E731
    model = load(save_program(tmp_path, build, [x.shape, mask.shape]))
    feeds = dict(zip([s.name for s in model.description.inputs], [x, mask]))
    outputs = list(model.predict(feeds).outputs.values())

    assert model.program.rewrites["masked_norm"] == 0
    np.testing.assert_allclose(outputs[0], reference(x, mask, 2, "snake", True), rtol=1e-4, atol=1e-4)


def test_float16_adain_runs_in_mlx(tmp_path, monkeypatch):
    x, mask = inputs(2)
    monkeypatch.setattr(norm_op, "_on_host", lambda *a: pytest.fail("float16 took the host path"))
    build = lambda x, m: adain(x, m, 2, "leaky", True)  # noqa: E731
    model = load(save_program(tmp_path, build, [x.shape, mask.shape], precision="fp16"))
    feeds = dict(zip([s.name for s in model.description.inputs], [x, mask]))
    got = next(iter(model.predict(feeds).outputs.values()))

    assert model.program.rewrites["masked_norm"] == 1
    np.testing.assert_allclose(got, reference(x, mask, 2, "leaky", True), rtol=2e-2, atol=5e-2)


def test_adain_of_a_transposed_view_gives_the_same_values(tmp_path, monkeypatch):
    x, mask = inputs(2)
    swapped: list[bool] = []
    original = norm_op._on_host

    def spy(x_arg, *rest):
        swapped.append(not np.asarray(x_arg).flags.c_contiguous)
        return original(x_arg, *rest)

    monkeypatch.setattr(norm_op, "_on_host", spy)
    build = lambda t, m: adain(mb.transpose(x=t, perm=[0, 2, 1]), m, 2, "snake", True)  # noqa: E731
    model = load(save_program(tmp_path, build, [(1, T, C), mask.shape]))
    feeds = dict(zip([s.name for s in model.description.inputs], [np.ascontiguousarray(x.transpose(0, 2, 1)), mask]))
    got = next(iter(model.predict(feeds).outputs.values()))

    assert model.program.rewrites["masked_norm"] == 1 and swapped == ([True] if on_cpu else [])
    np.testing.assert_allclose(got, reference(x, mask, 2, "snake", True), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("axis", [1, 2])
def test_a_padded_tail_that_is_not_finite_reaches_the_output_as_in_mlx(tmp_path, axis):
    # the host path skips the rows past the mask and gate; a NaN there must still spread as the MIL ops spread it
    x, mask = inputs(axis)
    x[(0, T - 5, 3) if axis == 1 else (0, 3, T - 5)] = np.nan
    build = lambda x, m: adain(x, m, axis, "snake", True)  # noqa: E731
    model = load(save_program(tmp_path, build, [x.shape, mask.shape]))
    feeds = dict(zip([s.name for s in model.description.inputs], [x, mask]))
    got = next(iter(model.predict(feeds).outputs.values()))
    with host_math.disabled():
        plain = next(iter(model.predict(feeds).outputs.values()))

    assert model.program.rewrites["masked_norm"] == 1
    assert np.isnan(got).any()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(plain))


def test_a_norm_shared_by_three_affines_becomes_three_fused_nodes(tmp_path):
    # a converter that merges equal subexpressions leaves one norm for three blocks (Kokoro's stages)
    x, mask = inputs(2)
    scales = [rng.random(C) + 0.5 for _ in range(3)]

    def build(x, m):
        count = mb.reduce_sum(x=m, axes=[2], keep_dims=True)
        mean = mb.real_div(x=mb.reduce_sum(x=mb.mul(x=x, y=m), axes=[2], keep_dims=True), y=count)
        centred = mb.sub(x=x, y=mean)
        masked = mb.mul(x=centred, y=m)
        var = mb.real_div(x=mb.reduce_sum(x=mb.mul(x=masked, y=masked), axes=[2], keep_dims=True), y=count)
        normed = mb.mul(x=centred, y=mb.rsqrt(x=var, epsilon=EPS))
        outs = []
        for scale in scales:
            y = mb.add(x=mb.mul(x=normed, y=per_channel(2, scale)), y=per_channel(2, SHIFT))
            alpha = per_channel(2, ALPHA)
            s = mb.sin(x=mb.mul(x=y, y=alpha))
            y = mb.add(x=y, y=mb.mul(x=mb.mul(x=s, y=s), y=(1.0 / alpha).astype(np.float32)))
            outs.append(mb.mul(x=y, y=m))
        return tuple(outs)

    model = load(save_program(tmp_path, build, [x.shape, mask.shape]))
    feeds = dict(zip([s.name for s in model.description.inputs], [x, mask]))
    got = list(model.predict(feeds).outputs.values())

    assert model.program.rewrites["masked_norm"] == 3
    assert {n.op.name for n in model.program.block.nodes} == {"reduce_sum", "portable.masked_norm"}
    for out, scale in zip(got, scales):
        want = reference(x, mask, 2, "snake", True, scale=scale)
        np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("slope", [0.2, 0.0, 1.0, 1.5, -0.5])
def test_host_leaky_relu_is_the_masked_select_bit_for_bit(slope):
    # slopes in (0, 1] take max(y, a y); others the select; both must equal where(y < 0, a y, y)
    y = (rng.standard_normal((64, C)) * 3).astype(np.float32)
    y.reshape(-1)[:6] = [np.nan, -0.0, 0.0, -np.inf, np.inf, -1e-38]
    alpha = np.full(C, slope, np.float32)
    with np.errstate(invalid="ignore"):
        want = np.where(y < 0, y * alpha, y)
    got = y.copy()
    with np.errstate(invalid="ignore"):
        norm_op._finish(got, np.float32(1.0), np.float32(-0.0), alpha, None, None, "leaky_relu")  # y * 1 + -0 is y
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
