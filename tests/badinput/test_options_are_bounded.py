"""Finding 4: unbounded options. An increment of 1e-9 built a billion temperatures, `nan` was a raw
ValueError traceback, `--temperature nan/inf` decoded garbage for a minute, `--beam-size 1000`
ran for minutes at 2.7 GB. Now each is one line naming the option, before the model loads."""

from __future__ import annotations

import pytest

from mlx_audio_coreml.cli import main
from mlx_audio_coreml.cli.transcribe import MAX_TEMPERATURES, temperatures
from mlx_audio_coreml.errors import InvalidOption
from speech_data import JFK


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--temperature-increment-on-fallback", "nan"),
        ("--temperature-increment-on-fallback", "-0.2"),
        ("--temperature", "nan"),
        ("--temperature", "inf"),
        ("--temperature", "-1"),
        ("--beam-size", "1000"),
        ("--beam-size", "0"),
        ("--best-of", "1000"),
        ("--beam-size", "five"),
    ],
)
def test_out_of_range_options_are_one_line_before_the_model_loads(option, value, stand_in, capsys):
    with pytest.raises(SystemExit) as done:
        main(["transcribe", str(JFK), option, value])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}" in err and "Traceback" not in err
    assert not stand_in.loaded


def test_a_tiny_increment_is_refused_without_building_the_ladder(stand_in, capsys):
    assert main(["transcribe", str(JFK), "--temperature-increment-on-fallback", "1e-9"]) == 1
    err = capsys.readouterr().err
    assert "temperature_increment_on_fallback" in err and f"more than {MAX_TEMPERATURES} temperatures" in err
    assert not stand_in.loaded


def test_the_ladder_is_bounded_and_unchanged_for_sane_steps():
    assert temperatures(0.0, 0.2) == (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    assert len(temperatures(0.0, 1 / (MAX_TEMPERATURES - 1))) == MAX_TEMPERATURES
    with pytest.raises(InvalidOption):
        temperatures(0.0, 1e-9)
    with pytest.raises(InvalidOption):
        temperatures(float("nan"), 0.2)


def test_the_cli_bounds_are_the_apis():
    from mlx_audio_coreml.cli import transcribe as cli_transcribe
    from mlx_audio_coreml.whisper import transcribe_options

    assert cli_transcribe.MAX_BEAMS == transcribe_options.MAX_BEAM_SIZE
    assert cli_transcribe.MAX_TEMPERATURES == transcribe_options.MAX_TEMPERATURES


def test_the_api_refuses_the_same_values(tiny_random_dir):
    from mlx_audio_coreml.options import ModelLoadingOptions
    from mlx_audio_coreml.whisper.session import WhisperSession

    session = WhisperSession.from_pretrained(tiny_random_dir, ModelLoadingOptions.mlx_only())
    for bad in ({"temperature": float("nan")}, {"temperature": float("inf")}, {"beam_size": 1000},
                {"temperature": tuple(i * 1e-9 for i in range(10**4))}):  # fmt: skip
        with pytest.raises(InvalidOption):
            session.transcribe(str(JFK), **bad)
