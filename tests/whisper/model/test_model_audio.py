"""Audio loading: formats, arrays, resampling to 16 kHz mono, and the typed errors for bad input."""

from __future__ import annotations

import shutil
import subprocess

import mlx.core as mx
import numpy as np
import pytest
import soundfile
from model_helpers import JFK

from mlx_audio_coreml.errors import AudioDecodeError, EmptyAudio, NonFiniteAudio
from mlx_audio_coreml.whisper.audio import N_SAMPLES, SAMPLE_RATE, load_audio, pad_or_trim, resample


def tone(rate: int, seconds: float = 1.0, hz: float = 440.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def dominant_hz(samples: np.ndarray, rate: int = SAMPLE_RATE) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.fft.rfftfreq(samples.size, 1 / rate)[spectrum.argmax()])


def test_wav_at_16k_is_returned_as_is():
    samples = load_audio(JFK)
    raw, rate = soundfile.read(JFK, dtype="float32")
    assert rate == SAMPLE_RATE and samples.dtype == np.float32
    np.testing.assert_array_equal(samples, raw)


@pytest.mark.parametrize("fmt, suffix", [("WAV", ".wav"), ("FLAC", ".flac"), ("OGG", ".ogg")])
def test_stereo_44k_files_become_16k_mono_with_pitch_kept(tmp_path, fmt, suffix):
    stereo = np.stack([tone(44100), tone(44100)], axis=1)
    path = tmp_path / f"tone{suffix}"
    soundfile.write(path, stereo, 44100, format=fmt)
    samples = load_audio(path)
    assert samples.ndim == 1 and samples.dtype == np.float32
    assert abs(samples.size - SAMPLE_RATE) <= 2
    assert abs(dominant_hz(samples) - 440.0) < 2.0
    assert 0.3 < np.abs(samples).max() < 0.6


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")
def test_formats_soundfile_cannot_read_go_through_ffmpeg(tmp_path):
    source = tmp_path / "tone.wav"
    soundfile.write(source, tone(22050), 22050)
    target = tmp_path / "tone.m4a"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(source), str(target)], check=True)
    samples = load_audio(target)
    assert abs(samples.size - SAMPLE_RATE) < 2000  # AAC adds priming samples
    assert abs(dominant_hz(samples) - 440.0) < 2.0


def test_resampler_is_band_limited():
    """A 7 kHz tone at 48 kHz is above nothing at 16 kHz: it stays. A 9 kHz tone would alias: it is removed."""
    kept = resample(tone(48000, hz=7000.0), 48000)
    removed = resample(tone(48000, hz=9000.0), 48000)
    assert abs(dominant_hz(kept) - 7000.0) < 5.0
    assert np.sqrt(np.mean(removed[1000:-1000] ** 2)) < 1e-3


def test_arrays_of_any_layout_and_rate(tmp_path):
    mono = tone(8000)
    up = load_audio(mono, sample_rate=8000)
    assert abs(up.size - SAMPLE_RATE) <= 2 and abs(dominant_hz(up) - 440.0) < 2.0
    channels_first = np.stack([mono, mono])  # (2, samples)
    channels_last = channels_first.T.copy()
    np.testing.assert_allclose(load_audio(channels_first, 8000), load_audio(channels_last, 8000), atol=1e-7)
    pcm16 = (tone(SAMPLE_RATE) * 32767).astype(np.int16)
    np.testing.assert_allclose(load_audio(pcm16), tone(SAMPLE_RATE), atol=1e-4)
    np.testing.assert_array_equal(load_audio(mx.array(tone(SAMPLE_RATE))), tone(SAMPLE_RATE))


def test_missing_file_is_a_decode_error(tmp_path):
    with pytest.raises(AudioDecodeError) as raised:
        load_audio(tmp_path / "nope.wav")
    assert "no such file" in raised.value.reason


def test_junk_file_is_a_decode_error(tmp_path):
    path = tmp_path / "junk.wav"
    path.write_bytes(b"this is not audio at all" * 100)
    with pytest.raises(AudioDecodeError):
        load_audio(path)


def test_empty_inputs_are_empty_audio(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(EmptyAudio):
        load_audio(path)
    silent_file = tmp_path / "zero_frames.wav"
    soundfile.write(silent_file, np.zeros(0, np.float32), SAMPLE_RATE)
    with pytest.raises(EmptyAudio):
        load_audio(silent_file)
    with pytest.raises(EmptyAudio):
        load_audio(np.zeros(0, np.float32))


def test_nan_and_infinity_are_non_finite_audio():
    samples = tone(SAMPLE_RATE)
    samples[[10, 20]] = [np.nan, np.inf]
    with pytest.raises(NonFiniteAudio) as raised:
        load_audio(samples)
    assert raised.value.count == 2


def test_arrays_that_are_not_sound_are_decode_errors():
    with pytest.raises(AudioDecodeError):
        load_audio(np.zeros((2, 2, 2), np.float32))
    with pytest.raises(AudioDecodeError):
        load_audio(np.array(["a", "b"]))


def test_pad_or_trim_works_on_numpy_and_mlx():
    short = np.ones(10, np.float32)
    assert pad_or_trim(short, 16).shape == (16,) and pad_or_trim(short, 16)[10:].sum() == 0
    assert pad_or_trim(np.ones((3, 20)), 5).shape == (3, 5)
    assert pad_or_trim(mx.ones((2, 7)), 9, axis=-1).shape == (2, 9)
    assert pad_or_trim(np.ones(N_SAMPLES + 5)).shape == (N_SAMPLES,)
