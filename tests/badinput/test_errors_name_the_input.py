"""Finding 7: unclear or raw errors. A corrupt tokenizer.json was a raw tokenizers traceback naming no
file; a directory or /dev/zero as input said "no such file"; --model naming a file said
`HFValidationError: Repo id must be...`; bytes or an open file in the API said `dtype object`."""

from __future__ import annotations

import io
import shutil

import pytest

from mlx_audio_coreml.audio.decode import decode_audio
from mlx_audio_coreml.cli import main
from mlx_audio_coreml.errors import AudioDecodeError, CorruptModelFile, ModelNotFound
from speech_data import JFK


def test_a_corrupt_tokenizer_json_names_the_file(tmp_path, tiny_random_dir):
    from mlx_audio_coreml.whisper.loading import load_whisper

    broken = tmp_path / "model"
    shutil.copytree(tiny_random_dir, broken)
    (broken / "tokenizer.json").write_text('{"version": "1.0", "trunc')
    with pytest.raises(CorruptModelFile) as caught:
        load_whisper(broken)
    assert caught.value.path == str(broken / "tokenizer.json") and "copy it again" in str(caught.value)


@pytest.mark.parametrize(("given", "says"), [("folder", "is a directory"), ("/dev/zero", "is not a regular file"),
                                            ("missing.wav", "no such file")])  # fmt: skip
def test_inputs_that_are_not_audio_files_say_what_they_are(tmp_path, given, says, stand_in, capsys):
    path = {"folder": str(tmp_path), "missing.wav": str(tmp_path / "missing.wav")}.get(given, given)
    with pytest.raises(AudioDecodeError, match=says):
        decode_audio(path)
    assert main(["transcribe", path]) == 1
    assert f"cannot read audio from {path}: {says}" in capsys.readouterr().err
    assert not stand_in.loaded  # nothing to do: the model never loads


def test_model_naming_a_file_says_so(tmp_path, capsys):
    config = tmp_path / "config.json"
    config.write_text("{}")
    assert main(["transcribe", str(JFK), "--model", str(config)]) == 1
    err = capsys.readouterr().err
    assert "is a file; pass the folder that holds it" in err and "HFValidationError" not in err


def test_model_naming_a_missing_path_is_not_sent_to_the_hub(tmp_path):
    from mlx_audio_coreml.whisper.model_names import repo_for

    for missing in (str(tmp_path / "nowhere"), "./models/tiny", "~/no/such/model"):
        with pytest.raises(ModelNotFound, match="There is no folder"):
            repo_for(missing)
    assert repo_for("openai/whisper-tiny") == "openai/whisper-tiny"


def test_bytes_and_binary_files_are_decoded_like_the_path():
    expected = decode_audio(JFK)
    assert (decode_audio(JFK.read_bytes()) == expected).all()
    with open(JFK, "rb") as handle:
        assert (decode_audio(handle) == expected).all()
    assert (decode_audio(io.BytesIO(JFK.read_bytes())) == expected).all()


def test_text_files_and_objects_get_a_hint_not_a_dtype(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with open(text) as handle, pytest.raises(AudioDecodeError, match="open it with 'rb'"):
        decode_audio(handle)
    with pytest.raises(AudioDecodeError, match="cannot use a object.*pass a path, a numpy or MLX array"):
        decode_audio(object())
    with pytest.raises(AudioDecodeError, match="WAV/FLAC/OGG"):
        decode_audio(b"not audio at all")
