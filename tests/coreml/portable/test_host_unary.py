"""On the CPU in float32 an eager program's sin, cos, exp, tanh, `mod` by one and leaky ReLU run through numpy
(ops/host_unary.py): the same values as MLX's ops (within a few ulp; `mod` exactly, up to the sign of
an exact zero), the caller's input untouched, small inputs and other divisors left to MLX."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
from portable_helpers import load, mb, save_program

from mlx_audio_coreml.coreml.portable.ops import host_unary
from mlx_audio_coreml.cpu import host_math

pytestmark = pytest.mark.skipif(not host_math.available(mx.float32), reason="host math runs on the CPU only")

rng = np.random.default_rng(5)
SHAPE = (1, 24, 1000)  # above host_unary's minimum size


@pytest.fixture
def host_calls(monkeypatch):
    calls = [0]
    original = host_unary.unary

    def spy(kernel, x):
        calls[0] += 1
        return original(kernel, x)

    monkeypatch.setattr(host_unary, "unary", spy)
    return calls


def both_paths(build, x: np.ndarray, tmp_path) -> tuple[np.ndarray, np.ndarray]:
    """(host path output, plain MLX output) of a one-input program run eagerly."""
    model = load(save_program(tmp_path, build, [x.shape]), compile=False)
    name = model.description.inputs[0].name
    kept = x.copy()
    got = next(iter(model.predict({name: x}).outputs.values()))
    assert np.array_equal(x, kept, equal_nan=True)  # the caller's input is never overwritten
    with host_math.disabled():
        want = next(iter(model.predict({name: x}).outputs.values()))
    return got, want


@pytest.mark.parametrize("op", ["sin", "cos", "exp", "tanh"])
def test_unary_math_on_the_host_is_as_accurate_as_mlx(tmp_path, host_calls, op):
    x = (rng.standard_normal(SHAPE) * 4).astype(np.float32)
    got, want = both_paths(lambda a: getattr(mb, op)(x=a), x, tmp_path)
    assert host_calls[0] == 1
    assert got.shape == want.shape
    exact = getattr(np, op)(x.astype(np.float64))
    ulp = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    # numpy's float32 functions are within ~2 ulp of the exact value here, MLX's exp ~13 ulp
    assert float(np.max(np.abs(got - exact) / ulp)) <= max(4.0, float(np.max(np.abs(want - exact) / ulp)))
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=2e-7)


def test_mod_by_one_on_the_host_equals_mlx_floor_mod(tmp_path, host_calls):
    x = (rng.standard_normal(SHAPE) * 50).astype(np.float32)
    flat = x.reshape(-1)
    flat[:8] = [-3.0, 3.0, 0.0, -0.0, -1e-9, 1e-9, 2.0**30, -(2.0**30) + 0.5]  # integers, tiny, huge
    got, want = both_paths(lambda a: mb.mod(x=a, y=1.0), x, tmp_path)
    assert host_calls[0] == 1
    assert np.array_equal(got, want)  # exact: -0.0 == 0.0 is the only difference allowed
    assert np.all((got >= 0) & (got <= 1))


def test_mod_by_another_divisor_and_small_inputs_stay_in_mlx(tmp_path, host_calls):
    x = (rng.standard_normal(SHAPE) * 5).astype(np.float32)
    got, want = both_paths(lambda a: mb.mod(x=a, y=0.7), x, tmp_path)
    np.testing.assert_array_equal(got, want)
    small = (rng.standard_normal((1, 4, 10)) * 4).astype(np.float32)
    got, want = both_paths(lambda a: mb.sin(x=a), small, tmp_path)
    np.testing.assert_array_equal(got, want)
    assert host_calls[0] == 0


def test_leaky_relu_on_the_host_is_the_mil_select_bit_for_bit(tmp_path, host_calls):
    x = (rng.standard_normal(SHAPE) * 3).astype(np.float32)
    x.reshape(-1)[:6] = [np.nan, -0.0, 0.0, -np.inf, np.inf, -1e-38]
    got, want = both_paths(lambda a: mb.leaky_relu(x=a, alpha=0.1), x, tmp_path)
    assert host_calls[0] == 1
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))


def test_leaky_relu_with_a_slope_past_one_stays_in_mlx(tmp_path, host_calls):
    x = (rng.standard_normal(SHAPE) * 3).astype(np.float32)
    got, want = both_paths(lambda a: mb.leaky_relu(x=a, alpha=1.5), x, tmp_path)
    assert host_calls[0] == 0
    np.testing.assert_array_equal(got, want)
