"""Every bad input gets its typed error, raised when `transcribe` is called (not later, mid-iteration)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from decode_helpers import FakeTokenizer, tiny_random_model

from mlx_audio_coreml.encoders import MLXAudioEncoder
from mlx_audio_coreml.errors import AudioDecodeError, EmptyAudio, InvalidOption, NonFiniteAudio
from mlx_audio_coreml.whisper.decoding import DecodingOptions, DecodingTask
from mlx_audio_coreml.whisper.transcribe import Transcriber


class CountingEncoder(MLXAudioEncoder):
    calls = 0

    def encode(self, mel):
        type(self).calls += 1
        return super().encode(mel)


class FakeTokenizerTranscriber(Transcriber):
    def tokenizer(self, language, task):
        return FakeTokenizer()


@pytest.fixture(scope="module")
def transcriber():
    model = tiny_random_model(n_audio_ctx=1500)  # real window size: 3000 mel frames
    bundle = SimpleNamespace(model=model, dims=model.dims, config={})
    return FakeTokenizerTranscriber(bundle, CountingEncoder(model.encoder, 80))


@pytest.mark.parametrize(
    "audio, error",
    [
        ("/no/such/file.wav", AudioDecodeError),
        (np.zeros(0, dtype=np.float32), EmptyAudio),
        (np.array([0.0, np.nan, 0.0], dtype=np.float32), NonFiniteAudio),
        (np.array([0.0, np.inf], dtype=np.float32), NonFiniteAudio),
    ],
)
def test_bad_audio(transcriber, audio, error):
    with pytest.raises(error):
        transcriber.transcribe(audio)


def test_unreadable_file(transcriber, tmp_path):
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF....not audio at all")
    with pytest.raises(AudioDecodeError):
        transcriber.transcribe(str(junk))


@pytest.mark.parametrize(
    "overrides, name",
    [
        ({"beam_sizes": 3}, "beam_sizes"),
        ({"language": "xx"}, "language"),
        ({"language": "fr"}, "language"),  # an English-only model
        ({"task": "translate"}, "task"),  # an English-only model
        ({"task": "summarize"}, "task"),
        ({"beam_size": 0}, "beam_size"),
        ({"best_of": 0}, "best_of"),
        ({"temperature": -0.5}, "temperature"),
        ({"temperature": ()}, "temperature"),
        ({"patience": 0.0}, "patience"),
        ({"beam_size": 2, "patience": -1.0}, "patience"),
        ({"length_penalty": 3.0}, "length_penalty"),
    ],
)
def test_bad_options(transcriber, overrides, name):
    with pytest.raises(InvalidOption) as info:
        transcriber.transcribe(np.zeros(16000, dtype=np.float32), **overrides)
    assert info.value.name == name


@pytest.mark.parametrize(
    "options, name",
    [
        (DecodingOptions(task="summarize"), "task"),
        (DecodingOptions(beam_size=2, temperature=0.5), "beam_size"),
        (DecodingOptions(best_of=2, temperature=0.0), "best_of"),
        (DecodingOptions(patience=2.0), "patience"),
        (DecodingOptions(length_penalty=2.0), "length_penalty"),
        (DecodingOptions(sample_len=0), "sample_len"),
        (DecodingOptions(language="de"), "language"),
    ],
)
def test_bad_decoding_options(options, name):
    model = tiny_random_model()
    with pytest.raises(InvalidOption) as info:
        DecodingTask(model, FakeTokenizer(), options)
    assert info.value.name == name


def test_transcribe_runs_end_to_end_on_a_random_model_and_decodes_lazily(transcriber):
    """The whole pipeline (mel, encoder, decoding, seek loop) on 40 s of noise with random weights:
    nothing is encoded before the segments are read, and every window gets encoded once."""
    noise = np.random.default_rng(0).standard_normal(40 * 16000).astype(np.float32) * 0.1
    CountingEncoder.calls = 0
    seen = []
    segments, info = transcriber.transcribe(
        noise, progress=lambda d, t: seen.append(d), temperature=0.0, no_speech_threshold=None, logprob_threshold=None
    )
    assert CountingEncoder.calls == 0 and info.duration == pytest.approx(40.0)
    list(segments)
    assert CountingEncoder.calls == len(seen) >= 2
    assert seen[-1] == pytest.approx(40.0)
