"""Audio read in bounded blocks: a file or an array as mono float32 blocks at a target rate.

A two-hour file never sits in memory whole: soundfile reads it block by block (ffmpeg's output is
read from its pipe as it comes), channels are averaged per block and soxr's streaming resampler
converts each block (its output equals the one-shot `soxr.resample`, sample for sample). A stream
can be read again from the start (`blocks()` reopens the file), so a caller may make one pass to
measure and a second to work. Rates are checked from the header before any sample is read.
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import AudioDecodeError, EmptyAudio, ImplausibleSampleRate, NonFiniteAudio

DEFAULT_RATE = 16000  # what an array without a stated rate is taken to be (Whisper's rate)
MIN_RATE = 1000  # below: a broken header (1 Hz asks the resampler for gigabytes)
MAX_RATE = 384000  # the highest rate audio interfaces record at
BLOCK_SECONDS = 30  # source audio read per block

SOUNDFILE_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".au", ".w64", ".rf64"}
_ENCODED_HINT = "pass a path, a numpy or MLX array of samples, or the bytes of a WAV/FLAC/OGG file"


@dataclass(frozen=True)
class AudioStream:
    """Audio that can be read (again) as blocks: `name` for messages, `rate` its own sample rate."""

    name: str
    rate: int
    _open: Callable[[], Iterator[np.ndarray]]  # raw blocks at `rate`: (samples,) or (samples, channels)

    def blocks(self, target_rate: int = DEFAULT_RATE) -> Iterator[np.ndarray]:
        """Mono float32 blocks at `target_rate`; NonFiniteAudio on the first bad block."""
        resampler = None
        if self.rate != target_rate:
            import soxr

            resampler = soxr.ResampleStream(self.rate, target_rate, 1, dtype="float32", quality="HQ")
        for raw in self._open():
            mono = to_mono(raw, self.name, channel_axis=1)
            bad = int(np.count_nonzero(~np.isfinite(mono)))
            if bad:
                raise NonFiniteAudio(self.name, bad)
            out = mono if resampler is None else resampler.resample_chunk(mono, last=False)
            if out.size:
                yield np.ascontiguousarray(out, dtype=np.float32)
        if resampler is not None:
            tail = resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
            if tail.size:
                yield np.ascontiguousarray(tail, dtype=np.float32)

    def read_all(self, target_rate: int = DEFAULT_RATE) -> np.ndarray:
        """The whole audio at `target_rate` (EmptyAudio when there is none)."""
        blocks = list(self.blocks(target_rate))
        if not blocks:
            raise EmptyAudio(self.name)
        return blocks[0] if len(blocks) == 1 else np.concatenate(blocks)


def open_stream(source: str | Path | np.ndarray | Any, sample_rate: int | None = None) -> AudioStream:
    """An AudioStream over a path, encoded bytes or a file object, or an array at `sample_rate`."""
    if isinstance(source, (str, Path)):
        return _file_stream(Path(source))
    if isinstance(source, (bytes, bytearray, memoryview)) or hasattr(source, "read"):
        return _encoded_stream(source)
    rate = check_rate("<array>", DEFAULT_RATE if sample_rate is None else sample_rate)
    samples = _as_numpy(source)
    step = rate * BLOCK_SECONDS
    axis = _sample_axis(samples)

    def blocks() -> Iterator[np.ndarray]:
        for start in range(0, samples.shape[axis], step):
            yield samples[start : start + step] if axis == 0 else samples[:, start : start + step].T

    return AudioStream("<array>", rate, blocks)


def check_rate(name: str, rate: object) -> int:
    """`rate` as an int, or ImplausibleSampleRate when it is not an integer in MIN_RATE..MAX_RATE."""
    valid = isinstance(rate, (int, np.integer)) and not isinstance(rate, bool)
    if not valid and isinstance(rate, float) and rate.is_integer():
        valid, rate = True, int(rate)
    if not valid or not MIN_RATE <= int(rate) <= MAX_RATE:  # type: ignore[call-overload]
        raise ImplausibleSampleRate(name, rate, MIN_RATE, MAX_RATE)
    return int(rate)  # type: ignore[call-overload]


def to_mono(samples: np.ndarray, name: str, channel_axis: int | None = None) -> np.ndarray:
    """Float32 mono: integer PCM scaled to [-1, 1), channels averaged (on `channel_axis`, else the
    shorter axis of a 2-D array)."""
    if samples.dtype.kind not in "fiu":
        raise AudioDecodeError(name, f"samples must be numeric, got dtype {samples.dtype}; {_ENCODED_HINT}")
    if samples.dtype.kind in "iu":
        samples = samples.astype(np.float32) / float(np.iinfo(samples.dtype).max + 1)
    samples = samples.astype(np.float32, copy=False)
    if samples.ndim == 1:
        return samples
    if samples.ndim != 2:
        raise AudioDecodeError(name, f"expected 1-D or 2-D samples, got shape {samples.shape}")
    axis = 1 - _sample_axis(samples) if channel_axis is None else channel_axis
    return samples.mean(axis=axis, dtype=np.float32)


def _sample_axis(samples: np.ndarray) -> int:
    """A 2-D array is (samples, channels) when its last axis is the shorter one."""
    return 0 if samples.ndim != 2 or samples.shape[1] <= samples.shape[0] else 1


def _as_numpy(source: Any) -> np.ndarray:
    if isinstance(source, np.ndarray):
        array = source
    else:
        try:
            array = np.asarray(source)  # MLX arrays and lists convert through the buffer protocol
        except Exception as exc:  # noqa: BLE001  (anything unconvertible is a decode error)
            raise AudioDecodeError("<array>", f"cannot use a {type(source).__name__}: {exc}; {_ENCODED_HINT}") from exc
    if array.dtype.kind not in "fiu":
        raise AudioDecodeError(
            "<array>", f"cannot use a {type(source).__name__} of dtype {array.dtype}; {_ENCODED_HINT}"
        )
    if array.ndim not in (1, 2):
        raise AudioDecodeError("<array>", f"expected 1-D or 2-D samples, got shape {array.shape}")
    return array


def check_file(path: Path) -> None:
    """AudioDecodeError saying what `path` is when it is not a readable, non-empty regular file."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise AudioDecodeError(str(path), "no such file") from None
    except OSError as exc:
        raise AudioDecodeError(str(path), exc.strerror or str(exc)) from exc
    if stat.S_ISDIR(mode):
        raise AudioDecodeError(str(path), "is a directory, not an audio file")
    if not stat.S_ISREG(mode):
        raise AudioDecodeError(str(path), "is not a regular file (a device, pipe or socket); save the audio to a file")
    if not os.access(path, os.R_OK):
        raise AudioDecodeError(str(path), "permission denied")
    if path.stat().st_size == 0:
        raise EmptyAudio(str(path))


