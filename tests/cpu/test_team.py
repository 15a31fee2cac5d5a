"""A decoder step's team (cpu/team.py, cpu_kernels/team.c): a large weight's column pieces run on
the caller and a spinning pool helper give the pool route's results bit for bit, with or without
a helper, however often; the team is only opened where it can help; the pool's helper is free
again once the step ends; a failing piece's status comes back as an error."""

from __future__ import annotations

import gc
import threading

import numpy as np
import pytest

from mlx_audio_coreml.cpu import linear, native_kernels, native_pieces, onednn, team
from mlx_audio_coreml.cpu import pool as host_pool
from mlx_audio_coreml.errors import CPUKernelFailed

pytestmark = [
    pytest.mark.skipif(not onednn.available(), reason="oneDNN is not installed"),
    pytest.mark.skipif(not native_kernels.available(), reason="libmacb_cpu is not built (no C compiler)"),
]


@pytest.fixture(autouse=True)
def _two_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLX_AUDIO_COREML_HOST_THREADS", "2")


def _large_layer(bias: bool, int8: bool = True) -> linear.HostLinear:
    """Large enough to be cut into column pieces (linear._SPLIT_MIN), as the logits are."""
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((10_500, 384)).astype(np.float32) * 0.05
    return linear.HostLinear(weight, rng.standard_normal(10_500).astype(np.float32) if bias else None, int8=int8)


def _counting_pieces(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    runs: list[int] = []
    real = native_pieces.PiecesCall.__call__

    def counted(self: native_pieces.PiecesCall, *args: object) -> None:
        runs.append(1)
        real(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(native_pieces.PiecesCall, "__call__", counted)
    return runs


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("rows", [1, 5])
def test_pieces_on_the_team_give_the_pool_routes_bits(rows: int, bias: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    layer = _large_layer(bias)
    x = np.random.default_rng(1).standard_normal((rows, 384)).astype(np.float32)
    runs = _counting_pieces(monkeypatch)
    pooled = layer(x).copy()
    assert runs == [], "no team open: the pool's route"
    with team.enlisted() as state:
        assert state is not None
        first = layer(x).copy()
        gc.collect()  # the pieces' argument structs must outlive the call that made them
        again = [layer(x).copy() for _ in range(50)]
    assert len(runs) == 51
    for got in [first, *again]:
        np.testing.assert_array_equal(got, pooled)
    np.testing.assert_array_equal(layer(x), pooled)  # and the pool's route again after the step


@pytest.mark.parametrize("rows", [1, 5])
def test_float32_pieces_on_the_team_agree_with_the_routes_outside(rows: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """float32: one row outside a team is OpenBLAS's sgemv (to float32 rounding); several rows are
    the same oneDNN primitives through the pool (the same bits)."""
    layer = _large_layer(bias=True, int8=False)
    x = np.random.default_rng(3).standard_normal((rows, 384)).astype(np.float32)
    runs = _counting_pieces(monkeypatch)
    outside = layer(x).copy()
    assert runs == []
    with team.enlisted() as state:
        assert state is not None
        inside = [layer(x).copy() for _ in range(20)]
    assert len(runs) == 20
    exact = x.astype(np.float64) @ layer.weight.T.astype(np.float64) + layer.bias
    for got in inside:
        np.testing.assert_array_equal(got, inside[0])
        np.testing.assert_allclose(got, exact, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(outside, exact, rtol=1e-5, atol=1e-5)
    if rows > 1:
        np.testing.assert_array_equal(inside[0], outside)


def test_without_a_helper_the_caller_runs_every_piece(monkeypatch: pytest.MonkeyPatch) -> None:
    layer = _large_layer(bias=True)
    x = np.random.default_rng(2).standard_normal((1, 384)).astype(np.float32)
    expected = layer(x).copy()
    real = host_pool.in_background
    monkeypatch.setattr(host_pool, "in_background", lambda work, copies: real(work, 0))  # helper never comes
    with team.enlisted() as state:
        assert state is not None
        np.testing.assert_array_equal(layer(x), expected)
        assert state.busy == 0  # no helper took a worker number


def test_the_team_opens_only_where_it_can_help(monkeypatch: pytest.MonkeyPatch) -> None:
    with team.enlisted() as outer:
        assert outer is not None and team.current() is outer and outer.workers == 2
        with team.enlisted() as inner:
            assert inner is None  # a step inside a step keeps the outer team
    assert team.current() is None
    monkeypatch.setenv("MLX_AUDIO_COREML_STEP_TEAM", "0")
    with team.enlisted() as off:
        assert off is None
    monkeypatch.setenv("MLX_AUDIO_COREML_STEP_TEAM", "1")
    monkeypatch.setenv("MLX_AUDIO_COREML_HOST_THREADS", "1")
    with team.enlisted() as alone:
        assert alone is None


def test_the_pools_helper_is_free_again_after_the_step() -> None:
    with team.enlisted():
        pass
    names: set[str] = set()
    barrier = threading.Barrier(2, timeout=10)

    def piece(_: int) -> None:
        names.add(threading.current_thread().name)
        barrier.wait()  # both pieces at once: only if the helper takes one

    host_pool.run_all(piece, [0, 1])
    assert len(names) == 2


def test_a_failing_piece_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    layer = _large_layer(bias=False)
    x = np.random.default_rng(3).standard_normal((1, 384)).astype(np.float32)
    with team.enlisted():
        layer(x)
        call = layer._team_pieces.by_rows[1]
        assert call is not None
        call._args.row_count = 2  # the pieces were made for one row: each refuses
        with pytest.raises(CPUKernelFailed, match="row_product_pieces"):
            call(team.current(), x, np.empty((1, 10_500), np.float32))


def test_a_step_enlists_at_most_three_helpers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Helpers spin for the whole step: on a large machine a few, not one per core."""
    monkeypatch.setenv("MLX_AUDIO_COREML_HOST_THREADS", "16")
    with team.enlisted() as state:
        assert state is not None and state.workers == 4


def test_helpers_never_share_a_worker_number() -> None:
    """A helper still inside from an earlier step keeps its number (its scratch); a second one
    finds no free number and returns at once; closing sends the first out and frees its number."""
    import ctypes
    import time

    library = team._declared()
    state = team.TeamState(size=ctypes.sizeof(team.TeamState))
    assert library.macb_cpu_team_open(ctypes.byref(state), 2) == 0
    first = threading.Thread(target=library.macb_cpu_team_serve, args=(ctypes.byref(state), 10_000, 10**10))
    first.start()
    deadline = time.monotonic() + 10
    while state.busy == 0 and time.monotonic() < deadline:
        time.sleep(0.001)
    assert state.busy == 0b10  # worker 1
    assert library.macb_cpu_team_open(ctypes.byref(state), 2) == 0  # the next step: it stays
    started = time.monotonic()
    assert library.macb_cpu_team_serve(ctypes.byref(state), 10_000, 10**10) == 0  # no number left
    assert time.monotonic() - started < 1.0 and first.is_alive()
    assert library.macb_cpu_team_close(ctypes.byref(state)) == 0
    first.join(timeout=10)
    assert not first.is_alive() and state.busy == 0
