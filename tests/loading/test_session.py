"""WhisperSession beyond the seed's scenarios: background loading, warmup left to the app, the
offline cache, presets end to end, companion matching, inference fallback, SessionInfo accuracy."""

from __future__ import annotations

import asyncio
import json
import shutil
import time

import mlx.core as mx
import pytest
from loading_fakehub import FakeRepo
from loading_helpers import JFK, TURBO, TURBO_COREML_REPO, TURBO_REPO, files_of

import mlx_audio_coreml  # noqa: F401  (BLAS first)
from mlx_audio_coreml.errors import ModelNotFound, PredictionFailed, QuantizationFailed
from mlx_audio_coreml.options import BackendPreference, Component, ModelLoadingOptions, WhisperQuantization
from mlx_audio_coreml.progress import CoreMLUnavailable, DownloadingCoreML, Loading
from mlx_audio_coreml.whisper.model_names import local_store
from mlx_audio_coreml.whisper.session import WhisperSession

PORTABLE = ModelLoadingOptions.default().with_(coreml_runtime="portable")
CORE_ML, MLX = BackendPreference.CORE_ML, BackendPreference.MLX


def test_load_in_background_returns_at_once_and_loads_on_a_worker(turbo_on_hub, hub_settings, m1_portable, events):
    turbo_on_hub[0].api_stall_s = 1.0  # the model's hub lookup takes a second
    started = time.monotonic()

    session = WhisperSession.from_pretrained(
        TURBO, PORTABLE.with_(load_in_background=True), events, environment=m1_portable
    )

    assert time.monotonic() - started < 0.5 and not session.ready
    assert session.wait_ready(timeout_s=60) and session.ready  # usable on MLX from here on
    assert session.info.encoder_backend in (MLX, CORE_ML)  # the compile may still run on the worker
    assert session.warmup() is True  # joins the worker's compile (or runs it) and reports Core ML
    assert session.info.encoder_backend is CORE_ML and not session.info.did_fallback
    assert events.of(Loading) == [Loading(0.0), Loading(1.0)]


def test_background_load_errors_surface_on_first_use(hub_settings, isolated_home):
    session = WhisperSession.from_pretrained("large-v2", ModelLoadingOptions(load_in_background=True))  # not on the hub
    with pytest.raises(ModelNotFound):
        session.wait_ready(timeout_s=30)
    with pytest.raises(ModelNotFound):
        session.transcribe(JFK)


def test_max_performance_preset_end_to_end(turbo_on_hub, hub_settings, m1_portable):
    options = ModelLoadingOptions.max_performance().with_(coreml_runtime="portable")

    session = WhisperSession.from_pretrained(TURBO, options, environment=m1_portable)

    assert session.warmup() is True  # waits for the background load and its compile
    info = session.info
    assert info.quantization is WhisperQuantization.INT4 and session.bundle.quantization.bits == 4
    assert info.encoder_backend is CORE_ML and not info.did_fallback
    assert info.components[0].requested is CORE_ML


def test_warmup_left_to_the_app_starts_on_mlx_then_switches(turbo_on_hub, hub_settings, m1_portable, events):
    session = WhisperSession.from_pretrained(TURBO, PORTABLE, events, environment=m1_portable, warmup=False)

    pending = session.info
    assert pending.encoder_backend is MLX and not pending.did_fallback  # waiting, not failed
    assert "compile pending" in pending.components[0].reason and pending.compile_duration_s is None
    assert session.warmup() is True
    assert session.info.encoder_backend is CORE_ML and session.info.encoder_runtime == "portable"
    assert session.warmup() is True  # already warm: nothing to do


def test_async_warmup_switches_to_coreml(turbo_on_hub, hub_settings, m1_portable):
    session = WhisperSession.from_pretrained(TURBO, PORTABLE, environment=m1_portable, warmup=False)
    assert asyncio.run(session.warmup_async()) is True
    assert session.encoder.backend == "coreML"


def test_cache_survives_a_restart_and_serves_offline(turbo_on_hub, hub_settings, fake_hub, m1_portable, monkeypatch):
    WhisperSession.from_pretrained(TURBO, PORTABLE, environment=m1_portable)  # downloads model + package
    before = len(fake_hub.requests)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    session = WhisperSession.from_pretrained(TURBO, PORTABLE, environment=m1_portable)  # a new "process"

    assert len(fake_hub.requests) == before  # not one request
    assert session.info.encoder_backend is CORE_ML


def test_offline_without_a_cached_package_is_unavailable_not_failed(
    tiny_model_dir, isolated_home, m1_portable, events, monkeypatch
):
    shutil.copytree(tiny_model_dir, local_store() / TURBO)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    session = WhisperSession.from_pretrained(TURBO, PORTABLE, events, environment=m1_portable)

    [unavailable] = events.of(CoreMLUnavailable)
    assert unavailable.reason.startswith("Model not available") and "HF_HUB_OFFLINE" in unavailable.reason
    assert session.info.encoder_backend is MLX


