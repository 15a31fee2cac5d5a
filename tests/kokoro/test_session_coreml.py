"""KokoroSession with a Core ML vocoder (the portable runtime, named) through loading/component.py.

The package is a stand-in ML Program with the tiny model's four vocoder inputs and a fixed bucket
of 40 frames whose "audio" is each F0 frame repeated 300 times: it checks selection, compile,
warm-up, the switch, and that chunks are padded to the bucket and trimmed back (a chunk longer
than the bucket is spoken by MLX). It proves nothing about a real Kokoro vocoder package.
"""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest
from session_tiny import TINY_CONFIG, build_tiny_folder
from text_support import needs_espeak

from mlx_audio_coreml.kokoro.session import KokoroSession
from mlx_audio_coreml.kokoro.text import PAD_ID
from mlx_audio_coreml.options import BackendPreference, Component, ModelLoadingOptions
from mlx_audio_coreml.progress import CoreMLUnavailable, WhisperProgress

BUCKET = 40  # text frames the stand-in package takes


@pytest.fixture(scope="module")
def vocoder_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ct = pytest.importorskip("coremltools")
    from coremltools.converters.mil import Builder as mb

    from mlx_audio_coreml.vocoders import SAMPLE_RATE_METADATA_KEY

    hidden, style = TINY_CONFIG["hidden_dim"], TINY_CONFIG["style_dim"]  # the decoder half of the style
    specs = [mb.TensorSpec(shape=s) for s in ((1, hidden, BUCKET), (1, 2 * BUCKET), (1, 2 * BUCKET), (1, style))]

    @mb.program(input_specs=specs, opset_version=ct.target.macOS13)
    def program(asr, f0, energy, style):
        tiled = mb.tile(x=mb.expand_dims(x=f0, axes=[-1]), reps=[1, 1, 300])  # (1, 2 * BUCKET, 300)
        audio = mb.reshape(x=tiled, shape=[1, 600 * BUCKET])
        unused = mb.add(x=mb.reduce_sum(x=asr, axes=[1, 2]), y=mb.reduce_sum(x=energy, axes=[1]))
        unused = mb.add(x=unused, y=mb.reduce_sum(x=style, axes=[1]))  # (1,): inputs a program must read
        return mb.add(x=audio, y=mb.mul(x=mb.expand_dims(x=unused, axes=[-1]), y=0.0), name="audio")

    model = ct.convert(
        program, convert_to="mlprogram", skip_model_load=True,
        minimum_deployment_target=ct.target.macOS13, compute_precision=ct.precision.FLOAT32,
    )  # fmt: skip
    model.user_defined_metadata[SAMPLE_RATE_METADATA_KEY] = "24000"
    path = tmp_path_factory.mktemp("vocoder") / "AudioVocoder.mlpackage"
    model.save(str(path))
    return path


@pytest.fixture(scope="module")
def coreml_session(tmp_path_factory: pytest.TempPathFactory, vocoder_package: Path) -> tuple[KokoroSession, list]:
    events: list[WhisperProgress] = []
    options = ModelLoadingOptions(
        backend_overrides={Component.VOCODER: BackendPreference.CORE_ML},
        coreml_runtime="portable",
        coreml_sources={Component.VOCODER: vocoder_package},
    )
    folder = build_tiny_folder(tmp_path_factory.mktemp("kokoro-tiny"))
    return KokoroSession.from_pretrained(folder, options, events.append, g2p="espeak"), events


def _f0(session: KokoroSession, token_ids: tuple[int, ...], voice: str) -> np.ndarray:
    ids = mx.array([[PAD_ID, *token_ids, PAD_ID]], dtype=mx.int32)
    style = mx.array(session.voice_library.style(voice, len(token_ids)))
    features, _ = session.pipeline.model.features(ids, style, 1.0)
    return np.array(features.f0[0])


def test_core_ml_vocoder_is_selected_compiled_and_recorded(coreml_session: tuple[KokoroSession, list]) -> None:
    session, events = coreml_session
    info = session.info
    assert session.vocoder.backend == "coreML"
    assert info.vocoder_backend is BackendPreference.CORE_ML and info.vocoder_runtime == "portable"
    assert not info.did_fallback and not any(isinstance(e, CoreMLUnavailable) for e in events)


@needs_espeak
def test_a_chunk_within_the_bucket_is_padded_then_trimmed(coreml_session: tuple[KokoroSession, list]) -> None:
    session, _ = coreml_session
    (piece,) = list(session.stream("Hello world.", voice="af_test"))
    frames = len(piece.chunk.token_ids) + 2  # one frame per token in the tiny model
    assert frames <= BUCKET and len(piece.audio) == frames * 600
    expected = np.repeat(_f0(session, piece.chunk.token_ids, "af_test"), 300)  # the stand-in's audio
    np.testing.assert_allclose(piece.audio, expected, rtol=1e-6, atol=1e-6)


@needs_espeak
def test_a_chunk_longer_than_the_bucket_is_spoken_by_mlx(coreml_session: tuple[KokoroSession, list]) -> None:
    session, _ = coreml_session
    text = "This sentence is long enough to need more frames than the stand-in package has."
    (piece,) = list(session.stream(text, voice="af_test"))
    frames = len(piece.chunk.token_ids) + 2
    assert frames > BUCKET and len(piece.audio) == frames * 600
    assert not np.allclose(piece.audio, np.repeat(_f0(session, piece.chunk.token_ids, "af_test"), 300))
    assert session.vocoder.backend == "coreML"  # still Core ML for the next chunk that fits
