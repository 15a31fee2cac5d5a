"""A few-row int8 product through oneDNN's 1x1 convolution equals the gemm route's (cpu/onednn_rows.py)."""

from __future__ import annotations

import numpy as np
import pytest

from mlx_audio_coreml.cpu import linear, onednn, onednn_rows

pytestmark = pytest.mark.skipif(not onednn.available(), reason="oneDNN is not installed")


def _layer(n: int, k: int, bias: bool, seed: int = 0, int8: bool = True) -> linear.HostLinear:
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((n, k)).astype(np.float32) * 0.05
    return linear.HostLinear(weight, rng.standard_normal(n).astype(np.float32) if bias else None, int8=int8)


def _gemm_route(layer: linear.HostLinear, x: np.ndarray) -> np.ndarray:
    """The same call with the row products switched off (the gemm route of `HostLinear`)."""
    kept = dict(layer._row_kernels)
    layer._row_kernels.update({rows: None for rows in range(1, 9)})
    try:
        return layer(x)
    finally:
        layer._row_kernels.clear()
        layer._row_kernels.update(kept)


@pytest.mark.parametrize("rows", [1, 3, 5])
@pytest.mark.parametrize("bias", [True, False])
def test_few_rows_match_the_gemm_route_within_rounding(rows: int, bias: bool) -> None:
    layer = _layer(96, 64, bias)
    x = np.random.default_rng(1).standard_normal((rows, 64)).astype(np.float32)
    fast = layer(x)
    assert layer._row_kernels.get(rows), "the 1x1 convolution was not used"
    np.testing.assert_allclose(fast, _gemm_route(layer, x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("rows", [1, 5])
def test_a_large_weight_split_in_column_pieces_gives_the_same_rows(rows: int) -> None:
    layer = _layer(linear._SPLIT_MIN // 64 + 37, 64, bias=True)  # large enough to be split, odd width
    x = np.random.default_rng(2).standard_normal((rows, 64)).astype(np.float32)
    fast = layer(x)
    kernel = layer._row_kernels[rows]
    assert kernel is not None and len(kernel.pieces) > 1
    np.testing.assert_allclose(fast, _gemm_route(layer, x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("rows", [2, 5])
def test_float32_beam_rows_against_a_large_weight_match_sgemm(rows: int) -> None:
    layer = _layer(linear._SPLIT_MIN // 64 + 37, 64, bias=True, int8=False)
    x = np.random.default_rng(3).standard_normal((rows, 64)).astype(np.float32)
    fast = layer(x)
    assert layer._row_kernels.get(rows) is not None, "the 1x1 convolution was not used"
    np.testing.assert_allclose(fast, x @ layer.weight.T + layer.bias, rtol=1e-5, atol=1e-5)


def test_float32_one_row_and_small_weights_keep_blas() -> None:
    small = _layer(96, 64, bias=False, int8=False)
    small(np.ones((5, 64), np.float32))
    large = _layer(linear._SPLIT_MIN // 64 + 1, 64, bias=False, int8=False)
    large(np.ones((1, 64), np.float32))
    assert not small._row_kernels and not large._row_kernels


def test_a_zero_row_gives_the_bias() -> None:
    layer = _layer(32, 64, bias=True)
    out = layer(np.zeros((1, 64), np.float32))
    np.testing.assert_array_equal(out, layer.bias[None])


def test_the_kernel_is_a_jit_one_not_the_reference_loop() -> None:
    layer = _layer(32, 64, bias=False)
    layer(np.ones((1, 64), np.float32))
    kernel = layer._row_kernels[1]
    assert kernel is not None and kernel.single is not None
    assert isinstance(kernel, onednn_rows.RowKernel)
    assert not kernel.single.implementation.startswith("ref")


def test_kernels_of_one_weight_share_its_reordered_copy() -> None:
    layer = _layer(96, 64, bias=False)
    layer(np.ones((1, 64), np.float32))
    layer(np.ones((5, 64), np.float32))
    weights = {id(kernel.pieces[0][1]._weights) for kernel in layer._row_kernels.values() if kernel is not None}
    assert len(layer._row_kernels) == 2 and len(weights) == 1


@pytest.mark.parametrize("rows", [1, 5])
def test_rows_amx_off_takes_a_kernel_without_amx_and_gives_the_same_rows(
    rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MLX_AUDIO_COREML_ROWS_AMX=0 (to compare AMX and VNNI kernels on a Sapphire Rapids Xeon): no
    AMX implementation for few rows, and the products the gemm route gives (here, without AMX, the
    first pick already qualifies)."""
    monkeypatch.setenv("MLX_AUDIO_COREML_ROWS_AMX", "0")
    assert not onednn_rows.amx_for_few_rows(1, 51864 * 384)
    layer = _layer(96, 64, bias=True, seed=3)
    x = np.random.default_rng(4).standard_normal((rows, 64)).astype(np.float32)
    fast = layer(x)
    kernel = layer._row_kernels[rows]
    assert kernel is not None
    assert all("amx" not in product.implementation for _, product in kernel.pieces)
    np.testing.assert_allclose(fast, _gemm_route(layer, x), rtol=1e-6, atol=1e-6)


def test_by_default_one_row_takes_amx_only_against_a_large_weight_and_beams_always(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The Xeon's one-thread table: small one-row products were faster without AMX, the one-row
    logits with it; the real beam-5 step was faster with AMX for its five-row products."""
    monkeypatch.delenv("MLX_AUDIO_COREML_ROWS_AMX", raising=False)
    assert onednn_rows.amx_for_few_rows(1, 51864 * 384 // 8)  # a logits piece (2 workers, 4 pieces each)
    assert not onednn_rows.amx_for_few_rows(1, 1536 * 384)
    assert onednn_rows.amx_for_few_rows(5, 384 * 384)
    assert onednn_rows.amx_for_few_rows(2, 51864 * 384)
    monkeypatch.setenv("MLX_AUDIO_COREML_ROWS_AMX", "1")
    assert onednn_rows.amx_for_few_rows(1, 1536 * 384)  # a product the default keeps off AMX


@pytest.mark.parametrize("rows", [1, 5])
@pytest.mark.parametrize("bias", [True, False])
def test_row_shortcuts_give_the_few_rows_route_bit_for_bit(rows: int, bias: bool) -> None:
    """After the first call of a row count (through `_few`, which prepares the product) later ones
    take `_single_row` / `_several_rows`: the same operations, so the same float32 values."""
    layer = _layer(96, 64, bias=bias, seed=5)
    x = np.random.default_rng(6).standard_normal((rows, 64)).astype(np.float32)
    first = layer(x)
    assert rows in layer._direct
    np.testing.assert_array_equal(layer(x), first)
    np.testing.assert_allclose(first, _gemm_route(layer, x), rtol=1e-6, atol=1e-6)
