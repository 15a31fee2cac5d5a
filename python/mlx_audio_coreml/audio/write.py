"""Samples out to a file or to bytes as wav, flac, mp3 or raw 16-bit PCM; files are written atomically.

- wav, flac: 16-bit PCM through soundfile (libsndfile).
- mp3: libsndfile's own encoder when the installed libsndfile has one (soundfile's wheels ship
  libsndfile 1.2 with LAME), else the `ffmpeg` program; with neither, `AudioEncoderUnavailable`.
- pcm: raw little-endian int16 samples without a header (OpenAI's `pcm` response format).
Audio is encoded in memory first, then written to a temporary file beside the destination,
flushed and renamed over it: the destination is either complete or untouched, never partial.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile
from contextlib import suppress
from pathlib import Path

import numpy as np
import soundfile as sf

from ..errors import (
    AudioEncoderUnavailable,
    AudioWriteError,
    EmptyAudio,
    NonFiniteAudio,
    UnsupportedAudioFormat,
)

FORMATS = ("wav", "flac", "mp3", "pcm")
_SUFFIXES = {".wav": "wav", ".flac": "flac", ".mp3": "mp3", ".pcm": "pcm", ".raw": "pcm"}
_SOUNDFILE = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "mp3": ("MP3", "MPEG_LAYER_III")}


def format_from_path(path: str | Path, default: str | None = None) -> str:
    """The format a file name asks for by its suffix (.wav, .flac, .mp3, .pcm/.raw), else `default`."""
    fmt = _SUFFIXES.get(Path(path).suffix.lower(), default)
    if fmt is None:
        raise UnsupportedAudioFormat(Path(path).suffix or str(path), FORMATS)
    return fmt


def check_format(fmt: str) -> str:
    """`fmt` lowercased when it is one of FORMATS; `UnsupportedAudioFormat` otherwise."""
    name = fmt.lower().lstrip(".")
    if name not in FORMATS:
        raise UnsupportedAudioFormat(fmt, FORMATS)
    return name


def mp3_encoder() -> str | None:
    """ "soundfile" or "ffmpeg" (the one mp3 would use here), or None when neither can."""
    if "MP3" in sf.available_formats():
        return "soundfile"
    return "ffmpeg" if shutil.which("ffmpeg") else None


def _samples(audio: np.ndarray) -> np.ndarray:
    """float32 (frames,) or (frames, channels), checked finite and non-empty."""
    samples = np.asarray(audio, dtype=np.float32)
    if samples.ndim not in (1, 2):
        raise ValueError(f"audio must be (samples,) or (samples, channels), got shape {samples.shape}")
    if samples.shape[0] == 0:
        raise EmptyAudio()
    bad = int(np.count_nonzero(~np.isfinite(samples)))
    if bad:
        raise NonFiniteAudio(count=bad)
    return samples


def to_int16(audio: np.ndarray) -> np.ndarray:
    """Samples in [-1, 1] as int16 (clipped), the layout of raw PCM and of 16-bit files."""
    return np.round(np.clip(_samples(audio), -1.0, 1.0) * 32767.0).astype("<i2")


def encode(audio: np.ndarray, sample_rate: int, fmt: str) -> bytes:
    """The bytes of a complete `fmt` file (or raw stream, for pcm) holding `audio`."""
    fmt = check_format(fmt)
    if int(sample_rate) <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if fmt == "pcm":
        return to_int16(audio).tobytes()
    if fmt == "mp3" and mp3_encoder() != "soundfile":
        return _ffmpeg_mp3(audio, int(sample_rate))
    container, subtype = _SOUNDFILE[fmt]
    buffer = io.BytesIO()
    # MP3 at libsndfile's best VBR quality (its default favours size: ~20 kbit/s); others lossless.
    level = 0.0 if fmt == "mp3" else None
    samples = np.clip(_samples(audio), -1.0, 1.0)
    sf.write(buffer, samples, int(sample_rate), format=container, subtype=subtype, compression_level=level)
    return buffer.getvalue()


def _ffmpeg_mp3(audio: np.ndarray, sample_rate: int) -> bytes:
    program = shutil.which("ffmpeg")
    if program is None:
        raise AudioEncoderUnavailable("mp3", "libsndfile has no MP3 encoder here and ffmpeg is not on PATH")
    pcm = to_int16(audio)
    channels = 1 if pcm.ndim == 1 else pcm.shape[1]
    args = [program, "-hide_banner", "-loglevel", "error", "-f", "s16le", "-ar", str(sample_rate),
            "-ac", str(channels), "-i", "pipe:0", "-f", "mp3", "pipe:1"]  # fmt: skip
    done = subprocess.run(args, input=pcm.tobytes(), capture_output=True, timeout=600, check=False)
    if done.returncode != 0 or not done.stdout:
        raise AudioEncoderUnavailable("mp3", f"ffmpeg failed: {done.stderr.decode('utf-8', 'replace').strip()}")
    return done.stdout


def write_audio(path: str | Path, audio: np.ndarray, sample_rate: int, fmt: str | None = None) -> Path:
    """Encode `audio` as `fmt` (default: from the suffix, else wav) and write it atomically to `path`."""
    path = Path(path)
    data = encode(audio, sample_rate, fmt or format_from_path(path, "wav"))
    return write_bytes_atomic(path, data)


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write `data` so that `path` is either untouched or complete; `AudioWriteError` on failure."""
    path = Path(path)
    try:
        handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except OSError as exc:
        raise AudioWriteError(str(path), exc.strerror or str(exc)) from exc
    try:
        os.chmod(temp_name, _new_file_mode(path))  # mkstemp makes 0600; audio is an ordinary file
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp_name, path)
    except BaseException as exc:  # KeyboardInterrupt too: never leave the temporary file behind
        with suppress(FileNotFoundError):
            os.unlink(temp_name)
        if isinstance(exc, OSError):
            raise AudioWriteError(str(path), exc.strerror or str(exc)) from exc
        raise
    return path


def _new_file_mode(path: Path) -> int:
    """The mode of the file being replaced, else 0666 less the umask (as open() would give)."""
    with suppress(OSError):
        return path.stat().st_mode & 0o777
    umask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(umask)
    return 0o666 & ~umask
