"""The LSTM recurrence off the host path (lstm_recurrence.py) against a float64 numpy recurrence."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from mlx_audio_coreml.kokoro.model import lstm_recurrence


def numpy_recurrence(gx: np.ndarray, w_hh: np.ndarray) -> np.ndarray:
    directions, rows, steps, gates = gx.shape
    hidden = gates // 4
    h = np.zeros((directions, rows, hidden))
    c = np.zeros_like(h)
    out = np.zeros((directions, rows, steps, hidden))
    for t in range(steps):
        z = gx[:, :, t] + h @ w_hh
        i, f, g, o = (z[..., k * hidden : (k + 1) * hidden] for k in range(4))
        c = c / (1 + np.exp(-f)) + np.tanh(g) / (1 + np.exp(-i))
        h = np.tanh(c) / (1 + np.exp(-o))
        out[:, :, t] = h
    return out


def random_inputs(steps: int, hidden: int, rows: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(steps + hidden)
    gx = rng.standard_normal((2, rows, steps, 4 * hidden)).astype(np.float32)
    w_hh = (rng.standard_normal((2, hidden, 4 * hidden)) / np.sqrt(hidden)).astype(np.float32)
    return gx, w_hh


@pytest.mark.parametrize(("steps", "hidden", "rows"), [(1, 8, 1), (23, 16, 1), (9, 8, 2)])
def test_compiled_cell_matches_the_numpy_recurrence(steps: int, hidden: int, rows: int) -> None:
    gx, w_hh = random_inputs(steps, hidden, rows)
    out = np.array(lstm_recurrence.run_stepwise(mx.array(gx), mx.array(w_hh)))
    assert out.shape == (2, rows, steps, hidden)
    np.testing.assert_allclose(out, numpy_recurrence(gx.astype(np.float64), w_hh.astype(np.float64)), atol=2e-5)


def test_the_fused_kernel_is_used_only_on_mlx_cuda_unless_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    on_cuda = mx.default_device() == mx.gpu and mx.cuda.is_available()
    monkeypatch.delenv("MLX_AUDIO_COREML_LSTM_CUDA_KERNEL", raising=False)
    assert lstm_recurrence.cuda_applies(mx.zeros(1)) == on_cuda
    monkeypatch.setenv("MLX_AUDIO_COREML_LSTM_CUDA_KERNEL", "0")
    assert not lstm_recurrence.cuda_applies(mx.zeros(1))
    monkeypatch.setenv("MLX_AUDIO_COREML_LSTM_CUDA_KERNEL", "1")
    assert not lstm_recurrence.cuda_applies(mx.zeros(1, dtype=mx.int32))


@pytest.mark.skipif(
    not mx.cuda.is_available(), reason="the fused kernel needs MLX's CUDA backend (bench/lstm_gpu.py runs it)"
)
@pytest.mark.parametrize(("steps", "hidden"), [(37, 256), (5, 64)])
def test_fused_cuda_kernel_matches_the_numpy_recurrence(steps: int, hidden: int) -> None:
    gx, w_hh = random_inputs(steps, hidden)
    with mx.stream(mx.gpu):
        out = np.array(lstm_recurrence.run_cuda(mx.array(gx), mx.array(w_hh)))
    np.testing.assert_allclose(out, numpy_recurrence(gx.astype(np.float64), w_hh.astype(np.float64)), atol=1e-4)
