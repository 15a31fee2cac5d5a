"""The seed's quantization option: int8 / int4 weights through mlx.nn.quantize."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from model_helpers import random_mel, random_model, tiny_dims

from mlx_audio_coreml.whisper.quantize import QuantizationSpec, parse_quantization, quantize_model


def test_quantization_names_parse():
    assert parse_quantization(None) is None and parse_quantization("float16") is None
    assert parse_quantization("int8") == QuantizationSpec(8) and parse_quantization(4) == QuantizationSpec(4)
    assert parse_quantization(QuantizationSpec(4, 32)).group_size == 32
    with pytest.raises(ValueError):
        parse_quantization("int3x")
    with pytest.raises(ValueError):
        QuantizationSpec(bits=7)


@pytest.mark.parametrize("bits, tolerance", [(8, 0.02), (4, 0.25)])
def test_quantized_model_stays_close_to_float(bits, tolerance):
    dims = tiny_dims(n_audio_state=64, n_text_state=64)
    reference, quantized = random_model(dims, seed=2), random_model(dims, seed=2)
    quantize_model(quantized, QuantizationSpec(bits=bits, group_size=32))
    assert isinstance(quantized.decoder.token_embedding, nn.QuantizedEmbedding)
    assert isinstance(quantized.encoder.blocks[0].mlp1, nn.QuantizedLinear)
    assert isinstance(quantized.encoder.conv1, nn.Conv1d)  # convolutions stay in floating point
    mel, tokens = random_mel(dims), mx.array([[1, 2, 3]])
    expected = np.array(reference.decoder(tokens, reference.encoder(mel))[0])
    got = np.array(quantized.decoder(tokens, quantized.encoder(mel))[0])
    relative = np.abs(got - expected).max() / np.abs(expected).max()
    assert relative < tolerance


def test_layers_whose_width_does_not_divide_into_groups_stay_float():
    model = random_model(tiny_dims(n_audio_state=48, n_text_state=64))
    quantize_model(model, QuantizationSpec(bits=8, group_size=64))
    assert isinstance(model.encoder.blocks[0].attn.query, nn.Linear)  # 48 inputs: not a multiple of 64
    assert isinstance(model.decoder.blocks[0].attn.query, nn.QuantizedLinear)
