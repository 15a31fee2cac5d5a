"""random_* ops: the distributions' statistics, seeds, fresh draws per prediction (compiled or not)."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
from portable_helpers import ct, load, mb, save_program

types = pytest.importorskip("coremltools.converters.mil.mil.types")
N = 20000


def _draw(tmp_path, op, compile=True, predictions=1, **params):
    def build(x):
        return [mb.add(x=x, y=x), getattr(mb, op)(shape=np.array([N], np.int32), **params)]

    model = load(save_program(tmp_path, build, [(1,)], opset=ct.target.iOS15), compile=compile)
    name = model.description.outputs[1].name
    return [model.predict({"x": np.zeros(1, np.float32)}).outputs[name] for _ in range(predictions)]


def test_bernoulli_draws_ones_with_the_given_probability(tmp_path):
    (draws,) = _draw(tmp_path, "random_bernoulli", prob=0.3)
    assert set(np.unique(draws)) <= {0.0, 1.0}
    assert abs(draws.mean() - 0.3) < 0.02  # binomial sd of the mean: 0.003


def test_normal_has_the_given_mean_and_stddev(tmp_path):
    (draws,) = _draw(tmp_path, "random_normal", mean=1.0, stddev=2.0)
    assert abs(draws.mean() - 1.0) < 0.06 and abs(draws.std() - 2.0) < 0.06


def test_uniform_stays_in_its_interval_and_is_flat(tmp_path):
    (draws,) = _draw(tmp_path, "random_uniform", low=-1.0, high=3.0)
    assert draws.min() >= -1.0 and draws.max() < 3.0
    counts, _ = np.histogram(draws, bins=4, range=(-1.0, 3.0))
    np.testing.assert_allclose(counts / N, 0.25, atol=0.02)


@pytest.mark.parametrize("mode", ["logits", "probs"])
def test_categorical_frequencies_follow_the_distribution(tmp_path, mode):
    probs = np.array([[0.1, 0.2, 0.7], [0.5, 0.25, 0.25]], np.float32)
    given = np.log(probs) + 1.5 if mode == "logits" else probs  # logits are shift-invariant

    def build(x):
        return mb.random_categorical(x=x, mode=mode, size=N)

    model = load(save_program(tmp_path, build, [probs.shape], opset=ct.target.iOS15))
    draws = next(iter(model.predict({"x": given}).outputs.values()))
    assert draws.shape == (2, N)
    for row, p in zip(draws.astype(np.int64), probs):
        np.testing.assert_allclose(np.bincount(row, minlength=3) / N, p, atol=0.02)


@pytest.mark.parametrize("compile", [True, False])
def test_unseeded_ops_draw_anew_and_seeded_ops_repeat(tmp_path, compile):
    first, second = _draw(tmp_path, "random_uniform", compile=compile, predictions=2)
    assert not np.array_equal(first, second)
    first, second = _draw(tmp_path, "random_normal", compile=compile, predictions=2, seed=7)
    np.testing.assert_array_equal(first, second)


def test_shape_from_an_input_runs_and_leaves_the_generator_usable(tmp_path):
    def build(x, dyn_shape):
        return [mb.add(x=x, y=x), mb.random_uniform(shape=dyn_shape, low=2.0, high=2.0)]

    path = save_program(tmp_path, build, [(1,), (3,)], opset=ct.target.iOS15, input_dtypes=[None, types.int32])
    model = load(path)
    out = model.predict({"x": np.zeros(1, np.float32), "dyn_shape": np.array([2, 1, 3], np.int32)}).outputs
    np.testing.assert_array_equal(out[model.description.outputs[1].name], np.full((2, 1, 3), 2.0, np.float32))
    assert not model.compiled  # the shape is only known at run time: eager execution
    mx.eval(mx.random.uniform(shape=(2,)))  # the abandoned trace left the global key concrete