def test_local_companion_beside_the_installed_model_is_used_without_the_hub(
    tiny_model_dir, tiny_companion_dir, isolated_home, m1_portable, events, monkeypatch
):
    shutil.copytree(tiny_model_dir, local_store() / TURBO)
    shutil.copytree(tiny_companion_dir, local_store() / f"{TURBO}-coreml")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the hub is unreachable

    session = WhisperSession.from_pretrained(TURBO, PORTABLE, events, environment=m1_portable)

    assert session.info.encoder_backend is CORE_ML
    assert session.info.components[0].package.startswith(str(local_store()))
    assert events.of(DownloadingCoreML) == [DownloadingCoreML(1.0)]


def test_configured_package_path_overrides_the_companion(
    tiny_model_dir, tiny_companion_dir, isolated_home, m1_portable
):
    package = tiny_companion_dir / "AudioEncoder.mlpackage"
    options = PORTABLE.with_(coreml_sources={Component.ENCODER: package})

    session = WhisperSession.from_pretrained(tiny_model_dir, options, environment=m1_portable)

    assert session.info.encoder_backend is CORE_ML and session.info.components[0].package == str(package)


def test_package_converted_from_other_weights_is_refused_before_download(
    turbo_on_hub, hub_settings, fake_hub, m1_portable, events
):
    companion = turbo_on_hub[1]
    manifest = json.loads(companion.files["manifest.json"])
    manifest["source"]["weights_sha256"] = "f" * 64
    companion.files["manifest.json"] = json.dumps(manifest).encode()

    session = WhisperSession.from_pretrained(TURBO, PORTABLE, events, environment=m1_portable)

    [unavailable] = events.of(CoreMLUnavailable)
    assert "converted from other weights" in unavailable.reason
    assert session.info.encoder_backend is MLX and session.info.did_fallback
    assert not fake_hub.requested("weight.bin")


def test_package_that_does_not_fit_the_model_is_refused(
    tiny_companion_dir, fake_hub, hub_settings, m1_portable, events, tmp_path
):
    other = _tiny_model(tmp_path / "wider", width=128)
    fake_hub.add(FakeRepo(TURBO_REPO, files_of(other)))
    files = files_of(tiny_companion_dir)
    del files["manifest.json"]  # no manifest: the weights cannot be compared, the shapes still can
    fake_hub.add(FakeRepo(TURBO_COREML_REPO, files))

    session = WhisperSession.from_pretrained(TURBO, PORTABLE, events, environment=m1_portable)

    [unavailable] = events.of(CoreMLUnavailable)
    assert "does not fit the model" in unavailable.reason
    assert session.info.encoder_backend is MLX and session.info.did_fallback


def test_quantization_that_cannot_apply_falls_back_to_float16(tmp_path, isolated_home):
    folder = _tiny_model(tmp_path / "odd", width=40)  # neither 40 nor 160 (MLP) splits into 64-wide groups
    options = ModelLoadingOptions.mlx_only().with_(quantization=WhisperQuantization.INT4)

    session = WhisperSession.from_pretrained(folder, options)

    info = session.info  # unquantized: float16, or float32 where MLX runs on the CPU, as the note says
    assert info.quantization in (WhisperQuantization.FLOAT16, WhisperQuantization.FLOAT32)
    assert f"MLX weights in {info.quantization.value}" in info.notes and session.bundle.quantization is None
    assert any("int4 quantization failed" in note for note in info.notes)
    with pytest.raises(QuantizationFailed):
        WhisperSession.from_pretrained(folder, options.with_(fallback_to_float16=False))


def test_inference_failure_moves_the_encoder_to_mlx(turbo_on_hub, hub_settings, m1_portable, events):
    session = WhisperSession.from_pretrained(TURBO, PORTABLE, events, environment=m1_portable)
    model = session.encoder.coreml.model  # the Core ML model breaks under the session, on either entry
    model.predict = model.predict_mlx = _failing_predict  # (the portable runtime's is predict_mlx)

    states = session.encoder.encode(mx.zeros((1, 80, 3000)))

    assert states.shape == (1, 1500, 64)  # answered by MLX
    assert session.info.encoder_backend is MLX and "inference failed" in session.info.fallback_reasons[0]
    assert "inference failed" in events.of(CoreMLUnavailable)[-1].reason


def test_a_raising_progress_handler_never_breaks_the_load(turbo_on_hub, hub_settings, m1_portable):
    calls = []

    def broken(event) -> None:
        calls.append(event)
        raise RuntimeError("UI gone")

    session = WhisperSession.from_pretrained(TURBO, PORTABLE, broken, environment=m1_portable)

    assert len(calls) > 5 and session.info.encoder_backend is CORE_ML


