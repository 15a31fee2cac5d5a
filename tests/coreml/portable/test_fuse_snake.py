"""The Snake activation as MIL spells it (x + sin(x alpha)^2 / alpha, per-channel constants) becomes one
node at load (fuse_snake.py); it computes the same values on the host path (numpy) and in MLX, and a
pattern whose intermediate value has another reader is left as written."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
from portable_helpers import load, mb, save_program

from mlx_audio_coreml.coreml.portable.ops import snake as snake_op
from mlx_audio_coreml.cpu import host_math

rng = np.random.default_rng(3)
on_cpu = host_math.available(mx.float32)
ALPHA = (rng.random((1, 16, 1)) + 0.5).astype(np.float32)


def reference(x: np.ndarray) -> np.ndarray:
    return x + np.sin(x * ALPHA) ** 2 / ALPHA


def snake(x, swap: bool = False):
    s = mb.sin(x=mb.mul(x=ALPHA, y=x) if swap else mb.mul(x=x, y=ALPHA))
    scaled = mb.mul(x=mb.mul(x=s, y=s), y=(1.0 / ALPHA).astype(np.float32))
    return mb.add(x=scaled, y=x) if swap else mb.add(x=x, y=scaled)


@pytest.mark.parametrize("swap", [False, True])
def test_snake_in_either_operand_order_is_one_node_with_the_same_values(tmp_path, swap, monkeypatch):
    x = rng.standard_normal((2, 16, 2000)).astype(np.float32)  # large enough for the host path
    host_calls: list[int] = []
    original = snake_op._host_blocks
    monkeypatch.setattr(snake_op, "_host_blocks", lambda *a: host_calls.append(1) or original(*a))
    model = load(save_program(tmp_path, lambda x: snake(x, swap), [x.shape]))
    got = next(iter(model.predict({"x": x}).outputs.values()))
    with host_math.disabled():
        plain = next(iter(model.predict({"x": x}).outputs.values()))

    assert model.program.rewrites["snake"] == 1 and len(host_calls) == (1 if on_cpu else 0)
    assert [n.op.name for n in model.program.block.nodes] == ["portable.snake"]
    np.testing.assert_allclose(got, reference(x), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(plain, reference(x), rtol=1e-5, atol=1e-5)


def test_snake_whose_sine_is_read_elsewhere_is_not_fused(tmp_path):
    x = rng.standard_normal((1, 16, 64)).astype(np.float32)

    def build(x):
        s = mb.sin(x=mb.mul(x=x, y=ALPHA))
        y = mb.add(x=x, y=mb.mul(x=mb.mul(x=s, y=s), y=(1.0 / ALPHA).astype(np.float32)))
        return y, mb.add(x=s, y=1.0)

    model = load(save_program(tmp_path, build, [x.shape]))
    outputs = list(model.predict({"x": x}).outputs.values())

    assert model.program.rewrites["snake"] == 0
    np.testing.assert_allclose(outputs[0], reference(x), rtol=1e-5, atol=1e-5)


def test_float16_snake_runs_in_mlx(tmp_path):
    x = rng.standard_normal((1, 16, 2000)).astype(np.float32)
    model = load(save_program(tmp_path, lambda x: snake(x), [x.shape], precision="fp16"))
    got = next(iter(model.predict({"x": x}).outputs.values()))
    assert model.program.rewrites["snake"] == 1
    np.testing.assert_allclose(got, reference(x), rtol=2e-2, atol=3e-2)
