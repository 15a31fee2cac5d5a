"""Audio in: read a file or take an array, and return mono float32 samples at the rate a model wants.

WAV, FLAC and OGG are read with soundfile; anything else goes through ffmpeg when it is on PATH
(decoded at the file's own rate, found with ffprobe). Other sample rates are converted with soxr
(a band-limited resampler, not linear interpolation).
Every failure is a typed error from `errors`: AudioDecodeError, EmptyAudio, NonFiniteAudio.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import AudioDecodeError, EmptyAudio, NonFiniteAudio

DEFAULT_RATE = 16000  # what an array without a stated rate is taken to be (Whisper's rate)

_SOUNDFILE_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".au", ".w64", ".rf64"}


def decode_audio(
    source: str | Path | np.ndarray | Any, sample_rate: int | None = None, *, target_rate: int = DEFAULT_RATE
) -> np.ndarray:
    """Return `source` as float32 mono samples at `target_rate`.

    `source` is a path, a numpy array or an MLX array. For arrays, `sample_rate` is their rate
    (default 16000); a 2-D array is (samples, channels) when its last axis is the shorter one,
    otherwise (channels, samples), and channels are averaged.
    """
    if isinstance(source, (str, Path)):
        samples, rate = _read_file(Path(source))
        name = str(source)
    else:
        samples, rate, name = _as_numpy(source), int(sample_rate or DEFAULT_RATE), "<array>"
    mono = _to_mono(samples, name)
    if mono.size == 0:
        raise EmptyAudio(name)
    bad = int(np.count_nonzero(~np.isfinite(mono)))
    if bad:
        raise NonFiniteAudio(name, bad)
    if rate <= 0:
        raise AudioDecodeError(name, f"invalid sample rate {rate}")
    return resample(mono, rate, target_rate)


def resample(samples: np.ndarray, rate_in: int, rate_out: int = DEFAULT_RATE) -> np.ndarray:
    """Convert mono float32 samples between rates with soxr's high-quality filter."""
    if rate_in == rate_out:
        return np.ascontiguousarray(samples, dtype=np.float32)
    import soxr

    out = soxr.resample(np.asarray(samples, dtype=np.float32), rate_in, rate_out, quality="HQ")
    return np.ascontiguousarray(out, dtype=np.float32)


def _as_numpy(source: Any) -> np.ndarray:
    if isinstance(source, np.ndarray):
        return source
    try:
        return np.asarray(source)  # MLX arrays and lists convert through the buffer protocol
    except Exception as exc:  # noqa: BLE001  (anything unconvertible is a decode error)
        raise AudioDecodeError("<array>", f"cannot convert {type(source).__name__} to samples: {exc}") from exc


def _to_mono(samples: np.ndarray, name: str) -> np.ndarray:
    if samples.dtype.kind not in "fiu":
        raise AudioDecodeError(name, f"samples must be numeric, got dtype {samples.dtype}")
    if samples.dtype.kind in "iu":  # integer PCM: scale to [-1, 1)
        samples = samples.astype(np.float32) / float(np.iinfo(samples.dtype).max + 1)
    samples = samples.astype(np.float32, copy=False)
    if samples.ndim == 1:
        return samples
    if samples.ndim != 2:
        raise AudioDecodeError(name, f"expected 1-D or 2-D samples, got shape {samples.shape}")
    channel_axis = 1 if samples.shape[1] <= samples.shape[0] else 0
    return samples.mean(axis=channel_axis, dtype=np.float32)


def _read_file(path: Path) -> tuple[np.ndarray, int]:
    if not path.is_file():
        raise AudioDecodeError(str(path), "no such file")
    if path.stat().st_size == 0:
        raise EmptyAudio(str(path))
    if path.suffix.lower() in _SOUNDFILE_SUFFIXES:
        try:
            return _read_soundfile(path)
        except AudioDecodeError:
            if shutil.which("ffmpeg") is None:
                raise
    if shutil.which("ffmpeg") is not None:
        return _read_ffmpeg(path)
    try:  # no ffmpeg: soundfile may still know the format (it sniffs the header)
        return _read_soundfile(path)
    except AudioDecodeError as exc:
        raise AudioDecodeError(str(path), f"{exc.reason}; install ffmpeg to read more formats") from exc


def _read_soundfile(path: Path) -> tuple[np.ndarray, int]:
    import soundfile

    try:
        samples, rate = soundfile.read(str(path), dtype="float32", always_2d=False)
    except Exception as exc:  # noqa: BLE001  (libsndfile reports every failure as a RuntimeError)
        raise AudioDecodeError(str(path), str(exc)) from exc
    return samples, int(rate)


def _read_ffmpeg(path: Path) -> tuple[np.ndarray, int]:
    """Decode with ffmpeg to mono float32 at the file's own rate (soxr resamples afterwards)."""
    rate = _probe_rate(path)
    command = [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(path), "-vn",
        "-f", "f32le", "-acodec", "pcm_f32le", "-ac", "1", "-ar", str(rate or DEFAULT_RATE), "-",
    ]  # fmt: skip
    try:
        done = subprocess.run(command, capture_output=True, check=False)
    except OSError as exc:
        raise AudioDecodeError(str(path), f"ffmpeg could not run: {exc}") from exc
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise AudioDecodeError(str(path), f"ffmpeg failed: {message[-1] if message else done.returncode}")
    return np.frombuffer(done.stdout, dtype=np.float32).copy(), rate or DEFAULT_RATE


def _probe_rate(path: Path) -> int | None:
    """The first audio stream's sample rate per ffprobe, or None (then ffmpeg resamples to DEFAULT_RATE)."""
    if shutil.which("ffprobe") is None:
        return None
    command = ["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries", "stream=sample_rate", "-of", "csv=p=0", str(path)]
    try:
        done = subprocess.run(command, capture_output=True, check=False, timeout=60)
        return int(done.stdout.decode().strip().splitlines()[0]) if done.returncode == 0 else None
    except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
        return None
