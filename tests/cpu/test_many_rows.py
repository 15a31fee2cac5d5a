"""int8 products of many rows through prepared int32-sum kernels equal the gemm route bit for bit
(cpu/linear.py `_many_product`, cpu/onednn_rows.py `sums_only`)."""

from __future__ import annotations

import numpy as np
import pytest

from mlx_audio_coreml.cpu import linear, onednn, onednn_rows

pytestmark = pytest.mark.skipif(not onednn.available(), reason="oneDNN is not installed")


def _layer(n: int, k: int, bias: bool, seed: int = 0) -> linear.HostLinear:
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((n, k)).astype(np.float32) * 0.05
    return linear.HostLinear(weight, rng.standard_normal(n).astype(np.float32) if bias else None, int8=True)


def _gemm_route(layer: linear.HostLinear, x: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> np.ndarray:
    with monkeypatch.context() as patch:
        patch.setattr(linear, "many_rows_conv", False)
        return layer(x)


@pytest.mark.parametrize("rows", [9, 40, 257, 300, 1500])
@pytest.mark.parametrize("bias", [True, False])
def test_many_rows_give_the_gemm_routes_floats_bit_for_bit(
    rows: int, bias: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Split between the host workers or not (1500 rows: the audio keys/values' count)."""
    layer = _layer(96, 64, bias, seed=rows)
    x = np.random.default_rng(1).standard_normal((rows, 64)).astype(np.float32)
    fast = layer(x)
    assert any(kernel is not None for kernel in layer._many.values()), "the int32-sum kernel was not used"
    np.testing.assert_array_equal(fast, _gemm_route(layer, x, monkeypatch))


def test_prompt_row_counts_share_a_bucket_and_larger_counts_get_their_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(linear, "_SPLIT_ROWS", {False: 10_000, True: 10_000})  # one piece, whatever the worker count
    layer = _layer(48, 32, bias=True)
    rng = np.random.default_rng(2)
    for rows in (9, 20, 32, 33, 300, 300):
        layer(rng.standard_normal((rows, 32)).astype(np.float32))
    assert sorted(layer._many) == [32, 64, 300]


def test_the_kernel_count_is_bounded_and_the_rest_take_the_gemm_route(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(linear, "_MANY_KERNELS", 2)
    monkeypatch.setattr(linear, "_SPLIT_ROWS", {False: 10_000, True: 10_000})
    layer = _layer(48, 32, bias=False)
    rng = np.random.default_rng(3)
    for rows in (300, 301, 302):
        x = rng.standard_normal((rows, 32)).astype(np.float32)
        np.testing.assert_array_equal(layer(x), _gemm_route(layer, x, monkeypatch))
    assert sorted(layer._many) == [300, 301]


def test_the_many_row_kernels_share_the_step_kernels_reordered_weights() -> None:
    layer = _layer(96, 64, bias=False)
    layer(np.ones((1, 64), np.float32))  # a decoder step's product first
    layer(np.ones((40, 64), np.float32))  # then a prompt's
    many = layer._many[64]
    assert many is not None and many._weights is layer._direct[1]._weights


@pytest.mark.parametrize("inner", [64, 1536])
def test_a_sums_only_product_gives_exact_integer_sums_as_float32(inner: int) -> None:
    """The kernel's int32 -> float32 conversion rounds as numpy's cast does; with 1536 inputs at the
    extremes and 8-bit weights (CPUs with VNNI) the sums pass 2**24, where float32 starts rounding
    integers (7-bit weights elsewhere keep them below it: exact there)."""
    rng = np.random.default_rng(4)
    limit = onednn.int8_weight_limit()
    weight = rng.integers(-limit, limit + 1, (40, inner)).astype(np.int8)
    quantized = rng.integers(1, 256, (50, inner)).astype(np.uint8)
    weight[0], quantized[0] = limit, 255  # the largest sum: inner * 127 * limit
    product = onednn_rows.RowProduct(weight, None, None, 50, sums_only=True)
    sums = np.empty((50, 40), np.float32)
    product.run_sums(quantized.ctypes.data, sums.ctypes.data)
    expected = (quantized.astype(np.int64) - 128) @ weight.astype(np.int64).T
    if inner * 127 * limit > 2**24:
        assert expected.max() > 2**24
    np.testing.assert_array_equal(sums, expected.astype(np.int32).astype(np.float32))


def test_sums_only_products_of_one_thread_share_one_scratchpad() -> None:
    """Each product keeps no scratchpad of its own: the thread's shared one grows to the largest."""
    rng = np.random.default_rng(5)
    limit = onednn.int8_weight_limit()
    products, inputs = [], []
    for n, rows in ((40, 300), (200, 500)):
        weight = rng.integers(-limit, limit + 1, (n, 64)).astype(np.int8)
        products.append((onednn_rows.RowProduct(weight, None, None, rows, sums_only=True), weight))
        inputs.append(rng.integers(1, 256, (rows, 64)).astype(np.uint8))
    for (product, weight), quantized in zip(products, inputs, strict=True):
        sums = np.empty((quantized.shape[0], weight.shape[0]), np.float32)
        product.run_sums(quantized.ctypes.data, sums.ctypes.data)
        np.testing.assert_array_equal(
            sums, ((quantized.astype(np.int64) - 128) @ weight.astype(np.int64).T).astype(np.float32)
        )
        assert product.bound().scratch.size == 1
    assert onednn_rows._bound.shared_scratch.size >= max(product.scratch_bytes for product, _ in products)
