"""Element-wise, activation, reduction and matrix ops of the portable runtime against numpy,
in float32 and float16 programs (float16 programs get coremltools' input/output casts)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from portable_helpers import assert_close, mb, run_program

rng = np.random.default_rng(0)
X = rng.standard_normal((2, 3, 8)).astype(np.float32)
Y = rng.standard_normal((2, 3, 8)).astype(np.float32)
POS = (np.abs(X) + 0.5).astype(np.float32)


def _erf(v: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf)(v)


UNARY = {
    "abs": (lambda x: mb.abs(x=x), np.abs, X),
    "exp": (lambda x: mb.exp(x=x), np.exp, X),
    "log": (lambda x: mb.log(x=x), np.log, POS),
    "sqrt": (lambda x: mb.sqrt(x=x), np.sqrt, POS),
    "rsqrt": (lambda x: mb.rsqrt(x=x), lambda v: 1 / np.sqrt(v), POS),
    "sin": (lambda x: mb.sin(x=x), np.sin, X),
    "cos": (lambda x: mb.cos(x=x), np.cos, X),
    "tanh": (lambda x: mb.tanh(x=x), np.tanh, X),
    "erf": (lambda x: mb.erf(x=x), _erf, X),
    "floor": (lambda x: mb.floor(x=mb.mul(x=x, y=3.0)), lambda v: np.floor(3 * v), X),
    "round": (lambda x: mb.round(x=mb.mul(x=x, y=3.0)), lambda v: np.round(3 * v), X),
    "clip": (lambda x: mb.clip(x=x, alpha=-0.5, beta=0.5), lambda v: np.clip(v, -0.5, 0.5), X),
    "relu": (lambda x: mb.relu(x=x), lambda v: np.maximum(v, 0), X),
    "leaky_relu": (lambda x: mb.leaky_relu(x=x, alpha=0.1), lambda v: np.where(v >= 0, v, 0.1 * v), X),
    "sigmoid": (lambda x: mb.sigmoid(x=x), lambda v: 1 / (1 + np.exp(-v)), X),
    "silu": (lambda x: mb.silu(x=x), lambda v: v / (1 + np.exp(-v)), X),
    "gelu_exact": (lambda x: mb.gelu(x=x), lambda v: 0.5 * v * (1 + _erf(v / np.sqrt(2))), X),
    "gelu_tanh": (
        lambda x: mb.gelu(x=x, mode="TANH_APPROXIMATION"),
        lambda v: 0.5 * v * (1 + np.tanh(np.sqrt(2 / np.pi) * (v + 0.044715 * v**3))),
        X,
    ),
    "softmax": (lambda x: mb.softmax(x=x, axis=-1), lambda v: np.exp(v) / np.exp(v).sum(-1, keepdims=True), X),
    "snake": (  # x + sin(a x)^2 / a, the vocoders' snake activation
        lambda x: mb.add(x=x, y=mb.real_div(x=mb.square(x=mb.sin(x=mb.mul(x=x, y=1.7))), y=1.7)),
        lambda v: v + np.sin(1.7 * v) ** 2 / 1.7,
        X,
    ),
}


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_unary_ops_match_numpy(tmp_path, precision):
    names = sorted(UNARY)  # one program with every op as an output: one conversion, not forty

    def build(x, pos):
        return tuple(UNARY[n][0](pos if UNARY[n][2] is POS else x) for n in names)

    outputs = run_program(tmp_path, build, [X, POS], precision=precision)
    for name, got in zip(names, outputs):
        _, reference, x = UNARY[name]
        try:
            assert_close(got, reference(x.astype(np.float64)), precision)
        except AssertionError as exc:
            raise AssertionError(f"{name} ({precision}): {exc}") from None


BINARY = {
    "add": (mb.add, np.add),
    "sub": (mb.sub, np.subtract),
    "mul": (mb.mul, np.multiply),
    "real_div": (mb.real_div, np.divide),
    "pow": (mb.pow, np.power),
    "maximum": (mb.maximum, np.maximum),
    "floor_div": (mb.floor_div, np.floor_divide),
    "mod": (mb.mod, np.mod),
}


def test_binary_ops_broadcast_like_numpy(tmp_path):
    names = sorted(BINARY)
    x, y = POS, (POS[:, :1, :] + 0.25).astype(np.float32)  # y broadcasts over axis 1
    outputs = run_program(tmp_path, lambda a, b: tuple(BINARY[n][0](x=a, y=b) for n in names), [x, y])
    for name, got in zip(names, outputs):
        try:
            assert_close(got, BINARY[name][1](x, y))
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from None


def test_comparisons_and_select(tmp_path):
    def build(a, b):
        return mb.select(cond=mb.greater(x=a, y=b), a=a, b=mb.mul(x=b, y=2.0))

    (got,) = run_program(tmp_path, build, [X, Y])
    assert_close(got, np.where(X > Y, X, 2 * Y))


def test_casts_round_trip_through_int32(tmp_path):
    def build(a):
        as_int = mb.cast(x=mb.mul(x=a, y=10.0), dtype="int32")
        return mb.cast(x=as_int, dtype="fp32")

    (got,) = run_program(tmp_path, build, [X])
    np.testing.assert_array_equal(got, np.trunc(X * 10).astype(np.float32))


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_reductions(tmp_path, precision):
    def build(a):
        return (
            mb.reduce_sum(x=a, axes=[1], keep_dims=True),
            mb.reduce_mean(x=a, axes=[-1]),
            mb.reduce_max(x=a, axes=[0, 2]),
            mb.reduce_argmax(x=a, axis=-1),
            mb.reduce_l2_norm(x=a, axes=[-1]),
            mb.reduce_log_sum_exp(x=a, axes=[1]),
        )

    got = run_program(tmp_path, build, [X], precision=precision)
    wants = [
        X.sum(1, keepdims=True),
        X.mean(-1),
        X.max((0, 2)),
        X.argmax(-1),
        np.sqrt((X**2).sum(-1)),
        np.log(np.exp(X).sum(1)),
    ]
    for g, w in zip(got, wants):
        assert_close(g, w, precision)


def test_cumsum_exclusive_reverse(tmp_path):
    (got,) = run_program(tmp_path, lambda a: mb.cumsum(x=a, axis=2, exclusive=True, reverse=True), [X])
    want = np.flip(np.cumsum(np.flip(X, 2), 2), 2) - X
    assert_close(got, want)


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_linear_and_matmul(tmp_path, precision):
    weight = rng.standard_normal((5, 8)).astype(np.float32)
    bias = rng.standard_normal(5).astype(np.float32)
    other = rng.standard_normal((2, 5, 8)).astype(np.float32)

    def build(a, b):
        return mb.linear(x=a, weight=weight, bias=bias), mb.matmul(x=a, y=b, transpose_y=True)

    lin, mm = run_program(tmp_path, build, [X, other], precision=precision)
    assert_close(lin, X @ weight.T + bias, precision)
    assert_close(mm, X @ np.swapaxes(other, -1, -2), precision)


def test_einsum(tmp_path):
    b = rng.standard_normal((8, 3, 4)).astype(np.float32)  # MIL einsum: (C, H, W) x (W, H, U)
    (got,) = run_program(tmp_path, lambda p, q: mb.einsum(values=(p, q), equation="abc,cbd->abd"), [X, b])
    assert_close(got, np.einsum("abc,cbd->abd", X, b))
