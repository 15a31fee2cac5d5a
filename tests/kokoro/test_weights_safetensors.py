"""Safetensors weights: our canonical file and mlx-audio's layout (written with MLX itself, in bfloat16)."""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest

from mlx_audio_coreml.errors import KokoroStateMismatch, KokoroWeightsError
from mlx_audio_coreml.kokoro.weights.formats import load_safetensors_state
from mlx_audio_coreml.kokoro.weights.safetensors_io import read_safetensors, write_safetensors

RNG = np.random.default_rng(3)


def _rand(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def test_write_then_read_is_exact(tmp_path: Path) -> None:
    tensors = {"b.weight": _rand(3, 4, 5), "a.bias": _rand(7), "scalar": np.array(2.5, np.float32)}
    write_safetensors(tmp_path / "m.safetensors", tensors)
    back = read_safetensors(tmp_path / "m.safetensors")
    assert set(back) == set(tensors)
    for key, value in tensors.items():
        np.testing.assert_array_equal(back[key], value)
    np.testing.assert_array_equal(mx.load(str(tmp_path / "m.safetensors"))["b.weight"], tensors["b.weight"])


def test_mlx_audio_layout_maps_back_to_canonical(tmp_path: Path) -> None:
    v = _rand(4, 6, 3)  # a weight-normed conv (out, in, k) in PyTorch layout
    g = np.linalg.norm(v.reshape(4, -1), axis=1).reshape(4, 1, 1) * 0.5
    lstm = {
        name: _rand(*shape)
        for name, shape in {"Wx": (12, 5), "Wh": (12, 3), "bias_ih": (12,), "bias_hh": (12,)}.items()
    }
    mlx_audio = {
        "decoder.encode.conv1.weight_v": v.transpose(0, 2, 1),  # mlx-audio saves convs channels-last
        "decoder.encode.conv1.weight_g": g,
        "decoder.encode.conv1.bias": _rand(4),
        "predictor.F0_proj.weight": _rand(1, 1, 8),  # (out, k, in) of a (1, 8, 1) conv
        "text_encoder.cnn.0.1.weight": _rand(8),  # the LayerNorm's gamma, renamed by mlx-audio
        "text_encoder.cnn.0.1.bias": _rand(8),
        "bert.pooler.weight": _rand(2, 2),  # unused by Kokoro: dropped
        **{f"predictor.lstm.{k}_{d}": val for k, val in lstm.items() for d in ("forward", "backward")},
    }
    mx.save_safetensors(
        str(tmp_path / "kokoro-v1_0.safetensors"), {k: mx.array(a).astype(mx.bfloat16) for k, a in mlx_audio.items()}
    )
    expected = {
        "decoder.encode.conv1.weight": (4, 6, 3),
        "decoder.encode.conv1.bias": (4,),
        "predictor.F0_proj.weight": (1, 8, 1),
        "text_encoder.cnn.0.1.gamma": (8,),
        "text_encoder.cnn.0.1.beta": (8,),
        **{
            f"predictor.lstm.{n}{s}": shape
            for n, shape in {
                "weight_ih_l0": (12, 5),
                "weight_hh_l0": (12, 3),
                "bias_ih_l0": (12,),
                "bias_hh_l0": (12,),
            }.items()
            for s in ("", "_reverse")
        },
    }
    state = load_safetensors_state(tmp_path / "kokoro-v1_0.safetensors", expected)
    assert {k: v.shape for k, v in state.items()} == expected
    folded = g * v / np.linalg.norm(v.reshape(4, -1), axis=1).reshape(4, 1, 1)
    np.testing.assert_allclose(state["decoder.encode.conv1.weight"], folded, rtol=2e-2, atol=2e-2)  # bfloat16
    np.testing.assert_allclose(
        state["predictor.F0_proj.weight"][0, :, 0], mlx_audio["predictor.F0_proj.weight"][0, 0], rtol=1e-2, atol=1e-2
    )
    np.testing.assert_allclose(
        state["text_encoder.cnn.0.1.gamma"], mlx_audio["text_encoder.cnn.0.1.weight"], rtol=1e-2, atol=1e-2
    )
    np.testing.assert_allclose(state["predictor.lstm.weight_hh_l0_reverse"], lstm["Wh"], rtol=1e-2, atol=1e-2)


def test_strict_load_names_missing_unexpected_and_misshapen_keys(tmp_path: Path) -> None:
    write_safetensors(tmp_path / "m.safetensors", {"a.weight": _rand(2, 3), "extra.bias": _rand(2), "b.bias": _rand(4)})
    with pytest.raises(KokoroStateMismatch) as err:
        load_safetensors_state(tmp_path / "m.safetensors", {"a.weight": (2, 3), "b.bias": (5,), "c.weight": (1,)})
    assert err.value.missing == ["c.weight"]
    assert err.value.unexpected == ["extra.bias"]
    assert err.value.shape_errors == ["b.bias: expected (5,), got (4,)"]


def test_quantized_mlx_weights_are_refused_with_a_reason(tmp_path: Path) -> None:
    mx.save_safetensors(str(tmp_path / "q.safetensors"), {"a.weight": mx.zeros((2, 2)), "a.scales": mx.ones((2, 1))})
    with pytest.raises(KokoroWeightsError, match="quantized"):
        load_safetensors_state(tmp_path / "q.safetensors", {"a.weight": (2, 2)})


def test_a_truncated_file_is_a_typed_error(tmp_path: Path) -> None:
    (tmp_path / "bad.safetensors").write_bytes(b"\x05\x00")
    with pytest.raises(KokoroWeightsError, match="not a safetensors"):
        read_safetensors(tmp_path / "bad.safetensors")
