"""The CPU logits shortcut: a bfloat16 pass, then float32 for every row that can decide a token."""

from __future__ import annotations

import numpy as np
import pytest

from mlx_audio_coreml.whisper import bf16_kernel, host_logits, host_math


@pytest.fixture(scope="module")
def kernel():
    function = bf16_kernel.load()
    if function is None:
        pytest.skip("no C compiler here to build the bfloat16 kernel (the float32 path is used instead)")
    return function


def test_bf16_rounding_is_to_nearest_even():
    values = np.array([1.0, 1 + 2**-8, 1 + 3 * 2**-8, 1 + 2**-8 + 2**-20, -2.5], dtype=np.float32)
    assert bf16_kernel.to_bf16(values[None]).tolist() == [[0x3F80, 0x3F80, 0x3F82, 0x3F81, 0xC020]]


def test_bf16_product_stays_within_its_error_bound(kernel):
    rng = np.random.default_rng(0)
    table = rng.standard_normal((1000, 72)).astype(np.float32)  # 72: not a multiple of 16 (the tail loop)
    x = rng.standard_normal(72).astype(np.float32)
    approx = bf16_kernel.gemv(kernel, bf16_kernel.to_bf16(table), x)
    bound = 2.0**-8 * np.abs(table) @ np.abs(x) + 1e-5
    assert np.all(np.abs(approx - table @ x) <= bound)
    assert np.abs(approx - table @ x).max() > 0  # it really is the bfloat16 product


def test_logits_are_exact_where_they_decide_and_close_elsewhere(kernel):
    rng = np.random.default_rng(1)
    vocab, width = 51864, 64
    table = (rng.standard_normal((vocab, width)) * 0.3).astype(np.float32)
    fast = host_logits.Bf16Logits(table, kernel)
    for seed in range(5):
        x = np.random.default_rng(seed).standard_normal(width).astype(np.float32)
        exact = host_math.matvec(table, x)
        got = fast(x)
        np.testing.assert_array_equal(got[50256:], exact[50256:])  # specials and timestamps
        assert got.argmax() == exact.argmax()
        near = exact[:50256] >= exact[:50256].max() - host_logits.BAND
        # float32 products of the same rows: equal up to BLAS summation order (~1 ulp)
        np.testing.assert_allclose(got[:50256][near], exact[:50256][near], rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(got, exact, atol=0.05)


def test_logits_fall_back_to_float32_without_the_kernel(monkeypatch):
    monkeypatch.setattr(bf16_kernel, "load", lambda: None)
    table = np.random.default_rng(2).standard_normal((300, 32)).astype(np.float32)
    x = np.ones(32, np.float32)

    class Owner:
        pass

    np.testing.assert_array_equal(host_logits.logits(Owner(), object(), table, x), host_math.matvec(table, x))
