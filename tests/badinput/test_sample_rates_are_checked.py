"""Finding 5: a WAV whose header says 1 Hz made the resampler ask for ~11 GB (MemoryError, or
SIGSEGV without a memory limit); `sample_rate=0` in the API was taken as 16 kHz. Now a rate
outside 1 kHz..384 kHz is ImplausibleSampleRate naming the input, before any sample is read."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import soundfile

from mlx_audio_coreml.audio.decode import decode_audio
from mlx_audio_coreml.cli import main
from mlx_audio_coreml.errors import ImplausibleSampleRate
from speech_data import JFK


def _with_header_rate(source, target, rate: int):
    """A copy of a PCM WAV whose fmt chunk claims `rate` (byte rate to match)."""
    data = bytearray(source.read_bytes())
    fmt = data.index(b"fmt ")
    channels, bits = struct.unpack_from("<H", data, fmt + 10)[0], struct.unpack_from("<H", data, fmt + 22)[0]
    struct.pack_into("<II", data, fmt + 12, rate, rate * channels * bits // 8)
    target.write_bytes(bytes(data))
    return target


def test_a_header_claiming_1_hz_is_refused_before_reading(tmp_path):
    bad = _with_header_rate(JFK, tmp_path / "one_hz.wav", 1)
    assert soundfile.info(str(bad)).samplerate == 1  # the reproduction: libsndfile believes it

    with pytest.raises(ImplausibleSampleRate) as caught:
        decode_audio(bad)
    assert caught.value.source == str(bad) and caught.value.sample_rate == 1


def test_the_cli_names_the_file_and_goes_on(tmp_path, stand_in, capsys):
    bad = _with_header_rate(JFK, tmp_path / "one_hz.wav", 1)
    assert main(["transcribe", str(bad), str(JFK)]) == 1
    assert f"audio from {bad} claims a sample rate of 1 Hz" in capsys.readouterr().err
    assert stand_in.calls == [str(JFK)]  # refused from its header, before the model; the good file was done


@pytest.mark.parametrize("rate", [0, -16000, 1, 999, 384_001, 16000.5, "16000", True])
def test_an_api_rate_out_of_range_is_refused(rate):
    with pytest.raises(ImplausibleSampleRate):
        decode_audio(np.zeros(16000, dtype=np.float32), rate)


def test_zero_is_no_longer_taken_as_16_khz_by_a_session(tiny_random_dir):
    from mlx_audio_coreml.options import ModelLoadingOptions
    from mlx_audio_coreml.whisper.session import WhisperSession

    session = WhisperSession.from_pretrained(tiny_random_dir, ModelLoadingOptions.mlx_only())
    with pytest.raises(ImplausibleSampleRate):
        session.transcribe(np.zeros(16000, dtype=np.float32), sample_rate=0)


@pytest.mark.parametrize("rate", [8000, 16000, 44100, 48000, 96000])
def test_real_rates_still_read(tmp_path, rate):
    tone = np.sin(np.arange(rate) * 2 * np.pi * 440 / rate).astype(np.float32) * 0.5
    path = tmp_path / f"tone{rate}.wav"
    soundfile.write(str(path), tone, rate)
    assert decode_audio(path).shape == (16000,)
