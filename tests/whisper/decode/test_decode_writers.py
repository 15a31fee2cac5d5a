"""Transcript writers: each format's layout, the JSON schema, and atomic writes."""

from __future__ import annotations

import json
import os

import pytest

from mlx_audio_coreml.errors import InvalidOption, OutputWriteError
from mlx_audio_coreml.whisper import writers
from mlx_audio_coreml.whisper.segments import Segment, TranscriptionInfo, Word
from mlx_audio_coreml.whisper.transcribe import TranscribeOptions
from mlx_audio_coreml.whisper.writers import expand_formats, format_timestamp, write_atomic, write_transcript


def make_segments():
    words = (Word(0.0, 0.5, " Hello", 0.9), Word(0.5, 1.25, " there.", 0.8))
    return [
        Segment(0, 0, 0.0, 1.25, " Hello there.", (50364, 15947, 612, 13, 50426), 0.0, -0.21, 1.1, 0.02, words),
        Segment(1, 0, 3661.5, 3663.0, " A --> B\tC", (50500, 32, 50600), 0.2, -0.5, 1.3, 0.1, None),
    ]


def make_info():
    return TranscriptionInfo("en", 0.97, 3663.0, TranscribeOptions(word_timestamps=True), (("en", 0.97), ("de", 0.01)))


@pytest.mark.parametrize(
    "seconds, srt, vtt",
    [
        (0.0, "00:00:00,000", "00:00:00.000"),
        (1.2345, "00:00:01,234", "00:00:01.234"),
        (59.9996, "00:01:00,000", "00:01:00.000"),
        (3661.5, "01:01:01,500", "01:01:01.500"),
        (36000.001, "10:00:00,001", "10:00:00.001"),
    ],
)
def test_timestamps_are_formatted_per_format(seconds, srt, vtt):
    assert format_timestamp(seconds, decimal_marker=",") == srt
    assert format_timestamp(seconds) == vtt


def test_timestamp_without_hours_when_asked_and_negative_rejected():
    assert format_timestamp(75.25, always_include_hours=False) == "01:15.250"
    with pytest.raises(ValueError):
        format_timestamp(-1.0)


def test_srt_numbers_cues_and_uses_commas():
    text = writers.format_srt(make_segments())
    assert text == ("1\n00:00:00,000 --> 00:00:01,250\nHello there.\n\n2\n01:01:01,500 --> 01:01:03,000\nA -> B\tC\n")


def test_vtt_has_a_header_and_dotted_times():
    text = writers.format_vtt(make_segments())
    assert text.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:01.250\nHello there.\n\n")
    assert "01:01:01.500 --> 01:01:03.000\nA -> B\tC\n" in text


def test_tsv_has_millisecond_integers_and_no_stray_tabs():
    rows = writers.format_tsv(make_segments()).splitlines()
    assert rows[0] == "start\tend\ttext"
    assert rows[1] == "0\t1250\tHello there."
    assert rows[2].split("\t") == ["3661500", "3663000", "A --> B C"]


def test_txt_is_one_line_per_segment():
    assert writers.format_txt(make_segments()) == "Hello there.\nA --> B\tC\n"


def test_json_schema():
    document = json.loads(writers.format_json(make_segments(), make_info()))
    assert set(document) == {"text", "language", "language_probability", "duration", "segments", "info"}
    assert document["text"] == "Hello there. A --> B\tC"
    assert document["language"] == "en" and document["duration"] == 3663.0
    first = document["segments"][0]
    assert set(first) == {
        "id", "seek", "start", "end", "text", "tokens", "temperature", "avg_logprob",
        "compression_ratio", "no_speech_prob", "words",
    }  # fmt: skip
    assert first["words"][1] == {"start": 0.5, "end": 1.25, "word": " there.", "probability": 0.8}
    assert document["segments"][1]["words"] is None
    assert document["info"]["options"]["word_timestamps"] is True
    assert document["info"]["all_language_probs"][0] == ["en", 0.97]


def test_expand_formats():
    assert expand_formats("all") == ("txt", "srt", "vtt", "json", "tsv")
    assert expand_formats("srt,json,srt") == ("srt", "json")
    with pytest.raises(InvalidOption):
        expand_formats("docx")


def test_write_transcript_creates_folders_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "deep" / "out.srt"
    write_transcript(target, "srt", make_segments(), make_info())
    assert target.read_text() == writers.format_srt(make_segments())
    assert os.listdir(target.parent) == ["out.srt"]
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # an ordinary file, not mkstemp's 0600


def test_interrupted_write_keeps_the_old_file_and_removes_the_temporary_one(tmp_path, monkeypatch):
    target = tmp_path / "out.txt"
    target.write_text("previous transcript\n")

    def interrupted_fsync(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(writers.os, "fsync", interrupted_fsync)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, "x" * 1_000_000)
    assert target.read_text() == "previous transcript\n"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_failed_write_of_a_new_file_leaves_nothing(tmp_path, monkeypatch):
    target = tmp_path / "new.json"
    monkeypatch.setattr(writers.os, "replace", lambda *a: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    with pytest.raises(OutputWriteError) as info:
        write_transcript(target, "json", make_segments(), make_info())
    assert info.value.path == str(target) and "No space" in info.value.reason
    assert os.listdir(tmp_path) == []


def test_unwritable_destination_is_a_typed_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputWriteError):
        write_atomic(blocker / "out.txt", "text")  # a file where the folder should be
