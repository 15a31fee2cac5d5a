"""KokoroSession with a companion folder of several vocoder buckets (the layout `convert kokoro` writes).

Stand-in ML Programs with the tiny model's four vocoder inputs, buckets of 8 and 24 text frames: each
one's "audio" is every F0 frame repeated 300 times, times a per-bucket factor (1 and 2), so the audio
tells which bucket spoke a chunk. They check that the session loads every bucket the manifest lists,
picks the smallest that fits, sends longer chunks to MLX and records it; and that NaN from one bucket
(at run time: zeros, the warm-up input, stay finite) falls back to MLX with the event and the record.
The same stand-ins as one multi-function package (the macOS 15 / iOS 18 layout) load a function per
bucket and speak as the per-package layout does; a manifest naming a missing function falls back to MLX.
They prove nothing about a real Kokoro vocoder package (tests/convert and test_vocoder_coreml_bucket.py do).
"""

from __future__ import annotations

import json
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest
from session_tiny import TINY_CONFIG, build_tiny_folder

from mlx_audio_coreml.errors import UnknownFunction
from mlx_audio_coreml.kokoro.session import KokoroSession
from mlx_audio_coreml.kokoro.text import PAD_ID
from mlx_audio_coreml.options import BackendPreference, Component, ModelLoadingOptions
from mlx_audio_coreml.progress import CompilationFailed, CoreMLUnavailable, WhisperProgress

BUCKETS = {8: 1.0, 24: 2.0}  # text frames -> the stand-in's audio factor


def _stand_in(path: Path, frames: int, factor: float, nan_on_speech: bool = False) -> None:
    ct = pytest.importorskip("coremltools")
    from coremltools.converters.mil import Builder as mb

    from mlx_audio_coreml.vocoders import SAMPLE_RATE_METADATA_KEY

    hidden, style = TINY_CONFIG["hidden_dim"], TINY_CONFIG["style_dim"]
    specs = [mb.TensorSpec(shape=s) for s in ((1, hidden, frames), (1, 2 * frames), (1, 2 * frames), (1, style))]

    @mb.program(input_specs=specs, opset_version=ct.target.macOS13)
    def program(asr, f0, energy, style):
        tiled = mb.tile(x=mb.expand_dims(x=mb.mul(x=f0, y=factor), axes=[-1]), reps=[1, 1, 300])
        audio = mb.reshape(x=tiled, shape=[1, 600 * frames])
        unused = mb.add(x=mb.reduce_sum(x=asr, axes=[1, 2]), y=mb.reduce_sum(x=energy, axes=[1]))
        unused = mb.add(x=unused, y=mb.reduce_sum(x=style, axes=[1]))  # (1,): inputs a program must read
        if nan_on_speech:  # sqrt(-|f0|): NaN for any voiced frame, 0 for the warm-up's zeros
            unused = mb.add(x=unused, y=mb.reduce_sum(x=mb.sqrt(x=mb.mul(x=mb.abs(x=f0), y=-1.0)), axes=[1]))
        return mb.add(x=audio, y=mb.mul(x=mb.expand_dims(x=unused, axes=[-1]), y=0.0), name="audio")

    model = ct.convert(
        program, convert_to="mlprogram", skip_model_load=True,
        minimum_deployment_target=ct.target.macOS13, compute_precision=ct.precision.FLOAT32,
    )  # fmt: skip
    model.user_defined_metadata[SAMPLE_RATE_METADATA_KEY] = "24000"
    model.save(str(path))


def _companion(folder: Path, nan_bucket: int | None = None) -> Path:
    """A companion folder as convert/kokoro.py lays it out: a package per bucket and manifest.json."""
    folder.mkdir(parents=True)
    names = {str(b): f"AudioVocoder-{b}.mlpackage" for b in BUCKETS}
    for frames, factor in BUCKETS.items():
        _stand_in(folder / names[str(frames)], frames, factor, nan_on_speech=frames == nan_bucket)
    vocoder = {"path": names["8"], "packages": names, "sample_rate": 24000}
    (folder / "manifest.json").write_text(json.dumps({"components": {"vocoder": vocoder}}))
    return folder


def _session(tmp: pytest.TempPathFactory, companion: Path) -> tuple[KokoroSession, list[WhisperProgress]]:
    events: list[WhisperProgress] = []
    options = ModelLoadingOptions(
        backend_overrides={Component.VOCODER: BackendPreference.CORE_ML},
        coreml_runtime="portable",
        coreml_sources={Component.VOCODER: companion},
    )
    folder = build_tiny_folder(tmp.mktemp("kokoro-tiny"))
    return KokoroSession.from_pretrained(folder, options, events.append, g2p="espeak"), events


@pytest.fixture(scope="module")
def two_buckets(tmp_path_factory: pytest.TempPathFactory) -> tuple[KokoroSession, list[WhisperProgress]]:
    return _session(tmp_path_factory, _companion(tmp_path_factory.mktemp("companion") / "tiny-coreml"))


def _spoken(session: KokoroSession, tokens: int) -> tuple[np.ndarray, np.ndarray]:
    """(the session's audio, F0 repeated 300 times) for a chunk of `tokens` phonemes (+2 pad frames)."""
    (piece,) = list(session.stream(phonemes="a" * tokens, voice="af_test"))
    ids = mx.array([[PAD_ID, *piece.chunk.token_ids, PAD_ID]], dtype=mx.int32)
    style = mx.array(session.voice_library.style("af_test", len(piece.chunk.token_ids)))
    features, _ = session.pipeline.model.features(ids, style, 1.0)
    assert features.frames == tokens + 2  # one frame per token in the tiny model
    return piece.audio, np.repeat(np.array(features.f0[0]), 300)


