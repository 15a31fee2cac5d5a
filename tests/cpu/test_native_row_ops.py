"""Our C layer norm and GELU (cpu_kernels/row_ops.c through cpu/native_kernels.py) against float64
references, and host_math's choice of route: small blocks (a decoder step's beams) take the C
kernels, larger ones keep numpy's or oneDNN's."""

from __future__ import annotations

import ctypes
import math

import numpy as np
import pytest

from mlx_audio_coreml.cpu import host_math, native_kernels

pytestmark = pytest.mark.skipif(not native_kernels.available(), reason="libmacb_cpu is not built (no C compiler)")


def _layer_norm_reference(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    wide = x.astype(np.float64)
    centered = wide - wide.mean(axis=1, keepdims=True)
    return centered / np.sqrt((centered**2).mean(axis=1, keepdims=True) + eps) * weight + bias


@pytest.mark.parametrize(("rows", "width"), [(1, 384), (5, 1536), (16, 17), (2, 1)])
def test_layer_norm_matches_the_reference(rows: int, width: int) -> None:
    rng = np.random.default_rng(rows + width)
    x = (rng.standard_normal((rows, width)) * 3 + 1).astype(np.float32)
    weight, bias = rng.standard_normal(width).astype(np.float32), rng.standard_normal(width).astype(np.float32)
    out = native_kernels.layer_norm_rows(x, weight, bias, 1e-5)
    np.testing.assert_allclose(out, _layer_norm_reference(x, weight, bias, 1e-5), rtol=1e-5, atol=1e-5)


def test_layer_norm_reads_strided_rows() -> None:
    rng = np.random.default_rng(3)
    block = rng.standard_normal((4, 96)).astype(np.float32)
    x = block[:, 32:64]  # rows 96 floats apart
    weight, bias = np.ones(32, np.float32), np.zeros(32, np.float32)
    np.testing.assert_allclose(
        native_kernels.layer_norm_rows(x, weight, bias, 1e-5), _layer_norm_reference(x, weight, bias, 1e-5), atol=1e-5
    )


def test_layer_norm_refuses_mismatched_parameters() -> None:
    x = np.ones((2, 8), np.float32)
    with pytest.raises(ValueError, match="weight"):
        native_kernels.layer_norm_rows(x, np.ones(7, np.float32), np.zeros(8, np.float32), 1e-5)
    with pytest.raises(ValueError, match="bias"):
        native_kernels.layer_norm_rows(x, np.ones(8, np.float32), np.zeros(8, np.float64), 1e-5)
    with pytest.raises(ValueError, match="x: expected"):
        native_kernels.layer_norm_rows(x.astype(np.float64), np.ones(8, np.float32), np.zeros(8, np.float32), 1e-5)


def test_the_c_entries_refuse_bad_arguments() -> None:
    library = native_kernels._library()
    x = np.ones((1, 8), np.float32)
    ptr = x.ctypes.data
    assert library.macb_cpu_layer_norm_rows(ptr, 8, ptr, 8, 0, 8, ptr, ptr, 1e-5) == 1  # no rows
    assert library.macb_cpu_layer_norm_rows(ptr, 8, None, 8, 1, 8, ptr, ptr, 1e-5) == 1  # no output
    assert library.macb_cpu_layer_norm_rows(ptr, 8, ptr, 8, 1, 8, ptr, ptr, ctypes.c_float(-1.0)) == 1
    assert library.macb_cpu_gelu(None, 4) == 1
    assert library.macb_cpu_gelu(ptr, -1) == 1
    assert (x == 1.0).all()


def test_gelu_matches_the_exact_erf_form() -> None:
    values = np.concatenate([np.linspace(-12, 12, 4001), [0.0, -0.0, 1e-30, -1e-30, 40.0, -40.0]]).astype(np.float32)
    expected = np.array([v * 0.5 * (1 + math.erf(v / math.sqrt(2))) for v in values.astype(np.float64)])
    got = native_kernels.gelu_(values.copy())
    np.testing.assert_allclose(got, expected, rtol=2e-6, atol=2e-6)


def test_gelu_refuses_arrays_it_cannot_write_in_place() -> None:
    with pytest.raises(ValueError, match="gelu_"):
        native_kernels.gelu_(np.ones((4, 4), np.float32)[:, ::2])
    with pytest.raises(ValueError, match="gelu_"):
        native_kernels.gelu_(np.ones(4, np.float64))


def test_host_math_routes_small_blocks_to_the_c_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    for name in ("layer_norm_rows", "gelu_"):
        kernel = getattr(native_kernels, name)
        monkeypatch.setattr(native_kernels, name, lambda *a, _k=kernel, _n=name: calls.append(_n) or _k(*a))
    rng = np.random.default_rng(5)
    norm = (np.ones(64, np.float32), np.zeros(64, np.float32), 1e-5)
    small, large = rng.standard_normal((3, 64)).astype(np.float32), rng.standard_normal((40, 64)).astype(np.float32)
    np.testing.assert_allclose(host_math.layer_norm(small, norm), _layer_norm_reference(small, *norm), atol=1e-5)
    host_math.gelu_np_(small.copy())
    assert calls == ["layer_norm_rows", "gelu_"]
    host_math.layer_norm(large, norm)
    host_math.gelu_np_(large.copy())
    assert calls == ["layer_norm_rows", "gelu_"], "a large block left its numpy / oneDNN route"


def test_log_normalizers_match_the_numpy_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    """sampling.log_normalizers through the C kernel and through numpy: the same to ~1e-7, with
    suppressed (-inf) tokens and a row where nothing is allowed, maxima given or not."""
    from mlx_audio_coreml.whisper import sampling

    rng = np.random.default_rng(9)
    logits = (rng.standard_normal((4, 51864)) * 5).astype(np.float32)
    logits[:, :300] = -np.inf
    logits[2] = -np.inf
    with np.errstate(invalid="ignore"):
        fast = [sampling.log_normalizers(logits), sampling.log_normalizers(logits[:1], logits[:1].max(axis=-1))]
        monkeypatch.setattr(native_kernels, "available", lambda: False)
        slow = [sampling.log_normalizers(logits), sampling.log_normalizers(logits[:1], logits[:1].max(axis=-1))]
    for got, expected in zip(fast, slow, strict=True):
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, expected, rtol=1e-8, atol=1e-7)
    assert fast[0][2] == -np.inf


def test_log_normalizers_refuse_bad_arguments() -> None:
    logits = np.zeros((2, 8), np.float32)
    with pytest.raises(ValueError, match="maxima"):
        native_kernels.log_normalizers(logits, np.zeros(3, np.float32))
    assert native_kernels._library().macb_cpu_log_normalizers(logits.ctypes.data, 2, 8, 8, None, None) == 1
