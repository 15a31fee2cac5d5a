"""One row's int8 product in one C call (native_kernels.RowProductCall, used by linear's
`_single_row`) gives the numpy route's float32 results bit for bit: the same quantization, the same
oneDNN primitive. Also: the route is taken, falls back when the primitive's source moved, and the C
entry refuses bad arguments."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

from mlx_audio_coreml.cpu import linear, native_kernels, onednn
from mlx_audio_coreml.errors import CPUKernelFailed

pytestmark = [
    pytest.mark.skipif(not onednn.available(), reason="oneDNN is not installed"),
    pytest.mark.skipif(not native_kernels.available(), reason="libmacb_cpu is not built (no C compiler)"),
]


def _layer(n: int, k: int, seed: int = 0) -> linear.HostLinear:
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((n, k)).astype(np.float32) * 0.05
    return linear.HostLinear(weight, rng.standard_normal(n).astype(np.float32), int8=True)


def _both_routes(layer: linear.HostLinear, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    layer(x)  # the first call makes the row kernel; later ones take the direct route
    bound = layer._direct[x.shape[0]].bound()
    native = layer(x).copy()
    used = bool(bound.native_call)
    kept, bound.native_call = bound.native_call, False
    try:
        return native, layer(x).copy(), used
    finally:
        bound.native_call = kept


@pytest.mark.parametrize(("n", "k"), [(1152, 384), (384, 1536), (51, 7)])
@pytest.mark.parametrize("size", [0.0, 1e-3, 1.0, 300.0])
def test_one_call_gives_the_numpy_routes_bits(n: int, k: int, size: float) -> None:
    layer = _layer(n, k)
    x = (np.random.default_rng(int(size * 10) + k).standard_normal((1, k)) * size).astype(np.float32)
    x[0, 0] = 0.5 * size  # a value a half step from an integer after scaling, for rint's ties
    native, numpy_route, used = _both_routes(layer, x)
    if layer._direct[1].bound().native_call is False:
        pytest.skip("this oneDNN has no direct one-row kernel for the shape")
    assert used, "the one-call route was not taken"
    np.testing.assert_array_equal(native, numpy_route)


@pytest.mark.parametrize("rows", [2, 5, 8])
@pytest.mark.parametrize("bias", [True, False])
def test_several_rows_give_the_numpy_routes_bits(rows: int, bias: bool) -> None:
    """Beams: each row its own scale, applied after the run, then the bias (two roundings)."""
    layer = _layer(1152, 384)
    if not bias:
        layer.bias = None
    rng = np.random.default_rng(rows)
    block = (rng.standard_normal((rows, 400)) * rng.uniform(0.01, 50, (rows, 1))).astype(np.float32)
    x = block[:, :384]  # strided rows, as a slice of a wider block
    x[-1] = 0.0  # an all-zero row among them
    native, numpy_route, used = _both_routes(layer, x)
    assert used, "the one-call route was not taken"
    np.testing.assert_array_equal(native, numpy_route)


def test_a_moved_source_is_pointed_back_and_the_one_call_route_runs() -> None:
    """A call with an output given (`_few`) points the primitive's source at another buffer; the
    one-call route points it back at the buffer it fills, and gives the same bits."""
    layer = _layer(384, 384)
    x = np.random.default_rng(1).standard_normal((2, 384)).astype(np.float32)
    layer(x)  # makes the kernels
    expected = layer(x).copy()  # the one-call route's
    layer(x, out=np.empty((2, 384), np.float32))  # `_few`: the source moves off the thread's buffer
    bound = layer._direct[2].bound()
    assert bound.src_at != bound.own_at
    real = bound.native_call
    calls: list[int] = []

    def counted(*args: object) -> None:
        calls.append(1)
        real(*args)

    bound.native_call = counted
    try:
        out = layer(x)
    finally:
        bound.native_call = real
    assert calls == [1], "the one-call route was not taken"
    assert bound.src_at == bound.own_at
    np.testing.assert_array_equal(out, expected)


def test_the_c_entry_refuses_bad_arguments() -> None:
    args = native_kernels._RowProductArgs()
    args.size = ctypes.sizeof(native_kernels._RowProductArgs)
    assert native_kernels._library().macb_cpu_row_product(ctypes.byref(args)) == 1  # null pointers
    args.size = 8
    assert native_kernels._library().macb_cpu_row_product(ctypes.byref(args)) == 1
    with pytest.raises(CPUKernelFailed) as failed:
        native_kernels.checked(1, "macb_cpu_row_product")
    assert "bad argument" in str(failed.value)
