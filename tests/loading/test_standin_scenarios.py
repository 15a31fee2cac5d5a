"""The seed's slow-compile scenarios (timeout, warmup cancellation) and "auto selects Core ML" on the
apple runtime, played by the shim's test-only stand-in build.

The stand-in is the real shim compiled against a fake `CoreML` module: the compile/load job, its
deadline, cancel, abandon and adoption are the shim's real code; the "model" executes nothing and
returns a declared trivial function. These tests check loading, selection and session behaviour;
they prove nothing about Core ML itself (and the stand-in's Neural Engine is imaginary).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from pathlib import Path

import mlx.core as mx
import pytest
from loading_fakehub import FakeRepo
from loading_helpers import M1_MAC, REPO_ROOT, TURBO, TURBO_COREML_REPO

import mlx_audio_coreml  # noqa: F401  (BLAS first)
from mlx_audio_coreml.cancel import CancelToken
from mlx_audio_coreml.encoders import CoreMLAudioEncoder
from mlx_audio_coreml.errors import ANECompilationTimeout
from mlx_audio_coreml.loading.selection import LoadEnvironment
from mlx_audio_coreml.options import BackendPreference, ModelLoadingOptions
from mlx_audio_coreml.progress import CompilationFailed, CompilingANE
from mlx_audio_coreml.whisper.session import WhisperSession

pytestmark = pytest.mark.standin
STANDIN = REPO_ROOT / "build" / "standin" / "libmacb_standin.so"


@pytest.fixture()
def standin(monkeypatch, isolated_home):
    """The apple runtime, found through the registry as users find it, over the stand-in build."""
    if not STANDIN.exists():
        pytest.skip(f"the shim's stand-in is not built ({STANDIN}); run: bash scripts/build_standin.sh")
    monkeypatch.setenv("MLX_AUDIO_COREML_NATIVE_LIB", str(STANDIN))
    return LoadEnvironment(device=M1_MAC)  # default runtimes: apple comes first and is available


def _serve_standin_companion(fake_hub, tmp_path: Path, **behaviour) -> FakeRepo:
    """`<turbo>-coreml` holding a stand-in package with the tiny model's encoder I/O and `behaviour`."""
    log = tmp_path / "calls.log"
    spec = {
        "inputs": [{"name": "mel", "dtype": "float16", "shape": [1, 80, 3000]}],
        "outputs": [{"name": "encoder_states", "dtype": "float16", "shape": [1, 1500, 64], "scale": 0.0, "bias": 0.5}],
        "call_log": str(log),
        **behaviour,
    }
    body = json.dumps(spec).encode()
    manifest = {"components": {"encoder": {"path": "AudioEncoder.mlpackage"}}, "files": {}}
    files = {"AudioEncoder.mlpackage/standin.json": body, "manifest.json": json.dumps(manifest).encode()}
    return fake_hub.add(FakeRepo(TURBO_COREML_REPO, files, commit=hashlib.sha1(body).hexdigest()))


def _compiles(tmp_path: Path) -> int:
    log = tmp_path / "calls.log"
    return sum(line.startswith("compile") for line in log.read_text().splitlines()) if log.exists() else 0


def test_auto_selects_coreml_when_available_on_the_apple_runtime(
    turbo_on_hub, fake_hub, hub_settings, standin, events, tmp_path
):
    _serve_standin_companion(fake_hub, tmp_path)

    session = WhisperSession.from_pretrained(TURBO, ModelLoadingOptions.default(), events, environment=standin)

    assert isinstance(session.encoder.coreml, CoreMLAudioEncoder)
    info = session.info
    assert info.encoder_backend is BackendPreference.CORE_ML and info.encoder_runtime == "apple"
    assert info.did_fallback is False
    states = session.encoder.encode(mx.zeros((1, 80, 3000)))  # the stand-in's declared constant
    assert states.shape == (1, 1500, 64) and float(states.max()) == float(states.min()) == 0.5


