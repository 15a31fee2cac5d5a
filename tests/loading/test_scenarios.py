"""The seed's Given/When/Then scenarios, one test each, over the real selection, hub, runtime and
session code. Downloads come from a real HTTP server on loopback; device facts are injected.

Core ML here is the portable runtime (it executes the converted package with MLX): it is named
explicitly, as it must be, and it never claims a Neural Engine. The slow-compile scenarios
(timeout, cancellation) need the shim's stand-in build and live in test_standin_scenarios.py.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
from loading_fakehub import FakeRepo
from loading_helpers import A11_IPHONE, TINY_REPO, TURBO, TURBO_COREML_REPO, files_of

import mlx_audio_coreml  # noqa: F401  (BLAS first)
from mlx_audio_coreml.encoders import CoreMLAudioEncoder, MLXAudioEncoder
from mlx_audio_coreml.errors import NetworkError, ShapeConversionFailed
from mlx_audio_coreml.loading.selection import LoadEnvironment
from mlx_audio_coreml.options import BackendPreference, ModelLoadingOptions
from mlx_audio_coreml.progress import (
    CompilingANE,
    CoreMLUnavailable,
    DownloadFailed,
    Downloading,
    DownloadingCoreML,
)
from mlx_audio_coreml.whisper.model_names import local_store
from mlx_audio_coreml.whisper.session import WhisperSession

AUTO_PORTABLE = ModelLoadingOptions.default().with_(coreml_runtime="portable")


def test_auto_selects_coreml_when_available(turbo_on_hub, hub_settings, m1_portable, events):
    # Given large-v3-turbo, its -coreml companion on the hub, an M1 Mac; When backend auto
    session = WhisperSession.from_pretrained(TURBO, AUTO_PORTABLE, events, environment=m1_portable)

    # Then the encoder is the Core ML one and nothing fell back
    assert isinstance(session.encoder.coreml, CoreMLAudioEncoder)
    assert session.encoder.backend == "coreML"
    info = session.info
    assert info.encoder_backend is BackendPreference.CORE_ML
    assert info.did_fallback is False and info.fallback_reasons == ()
    assert info.encoder_runtime == "portable"
    assert info.ane_compiled is False  # the portable runtime never claims the Neural Engine
    assert info.load_duration_s > 0 and info.compile_duration_s is not None
    # The model and the package came over HTTP, with byte progress ending at 1.0, then the compile.
    assert events.of(Downloading)[-1] == Downloading(1.0)
    assert events.of(DownloadingCoreML)[-1] == DownloadingCoreML(1.0)
    assert not events.of(CompilingANE)  # the portable runtime never compiles for a Neural Engine
    assert not events.of(CoreMLUnavailable) and not events.of(DownloadFailed)
    # And the package really computes the model's encoder (float16 package vs float32 MLX).
    mel = mx.random.normal((1, 80, 3000))
    got = np.array(session.encoder.encode(mel))
    want = np.array(session.encoder.mlx.encode(mel))
    assert got.shape == (1, 1500, 64)
    assert np.abs(got - want).max() / np.abs(want).max() < 2e-2


def test_auto_falls_back_to_mlx_when_coreml_unavailable(fake_hub, tiny_model_dir, hub_settings, m1_portable, events):
    # Given the tiny model on the hub and no -coreml repo for it
    fake_hub.add(FakeRepo(TINY_REPO, files_of(tiny_model_dir)))

    session = WhisperSession.from_pretrained("tiny", AUTO_PORTABLE, events, environment=m1_portable)

    assert isinstance(session.encoder.mlx, MLXAudioEncoder) and session.encoder.coreml is None
    assert session.info.encoder_backend is BackendPreference.MLX
    [unavailable] = events.of(CoreMLUnavailable)
    assert unavailable.reason.startswith("Model not available")
    assert TINY_REPO + "-coreml" in unavailable.reason
    # An event, not a fallback: auto never tried Core ML here; the reason is still recorded.
    assert session.info.did_fallback is False and session.info.fallback_reasons == ()
    assert session.info.components[0].reason.startswith("Model not available")


def test_user_forces_mlx_despite_coreml_availability(fake_hub, turbo_on_hub, hub_settings, m1_portable, events):
    options = AUTO_PORTABLE.with_(backend=BackendPreference.MLX)

    session = WhisperSession.from_pretrained(TURBO, options, events, environment=m1_portable)

    assert session.encoder.coreml is None and session.encoder.backend == "mlx"
    assert session.info.encoder_backend is BackendPreference.MLX
    assert fake_hub.requested("-coreml") == []  # no Core ML lookup, let alone a download
    assert fake_hub.requested("whisper-large-v3-turbo/resolve")  # while the model itself was fetched
    assert session.info.did_fallback is False  # MLX was asked for: nothing fell back
    assert not events.of(CoreMLUnavailable) and not events.of(DownloadingCoreML)


def test_auto_falls_back_on_unsupported_device(fake_hub, turbo_on_hub, hub_settings, events):
    environment = LoadEnvironment(device=A11_IPHONE)

    session = WhisperSession.from_pretrained(TURBO, ModelLoadingOptions.default(), events, environment=environment)

    assert session.encoder.coreml is None
    assert session.info.encoder_backend is BackendPreference.MLX
    [unavailable] = events.of(CoreMLUnavailable)
    assert unavailable.reason.startswith("ANE not supported")
    assert "A11" in unavailable.reason
    assert fake_hub.requested("-coreml") == []  # the device rules it out before any lookup


def test_download_failure_with_fallback_enabled(tiny_model_dir, isolated_home, monkeypatch, m1_portable, events):
    # Given the network is unavailable (nothing listens at HF_ENDPOINT) and the model is installed
    import shutil
    import socket

    shutil.copytree(tiny_model_dir, local_store() / TURBO)
    with socket.socket() as probe:  # a port that was free a moment ago: connections are refused
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{dead_port}")
    options = AUTO_PORTABLE.with_(fallback_to_float16=True)

    session = WhisperSession.from_pretrained(TURBO, options, events, environment=m1_portable)

    [failed] = events.of(DownloadFailed)
    assert isinstance(failed.error, NetworkError)
    assert TURBO_COREML_REPO in str(failed.error)
    assert session.encoder.backend == "mlx"
    assert session.info.encoder_backend is BackendPreference.MLX
    assert session.info.did_fallback is True


def test_shape_conversion_failure(turbo_on_hub, hub_settings, m1_portable):
    session = WhisperSession.from_pretrained(TURBO, AUTO_PORTABLE, environment=m1_portable)
    encoder = session.encoder.coreml
    assert isinstance(encoder, CoreMLAudioEncoder)  # Given a Core ML encoder loaded

    with pytest.raises(ShapeConversionFailed) as raised:
        encoder.encode(mx.zeros((1, 80, 5000)))  # When the mel exceeds 3000 frames

    assert raised.value.expected == [1, 80, 3000]
    assert raised.value.got == [1, 80, 5000]
