"""Finding 1: a corrupt Core ML package gave garbage text with no error and no fallback (2,000 bytes
of weight.bin set to 0xFF: encoder output all NaN, `session.info` said Core ML, text `!!!!!!...`),
and a package without Manifest.json loaded although Core ML refuses it. Now a package is checked at
load (manifest, every weight blob's record against the spec), a prewarm on zeros with non-finite
output is a failed compile, and either way the encoder falls back to MLX, says so and records why."""

from __future__ import annotations

import shutil
import struct

import mlx.core as mx
import pytest

from mlx_audio_coreml.loading.devices import DeviceFacts
from mlx_audio_coreml.loading.selection import LoadEnvironment, RuntimeProvider
from mlx_audio_coreml.options import BackendPreference, Component, ModelLoadingOptions
from mlx_audio_coreml.whisper.session import WhisperSession
from speech_data import JFK

M1_MAC = DeviceFacts(
    os_name="Darwin", os_version="14.5", chip="Apple M1", coreml_available=True, has_neural_engine=True
)
_SENTINEL = struct.pack("<I", 0xDEADBEEF)


def _session(model_dir, package) -> WhisperSession:
    options = ModelLoadingOptions.default().with_(
        coreml_runtime="portable", coreml_sources={Component.ENCODER: package}
    )
    return WhisperSession.from_pretrained(model_dir, options, environment=LoadEnvironment(M1_MAC, RuntimeProvider()))


def _largest_blob(weight_bin) -> tuple[int, int, int]:
    """(record offset, data offset, size) of the biggest tensor in a MIL weight file."""
    data = weight_bin.read_bytes()
    records, at = [], data.find(_SENTINEL, 64)
    while at != -1:
        _sentinel, _dtype, size, offset = struct.unpack_from("<IIQQ", data, at)
        records.append((at, offset, size))
        at = data.find(_SENTINEL, at + 64)
    return max(records, key=lambda r: r[2])


def _copy(package, tmp_path):
    copy = tmp_path / package.name
    shutil.copytree(package, copy)
    return copy, next(copy.rglob("weight.bin"))


def _text(session) -> str:
    segments, _ = session.transcribe(str(JFK), beam_size=1, temperature=0.0, without_timestamps=True)
    return " ".join(s.text for s in segments)


@pytest.fixture(scope="module")
def mlx_text(tiny_random_dir) -> str:
    return _text(WhisperSession.from_pretrained(tiny_random_dir, ModelLoadingOptions.mlx_only()))


def test_the_intact_package_runs_on_core_ml(tiny_random_dir, tiny_package):
    info = _session(tiny_random_dir, tiny_package).info  # the setup itself: not a fallback already
    assert info.encoder_backend is BackendPreference.CORE_ML and not info.did_fallback


@pytest.mark.slow  # three sessions and transcriptions: ~1 min at this machine's load
def test_0xff_in_the_weights_falls_back_to_mlx_and_says_why(tiny_random_dir, tiny_package, tmp_path, mlx_text):
    package, weight_bin = _copy(tiny_package, tmp_path)
    _record, offset, size = _largest_blob(weight_bin)
    data = bytearray(weight_bin.read_bytes())
    data[offset + 64 : offset + 2064] = b"\xff" * 2000  # inside the tensor: NaN float32 values
    weight_bin.write_bytes(bytes(data))

    session = _session(tiny_random_dir, package)

    info = session.info
    assert info.encoder_backend is BackendPreference.MLX and info.did_fallback
    assert "NaN or Inf" in info.fallback_reasons[0]
    assert bool(mx.all(mx.isfinite(session.encoder.encode(mx.zeros((1, 80, 3000))))).item())
    assert _text(session) == mlx_text  # the MLX encoder's text, not "!!!!!!"


@pytest.mark.slow
def test_0xff_over_a_weight_record_is_a_package_error_at_load(tiny_random_dir, tiny_package, tmp_path, mlx_text):
    package, weight_bin = _copy(tiny_package, tmp_path)
    record, _offset, _size = _largest_blob(weight_bin)
    data = bytearray(weight_bin.read_bytes())
    data[record : record + 2000] = b"\xff" * 2000  # the record: sentinel, type, size, offset
    weight_bin.write_bytes(bytes(data))

    session = _session(tiny_random_dir, package)

    info = session.info
    assert info.encoder_backend is BackendPreference.MLX and info.did_fallback
    assert "weight blob at offset" in info.fallback_reasons[0]
    assert _text(session) == mlx_text


def test_a_package_without_manifest_is_refused_as_core_ml_refuses_it(tiny_random_dir, tiny_package, tmp_path):
    package, _weights = _copy(tiny_package, tmp_path)
    (package / "Manifest.json").unlink()

    info = _session(tiny_random_dir, package).info

    assert info.encoder_backend is BackendPreference.MLX and info.did_fallback
    assert "Manifest.json" in info.fallback_reasons[0]
