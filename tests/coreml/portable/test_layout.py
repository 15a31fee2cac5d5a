"""The load-time channels-last pass (coreml/portable/channels_last.py): the permutation rules agree with
numpy, Neural-Engine-style programs run channels-last with unchanged outputs, and values that
leave the supported ops are handed back in their declared layout."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from portable_helpers import assert_close, load, mb, save_program

from mlx_audio_coreml.coreml.portable.channels_last import expanded_perm, inverse, squeezed_perm

rng = np.random.default_rng(3)
C, S = 8, 10
CONV3 = rng.standard_normal((C, C, 1, 3)).astype(np.float32) * 0.3
POINTWISE = rng.standard_normal((2 * C, C, 1, 1)).astype(np.float32) * 0.3
BIAS = rng.standard_normal(2 * C).astype(np.float32)
POSITIONS = rng.standard_normal((1, C, 1, S)).astype(np.float32)
GAMMA = rng.standard_normal(C).astype(np.float32)
BETA = rng.standard_normal(C).astype(np.float32)


@pytest.mark.parametrize("perm", list(itertools.permutations(range(4)))[::5])
def test_squeeze_and_expand_rules_match_numpy(perm):
    value = rng.standard_normal((2, 1, 3, 1))
    stored = np.transpose(value, perm)
    squeezed = squeezed_perm(perm, {1})
    got = np.squeeze(stored, axis=perm.index(1))
    np.testing.assert_array_equal(got, np.transpose(np.squeeze(value, 1), squeezed))
    expanded = expanded_perm(perm, [0, 3])
    logical = np.expand_dims(value, (0, 3))
    stored_axes = sorted(expanded.index(a) for a in (0, 3))
    np.testing.assert_array_equal(np.expand_dims(stored, stored_axes), np.transpose(logical, expanded))
    np.testing.assert_array_equal(np.transpose(stored, inverse(perm)), value)


def test_channels_first_layers_after_a_conv_are_stored_channels_last():
    assert expanded_perm((0, 2, 1), [2]) == (0, 2, 3, 1)  # (B, S, C) + unit axis -> (B, 1, S, C)
    assert squeezed_perm((0, 2, 3, 1), {2}) == (0, 2, 1)


def ane_block(x):
    """(1, C, 1, S) -> (1, S, 2C): conv, GELU, positions, layer norm over channels, 1x1 conv,
    scale, split and rejoin on channels, softmax over channels, back to (1, S, 2C)."""
    x = mb.conv(x=x, weight=CONV3, strides=[1, 1], pad_type="custom", pad=[0, 0, 1, 1])
    x = mb.add(x=mb.gelu(x=x, mode="EXACT"), y=POSITIONS)
    x = mb.layer_norm(x=x, axes=[1], gamma=GAMMA, beta=BETA, epsilon=1e-5)
    x = mb.mul(x=mb.conv(x=x, weight=POINTWISE, bias=BIAS), y=0.5)
    halves = mb.split(x=x, num_splits=2, axis=1)
    x = mb.softmax(x=mb.concat(values=[halves[1], halves[0]], axis=1), axis=1)
    return mb.transpose(x=mb.squeeze(x=x, axes=[2]), perm=[0, 2, 1])


def _both(tmp_path, build, shapes, precision="fp32"):
    path = save_program(tmp_path, build, shapes, precision=precision)
    models = load(path), load(path, optimize=False)
    feeds = {spec.name: rng.standard_normal(spec.shape).astype(spec.dtype) for spec in models[0].description.inputs}
    return models[0], [list(m.predict(feeds).outputs.values()) for m in models]


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_ane_style_block_runs_channels_last_with_the_same_outputs(tmp_path, precision):
    model, (optimized, plain) = _both(tmp_path, ane_block, [(1, C, 1, S)], precision)
    ops = [n.op.name for n in model.program.block.nodes]
    assert model.program.rewrites["channels_last"] >= 10
    assert "portable.pointwise_channels_last" in ops and "portable.permute" not in ops
    assert_close(optimized[0], plain[0], precision)


def test_values_leaving_the_supported_ops_are_transposed_back_once(tmp_path):
    def build(x):
        y = mb.gelu(x=mb.conv(x=x, weight=CONV3, pad_type="same"))
        pooled = mb.reduce_mean(x=y, axes=[1], keep_dims=False)  # rank dropped: not rewritten, reads (1, C, 1, S)
        return mb.add(x=y, y=pooled), y

    model, (optimized, plain) = _both(tmp_path, build, [(1, C, 1, S)])
    ops = [n.op.name for n in model.program.block.nodes]
    assert ops.count("portable.permute") == 1
    for got, want in zip(optimized, plain):
        assert_close(got, want)


def test_broadcast_operands_and_kept_reductions_leave_the_large_value_channels_last(tmp_path):
    """A masked instance norm, as converted vocoders spell it: the mask and the per-channel
    statistics are moved (small), the activation never is."""

    def build(x, m):
        y = mb.conv(x=x, weight=CONV3, pad_type="same")
        mask = mb.sigmoid(x=m)  # a computed (1, 1, 1, S) value
        mean = mb.reduce_mean(x=mb.mul(x=y, y=mask), axes=[3], keep_dims=True)
        centred = mb.sub(x=y, y=mean)
        scale = mb.rsqrt(x=mb.reduce_sum(x=mb.mul(x=centred, y=centred), axes=[3], keep_dims=True), epsilon=1e-5)
        return mb.conv(x=mb.mul(x=mb.mul(x=centred, y=scale), y=mask), weight=CONV3, pad_type="same")

    model, (optimized, plain) = _both(tmp_path, build, [(1, C, 1, S), (1, 1, 1, S)])
    permuted = [n.params["x"][0].name for n in model.program.block.nodes if n.op.name == "portable.permute"]
    assert len(permuted) == 2  # the mask, once for its two readers, and the output
    assert_close(optimized[0], plain[0])


def test_a_residual_sum_begun_channels_first_stays_channels_last(tmp_path):
    """A vocoder stage: the running sum starts as a computed channels-first value (a transposed conv's
    output); that value is moved once, and no conv output is moved back for the sums after it."""

    def build(x):
        running = mb.tanh(x=x)  # computed, channels-first, the sum's own shape
        for _ in range(3):
            running = mb.add(x=running, y=mb.conv(x=running, weight=CONV3, pad_type="same"))
        return running

    model, (optimized, plain) = _both(tmp_path, build, [(1, C, 1, S)])
    nodes = model.program.block.nodes
    moved = [n.params["x"][0].name for n in nodes if n.op.name == "portable.permute"]
    assert len(moved) == 2  # the first value in, the output back
    assert sum(n.op.name in ("add", "portable.conv_add") for n in nodes) == 3  # fuse_residual.py takes the adds
    assert_close(optimized[0], plain[0])


NOT_REWRITTEN = {
    # layer_norm over two axes: its gamma would need re-laying out, so the op reads the logical value
    "layer norm over two axes": lambda y, x: mb.layer_norm(x=y, axes=[1, 3], epsilon=1e-5),
    # a sum of a channels-last value and a channels-first input of the same rank
    "binary with a channels-first value": lambda y, x: mb.add(x=y, y=x),
    "a reduction over channels": lambda y, x: mb.reduce_sum(x=y, axes=[1, 3]),
}


@pytest.mark.parametrize("tail", NOT_REWRITTEN.values(), ids=NOT_REWRITTEN.keys())
def test_ops_outside_the_rules_read_the_declared_layout(tmp_path, tail):
    def build(x):
        y = mb.conv(x=x, weight=CONV3, pad_type="same")
        return tail(y, x)

    model, (optimized, plain) = _both(tmp_path, build, [(1, C, 1, S)])
    nodes = model.program.block.nodes
    assert [n.op.name for n in nodes][:2] == ["portable.conv_to_channels_last", "portable.permute"]
    assert nodes[-1].op.name in ("layer_norm", "add", "reduce_sum")
    assert_close(optimized[0], plain[0])


def test_a_channels_first_output_is_restored(tmp_path):
    """WhisperKit's layout ends channels-first (1, D, 1, S): the program output is transposed back."""

    def build(x):
        y = mb.conv(x=x, weight=CONV3, pad_type="same")
        y = mb.layer_norm(x=y, axes=[1], gamma=GAMMA, beta=BETA, epsilon=1e-5)
        return mb.conv(x=y, weight=POINTWISE, bias=BIAS)

    model, (optimized, plain) = _both(tmp_path, build, [(1, C, 1, S)])
    assert [n.op.name for n in model.program.block.nodes][-1] == "portable.permute"
    assert optimized[0].shape == (1, 2 * C, 1, S)
    assert_close(optimized[0], plain[0])
