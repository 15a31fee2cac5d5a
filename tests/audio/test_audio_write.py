"""Audio files out: every format decodes back to the samples written, and a failed write leaves nothing behind."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mlx_audio_coreml.audio import write
from mlx_audio_coreml.audio.write import encode, format_from_path, to_int16, write_audio
from mlx_audio_coreml.errors import (
    AudioEncoderUnavailable,
    AudioWriteError,
    EmptyAudio,
    NonFiniteAudio,
    UnsupportedAudioFormat,
)

RATE = 24000


def _tone(seconds: float = 0.5) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    return (0.4 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


@pytest.mark.parametrize("fmt", ["wav", "flac"])
def test_lossless_formats_read_back_as_16_bit_samples(tmp_path: Path, fmt: str) -> None:
    audio = _tone()
    path = write_audio(tmp_path / f"out.{fmt}", audio, RATE)
    back, rate = sf.read(path, dtype="float32")
    assert rate == RATE and back.shape == audio.shape
    assert np.max(np.abs(back - audio)) <= 1.0 / 32767


def test_pcm_is_headerless_little_endian_int16(tmp_path: Path) -> None:
    audio = np.array([0.0, 0.5, -1.0, 2.0], np.float32)  # 2.0 is clipped
    data = write_audio(tmp_path / "out.pcm", audio, RATE).read_bytes()
    assert np.frombuffer(data, "<i2").tolist() == [0, 16384, -32767, 32767]


@pytest.mark.parametrize("encoder", ["soundfile", "ffmpeg"])
def test_mp3_decodes_to_the_same_tone(monkeypatch: pytest.MonkeyPatch, encoder: str) -> None:
    if encoder == "ffmpeg" and shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    if encoder == "soundfile" and "MP3" not in sf.available_formats():
        pytest.skip("this libsndfile has no MP3 encoder")
    monkeypatch.setattr(write, "mp3_encoder", lambda: encoder)
    audio = _tone(1.0)
    back, rate = sf.read(io.BytesIO(encode(audio, RATE, "mp3")), dtype="float32")
    assert rate == RATE
    assert abs(len(back) - len(audio)) < 0.1 * RATE  # encoder padding only
    spectrum = np.abs(np.fft.rfft(back[: RATE // 2]))
    assert np.argmax(spectrum) * 2 == pytest.approx(220, abs=4)  # 0.5 s window: 2 Hz bins


def test_mp3_without_any_encoder_is_a_typed_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(write.sf, "available_formats", dict)
    monkeypatch.setattr(write.shutil, "which", lambda name: None)
    with pytest.raises(AudioEncoderUnavailable):
        encode(_tone(), RATE, "mp3")


def test_format_comes_from_the_suffix() -> None:
    assert format_from_path("a/b.WAV") == "wav" and format_from_path("x.raw") == "pcm"
    assert format_from_path("noext", "wav") == "wav"
    with pytest.raises(UnsupportedAudioFormat) as caught:
        format_from_path("song.ogg")
    assert "flac" in caught.value.supported
    with pytest.raises(UnsupportedAudioFormat):
        encode(_tone(), RATE, "aiff")


def test_failed_rename_keeps_the_old_file_and_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.wav"
    target.write_bytes(b"old")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(write.os, "replace", broken_replace)
    with pytest.raises(AudioWriteError) as caught:
        write_audio(target, _tone(), RATE)
    assert caught.value.path == str(target)
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.wav"]


@pytest.mark.parametrize(
    ("audio", "error"), [(np.array([0.0, np.nan], np.float32), NonFiniteAudio), (np.zeros(0, np.float32), EmptyAudio)]
)
def test_bad_samples_are_refused_before_any_file_exists(tmp_path: Path, audio: np.ndarray, error: type) -> None:
    with pytest.raises(error):
        write_audio(tmp_path / "out.flac", audio, RATE)
    assert os.listdir(tmp_path) == []


def test_missing_folder_is_a_write_error(tmp_path: Path) -> None:
    with pytest.raises(AudioWriteError):
        write_audio(tmp_path / "no" / "such" / "out.wav", _tone(), RATE)


def test_int16_conversion_rounds_and_clips() -> None:
    assert to_int16(np.array([0.25, -3.0], np.float32)).tolist() == [8192, -32767]
