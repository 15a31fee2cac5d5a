"""On the CPU in float32 the portable runtime hands softmax, exact GELU and the fused attention to
cpu/host_math.py (numpy on MLX's buffers; float32 attention to cpu/attention.py's
oneDNN kernels when installed): same results as the plain MLX ops, no value of the
program (or the caller's input) overwritten, and no host math inside an mx.compile trace."""

from __future__ import annotations

import math

import mlx.core as mx
import numpy as np
import pytest
from portable_helpers import load, mb, save_program

from mlx_audio_coreml.coreml.portable.ops import host
from mlx_audio_coreml.cpu import attention as host_attention
from mlx_audio_coreml.cpu import host_math, onednn

pytestmark = pytest.mark.skipif(not host_math.available(mx.float32), reason="host math runs on the CPU only")

rng = np.random.default_rng(21)


def per_head_attention(heads: int, channels_first: bool, scale: float):
    """The per-head attention pattern fuse.py fuses, over (B, D, S) or (B, S, D) inputs."""
    axis = 1 if channels_first else 2

    def build(q, k, v):
        qs, ks, vs = (mb.split(x=t, num_splits=heads, axis=axis) for t in (q, k, v))
        mixed = []
        for h in range(heads):
            scores = mb.matmul(x=qs[h], y=ks[h], transpose_x=channels_first, transpose_y=not channels_first)
            weights = mb.softmax(x=mb.mul(x=scores, y=scale), axis=-1)
            if channels_first:
                mixed.append(mb.matmul(x=vs[h], y=weights, transpose_y=True))
            else:
                mixed.append(mb.matmul(x=weights, y=vs[h]))
        return mb.concat(values=mixed, axis=axis)

    return build


def both_paths(model, feeds: dict[str, np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(outputs with host math, outputs with the plain MLX ops) of one loaded model."""
    with_host = list(model.predict(feeds).outputs.values())
    with host_math.disabled():
        plain = list(model.predict(feeds).outputs.values())
    return with_host, plain


def assert_agree(got: list[np.ndarray], want: list[np.ndarray], rtol: float = 1e-5) -> None:
    for a, b in zip(got, want):
        scale = float(np.abs(b.astype(np.float64)).max())
        assert float(np.abs(a.astype(np.float64) - b).max()) <= rtol * scale


@pytest.fixture
def calls(monkeypatch):
    """How often each host entry point ran (host_math's, and host_attention's oneDNN attention)."""
    counted = {"attention": 0, "softmax_": 0, "softmax_np_": 0, "gelu_": 0, "attend": 0}
    for name in counted:
        module = host_attention if name == "attend" else host_math
        original = getattr(module, name)

        def spy(*args, _name=name, _original=original, **kwargs):
            counted[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(module, name, spy)
    return counted


@pytest.mark.parametrize("channels_first", [True, False])
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_fused_attention_on_the_host_matches_mlx_attention(tmp_path, calls, channels_first, precision):
    heads, head_dim, length = 3, 8, 620  # more queries than one host block (500)
    shape = (1, heads * head_dim, length) if channels_first else (1, length, heads * head_dim)
    path = save_program(tmp_path, per_head_attention(heads, channels_first, 0.3), [shape] * 3, precision=precision)
    model = load(path)
    feeds = {s.name: rng.standard_normal(shape).astype(s.dtype) for s in model.description.inputs}

    got, want = both_paths(model, feeds)

    assert model.program.rewrites["attention"] == 1 and not model.compiled
    on_onednn = precision == "fp32" and onednn.available()  # float16 programs keep host_math's route
    assert (calls["attend"], calls["attention"]) == ((1, 0) if on_onednn else (0, 1))
    assert calls["softmax_np_"] == heads * 2  # two query blocks per head
    assert_agree(got, want, 1e-5 if precision == "fp32" else 2e-3)  # fp16: rounding of the output


@pytest.mark.parametrize("axis", [-1, 0])
def test_softmax_on_the_host_matches_mlx_and_leaves_its_input_alone(tmp_path, calls, axis):
    path = save_program(tmp_path, lambda x: [mb.softmax(x=x, axis=axis), mb.mul(x=x, y=2.0)], [(6, 300)])
    model = load(path)
    x = mx.array(rng.standard_normal((6, 300)).astype(np.float32) * 4)
    before = np.array(x)

    outputs = model.predict_mlx({"x": x})
    got = [np.array(v) for v in outputs.values()]
    with host_math.disabled():
        want = [np.array(v) for v in model.predict_mlx({"x": x}).values()]

    assert calls["softmax_"] == (1 if axis == -1 else 0)  # other axes stay with MLX
    np.testing.assert_array_equal(np.array(x), before)  # the caller's input is not the scratch buffer
    np.testing.assert_array_equal(got[1], before * 2)
    assert_agree(got, want)


@pytest.mark.parametrize("mode, host_calls", [("EXACT", 1), ("TANH_APPROXIMATION", 0)])
def test_gelu_on_the_host_matches_mlx_and_a_shared_value_stays_intact(tmp_path, calls, mode, host_calls):
    weight = rng.standard_normal((64, 32)).astype(np.float32)

    def build(x):
        hidden = mb.linear(x=x, weight=weight)  # read by gelu and by the add: must not be overwritten
        return mb.add(x=mb.gelu(x=hidden, mode=mode), y=hidden)

    model = load(save_program(tmp_path, build, [(200, 32)]))
    x = rng.standard_normal((200, 32)).astype(np.float32)

    got, want = both_paths(model, {"x": x})

    hidden = x @ weight.T
    exact = 0.5 * hidden * (1 + np.vectorize(math.erf)(hidden / np.sqrt(2)))
    assert calls["gelu_"] == host_calls
    assert_agree(got, want)
    if mode == "EXACT":
        assert_agree(got, [exact + hidden], 1e-5)


def test_a_compiled_program_keeps_host_math_out_of_its_trace(tmp_path, calls):
    path = save_program(tmp_path, lambda x: mb.gelu(x=mb.softmax(x=x, axis=-1)), [(4, 50)])
    with host_math.disabled():  # off at load: the program is compiled
        model = load(path)
    x = rng.standard_normal((4, 50)).astype(np.float32)

    got = list(model.predict({"x": x}).outputs.values())  # host math on while the trace is recorded

    assert model.compiled and calls["softmax_"] == calls["gelu_"] == 0
    with host_math.disabled():
        assert_agree(got, list(load(path, compile=False).predict({"x": x}).outputs.values()))


def test_programs_without_host_ops_still_compile_on_the_cpu(tmp_path):
    model = load(save_program(tmp_path, lambda x: mb.relu(x=x), [(4, 8)]))
    assert model.compiled
    assert host.wanted(load(save_program(tmp_path, lambda x: mb.softmax(x=x), [(4, 8)])).program.block.nodes, mx.cpu)
