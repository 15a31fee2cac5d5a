"""On the CPU in float32 with oneDNN, the portable runtime multiplies by constant weights through
cpu/linear.py (linear, matmul by a constant 2-D y) and runs unmasked attention through
cpu/attention.py, the product encoder's kernels: same results as the plain MLX ops,
weights prepared once per node, and everything else (non-constant or batched products, masks,
float16 programs, compiled traces) left to MLX."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
from portable_helpers import ct, load, mb, save_program

from mlx_audio_coreml.coreml.portable.ops import host, host_products
from mlx_audio_coreml.cpu import attention as host_attention
from mlx_audio_coreml.cpu import host_math, onednn
from mlx_audio_coreml.cpu.linear import HostLinear

pytestmark = pytest.mark.skipif(
    not (host_math.available(mx.float32) and onednn.available()), reason="needs the CPU and oneDNN"
)

rng = np.random.default_rng(5)


@pytest.fixture
def prepared(monkeypatch):
    """Every HostLinear the portable ops make, and how often host_attention.attend ran."""
    seen = {"layers": [], "attend": 0}

    class Counted(HostLinear):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            seen["layers"].append(self)

    original_attend = host_attention.attend

    def attend(*args, **kwargs):
        seen["attend"] += 1
        return original_attend(*args, **kwargs)

    monkeypatch.setattr(host_products, "HostLinear", Counted)
    monkeypatch.setattr(host_attention, "attend", attend)
    return seen


def host_and_plain(path, feeds: dict[str, np.ndarray], predictions: int = 2):
    """(outputs on the host path after `predictions` predictions, outputs of the plain MLX ops)."""
    model = load(path, compile=False)  # eager: a compiled trace keeps to plain MLX by design
    for _ in range(predictions):
        got = list(model.predict(feeds).outputs.values())
    with host_math.disabled():
        want = list(model.predict(feeds).outputs.values())
    return got, want


def assert_agree(got, want, rtol: float = 1e-5) -> None:
    for a, b in zip(got, want):
        assert a.shape == b.shape
        scale = float(np.abs(b.astype(np.float64)).max())
        assert float(np.abs(a.astype(np.float64) - b).max()) <= rtol * scale


@pytest.mark.parametrize("with_bias", [True, False])
def test_linear_by_a_constant_weight_runs_on_onednn_once_prepared(tmp_path, prepared, with_bias):
    weight = rng.standard_normal((48, 32)).astype(np.float32)
    bias = rng.standard_normal(48).astype(np.float32) if with_bias else None
    build = (
        (lambda x: mb.linear(x=x, weight=weight, bias=bias)) if with_bias else (lambda x: mb.linear(x=x, weight=weight))
    )
    x = rng.standard_normal((2, 300, 32)).astype(np.float32)  # 600 rows: split between the workers

    got, want = host_and_plain(save_program(tmp_path, build, [x.shape]), {"x": x})

    assert len(prepared["layers"]) == 1  # laid out on the first prediction, reused on the second
    assert_agree(got, want)
    assert_agree(got, [x @ weight.T + (bias if with_bias else 0)])


@pytest.mark.parametrize(
    "transpose_x, transpose_y, x_shape",
    [
        (False, False, (3, 40, 24)),
        (False, True, (40, 24)),
        (True, False, (24, 40)),
        (False, False, (24,)),
    ],
)
def test_matmul_by_a_constant_matrix_runs_on_onednn(tmp_path, prepared, transpose_x, transpose_y, x_shape):
    y = rng.standard_normal((16, 24) if transpose_y else (24, 16)).astype(np.float32)
    x = rng.standard_normal(x_shape).astype(np.float32)
    path = save_program(
        tmp_path, lambda x: mb.matmul(x=x, y=y, transpose_x=transpose_x, transpose_y=transpose_y), [x.shape]
    )

    got, want = host_and_plain(path, {"x": x})

    logical_x, logical_y = (x.swapaxes(-1, -2) if transpose_x else x), (y.T if transpose_y else y)
    assert len(prepared["layers"]) == 1
    assert_agree(got, want)
    assert_agree(got, [logical_x @ logical_y])


def test_products_of_two_inputs_and_float16_programs_stay_in_mlx(tmp_path, prepared):
    x, y = rng.standard_normal((2, 30, 24)).astype(np.float32), rng.standard_normal((2, 24, 16)).astype(np.float32)
    weight = rng.standard_normal((16, 24)).astype(np.float32)

    got, want = host_and_plain(
        save_program(tmp_path, lambda x, y: mb.matmul(x=x, y=y), [x.shape, y.shape]), {"x": x, "y": y}
    )
    fp16 = save_program(tmp_path, lambda x: mb.linear(x=x, weight=weight), [x.shape], precision="fp16")
    half, _ = host_and_plain(fp16, {"x": x}, predictions=1)  # float32 I/O, float16 inside

    assert prepared["layers"] == []
    assert_agree(got, want)
    assert_agree(got, [x @ y])
    np.testing.assert_allclose(half[0].astype(np.float32), x @ weight.T, rtol=2e-2, atol=5e-2)


def test_a_compiled_linear_program_keeps_onednn_out_of_its_trace(tmp_path, prepared):
    weight = rng.standard_normal((16, 8)).astype(np.float32)
    model = load(save_program(tmp_path, lambda x: mb.linear(x=x, weight=weight), [(5, 8)]))
    x = rng.standard_normal((5, 8)).astype(np.float32)

    got = model.predict({"x": x}).outputs

    assert model.compiled and prepared["layers"] == []  # linear alone does not make a program eager
    assert_agree(list(got.values()), [x @ weight.T])


@pytest.mark.parametrize("masked", [False, True])
def test_scaled_dot_product_attention_without_a_mask_runs_on_host_attention(tmp_path, prepared, masked):
    shapes = [(2, 3, 520, 8), (2, 3, 70, 8), (2, 3, 70, 5)]  # (B, H, L, E): two query blocks per head
    keep = rng.random((520, 70)) > 0.3

    def build(q, k, v):
        if masked:
            return mb.scaled_dot_product_attention(query=q, key=k, value=v, attn_mask=keep)
        return mb.scaled_dot_product_attention(query=q, key=k, value=v)

    path = save_program(tmp_path, build, shapes, opset=ct.target.iOS18)
    feeds = {name: rng.standard_normal(shape).astype(np.float32) for name, shape in zip(("q", "k", "v"), shapes)}

    got, want = host_and_plain(path, feeds, predictions=1)

    assert prepared["attend"] == (0 if masked else 2)  # once per batch item; a mask stays with MLX
    assert host.wanted(load(path).program.block.nodes, mx.cpu) is not masked  # eager only for the host path
    assert_agree(got, want)
    scores = np.einsum("bhld,bhsd->bhls", feeds["q"], feeds["k"]) / np.sqrt(8)
    if masked:
        scores = np.where(keep, scores, -np.inf)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    assert_agree(got, [(weights / weights.sum(-1, keepdims=True)) @ feeds["v"]])


def test_an_eager_cpu_model_raises_mlx_buffer_cache_limit_but_never_lowers_it():
    import mlx.core as mx

    from mlx_audio_coreml.coreml.portable import runtime

    previous = mx.set_cache_limit(1 << 20)
    try:
        runtime._keep_buffers_cached(64 << 20)
        assert mx.set_cache_limit(1 << 30) == 64 << 20  # raised from 1 MiB
        runtime._keep_buffers_cached(64 << 20)
        assert mx.set_cache_limit(previous) == 1 << 30  # a larger limit stays
    finally:
        mx.set_cache_limit(previous)


@pytest.mark.parametrize("with_bias", [True, False])
def test_one_row_by_a_small_weight_is_one_onednn_product_on_the_calling_thread(
    tmp_path, prepared, monkeypatch, with_bias
):
    # a style vector's product (AdaIN): HostLinear's one-row route would wake OpenBLAS's threads
    weight = rng.standard_normal((256, 128)).astype(np.float32)
    bias = rng.standard_normal(256).astype(np.float32) if with_bias else None
    build = (
        (lambda x: mb.linear(x=x, weight=weight, bias=bias)) if with_bias else (lambda x: mb.linear(x=x, weight=weight))
    )
    x = rng.standard_normal((1, 128)).astype(np.float32)
    monkeypatch.setattr(HostLinear, "__call__", lambda *a, **k: pytest.fail("one row went to HostLinear's call"))

    got, want = host_and_plain(save_program(tmp_path, build, [x.shape]), {"x": x})

    assert len(prepared["layers"]) == 1
    assert_agree(got, want)
    assert_agree(got, [x @ weight.T + (bias if with_bias else 0)])
