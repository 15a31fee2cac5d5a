"""Core ML package downloads that fail: each emits DownloadFailed, the session continues on MLX with
did_fallback, no partial or corrupt file is ever used, and the next load recovers.

The failures are real: the loopback hub answers 404 and 500, drops the connection mid-file, stalls
past huggingface_hub's timeouts, or serves wrong bytes; "disk full" is a 256 KiB tmpfs mounted
over the package store (root only; otherwise a file-size limit, RLIMIT_FSIZE, plays it).
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from loading_fakehub import Fault
from loading_helpers import TURBO, TURBO_COREML_REPO

import mlx_audio_coreml  # noqa: F401  (BLAS first)
from mlx_audio_coreml.errors import CorruptDownload, DownloadError, NetworkError
from mlx_audio_coreml.options import BackendPreference, ModelLoadingOptions
from mlx_audio_coreml.progress import DownloadFailed, DownloadingCoreML
from mlx_audio_coreml.whisper.model_names import local_store
from mlx_audio_coreml.whisper.session import WhisperSession

OPTIONS = ModelLoadingOptions.default().with_(coreml_runtime="portable")
WEIGHTS = "AudioEncoder.mlpackage/Data/com.apple.CoreML/weights/weight.bin"  # the package's big (LFS) file


def _companion_cache(home: Path) -> Path:
    """Where Core ML packages land: plain files under $MLX_AUDIO_COREML_HOME/packages (hub.py)."""
    return home / "mlx-audio-coreml" / "packages" / ("models--" + TURBO_COREML_REPO.replace("/", "--"))


def _assert_fell_back(session: WhisperSession, events, error_type: type, text: str) -> DownloadFailed:
    [failed] = events.of(DownloadFailed)
    assert isinstance(failed.error, error_type), failed.error
    assert text in str(failed.error)
    assert session.encoder.backend == "mlx" and session.encoder.coreml is None
    info = session.info
    assert info.encoder_backend is BackendPreference.MLX and info.did_fallback
    assert "Core ML" in info.fallback_reasons[0] or "download" in info.fallback_reasons[0]
    return failed


def _assert_no_bad_file_kept(home: Path, companion) -> None:
    """The failed file is in no snapshot, and no file anywhere holds the corrupted bytes."""
    cache = _companion_cache(home)
    assert not list(cache.glob(f"snapshots/*/{WEIGHTS}"))
    good = companion.files[WEIGHTS]
    corrupted = good[:-1] + bytes([good[-1] ^ 0xFF])
    for path in cache.rglob("*"):
        if path.is_file() and path.stat().st_size == len(good):
            assert path.read_bytes() != corrupted, path


def _assert_recovers(env, events) -> None:
    events.clear()
    session = WhisperSession.from_pretrained(TURBO, OPTIONS, events, environment=env)
    assert session.encoder.backend == "coreML" and not events.of(DownloadFailed)


@pytest.mark.parametrize(
    "fault, error_type, text",
    [
        (Fault(status=404, head_ok=False), DownloadError, "HTTP 404"),
        (Fault(status=500), DownloadError, "HTTP 500"),
        (Fault(corrupt=True), CorruptDownload, "sha256"),
    ],
    ids=["file-404", "file-500", "corrupt-bytes"],
)
def test_failed_file_download_falls_back_and_recovers(
    turbo_on_hub, hub_settings, isolated_home, m1_portable, events, fault, error_type, text
):
    companion = turbo_on_hub[1]
    companion.faults[WEIGHTS] = fault

    session = WhisperSession.from_pretrained(TURBO, OPTIONS, events, environment=m1_portable)

    _assert_fell_back(session, events, error_type, text)
    assert events.of(DownloadingCoreML)[0] == DownloadingCoreML(0.0)
    _assert_no_bad_file_kept(isolated_home, companion)
    companion.faults.clear()
    _assert_recovers(m1_portable, events)


def test_server_error_on_the_repo_lookup_falls_back(turbo_on_hub, hub_settings, m1_portable, events):
    turbo_on_hub[1].api_status = 500

    session = WhisperSession.from_pretrained(TURBO, OPTIONS, events, environment=m1_portable)

    _assert_fell_back(session, events, DownloadError, "HTTP 500")
    assert not events.of(DownloadingCoreML)  # it failed before any byte was asked for


def test_connection_dropped_mid_file_falls_back_and_resumes_later(
    turbo_on_hub, hub_settings, isolated_home, m1_portable, events
):
    companion = turbo_on_hub[1]
    companion.faults[WEIGHTS] = Fault(drop_after=100_000)  # every attempt ends at byte 100 000

    session = WhisperSession.from_pretrained(TURBO, OPTIONS, events, environment=m1_portable)

    _assert_fell_back(session, events, NetworkError, "")
    fractions = [e.fraction for e in events.of(DownloadingCoreML)]
    assert 0.0 < max(fractions) < 1.0  # bytes arrived, the file never completed
    _assert_no_bad_file_kept(isolated_home, companion)
    companion.faults.clear()
    _assert_recovers(m1_portable, events)


def test_slow_hub_past_the_metadata_timeout_falls_back(turbo_on_hub, hub_settings, m1_portable, events, monkeypatch):
    monkeypatch.setenv("HF_HUB_ETAG_TIMEOUT", "1")
    turbo_on_hub[1].api_stall_s = 3.0

    session = WhisperSession.from_pretrained(TURBO, OPTIONS, events, environment=m1_portable)

    _assert_fell_back(session, events, NetworkError, "Timeout")


def test_slow_file_past_the_download_timeout_falls_back(
    turbo_on_hub, hub_settings, isolated_home, m1_portable, events, monkeypatch
):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DOWNLOAD_TIMEOUT", 1)  # HF_HUB_DOWNLOAD_TIMEOUT=1
    companion = turbo_on_hub[1]
    companion.faults[WEIGHTS] = Fault(stall_s=1.5)

    session = WhisperSession.from_pretrained(TURBO, OPTIONS, events, environment=m1_portable)

    _assert_fell_back(session, events, NetworkError, "Timeout")
    _assert_no_bad_file_kept(isolated_home, companion)


@pytest.mark.filterwarnings("ignore:Not enough free disk space:UserWarning")
def test_disk_full_falls_back_and_leaves_no_partial_file(
    tiny_model_dir, turbo_on_hub, hub_settings, isolated_home, m1_portable, events, record_property
):
    shutil.copytree(tiny_model_dir, local_store() / TURBO)  # the model is installed: only the package downloads
    packages = isolated_home / "mlx-audio-coreml" / "packages"
    packages.mkdir(parents=True)
    with _full_disk(packages, limit_bytes=256 * 1024) as how:
        record_property("disk_full_by", how)
        session = WhisperSession.from_pretrained(TURBO, OPTIONS, events, environment=m1_portable)

    _assert_fell_back(session, events, DownloadError, "disk full")
    assert not list(_companion_cache(isolated_home).rglob("*.incomplete"))  # the space was given back
    _assert_no_bad_file_kept(isolated_home, turbo_on_hub[1])


@contextlib.contextmanager
def _full_disk(folder: Path, limit_bytes: int):
    """A tmpfs of `limit_bytes` over `folder` when we may mount; else RLIMIT_FSIZE for this process."""
    mounted = (
        os.geteuid() == 0
        and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={limit_bytes}", "tmpfs", str(folder)], capture_output=True
        ).returncode
        == 0
    )
    if mounted:
        try:
            yield "tmpfs"
        finally:
            subprocess.run(["umount", "-l", str(folder)], check=False)
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, hard))
    try:
        yield "rlimit"
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
