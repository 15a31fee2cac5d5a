"""cpu/attention.py: bfloat16 products (cpu/bf16.py, cpu_kernels/bf16.c) and the prefill's options (transposed keys, a mask)."""

from __future__ import annotations

import numpy as np
import pytest

from mlx_audio_coreml.cpu import amx_policy, attention, bf16, native_kernels, onednn

needs_kernels = pytest.mark.skipif(not native_kernels.available(), reason="our C kernels are not built")
needs_bf16 = pytest.mark.skipif(not bf16.available(), reason="no native bfloat16 products on this CPU or oneDNN")


def _reference_bits(values: np.ndarray) -> np.ndarray:
    """Round to nearest even by integer arithmetic in uint64; NaN -> quiet NaN with its sign."""
    bits = values.view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(values)
    rounded[nan] = ((bits[nan] >> 16) | 0x40).astype(np.uint16)
    return rounded


@needs_kernels
def test_conversion_rounds_to_nearest_even_with_ties_nans_and_overflow() -> None:
    rng = np.random.default_rng(0)
    with np.errstate(over="ignore"):
        values = (rng.standard_normal((37, 130)) * 10.0 ** rng.integers(-40, 38, (37, 130))).astype(np.float32)
    special = np.array([1.00390625, 1.01171875, -1.00390625, 3.4e38, -3.4e38, 1e-40, 0.0, -0.0, np.inf, -np.inf],
                       np.float32)  # fmt: skip
    values[0, : special.size] = special
    values[1, :2] = np.array([np.nan, -np.nan], np.float32)
    out = native_kernels.to_bf16(values, np.empty(values.shape, np.uint16))
    np.testing.assert_array_equal(out, _reference_bits(values))
    assert out[0, 0] == 0x3F80 and out[0, 1] == 0x3F82  # ties go to the even neighbour
    assert out[0, 3] == 0x7F80 and out[0, 4] == 0xFF80  # past the largest finite bfloat16: infinity
    back = (out.astype(np.uint32) << 16).view(np.float32)
    finite = np.isfinite(values) & (np.abs(values) < 3e38)
    assert np.all(np.abs(back[finite] - values[finite]) <= np.abs(values[finite]) * 2.0**-8 + 2.0**-134)  # half a step


@needs_kernels
def test_conversion_takes_strided_rows_and_checks_its_arguments() -> None:
    wide = np.arange(40, dtype=np.float32).reshape(4, 10) / 7
    out = np.empty((4, 5), np.uint16)
    native_kernels.to_bf16(wide[:, 2:7], out)
    np.testing.assert_array_equal(out, _reference_bits(np.ascontiguousarray(wide[:, 2:7])))
    with pytest.raises(ValueError):
        native_kernels.to_bf16(wide, np.empty((4, 9), np.uint16))
    with pytest.raises(ValueError):
        native_kernels.to_bf16(wide, np.empty((4, 10), np.float32))
    with pytest.raises(ValueError):
        native_kernels.to_bf16(wide[:, ::2], np.empty((4, 5), np.uint16))


def _as_float(bits: np.ndarray) -> np.ndarray:
    return (bits.astype(np.uint32) << 16).view(np.float32).astype(np.float64)


@needs_bf16
@pytest.mark.parametrize("transposed", [False, True])
def test_gemm_sums_the_rounded_inputs_in_float32(transposed: bool) -> None:
    rng = np.random.default_rng(1)
    a = native_kernels.to_bf16(rng.standard_normal((33, 70), dtype=np.float32), np.empty((33, 70), np.uint16))
    shape = (21, 70) if transposed else (70, 21)
    b = native_kernels.to_bf16(rng.standard_normal(shape, dtype=np.float32), np.empty(shape, np.uint16))
    out = bf16.gemm(a, b, np.empty((33, 21), np.float32), b_transposed=transposed)
    exact = _as_float(a) @ (_as_float(b).T if transposed else _as_float(b))
    np.testing.assert_allclose(out, exact, rtol=0, atol=1e-4)
    with pytest.raises(ValueError):
        bf16.gemm(a, b, np.empty((33, 20), np.float32), b_transposed=transposed)


