"""The official `openai` client against our server on loopback, with real tiny.en and real speech."""

from __future__ import annotations

import io
import json
import shutil
import subprocess

import openai
import pytest
import soundfile as sf

from speech_data import text_similarity as similarity

pytestmark = pytest.mark.realweights

FELLOW = "And so my fellow Americans, ask not what your country can do for you"


def test_json_transcription_gives_the_text(client, short_clip):
    with open(short_clip, "rb") as f:
        result = client.audio.transcriptions.create(file=f, model="tiny.en")
    assert similarity(FELLOW, result.text) >= 0.8, result.text


def test_openai_model_name_is_an_alias_of_the_served_model(client, short_clip):
    with open(short_clip, "rb") as f:
        result = client.audio.transcriptions.create(file=f, model="whisper-1", language="en", temperature=0.0)
    assert similarity(FELLOW, result.text) >= 0.8


def test_text_srt_and_vtt_formats(client, short_clip):
    bodies = {}
    for fmt in ("text", "srt", "vtt"):
        with open(short_clip, "rb") as f:
            bodies[fmt] = client.audio.transcriptions.create(file=f, model="tiny.en", response_format=fmt)
    assert similarity(FELLOW, bodies["text"]) >= 0.8
    assert bodies["srt"].startswith("1\n00:00:00,000 --> 00:00:0")
    assert bodies["vtt"].startswith("WEBVTT\n\n00:00:00.000 --> 00:00:0")
    for fmt in ("srt", "vtt"):
        assert (
            similarity(FELLOW, bodies[fmt].split("\n", 3)[-1] if fmt == "vtt" else bodies[fmt].split("\n", 2)[2]) >= 0.8
        )


def test_verbose_json_carries_segments_and_word_timestamps(client, short_clip):
    with open(short_clip, "rb") as f:
        result = client.audio.transcriptions.create(
            file=f, model="tiny.en", response_format="verbose_json", timestamp_granularities=["word", "segment"]
        )
    assert result.language == "english"
    assert result.duration == pytest.approx(7.8, abs=0.01)
    assert result.segments and result.segments[0].start == 0.0
    assert [w.word.strip(",.") for w in result.words][:3] == ["And", "so", "my"]
    times = [t for w in result.words for t in (w.start, w.end)]
    assert times == sorted(times) and 0.0 <= times[0] and times[-1] <= 7.9


def test_words_without_segments_when_only_words_are_asked(client, short_clip):
    with open(short_clip, "rb") as f:
        raw = client.audio.transcriptions.with_raw_response.create(
            file=f, model="tiny.en", response_format="verbose_json", timestamp_granularities=["word"]
        )
    body = json.loads(raw.text)
    assert "words" in body and "segments" not in body


def test_streaming_sends_deltas_then_the_done_text(client, short_clip):
    with open(short_clip, "rb") as f:
        events = list(client.audio.transcriptions.create(file=f, model="tiny.en", stream=True))
    kinds = [e.type for e in events]
    assert kinds[-1] == "transcript.text.done" and set(kinds[:-1]) == {"transcript.text.delta"}
    assert "".join(e.delta for e in events[:-1]).strip() == events[-1].text
    assert similarity(FELLOW, events[-1].text) >= 0.8


def test_translation_on_an_english_only_model_is_a_400(client, short_clip):
    with open(short_clip, "rb") as f, pytest.raises(openai.BadRequestError) as info:
        client.audio.translations.create(file=f, model="tiny.en")
    assert info.value.body["param"] == "task"


def test_models_lists_what_is_served(client):
    ids = [m.id for m in client.models.list()]
    assert ids == ["tiny.en", "tone"]
    assert client.models.retrieve("tiny.en").owned_by == "mlx-audio-coreml"


def test_speech_streams_one_piece_per_sentence_and_decodes_as_wav(client):
    text = "First sentence. Second one! And a third?"
    response = client.audio.speech.create(model="tone", voice="tone", input=text, response_format="wav")
    samples, rate = sf.read(io.BytesIO(response.content), dtype="float32")
    assert rate == 24000 and len(samples) == 3 * 6000
    with client.audio.speech.with_streaming_response.create(
        model="tone", voice="tone", input=text, response_format="pcm", speed=2.0
    ) as streamed:
        data = b"".join(streamed.iter_bytes())
    assert len(data) == 3 * 3000 * 2  # three sentences of 0.125 s, 16-bit


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg to decode")
@pytest.mark.parametrize("fmt", ["mp3", "flac"])
def test_speech_in_compressed_formats_decodes_whole(client, fmt):
    response = client.audio.speech.create(model="tone", voice="tone", input="One. Two.", response_format=fmt)
    # ffmpeg reads to the end, as players do (libsndfile estimates an untagged MP3's length instead)
    decoded = subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-i", "pipe:0", "-f", "s16le", "-ac", "1", "-ar", "24000", "pipe:1"],
        input=response.content, capture_output=True, check=True,
    ).stdout  # fmt: skip
    samples = len(decoded) // 2
    assert 12000 <= samples <= 12000 + 2 * 2400  # each mp3 piece adds the encoder's delay and padding
