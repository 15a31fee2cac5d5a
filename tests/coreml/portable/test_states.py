"""Stateful models (iOS18 states): make_state, predict(..., state=), read/write, typed errors."""

from __future__ import annotations

import numpy as np
import pytest
from portable_helpers import ct, load, mb

from mlx_audio_coreml.coreml.runtime import StatefulModel
from mlx_audio_coreml.errors import StateMismatch, StateRequired, TensorShapeMismatch

types = pytest.importorskip("coremltools.converters.mil.mil.types")
SHAPE = (2, 3)


def _save(tmp_path, build, specs, name: str):
    program = mb.program(input_specs=specs, opset_version=ct.target.iOS18)(build)
    model = ct.convert(
        program,
        convert_to="mlprogram",
        minimum_deployment_target=ct.target.iOS18,
        compute_precision=ct.precision.FLOAT32,
    )
    path = tmp_path / f"{name}.mlpackage"
    model.save(str(path))
    return path


def _accumulator(tmp_path):
    """acc += x; returns 2 * acc (read after the update)."""

    def build(acc, x):
        total = mb.add(x=mb.read_state(input=acc), y=x)
        return mb.mul(x=mb.coreml_update_state(state=acc, value=total), y=np.float16(2))

    specs = [mb.StateTensorSpec(SHAPE, dtype=types.fp16), mb.TensorSpec(SHAPE, dtype=types.fp16)]
    return _save(tmp_path, build, specs, "accumulator")


@pytest.mark.parametrize("compile", [True, False])
def test_accumulator_state_carries_over_between_predictions(tmp_path, compile):
    model = load(_accumulator(tmp_path), compile=compile)
    assert isinstance(model, StatefulModel)
    assert [s.name for s in model.description.states] == ["acc"]
    assert [s.name for s in model.description.inputs] == ["x"]
    state = model.make_state()
    np.testing.assert_array_equal(state.read_state("acc"), np.zeros(SHAPE, np.float16))
    x1 = np.arange(6, dtype=np.float16).reshape(SHAPE)
    x2 = np.full(SHAPE, 0.5, np.float16)
    first = next(iter(model.predict({"x": x1}, state=state).outputs.values()))
    second = next(iter(model.predict({"x": x2}, state=state).outputs.values()))
    np.testing.assert_array_equal(first, 2 * x1)
    np.testing.assert_array_equal(second, 2 * (x1 + x2))
    np.testing.assert_array_equal(state.read_state("acc"), x1 + x2)
    assert model.compiled == compile


def test_each_state_is_independent_and_writable(tmp_path):
    model = load(_accumulator(tmp_path))
    a, b = model.make_state(), model.make_state()
    b.write_state("acc", np.full(SHAPE, 10, np.float16))
    x = np.ones(SHAPE, np.float16)
    model.predict({"x": x}, state=a)
    out = model.predict_mlx({"x": x}, state=b)
    np.testing.assert_array_equal(a.read_state("acc"), x)
    np.testing.assert_array_equal(np.array(next(iter(out.values()))), 22 * x)
    with pytest.raises(TensorShapeMismatch):
        a.write_state("acc", np.zeros((3, 2), np.float16))


def test_repeated_updates_within_and_across_predictions(tmp_path):
    """coremltools' update-state stress case (xfailed there on x86_64): ten increments per run."""

    def build(s):
        value = mb.read_state(input=s)
        for _ in range(10):
            value = mb.coreml_update_state(state=s, value=mb.add(x=value, y=np.float16(1)))
        return mb.read_state(input=s)

    model = load(_save(tmp_path, build, [mb.StateTensorSpec((4, 5), dtype=types.fp16)], "stress"))
    state = model.make_state()
    for expected in (10, 20):
        out = next(iter(model.predict({}, state=state).outputs.values()))
        np.testing.assert_array_equal(out, np.full((4, 5), expected, np.float16))


def test_stateful_model_refuses_a_missing_or_foreign_state(tmp_path):
    path = _accumulator(tmp_path)
    model, other = load(path), load(path)
    x = np.ones(SHAPE, np.float16)
    with pytest.raises(StateRequired) as missing:
        model.predict({"x": x})
    assert missing.value.states == ["acc"]
    with pytest.raises(StateMismatch):
        model.predict({"x": x}, state=other.make_state())
    with pytest.raises(StateMismatch):
        model.predict_mlx({"x": x}, state=object())


def test_stateless_model_refuses_a_state(tmp_path):
    stateless = load(_save(tmp_path, lambda x: mb.relu(x=x), [mb.TensorSpec(SHAPE)], "stateless"))
    stateful = load(_accumulator(tmp_path))
    assert stateless.description.states == ()
    with pytest.raises(StateMismatch):
        stateless.make_state()
    with pytest.raises(StateMismatch):
        stateless.predict({"x": np.ones(SHAPE, np.float32)}, state=stateful.make_state())
