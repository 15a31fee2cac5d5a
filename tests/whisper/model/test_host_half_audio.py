"""An int8 host decoder keeps a window's audio keys and values as float16 for its steps (host_prefill.py,
cpu/half_audio.py): the prefill's cache holds them (float32 decoding, another head size, the switch
off or a value float16 cannot hold keep float32), and the steps over them, in one C call per block or
kernel by kernel, greedy or beams, give what float32 audio holding the same (widened) values gives,
bit for bit; and the float16 blocks are the float32 ones rounded, bit for bit."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
from model_helpers import beams_after_prefill, random_mel, random_model, tiny_dims

from mlx_audio_coreml.cpu import half_audio, host_math
from mlx_audio_coreml.whisper import host_block, host_prefill

pytestmark = [
    pytest.mark.skipif(not host_math.available(mx.float32), reason="the host path needs MLX on the CPU"),
    pytest.mark.skipif(not half_audio.supported(), reason="no C kernels, or this CPU lacks F16C/AVX2/FMA"),
]

WIDE = {"n_audio_state": 128, "n_audio_head": 2, "n_text_state": 128, "n_text_head": 2}  # head size 64
STEPS = 12


def _model(int8: bool, head_dim: int = 64):
    model = random_model(tiny_dims(n_text_ctx=STEPS + 8, **(WIDE if head_dim == 64 else {})))
    model.decoder.host_int8 = int8
    return model


def _audio_dtypes(model) -> set:
    features = model.encoder(random_mel(model.dims))
    _, cache, _ = model.decoder(mx.array([[1, 2, 3]], dtype=mx.int32), features)
    return {a.dtype for _, cross in cache for a in cross}


def test_int8_decoding_keeps_float16_audio_and_float32_decoding_float32() -> None:
    assert _audio_dtypes(_model(int8=True)) == {mx.float16}
    assert _audio_dtypes(_model(int8=False)) == {mx.float32}


def test_other_head_sizes_the_switch_off_or_values_past_float16_keep_float32(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _audio_dtypes(_model(int8=True, head_dim=8)) == {mx.float32}
    monkeypatch.setattr(host_prefill, "_HALF_AUDIO_INT8", False)
    assert _audio_dtypes(_model(int8=True)) == {mx.float32}
    monkeypatch.undo()
    monkeypatch.setattr(half_audio, "to_half", lambda block: None)  # as for a value float16 cannot hold
    assert _audio_dtypes(_model(int8=True)) == {mx.float32}


def _widened(cache: list) -> list:
    return [(self_kv, tuple(a.astype(mx.float32) for a in cross)) for self_kv, cross in cache]


def _logits(model, tokens, features, cache) -> list[np.ndarray]:
    out = []
    for _ in range(STEPS):
        logits, cache, _ = model.decoder(tokens, features, cache)
        out.append(np.array(logits))
        tokens = mx.array(out[-1][:, -1].argmax(-1)[:, None].astype(np.int32))
    return out


@pytest.mark.parametrize("in_c", [True, False])
@pytest.mark.parametrize("beams", [1, 5])
def test_steps_over_float16_audio_are_steps_over_its_widened_values_bit_for_bit(
    beams: int, in_c: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not in_c:
        monkeypatch.setattr(host_block, "applies", lambda w: False)
    model = _model(int8=True)
    tokens, features, cache = beams_after_prefill(model, beams)
    assert {a.dtype for _, cross in cache for a in cross} == {mx.float16}
    for got, expected in zip(
        _logits(model, tokens, features, cache), _logits(model, tokens, features, _widened(cache)), strict=True
    ):
        np.testing.assert_array_equal(got, expected)


def test_the_kept_float16_audio_is_the_float32_audio_rounded_bit_for_bit(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _model(int8=True)
    _, _, half = beams_after_prefill(model, 1)
    monkeypatch.setattr(host_prefill, "_HALF_AUDIO_INT8", False)
    _, _, full = beams_after_prefill(model, 1)
    for (_, kept), (_, audio) in zip(half, full, strict=True):
        for got, whole in zip(kept, audio, strict=True):
            assert whole.dtype == mx.float32
            np.testing.assert_array_equal(
                np.array(got).view(np.uint16), np.array(whole).astype(np.float16).view(np.uint16)
            )