def _file_stream(path: Path) -> AudioStream:
    check_file(path)
    if path.suffix.lower() in SOUNDFILE_SUFFIXES:
        try:
            return _soundfile_stream(path, str(path))
        except AudioDecodeError:
            if shutil.which("ffmpeg") is None:
                raise
    if shutil.which("ffmpeg") is not None:
        return _ffmpeg_stream(path)
    try:  # no ffmpeg: soundfile may still know the format (it sniffs the header)
        return _soundfile_stream(path, str(path))
    except AudioDecodeError as exc:
        raise AudioDecodeError(str(path), f"{exc.reason}; install ffmpeg to read more formats") from exc


def _encoded_stream(source: Any) -> AudioStream:
    name = "<file object>" if hasattr(source, "read") else "<bytes>"
    data = source.read() if hasattr(source, "read") else bytes(source)
    if isinstance(data, str):
        raise AudioDecodeError(name, f"a text-mode file gives no audio bytes; open it with 'rb'; {_ENCODED_HINT}")
    if not data:
        raise EmptyAudio(name)
    return _soundfile_stream(lambda: io.BytesIO(data), name)


def _soundfile_stream(target: Path | Callable[[], Any], name: str) -> AudioStream:
    import soundfile

    opener = (lambda: str(target)) if isinstance(target, Path) else target
    try:
        with soundfile.SoundFile(opener()) as handle:
            rate, frames = handle.samplerate, handle.frames
    except Exception as exc:  # noqa: BLE001  (libsndfile reports every failure as a RuntimeError)
        raise AudioDecodeError(name, f"{exc}" + ("" if isinstance(target, Path) else f"; {_ENCODED_HINT}")) from exc
    rate = check_rate(name, rate)
    if frames == 0:
        raise EmptyAudio(name)

    def blocks() -> Iterator[np.ndarray]:
        try:
            with soundfile.SoundFile(opener()) as handle:
                while True:
                    block = handle.read(rate * BLOCK_SECONDS, dtype="float32", always_2d=False)
                    if len(block) == 0:
                        return
                    yield block
        except RuntimeError as exc:
            raise AudioDecodeError(name, str(exc)) from exc

    return AudioStream(name, rate, blocks)


def _ffmpeg_stream(path: Path) -> AudioStream:
    """ffmpeg decodes to mono float32 at the file's own rate (soxr resamples afterwards)."""
    probed = _probe_rate(path)
    rate = check_rate(str(path), probed) if probed is not None else DEFAULT_RATE
    command = [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(path), "-vn",
        "-f", "f32le", "-acodec", "pcm_f32le", "-ac", "1", "-ar", str(rate), "-",
    ]  # fmt: skip
    block_bytes = rate * BLOCK_SECONDS * 4

    def blocks() -> Iterator[np.ndarray]:
        with tempfile.TemporaryFile() as errors:
            try:
                process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors)
            except OSError as exc:
                raise AudioDecodeError(str(path), f"ffmpeg could not run: {exc}") from exc
            try:
                assert process.stdout is not None
                while chunk := process.stdout.read(block_bytes):
                    usable = len(chunk) - len(chunk) % 4
                    yield np.frombuffer(chunk[:usable], dtype=np.float32).copy()
            finally:
                if process.poll() is None:
                    process.kill()
                returncode = process.wait()
            if returncode != 0:
                errors.seek(0)
                lines = errors.read().decode("utf-8", "replace").strip().splitlines()
                raise AudioDecodeError(str(path), f"ffmpeg failed: {lines[-1] if lines else returncode}")

    return AudioStream(str(path), rate, blocks)


def _probe_rate(path: Path) -> int | None:
    """The first audio stream's sample rate per ffprobe, or None (then ffmpeg resamples to DEFAULT_RATE)."""
    if shutil.which("ffprobe") is None:
        return None
    command = [
        "ffprobe",
        "-v",
        "error",
        "-select_streams",
        "a:0",
        "-show_entries",
        "stream=sample_rate",
        "-of",
        "csv=p=0",
        str(path),
    ]
    try:
        done = subprocess.run(command, capture_output=True, check=False, timeout=60)
        return int(done.stdout.decode().strip().splitlines()[0]) if done.returncode == 0 else None
    except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
        return None
