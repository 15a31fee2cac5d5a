"""End to end: a converted tiny.en encoder, run by the portable runtime through CoreMLAudioEncoder,
feeding the MLX decoder, transcribes real speech exactly as the all-MLX path does."""

from __future__ import annotations

import re

import mlx.core as mx
import pytest
from convert_helpers import JFK, JFK_TEXT, real_model_dir

from mlx_audio_coreml.convert import ConvertOptions, convert_whisper
from mlx_audio_coreml.convert.validate import validation_runtime_available
from mlx_audio_coreml.coreml.registry import get_runtime
from mlx_audio_coreml.coreml.runtime import ComputeUnits
from mlx_audio_coreml.encoders import MLXAudioEncoder

_available, _reason = validation_runtime_available("portable")


def _words(text: str) -> str:
    return re.sub(r"[^\w\s]", "", text).lower()


def _text(segments) -> str:
    return " ".join(segment.text.strip() for segment in segments)


@pytest.mark.realweights
@pytest.mark.skipif(not _available, reason=f"portable runtime unavailable: {_reason}")
@pytest.mark.parametrize("layout_name", ["default", pytest.param("whisperkit", marks=pytest.mark.slow)])
def test_transcript_through_converted_encoder_equals_the_mlx_transcript(tmp_path, layout_name):
    from mlx_audio_coreml.encoders import CoreMLAudioEncoder
    from mlx_audio_coreml.whisper.encoder_layouts import detect_layout
    from mlx_audio_coreml.whisper.loading import load_whisper
    from mlx_audio_coreml.whisper.transcribe import Transcriber

    model_dir = real_model_dir("tiny.en")
    result = convert_whisper(
        model_dir, tmp_path, ConvertOptions(layout=layout_name, precision="float16", validate=False)
    )
    bundle = load_whisper(model_dir, dtype=mx.float32)
    mlx_segments, _ = Transcriber(bundle, MLXAudioEncoder(bundle.model.encoder, bundle.dims.n_mels)).transcribe(JFK)
    mlx_text = _text(mlx_segments)

    loaded = get_runtime("portable").load(result.package, ComputeUnits.CPU_ONLY)
    try:
        encoder = CoreMLAudioEncoder(loaded, layout=detect_layout(loaded.description), runtime="portable")
        coreml_segments, _ = Transcriber(bundle, encoder).transcribe(JFK)
        coreml_text = _text(coreml_segments)
    finally:
        loaded.close()

    assert coreml_text == mlx_text
    assert "ask not what your country can do for you" in coreml_text
    assert _words(coreml_text).startswith(_words(JFK_TEXT)[:20])  # beam search may add a comma
