"""Real weights: tiny.en's encoder in WhisperKit's layout, written as a compiled model
(`openai_whisper-tiny.en/AudioEncoder.mlmodelc`), transcribes real speech through the portable
runtime exactly as the .mlpackage does."""

from __future__ import annotations

import time

import mlx.core as mx
import numpy as np
import pytest
from convert_helpers import JFK, JFK_TEXT, real_model_dir

from mlx_audio_coreml.convert import ConvertOptions, convert_whisper
from mlx_audio_coreml.convert.compiled import write_compiled
from mlx_audio_coreml.coreml.registry import get_runtime
from mlx_audio_coreml.coreml.runtime import ComputeUnits


@pytest.fixture(autouse=True)
def _private_compiled_cache(tmp_path_factory, monkeypatch):
    """Parsed text programs are kept in the compiled-model cache: this test's, not the user's
    (MLX_AUDIO_COREML_HOME stays, so installed real weights are still found)."""
    from mlx_audio_coreml import config

    cache = tmp_path_factory.mktemp("compiled")
    monkeypatch.setattr(config, "compiled_dir", lambda environ=None: cache)


def _normalized(text: str) -> str:
    return " ".join("".join(ch for ch in text.lower() if ch.isalnum() or ch == " ").split())


@pytest.mark.realweights
@pytest.mark.slow
def test_compiled_whisperkit_encoder_transcribes_like_the_package(tmp_path):
    from mlx_audio_coreml.encoders import CoreMLAudioEncoder
    from mlx_audio_coreml.whisper.encoder_layouts import detect_layout
    from mlx_audio_coreml.whisper.loading import load_whisper
    from mlx_audio_coreml.whisper.transcribe import Transcriber

    model_dir = real_model_dir("tiny.en")
    result = convert_whisper(
        model_dir, tmp_path, ConvertOptions(layout="whisperkit", precision="float16", validate=False)
    )
    compiled = write_compiled(result.package, tmp_path / "openai_whisper-tiny.en" / "AudioEncoder.mlmodelc")
    bundle = load_whisper(model_dir, dtype=mx.float32)
    runtime = get_runtime("portable")
    texts, states = {}, {}
    for kind, path in (("package", result.package), ("compiled", compiled)):
        started = time.perf_counter()
        loaded = runtime.load(path, ComputeUnits.CPU_ONLY)
        load_s = time.perf_counter() - started
        try:
            encoder = CoreMLAudioEncoder(loaded, layout=detect_layout(loaded.description), runtime="portable")
            segments, _ = Transcriber(bundle, encoder).transcribe(JFK)
            texts[kind] = " ".join(s.text.strip() for s in segments)
            mel = np.random.default_rng(0).standard_normal(loaded.description.inputs[0].shape).astype(np.float16)
            states[kind] = next(iter(loaded.predict({loaded.description.inputs[0].name: mel}).outputs.values()))
        finally:
            loaded.close()
        print(f"{kind}: load {load_s:.2f} s")  # noqa: T201  (shown with -s: the text parse's share of a load)
    np.testing.assert_array_equal(states["compiled"], states["package"])
    assert texts["compiled"] == texts["package"]
    assert _normalized(texts["compiled"]) == _normalized(JFK_TEXT)