def _heads(seed: int, length: int = 700, head_dim: int = 64, heads: int = 3) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    qkv = rng.standard_normal((length, 3 * heads * head_dim), dtype=np.float32)
    width = heads * head_dim
    split = [attention.split_heads(qkv[:, i * width : (i + 1) * width], heads) for i in range(3)]
    return split[0] * np.float32(head_dim**-0.5), split[1], split[2]


@pytest.mark.skipif(not onednn.available(), reason="oneDNN is not installed")
@needs_bf16
@pytest.mark.parametrize("scores_too", [True, False])  # False: CPUs with AMX (bf16.scores_in_bf16)
def test_bf16_attention_is_float32_attention_to_bfloat16_rounding(
    monkeypatch: pytest.MonkeyPatch, scores_too: bool
) -> None:
    monkeypatch.setattr(bf16, "scores_in_bf16", lambda: scores_too)
    q, k, v = _heads(2)
    exact = attention.attend(q, k, v, np.empty(q.shape, np.float32))
    rounded = attention.attend(q, k, v, np.empty(q.shape, np.float32), bf16_products=True)
    assert not np.array_equal(rounded, exact)  # the products did run in bfloat16
    assert float(np.abs(rounded - exact).max()) < 0.02  # outputs ~0.1-1: a few bfloat16 steps
    assert float(np.abs(rounded - exact).mean()) < 2e-3


def test_scores_stay_float32_on_cpus_with_amx(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(amx_policy, "cpu_flags", lambda: frozenset({"avx512_bf16", "amx_bf16", "amx_tile"}))
    assert bf16.cpu_multiplies_bf16() and not bf16.scores_in_bf16()
    monkeypatch.setattr(amx_policy, "cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16"}))
    assert bf16.cpu_multiplies_bf16() and bf16.scores_in_bf16()
    monkeypatch.setattr(amx_policy, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    assert not bf16.cpu_multiplies_bf16()


@pytest.mark.skipif(not onednn.available(), reason="oneDNN is not installed")
def test_switched_off_or_unsupported_it_is_the_float32_route_bit_for_bit(monkeypatch: pytest.MonkeyPatch) -> None:
    q, k, v = _heads(3, length=300)
    exact = attention.attend(q, k, v, np.empty(q.shape, np.float32))
    monkeypatch.setenv("MLX_AUDIO_COREML_BF16_ATTENTION", "0")
    assert not bf16.available()
    np.testing.assert_array_equal(attention.attend(q, k, v, np.empty(q.shape, np.float32), bf16_products=True), exact)
    monkeypatch.delenv("MLX_AUDIO_COREML_BF16_ATTENTION")
    monkeypatch.setattr(bf16, "cpu_multiplies_bf16", lambda: False)
    assert not bf16.available()
    np.testing.assert_array_equal(attention.attend(q, k, v, np.empty(q.shape, np.float32), bf16_products=True), exact)


@pytest.mark.skipif(not onednn.available(), reason="oneDNN is not installed")
def test_attend_takes_transposed_keys_and_a_mask_as_the_prefill_passes_them() -> None:
    """The host prefill's layouts (cpu/attention.attend's options): keys (H, Dh, S), a causal mask."""
    q, k, v = _heads(4, length=120)
    q = np.ascontiguousarray(q)
    mask = np.triu(np.full((120, 120), -np.inf, np.float32), 1)
    scores = np.einsum("htd,hsd->hts", q.astype(np.float64), k.astype(np.float64)) + mask
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    expected = (weights / weights.sum(axis=-1, keepdims=True)) @ v.astype(np.float64)
    keys_t = np.ascontiguousarray(k.transpose(0, 2, 1))
    found = attention.attend(q, keys_t, v, np.empty(q.shape, np.float32), keys_transposed=True, mask=mask)
    np.testing.assert_allclose(found, expected, rtol=0, atol=2e-5)
    with pytest.raises(ValueError):
        attention.attend(q, keys_t, v, np.empty(q.shape, np.float32), keys_transposed=True, mask=mask[:, :60])
