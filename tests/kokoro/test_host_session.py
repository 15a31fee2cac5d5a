"""KokoroSession's opt-in int8 products on the CPU host path: `quantization=INT8` turns them on, the session's
info says so, and the audio keeps its length and stays finite (tiny random model)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest
from session_tiny import build_tiny_folder
from text_support import needs_espeak

from mlx_audio_coreml.kokoro.model import host_conv
from mlx_audio_coreml.kokoro.session import KokoroSession
from mlx_audio_coreml.options import ModelLoadingOptions, WhisperQuantization

pytestmark = [needs_espeak, pytest.mark.skipif(not host_conv.applies(mx.float32), reason="CPU host path only")]


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_folder(tmp_path_factory.mktemp("kokoro-tiny-int8"))


def _session(folder: Path, quantization: WhisperQuantization) -> KokoroSession:
    options = dataclasses.replace(ModelLoadingOptions.mlx_only(), quantization=quantization)
    return KokoroSession.from_pretrained(folder, options, g2p="espeak")


def test_int8_quantization_turns_on_the_generators_int8_products(tiny_folder: Path) -> None:
    float_session, int8_session = (
        _session(tiny_folder, WhisperQuantization.FLOAT32),
        _session(tiny_folder, WhisperQuantization.INT8),
    )
    assert float_session.info.quantization == WhisperQuantization.FLOAT32
    assert int8_session.info.quantization == WhisperQuantization.INT8
    assert any("int8" in note for note in int8_session.info.notes)
    assert int8_session.pipeline.model.decoder.generator.host_int8  # type: ignore[union-attr]
    assert not float_session.pipeline.model.decoder.generator.host_int8  # type: ignore[union-attr]
    exact, _ = float_session.synthesize("Hello world.", voice="af_test")
    approx, _ = int8_session.synthesize("Hello world.", voice="af_test")
    assert approx.shape == exact.shape and np.isfinite(approx).all()
    assert not np.array_equal(approx, exact)
