"""Load-time fusion of a product by weights and the exact GELU that alone reads it (fuse_gelu.py),
and the eager runner dropping values nothing reads any more (program.py): same results as the
program as written, on the host path and off it, in float32 and float16."""

from __future__ import annotations

import numpy as np
import pytest
from portable_helpers import load, mb, save_program

from mlx_audio_coreml.coreml.portable.program import _release_plan
from mlx_audio_coreml.cpu import host_math

rng = np.random.default_rng(8)
WEIGHT = rng.standard_normal((48, 32)).astype(np.float32) / 4
BIAS = rng.standard_normal(48).astype(np.float32)


def linear_gelu(x):
    return mb.gelu(x=mb.linear(x=x, weight=WEIGHT, bias=BIAS), mode="EXACT")


def conv_gelu(x):  # (1, C, 1, S) as the converter writes Whisper: a kernel-3 conv, then a 1x1 conv
    kernel3 = rng.standard_normal((32, 32, 1, 3)).astype(np.float32) / 8
    spatial = mb.gelu(x=mb.conv(x=x, weight=kernel3, pad_type="same"), mode="EXACT")  # leaves it channels-last
    return mb.gelu(x=mb.conv(x=spatial, weight=WEIGHT[:, :, None, None], bias=BIAS), mode="EXACT")


def outputs(model, feeds, host: bool = True) -> list[np.ndarray]:
    if host:
        return list(model.predict(feeds).outputs.values())
    with host_math.disabled():
        return list(model.predict(feeds).outputs.values())


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("build, shape, fused", [(linear_gelu, (2, 300, 32), 1), (conv_gelu, (1, 32, 1, 40), 2)])
def test_product_and_gelu_run_as_one_node_with_the_same_results(tmp_path, build, shape, fused, precision):
    path = save_program(tmp_path, build, [shape], precision=precision)
    model, written = load(path), load(path, optimize=False)
    x = rng.standard_normal(shape).astype(np.float32)

    got, plain, want = outputs(model, {"x": x}), outputs(model, {"x": x}, host=False), outputs(written, {"x": x})

    assert model.program.rewrites["product_gelu"] == fused
    assert not any(node.op.name == "gelu" for node in model.program.block.nodes)
    tolerance = dict(rtol=1e-5, atol=1e-5) if precision == "fp32" else dict(rtol=2e-2, atol=2e-2)
    for a, b, c in zip(got, plain, want):
        np.testing.assert_allclose(a, c, **tolerance)
        np.testing.assert_allclose(b, c, **tolerance)


def test_a_product_read_by_more_than_the_gelu_is_left_alone(tmp_path):
    def build(x):
        hidden = mb.linear(x=x, weight=WEIGHT, bias=BIAS)
        return mb.add(x=mb.gelu(x=hidden, mode="EXACT"), y=hidden)

    model = load(save_program(tmp_path, build, [(10, 32)]))
    x = rng.standard_normal((10, 32)).astype(np.float32)

    hidden = x @ WEIGHT.T + BIAS
    exact = list(load(save_program(tmp_path, linear_gelu, [(10, 32)])).predict({"x": x}).outputs.values())[0]
    assert model.program.rewrites["product_gelu"] == 0
    np.testing.assert_allclose(list(model.predict({"x": x}).outputs.values())[0], exact + hidden, rtol=1e-5, atol=1e-5)


def test_the_eager_runner_drops_each_value_after_its_last_reader(tmp_path):
    def build(x):
        a = mb.relu(x=x)  # read twice: kept until the add
        b = mb.mul(x=a, y=2.0)
        return [mb.add(x=a, y=b), mb.sqrt(x=mb.abs(x=b))]

    model = load(save_program(tmp_path, build, [(4, 6)]), compile=False)
    x = rng.standard_normal((4, 6)).astype(np.float32)

    got = list(model.predict({"x": x}).outputs.values())

    block = model.program.block
    plan = {node.op.name: names for node, names in zip(block.nodes, _release_plan(block))}
    relu_value = next(node.outputs[0] for node in block.nodes if node.op.name == "relu")
    mul_value = next(node.outputs[0] for node in block.nodes if node.op.name == "mul")
    assert "x" in plan["relu"] and relu_value in plan["add"] and mul_value in plan["abs"]
    assert not {name for names in plan.values() for name in names} & set(block.outputs)  # results stay
    relu_x = np.maximum(x, 0)
    np.testing.assert_allclose(got[0], relu_x * 3, rtol=1e-6)
    np.testing.assert_allclose(got[1], np.sqrt(relu_x * 2), rtol=1e-6)