def test_ane_compilation_timeout(turbo_on_hub, fake_hub, hub_settings, standin, events, tmp_path):
    assert ModelLoadingOptions.default().compile_timeout_s == 600  # the seed's default: 10 minutes
    _serve_standin_companion(fake_hub, tmp_path, compile_delay_s=20)  # "requiring > the timeout"
    options = ModelLoadingOptions.default().with_(compile_timeout_s=0.5)  # 10 minutes, scaled down
    session = WhisperSession.from_pretrained(TURBO, options, events, environment=standin, warmup=False)

    started = time.monotonic()
    with pytest.raises(ANECompilationTimeout) as raised:
        session.warmup()

    assert 0.5 <= time.monotonic() - started < 1.5 and raised.value.timeout_s == 0.5
    [failed] = events.of(CompilationFailed)
    assert failed.error is raised.value  # the seed's .compilationFailed(.timeout)
    assert events.of(CompilingANE)[0] == CompilingANE(0.0)
    assert session.encoder.backend == "mlx" and session.info.encoder_backend is BackendPreference.MLX
    assert session.info.did_fallback and "timed out" in session.info.fallback_reasons[0]
    assert session.encoder.encode(mx.zeros((1, 80, 3000))).shape == (1, 1500, 64)  # MLX serves
    assert session.warmup() is False  # a timed-out compile is not retried


def test_compile_timeout_during_load_falls_back_without_raising(
    turbo_on_hub, fake_hub, hub_settings, standin, events, tmp_path
):
    _serve_standin_companion(fake_hub, tmp_path, load_delay_s=20)
    options = ModelLoadingOptions.default().with_(compile_timeout_s=0.5)

    session = WhisperSession.from_pretrained(TURBO, options, events, environment=standin)

    assert isinstance(events.of(CompilationFailed)[0].error, ANECompilationTimeout)
    assert session.info.encoder_backend is BackendPreference.MLX and session.info.did_fallback


def test_warmup_cancellation(turbo_on_hub, fake_hub, hub_settings, standin, events, tmp_path):
    _serve_standin_companion(fake_hub, tmp_path, compile_delay_s=3)
    session = WhisperSession.from_pretrained(
        TURBO, ModelLoadingOptions.default(), events, environment=standin, warmup=False
    )

    async def scenario() -> tuple[object, float]:
        warmup_task = asyncio.create_task(session.warmup_async())
        await asyncio.sleep(0.3)  # the compile is under way
        assert events.of(CompilingANE) and not warmup_task.done()
        cancelled_at = time.monotonic()
        warmup_task.cancel()
        result = await warmup_task  # no error is thrown: the cancellation is clean
        return result, time.monotonic() - cancelled_at

    result, stop_s = asyncio.run(scenario())

    assert result is False and stop_s < 1.0  # stops within 1 second
    assert not events.of(CompilationFailed)
    assert session.encoder.backend == "mlx"
    assert session.encoder.encode(mx.zeros((1, 80, 3000))).shape == (1, 1500, 64)  # usable on MLX
    assert session.info.did_fallback and "cancelled" in session.info.fallback_reasons[0]


def test_sync_warmup_cancellation_then_retry_adopts_the_abandoned_compile(
    turbo_on_hub, fake_hub, hub_settings, standin, events, tmp_path
):
    _serve_standin_companion(fake_hub, tmp_path, compile_delay_s=2)
    session = WhisperSession.from_pretrained(
        TURBO, ModelLoadingOptions.default(), events, environment=standin, warmup=False
    )
    token = CancelToken()
    threading.Timer(0.3, token.cancel).start()

    started = time.monotonic()
    assert session.warmup(cancel=token) is False
    assert time.monotonic() - started < 1.3  # 0.3 s until the cancel, then well within a second

    assert session.warmup() is True  # the app tries again later
    assert session.info.encoder_backend is BackendPreference.CORE_ML and not session.info.did_fallback
    assert _compiles(tmp_path) == 1  # the second warmup adopted the abandoned native compile


def test_auto_leaves_an_uncompiled_package_to_warmup_when_the_delay_is_not_accepted(
    turbo_on_hub, fake_hub, hub_settings, standin, events, tmp_path
):
    _serve_standin_companion(fake_hub, tmp_path)
    options = ModelLoadingOptions.default().with_(accept_compile_delay=False)

    first = WhisperSession.from_pretrained(TURBO, options, events, environment=standin)

    assert first.info.encoder_backend is BackendPreference.MLX and _compiles(tmp_path) == 0
    assert "accept_compile_delay" in first.info.components[0].reason
    assert first.warmup() is True and _compiles(tmp_path) == 1  # the app chose when to pay for it
    second = WhisperSession.from_pretrained(TURBO, options, environment=standin)
    assert second.info.encoder_backend is BackendPreference.CORE_ML  # pre-compiled now: auto takes it
    assert _compiles(tmp_path) == 1  # from the compiled cache
