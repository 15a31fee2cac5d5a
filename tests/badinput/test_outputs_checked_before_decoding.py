"""Finding 6: output problems showed only after the whole transcription (a bad -o lost the work),
a write error stopped the rest of the batch, a full disk with -f all kept txt and srt but not the
rest (a partial set presented as done), and -o naming a file said "File exists". Now -o is made and
write-tested before the model loads, each input's formats are written all or none, and a batch
goes on and reports every failure with a non-zero exit."""

from __future__ import annotations

import errno
import os

import pytest

from mlx_audio_coreml.cli import main
from mlx_audio_coreml.errors import OutputWriteError
from mlx_audio_coreml.whisper import writers
from speech_data import JFK


def test_output_dir_that_is_a_file_is_refused_before_the_model_loads(tmp_path, stand_in, capsys):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me")
    assert main(["transcribe", str(JFK), "-o", str(a_file)]) == 1
    err = capsys.readouterr().err
    assert f"cannot write {a_file}: is a file, not a folder" in err and "File exists" not in err
    assert not stand_in.loaded and a_file.read_text() == "keep me"


def test_output_dir_under_a_file_is_refused_before_the_model_loads(tmp_path, stand_in, capsys):
    (tmp_path / "file").write_text("")
    assert main(["transcribe", str(JFK), "-o", str(tmp_path / "file" / "out")]) == 1
    assert "Not a directory" in capsys.readouterr().err and not stand_in.loaded


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output_dir_is_refused_before_the_model_loads(tmp_path, stand_in):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    assert main(["transcribe", str(JFK), "-o", str(locked)]) == 1
    assert not stand_in.loaded


def test_a_missing_output_dir_is_made_first(tmp_path, stand_in):
    out = tmp_path / "new" / "deeper"
    assert main(["transcribe", str(JFK), "-o", str(out)]) == 0
    assert (out / "jfk.txt").is_file()


def _disk_full_after(monkeypatch, allowed: int):
    """os.fsync fails with ENOSPC once `allowed` files were synced (a disk filling up mid-set)."""
    real = os.fsync
    count = {"n": 0}

    def fsync(fd):
        count["n"] += 1
        if count["n"] > allowed:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)

    monkeypatch.setattr(writers.os, "fsync", fsync)


def test_a_full_disk_leaves_no_partial_set(tmp_path, stand_in, monkeypatch, capsys):
    _disk_full_after(monkeypatch, allowed=2)  # txt and srt would fit, vtt would not
    assert main(["transcribe", str(JFK), "-o", str(tmp_path), "-f", "all"]) == 1
    assert os.listdir(tmp_path) == []  # nothing, rather than txt + srt looking done
    assert "No space left on device" in capsys.readouterr().err


def test_a_write_error_does_not_stop_the_batch(tmp_path, stand_in, monkeypatch, capsys):
    second = tmp_path / "second.wav"
    second.write_bytes(JFK.read_bytes())
    out = tmp_path / "out"
    real = writers.write_all_atomic

    def failing_for_jfk(contents):
        if any(path.stem == "jfk" for path in contents):
            raise OutputWriteError(str(next(iter(contents))), "No space left on device")
        return real(contents)

    monkeypatch.setattr("mlx_audio_coreml.whisper.writers.write_all_atomic", failing_for_jfk)
    assert main(["transcribe", str(JFK), str(second), "-o", str(out), "-f", "all"]) == 1
    err = capsys.readouterr().err
    assert sorted(os.listdir(out)) == [f"second.{fmt}" for fmt in sorted(writers.FORMATS)]  # the next input was done
    assert "1 of 2 inputs failed" in err and str(JFK) in err.split("inputs failed")[1]


def test_write_transcripts_is_all_or_nothing(tmp_path, monkeypatch):
    from mlx_audio_coreml.whisper.segments import Segment

    segment = Segment(0, 0, 0.0, 1.0, " hi", (), 0.0, -0.1, 1.0, 0.0)
    _disk_full_after(monkeypatch, allowed=4)
    targets = {fmt: tmp_path / f"x.{fmt}" for fmt in writers.FORMATS}
    with pytest.raises(OutputWriteError):
        writers.write_transcripts(targets, [segment])
    assert os.listdir(tmp_path) == []  # no file and no temporary left
