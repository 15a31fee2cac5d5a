"""batch.py without Ray: reading manifests, writing result rows, and finding what a run already did."""

from __future__ import annotations

import json

import pytest

from mlx_audio_coreml.batch import RESULTS_JSONL, done_paths, read_manifest, result_columns, write_rows
from mlx_audio_coreml.errors import ManifestError
from mlx_audio_coreml.whisper.segments import Segment, TranscriptionInfo


def test_manifest_lists_paths_in_order_once_from_lines_or_json(tmp_path):
    manifest = tmp_path / "files.txt"
    manifest.write_text('a.wav\n\n# a comment\n{"path": "b.flac", "speaker": 3}\na.wav\n  c.mp3  \n')
    assert read_manifest(manifest) == ["a.wav", "b.flac", "c.mp3"]


@pytest.mark.parametrize("text, reason", [("", "lists no audio files"), ('{"file": "x.wav"}\n', "line 1 is not JSON")])
def test_bad_manifest_says_why(tmp_path, text, reason):
    manifest = tmp_path / "files.txt"
    manifest.write_text(text)
    with pytest.raises(ManifestError, match=reason) as caught:
        read_manifest(manifest)
    assert caught.value.path == str(manifest)


def test_missing_manifest_is_a_manifest_error(tmp_path):
    with pytest.raises(ManifestError, match="cannot be read"):
        read_manifest(tmp_path / "nope.txt")


def _columns(paths):
    segment = Segment(0, 0, 0.0, 1.0, " Hello.", (1, 2), 0.0, -0.1, 1.0, 0.01)
    info = TranscriptionInfo("en", 1.0, 1.5, None)
    return result_columns(paths, [([segment], info)] * len(paths))


@pytest.mark.parametrize("output_format", ["jsonl", "parquet"])
def test_rows_written_per_batch_are_found_by_the_next_run(tmp_path, output_format):
    write_rows([_columns(["a.wav", "b.wav"]), _columns(["c.wav"])], tmp_path, output_format)
    assert done_paths(tmp_path) == {"a.wav", "b.wav", "c.wav"}


def test_one_row_per_file_with_text_and_segments(tmp_path):
    write_rows([_columns(["a.wav"])], tmp_path, "jsonl")
    row = json.loads((tmp_path / RESULTS_JSONL).read_text())
    assert row["path"] == "a.wav" and row["text"] == "Hello." and row["language"] == "en" and row["duration"] == 1.5
    assert json.loads(row["segments"])[0]["text"] == " Hello."


def test_a_line_cut_short_by_a_stop_is_transcribed_again(tmp_path):
    (tmp_path / RESULTS_JSONL).write_text(json.dumps({"path": "a.wav"}) + "\n" + '{"path": "b.w')
    assert done_paths(tmp_path) == {"a.wav"}