def test_every_bucket_of_the_companion_is_loaded_and_recorded(two_buckets) -> None:
    session, events = two_buckets
    info = session.info
    assert session.vocoder.backend == "coreML" and info.vocoder_backend is BackendPreference.CORE_ML
    assert not info.did_fallback and not any(isinstance(e, CoreMLUnavailable) for e in events)
    assert "vocoder buckets on Core ML (text frames): 8, 24; chunks over 24 frames on MLX" in info.notes


@pytest.mark.parametrize(("tokens", "factor"), [(3, 1.0), (6, 1.0), (7, 2.0), (22, 2.0)])
def test_each_chunk_is_spoken_by_the_smallest_bucket_that_holds_it(two_buckets, tokens, factor) -> None:
    audio, f0 = _spoken(two_buckets[0], tokens)
    np.testing.assert_allclose(audio, factor * f0, rtol=1e-6, atol=1e-6)


def test_a_chunk_longer_than_every_bucket_is_spoken_by_mlx(two_buckets) -> None:
    session, _ = two_buckets
    audio, f0 = _spoken(session, 30)
    assert len(audio) == 32 * 600 and not any(np.allclose(audio, k * f0) for k in BUCKETS.values())
    assert session.vocoder.backend == "coreML"  # still Core ML for the next chunk that fits


def test_nan_from_one_bucket_falls_back_to_mlx_with_the_event_and_the_record(tmp_path_factory) -> None:
    companion = _companion(tmp_path_factory.mktemp("nan") / "tiny-coreml", nan_bucket=24)
    session, events = _session(tmp_path_factory, companion)
    assert session.vocoder.backend == "coreML"  # the warm-up's zeros were finite
    small, f0 = _spoken(session, 4)
    np.testing.assert_allclose(small, f0, rtol=1e-6, atol=1e-6)  # bucket 8 is fine
    audio, _ = _spoken(session, 12)  # bucket 24 gives NaN: MLX answers this very call
    assert np.isfinite(audio).all() and len(audio) == 14 * 600
    info = session.info
    assert session.vocoder.backend == "mlx" and info.vocoder_backend is BackendPreference.MLX and info.did_fallback
    (event,) = [e for e in events if isinstance(e, CoreMLUnavailable)]
    assert "inference failed" in event.reason and "NaN" in event.reason
    recorded = info.component(Component.VOCODER)
    assert recorded is not None and recorded.fallback_reason == event.reason
    assert not any("vocoder buckets" in n for n in info.notes)


def _multifunction_companion(tmp: pytest.TempPathFactory, functions: dict[str, str] | None = None) -> Path:
    """The macOS 15 / iOS 18 layout of the same stand-ins: one package, a function `frames_<N>` per bucket
    (default frames_24), and a manifest naming the package and each bucket's function."""
    from mlx_audio_coreml.convert.package import save_multifunction

    parts = _companion(tmp.mktemp("parts") / "parts")
    companion = tmp.mktemp("multi") / "tiny-coreml"
    companion.mkdir()
    sources = {f"frames_{b}": parts / f"AudioVocoder-{b}.mlpackage" for b in BUCKETS}
    metadata = {"mlx_audio_coreml.sample_rate": "24000"}
    save_multifunction(sources, "frames_24", companion / "AudioVocoder.mlpackage", metadata, "stand-in")
    listed = functions or {str(b): f"frames_{b}" for b in BUCKETS}
    vocoder = {"path": "AudioVocoder.mlpackage", "functions": listed, "sample_rate": 24000}
    (companion / "manifest.json").write_text(json.dumps({"components": {"vocoder": vocoder}}))
    return companion


def test_a_multifunction_companion_runs_every_bucket_as_its_own_function(tmp_path_factory, two_buckets) -> None:
    """Each bucket loads as one function of the one package (the portable runtime, named), and every
    chunk is spoken as the per-package layout's session speaks it."""
    session, events = _session(tmp_path_factory, _multifunction_companion(tmp_path_factory))
    assert session.vocoder.backend == "coreML" and not any(isinstance(e, CoreMLUnavailable) for e in events)
    assert "vocoder buckets on Core ML (text frames): 8, 24; chunks over 24 frames on MLX" in session.info.notes
    for tokens, factor in ((3, 1.0), (7, 2.0), (22, 2.0)):  # bucket 8, bucket 24, bucket 24
        audio, f0 = _spoken(session, tokens)
        np.testing.assert_allclose(audio, factor * f0, rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(audio, _spoken(two_buckets[0], tokens)[0])


def test_a_manifest_naming_a_function_the_package_lacks_falls_back_to_mlx_naming_it(tmp_path_factory) -> None:
    companion = _multifunction_companion(tmp_path_factory, {"8": "frames_8", "16": "frames_16"})
    session, events = _session(tmp_path_factory, companion)
    assert session.vocoder.backend == "mlx" and session.info.did_fallback
    (event,) = [e for e in events if isinstance(e, CompilationFailed)]
    assert isinstance(event.error, UnknownFunction)
    assert (event.error.function, event.error.available) == ("frames_16", ("frames_8", "frames_24"))
    recorded = session.info.component(Component.VOCODER)
    assert recorded is not None and "no function 'frames_16'" in (recorded.fallback_reason or "")
