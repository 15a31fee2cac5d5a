"""PortableModel behaviour: caller buffers, compiled vs eager execution, control flow, devices."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
from portable_helpers import ct, load, mb, save_program

from mlx_audio_coreml.coreml.runtime import ComputeUnits, LoadStage
from mlx_audio_coreml.cpu import host_math

rng = np.random.default_rng(5)
W = rng.standard_normal((16, 8)).astype(np.float32)


def _model_path(tmp_path):
    return save_program(tmp_path, lambda x: mb.gelu(x=mb.linear(x=x, weight=W)), [(4, 8)])


def test_outputs_are_written_into_caller_buffers(tmp_path):
    model = load(_model_path(tmp_path))
    x = rng.standard_normal((4, 8)).astype(np.float32)
    name = model.description.outputs[0].name
    buffer = np.zeros((4, 16), np.float32)
    result = model.predict({"x": x}, outputs={name: buffer})
    assert result.written_in_place == frozenset({name})
    assert result.outputs[name] is buffer
    np.testing.assert_allclose(buffer, model.predict({"x": x}).outputs[name])


def test_compiled_and_eager_execution_agree(tmp_path):
    path = _model_path(tmp_path)
    with host_math.disabled():  # else this CPU float32 GELU runs eagerly through numpy (ops/host.py)
        compiled, eager = load(path), load(path, compile=False)
        x = rng.standard_normal((4, 8)).astype(np.float32)
        a = compiled.predict({"x": x}).outputs
        b = eager.predict({"x": x}).outputs
    assert compiled.compiled and not eager.compiled
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-6, atol=1e-6)


def test_mlx_arrays_are_accepted_and_returned(tmp_path):
    model = load(_model_path(tmp_path))
    x = mx.array(rng.standard_normal((4, 8)).astype(np.float32))
    out = model.predict_mlx({"x": x})
    assert isinstance(next(iter(out.values())), mx.array)
    np.testing.assert_allclose(
        np.array(next(iter(out.values()))), next(iter(model.predict({"x": np.array(x)}).outputs.values())), rtol=1e-6
    )


def test_data_dependent_control_flow_falls_back_to_eager(tmp_path):
    def build(x):
        total = mb.reduce_sum(x=x, axes=[0])
        return mb.cond(
            pred=mb.greater(x=total, y=0.0), _true_fn=lambda: mb.mul(x=x, y=2.0), _false_fn=lambda: mb.mul(x=x, y=-1.0)
        )

    model = load(save_program(tmp_path, build, [(3,)], opset=ct.target.iOS17))
    positive = model.predict({"x": np.array([1, 2, 3], np.float32)}).outputs
    negative = model.predict({"x": np.array([-1, -2, -3], np.float32)}).outputs
    np.testing.assert_allclose(next(iter(positive.values())), [2, 4, 6])
    np.testing.assert_allclose(next(iter(negative.values())), [1, 2, 3])
    assert not model.compiled


def test_load_reports_stages_and_cpu_only_uses_the_cpu(tmp_path):
    from mlx_audio_coreml.coreml.portable import PortableRuntime

    stages = []
    model = PortableRuntime().load(_model_path(tmp_path), ComputeUnits.CPU_ONLY, on_stage=stages.append)
    assert stages == [LoadStage.LOADING, LoadStage.READY]
    assert model.device == mx.cpu
    model.close()
