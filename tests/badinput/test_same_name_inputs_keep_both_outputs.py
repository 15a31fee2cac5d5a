"""Finding 3: `transcribe a/talk.wav b/talk.wav -o out -f txt` kept only the second transcript (rc 0).
Now both are kept under distinct, deterministic names, and the command says so."""

from __future__ import annotations

import shutil

import pytest

from mlx_audio_coreml.cli import main
from mlx_audio_coreml.cli.outputs import distinct_inputs, plan_outputs
from mlx_audio_coreml.errors import DuplicateInput
from speech_data import JFK, JFK_TEXT, text_similarity


def _two_talks(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        shutil.copy(JFK, tmp_path / folder / "talk.wav")
    return str(tmp_path / "a" / "talk.wav"), str(tmp_path / "b" / "talk.wav")


def test_same_named_inputs_both_keep_their_transcripts(tmp_path, stand_in, capsys):
    first, second = _two_talks(tmp_path)
    out = tmp_path / "out"

    assert main(["transcribe", first, second, "-o", str(out), "-f", "txt"]) == 0

    assert sorted(p.name for p in out.iterdir()) == ["talk-2.txt", "talk.txt"]
    assert first in (out / "talk.txt").read_text() and second in (out / "talk-2.txt").read_text()
    assert f"{second} shares its file name" in capsys.readouterr().err  # and it says so


def test_output_names_are_deterministic_and_never_take_another_inputs_name(tmp_path):
    files = ["a/talk.wav", "b/talk.mp3", "talk-2.wav", "c/talk.flac"]
    plan = plan_outputs(files, tmp_path, ("txt", "srt"))
    stems = [plan.targets[f]["txt"].stem for f in files]
    assert stems == ["talk", "talk-3", "talk-2", "talk-4"]  # talk-2 stays with the file of that name
    assert plan.targets["b/talk.mp3"]["srt"] == tmp_path / "talk-3.srt"
    assert plan_outputs(files, tmp_path, ("txt",)) == plan_outputs(files, tmp_path, ("txt",))


def test_the_same_file_twice_is_refused_before_the_model_loads(tmp_path, stand_in):
    same_file = str(JFK.parent / ".." / JFK.parent.name / JFK.name)  # another spelling of jfk.wav
    with pytest.raises(DuplicateInput):
        distinct_inputs([str(JFK), same_file])
    assert main(["transcribe", str(JFK), str(JFK), "-o", str(tmp_path)]) == 1
    assert not stand_in.loaded


@pytest.mark.realweights
def test_real_tiny_en_writes_both_talks(tmp_path, tiny_en, capsys):
    first, second = _two_talks(tmp_path)
    out = tmp_path / "out"

    assert main(["transcribe", first, second, "-o", str(out), "-f", "txt", "--model", str(tiny_en)]) == 0

    for name in ("talk.txt", "talk-2.txt"):
        assert text_similarity(JFK_TEXT, (out / name).read_text()) > 0.9
