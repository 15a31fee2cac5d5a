"""The encoder's int8 host products are prepared with the model for its pieces' row counts
(whisper/host_encoder.py `prepare`), and give the gemm route's values bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from model_helpers import random_mel, random_model, tiny_dims

from mlx_audio_coreml.cpu import linear, onednn
from mlx_audio_coreml.whisper import host_encoder
from mlx_audio_coreml.whisper.quantize import use_host_int8

pytestmark = pytest.mark.skipif(not onednn.available(), reason="oneDNN is not installed")


def test_prepare_makes_the_pieces_kernels_and_a_window_adds_none(monkeypatch: pytest.MonkeyPatch) -> None:
    model = random_model(tiny_dims(n_audio_ctx=60, n_audio_state=64), seed=3)
    use_host_int8(model)
    host_encoder.prepare(model.encoder)
    layers = model.encoder._host_blocks
    made = [sorted(layer._many) for w in layers for layer in (w.qkv, w.out, w.mlp1, w.mlp2)]
    assert made and all(counts and all(layer_count > linear._FEW_ROWS for layer_count in counts) for counts in made)
    mel = random_mel(model.dims)
    features = np.array(model.encoder(mel))
    assert [sorted(layer._many) for w in layers for layer in (w.qkv, w.out, w.mlp1, w.mlp2)] == made
    monkeypatch.setattr(linear, "many_rows_conv", False)  # the gemm route
    np.testing.assert_array_equal(np.array(model.encoder(mel)), features)
