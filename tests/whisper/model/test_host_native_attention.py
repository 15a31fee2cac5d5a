"""Host decoder steps with our C kernels (cpu/native_kernels.py: cross- and self-attention, layer
norms, GELU, one-call products) give the numpy route's logits to float32 rounding: greedy (one row), beams sharing one audio row, and rows with
audio of their own (batched windows)."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
from model_helpers import beams_after_prefill, random_mel, random_model, tiny_dims

from mlx_audio_coreml.cpu import host_math, native_block, native_kernels
from mlx_audio_coreml.whisper import host_decoder

pytestmark = [
    pytest.mark.skipif(not host_math.available(mx.float32), reason="the host path needs MLX on the CPU"),
    pytest.mark.skipif(not native_kernels.available(), reason="libmacb_cpu is not built (no C compiler)"),
]


def _step_logits(model, tokens, features, cache, native: bool, monkeypatch: pytest.MonkeyPatch) -> np.ndarray:
    calls: list[int] = []
    kernel, block = native_kernels.attend_rows, native_block.BlockCall.run

    def counted(*args: np.ndarray) -> np.ndarray:
        calls.append(1)
        return kernel(*args)

    def counted_block(*args: object) -> None:
        calls.append(1)
        block(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(native_kernels, "attend_rows", counted)
    monkeypatch.setattr(native_block.BlockCall, "run", counted_block)  # int8: the whole block in C
    if not native:  # every C kernel off (one-row products give the same bits either way)
        monkeypatch.setattr(native_kernels, "available", lambda: False)
    out, _, _ = model.decoder(tokens, features, cache)
    monkeypatch.undo()
    assert bool(calls) == native, "the step did not take the route asked for"
    return np.array(out)


WIDE = {"n_audio_state": 128, "n_audio_head": 2, "n_text_state": 128, "n_text_head": 2}  # head size 64


@pytest.mark.parametrize("int8", [False, True])
@pytest.mark.parametrize("beams", [1, 5])
@pytest.mark.parametrize("head_dim", [8, 64])  # 64 (Whisper's) takes the kernel's grouped, unrolled paths
def test_beams_of_one_window_match_the_numpy_route(
    int8: bool, beams: int, head_dim: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = random_model(tiny_dims(**(WIDE if head_dim == 64 else {})))
    model.decoder.host_int8 = int8
    tokens, many, shared = beams_after_prefill(model, beams)
    numpy_route = _step_logits(model, tokens, many, shared, False, monkeypatch)
    native = _step_logits(model, tokens, many, shared, True, monkeypatch)
    # int8: a rounding difference can move one activation across a quantization step
    np.testing.assert_allclose(native, numpy_route, rtol=0, atol=2e-3 if int8 else 1e-4)
    assert (native.argmax(-1) == numpy_route.argmax(-1)).all()


def test_rows_with_their_own_audio_match_the_numpy_route(monkeypatch: pytest.MonkeyPatch) -> None:
    model = random_model(tiny_dims(**WIDE))
    model.decoder.host_int8 = False
    features = model.encoder(mx.concatenate([random_mel(model.dims, seed=seed) for seed in (0, 1, 2)], axis=0))
    _, cache, _ = model.decoder(mx.array([[1, 2, 3]] * 3, dtype=mx.int32), features)  # three windows
    tokens = mx.array([[4], [5], [6]], dtype=mx.int32)
    numpy_route = _step_logits(model, tokens, features, cache, False, monkeypatch)
    native = _step_logits(model, tokens, features, cache, True, monkeypatch)
    np.testing.assert_allclose(native, numpy_route, rtol=0, atol=1e-4)


@pytest.mark.parametrize(("setting", "amx", "rows", "split"), [
    (None, True, 1, True), (None, True, 5, False), (None, False, 1, False),
    (True, False, 5, True), (False, True, 1, False),
])  # fmt: skip
def test_when_the_heads_are_split(
    setting: bool | None, amx: bool, rows: int, split: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unset: one-row steps split on CPUs with AMX only (measured there); 1 / 0 always / never."""
    from mlx_audio_coreml.cpu import amx_policy
    from mlx_audio_coreml.cpu import pool as host_pool

    monkeypatch.setattr(host_decoder, "_SPLIT_CROSS", setting)
    monkeypatch.setattr(amx_policy, "cpu_has_amx", lambda: amx)
    monkeypatch.setattr(host_pool, "worker_count", lambda: 2)
    runs: list[int] = []
    real = host_pool.run_all
    monkeypatch.setattr(host_pool, "run_all", lambda work, items: runs.append(1) or real(work, items))
    rng = np.random.default_rng(0)
    k_t = rng.standard_normal((1, 4, 64, 30)).astype(np.float32)
    v = rng.standard_normal((1, 4, 30, 64)).astype(np.float32)
    q = rng.standard_normal((rows, 256)).astype(np.float32)
    out = host_decoder._native_cross(q, k_t, v, heads=4)
    assert bool(runs) == split
    np.testing.assert_allclose(out, native_kernels.attend_rows(q, k_t, v, np.empty_like(q)), rtol=1e-6, atol=1e-6)


def test_threads_stepping_at_once_get_their_own_results() -> None:
    """The kernels' scratch and the one-call products' buffers are per thread: four threads
    stepping the same decoder at once (int8, beams) each get what a lone step gives, bit for bit."""
    import threading

    model = random_model(tiny_dims(**WIDE))
    model.decoder.host_int8 = True
    tokens, many, shared = beams_after_prefill(model, 5)
    alone = [np.array(model.decoder(tokens + shift, many, shared)[0]) for shift in range(4)]
    results: list[np.ndarray | None] = [None] * 4
    errors: list[BaseException] = []

    def step(shift: int) -> None:
        try:
            for _ in range(5):
                results[shift] = np.array(model.decoder(tokens + shift, many, shared)[0])
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=step, args=(shift,)) for shift in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for got, expected in zip(results, alone, strict=True):
        np.testing.assert_array_equal(got, expected)
