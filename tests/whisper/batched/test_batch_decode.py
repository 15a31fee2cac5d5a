"""whisper/batch_decode.py on real weights: a batch of different chunks decodes as each alone."""

from __future__ import annotations

import mlx.core as mx
import pytest

from mlx_audio_coreml.whisper.audio import N_FRAMES, N_SAMPLES, load_audio
from mlx_audio_coreml.whisper.batch_decode import decode_rows
from mlx_audio_coreml.whisper.decoding import DecodingOptions, DecodingTask
from mlx_audio_coreml.whisper.mel import log_mel_spectrogram
from mlx_audio_coreml.whisper.transcribe import Transcriber
from speech_data import JFK, librivox_clips


@pytest.fixture(scope="module")
def two_chunks(tiny_session):
    clips = librivox_clips()
    if not clips:
        pytest.skip("pocketsphinx-testdata's LibriVox clips are not installed")
    mels = [log_mel_spectrogram(load_audio(str(p)), 80, padding=N_SAMPLES)[:, :N_FRAMES] for p in (JFK, clips[1][0])]
    features = tiny_session.encoder.encode(mx.stack(mels))
    transcriber = Transcriber(tiny_session.bundle, tiny_session.encoder)
    return transcriber, transcriber.tokenizer(None, "transcribe"), features


def _alone(transcriber, tokenizer, features, options, prompts):
    return [
        DecodingTask(
            transcriber.model,
            tokenizer,
            DecodingOptions(beam_size=options.beam_size, prompt=p or None),
            transcriber.config,
        ).run(features[i : i + 1])[0]
        for i, p in enumerate(prompts)
    ]


@pytest.mark.parametrize("beam_size", [None, 5], ids=["greedy", "beam5"])
def test_batch_of_two_different_chunks_gives_the_tokens_of_each_alone(two_chunks, beam_size):
    transcriber, tokenizer, features = two_chunks
    options = DecodingOptions(beam_size=beam_size)
    batched = decode_rows(transcriber.model, tokenizer, features, options, config=transcriber.config)
    alone = _alone(transcriber, tokenizer, features, options, [(), ()])
    assert [r.tokens for r in batched] == [r.tokens for r in alone]
    assert batched[0].tokens != batched[1].tokens  # really two different chunks
    for b, a in zip(batched, alone):
        assert b.sum_logprob == pytest.approx(a.sum_logprob, abs=1e-3)
        assert b.no_speech_prob == pytest.approx(a.no_speech_prob, abs=1e-4)


def test_rows_keep_their_own_prompts(two_chunks):
    transcriber, tokenizer, features = two_chunks
    prompts = [tuple(tokenizer.encode(" Ask not, Americans.")), ()]  # another prefix length: another group
    batched = decode_rows(transcriber.model, tokenizer, features, DecodingOptions(), prompts, transcriber.config)
    alone = _alone(transcriber, tokenizer, features, DecodingOptions(), prompts)
    assert [r.tokens for r in batched] == [r.tokens for r in alone]


def test_decode_rows_refuses_sampling_temperatures(two_chunks):
    transcriber, tokenizer, features = two_chunks
    with pytest.raises(ValueError, match="temperature 0"):
        decode_rows(transcriber.model, tokenizer, features, DecodingOptions(temperature=0.5))
