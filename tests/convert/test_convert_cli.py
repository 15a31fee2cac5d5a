"""`mlx-audio-coreml convert whisper`: arguments, output, exit codes."""

from __future__ import annotations

import pytest
from convert_helpers import real_model_dir

from mlx_audio_coreml.cli import main
from mlx_audio_coreml.convert.validate import validation_runtime_available


@pytest.mark.realweights
def test_cli_converts_real_tiny_en_and_reports_the_check(tmp_path, capsys):
    model_dir = real_model_dir("tiny.en")
    args = ["--model", str(model_dir), "--layout", "whispercpp", "--precision", "float32", "--out", str(tmp_path)]
    code = main(["convert", "whisper", *args])
    captured = capsys.readouterr()
    assert code == 0
    package = tmp_path / "tiny.en-encoder-whispercpp-float32.mlpackage"
    assert package.is_dir() and f"wrote {package}" in captured.out
    assert "running coremltools passes" in captured.err  # the stage bar, on stderr
    if validation_runtime_available("portable")[0]:
        assert "relative error" in captured.out
    else:
        assert "not validated" in captured.out


def test_cli_unknown_model_fails_with_a_hint_and_writes_nothing(tmp_path, capsys):
    code = main(["convert", "whisper", "--model", "no-such-model", "--out", str(tmp_path / "out"), "--no-validate"])
    assert code == 1
    assert "no-such-model" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_cli_rejects_an_unknown_layout(tmp_path):
    with pytest.raises(SystemExit):
        main(["convert", "whisper", "--model", "tiny.en", "--layout", "onnx", "--out", str(tmp_path)])