def test_transcribe_runs_through_the_coreml_encoder(turbo_on_hub, hub_settings, m1_portable):
    session = WhisperSession.from_pretrained(TURBO, PORTABLE, environment=m1_portable)
    used = []
    encode = session.encoder.coreml.encode
    session.encoder.coreml.encode = lambda mel: used.append(mel.shape) or encode(mel)

    segments, info = session.transcribe(JFK, temperature=0.0, without_timestamps=True)
    list(segments)  # random weights: the text is noise; the pipeline is what is checked

    assert used and used[0] == (1, 80, 3000) and info.duration == pytest.approx(11.0, abs=0.1)


def test_nan_encoder_states_move_the_encoder_to_mlx(turbo_on_hub, hub_settings, m1_portable, events):
    session = WhisperSession.from_pretrained(TURBO, PORTABLE, events, environment=m1_portable)
    model = session.encoder.coreml.model  # the package starts answering NaN (a broken compile would)
    model.predict_mlx = lambda inputs: {"encoder_states": mx.full((1, 1500, 64), float("nan"), dtype=mx.float16)}

    states = session.encoder.encode(mx.zeros((1, 80, 3000)))

    assert bool(mx.all(mx.isfinite(states)).item())  # answered by MLX
    assert session.info.encoder_backend is MLX and "NaN or Inf" in session.info.fallback_reasons[0]
    assert "inference failed" in events.of(CoreMLUnavailable)[-1].reason


def test_info_quantization_agrees_with_the_weights_note(tiny_model_dir, isolated_home):
    for wanted in (WhisperQuantization.FLOAT16, WhisperQuantization.FLOAT32):
        session = WhisperSession.from_pretrained(
            tiny_model_dir, ModelLoadingOptions.mlx_only().with_(quantization=wanted)
        )
        info = session.info
        dtype = str(session.bundle.dtype).removeprefix("mlx.core.")
        assert info.quantization.value == dtype and f"MLX weights in {dtype}" in info.notes
    int8 = WhisperSession.from_pretrained(
        tiny_model_dir, ModelLoadingOptions.mlx_only().with_(quantization=WhisperQuantization.INT8)
    )
    dtype = str(int8.bundle.dtype).removeprefix("mlx.core.")
    assert int8.info.quantization is WhisperQuantization.INT8
    assert f"MLX weights in int8 (other parameters in {dtype})" in int8.info.notes


def test_transcribe_keywords_override_the_options_object(tiny_model_dir, isolated_home):
    from mlx_audio_coreml.whisper.transcribe import TranscribeOptions

    session = WhisperSession.from_pretrained(tiny_model_dir, ModelLoadingOptions.mlx_only())
    options = TranscribeOptions(temperature=0.4, without_timestamps=True, no_speech_threshold=None)

    _segments, info = session.transcribe(JFK, options, temperature=0.0, language="en")

    assert info.options.temperature == 0.0 and info.options.language == "en"  # the keywords win
    assert info.options.without_timestamps and info.options.no_speech_threshold is None  # the rest is kept
    with pytest.raises(TypeError):
        session.transcribe(JFK, beam=5)  # a typo is an error, not a silently ignored option


def _failing_predict(inputs, outputs=None):
    raise PredictionFailed("the Neural Engine went away")


def _tiny_model(folder, width: int):
    from loading_helpers import REAL_STORE

    from mlx_audio_coreml.whisper.model import ModelDimensions, Whisper
    from mlx_audio_coreml.whisper.weights import mlx as mlx_format

    dims = ModelDimensions(80, 1500, width, 4, 1, 51864, 448, width, 4, 1)
    model = Whisper(dims, mx.float32)
    mx.eval(model.parameters())
    mlx_format.save(model, folder)
    shutil.copy(REAL_STORE / "tiny.en" / "tokenizer.json", folder / "tokenizer.json")
    return folder


def test_convert_missing_converts_once_and_keeps_the_package(tiny_model_dir, isolated_home, m1_portable, tmp_path):
    folder = shutil.copytree(tiny_model_dir, tmp_path / "my-whisper")  # a local model with no package anywhere
    options = PORTABLE.with_(convert_missing=True)

    first = WhisperSession.from_pretrained(folder, options, environment=m1_portable)

    package = local_store() / "my-whisper-coreml" / "AudioEncoder.mlpackage"
    assert first.info.encoder_backend is CORE_ML and first.info.components[0].package == str(package)
    assert "made now" in first.info.components[0].reason
    manifest = package.parent / "manifest.json"
    written = manifest.stat().st_mtime_ns
    second = WhisperSession.from_pretrained(folder, options, environment=m1_portable)
    assert second.info.encoder_backend is CORE_ML and second.info.components[0].package == str(package)
    assert manifest.stat().st_mtime_ns == written  # found, not converted again
    plain = WhisperSession.from_pretrained(
        tmp_path / "my-whisper", PORTABLE.with_(coreml_sources={}), environment=m1_portable
    )
    assert plain.info.encoder_backend is CORE_ML  # without the option, the kept package is still found
