"""`mlx-audio-coreml speak` on a tiny random Kokoro: every output format, input sources, and no file on any error."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "kokoro"))  # the Kokoro tests' tiny model

from session_tiny import build_tiny_folder  # noqa: E402

from mlx_audio_coreml.cli import main, speak  # noqa: E402
from mlx_audio_coreml.kokoro.session import KokoroSession  # noqa: E402

TEXT = "Hello world. How are you today?"


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_folder(tmp_path_factory.mktemp("kokoro-tiny"))


@pytest.fixture(scope="module")
def tiny_session(tiny_folder: Path) -> KokoroSession:
    return KokoroSession.from_pretrained(tiny_folder, g2p="espeak")


@pytest.fixture
def shared_session(monkeypatch: pytest.MonkeyPatch, tiny_session: KokoroSession) -> KokoroSession:
    """The CLI gets the already loaded tiny session instead of loading one per call."""
    monkeypatch.setattr(speak, "load_session", lambda args: tiny_session)
    return tiny_session


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".mp3"])
def test_speak_writes_a_readable_24khz_file(shared_session: KokoroSession, tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"speech{suffix}"
    assert main(["speak", TEXT, "--voice", "af_test", "--out", str(out)]) == 0
    audio, rate = sf.read(out)
    (chunk,) = shared_session.chunks(TEXT)
    expected = (len(chunk.token_ids) + 2) * 600  # one frame per token (pads too) in the tiny model
    assert rate == 24000 and abs(len(audio) - expected) < (2400 if suffix == ".mp3" else 1)


def test_raw_pcm_holds_the_synthesized_samples(shared_session: KokoroSession, tmp_path: Path) -> None:
    out = tmp_path / "speech.pcm"
    assert main(["speak", TEXT, "--voice", "bf_other", "--speed", "1.5", "--out", str(out)]) == 0
    expected, _ = shared_session.synthesize(TEXT, voice="bf_other", speed=1.5)
    samples = np.frombuffer(out.read_bytes(), "<i2")
    assert np.array_equal(samples, np.round(np.clip(expected, -1, 1) * 32767).astype("<i2"))


def test_text_from_a_file_and_from_standard_input(
    shared_session: KokoroSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "in.txt"
    source.write_text(TEXT, encoding="utf-8")
    assert main(["speak", "--file", str(source), "--out", str(tmp_path / "a.wav")]) == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO(TEXT))
    assert main(["speak", "-", "--out", str(tmp_path / "b.wav")]) == 0
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()


def test_phoneme_input(shared_session: KokoroSession, tmp_path: Path) -> None:
    assert main(["speak", "həlˈO wˈɜɹld.", "--phonemes", "--out", str(tmp_path / "p.wav")]) == 0
    assert len(sf.read(tmp_path / "p.wav")[0]) == (len("həlˈO wˈɜɹld.") + 2) * 600


def test_progress_bar_counts_chunks(
    shared_session: KokoroSession, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["speak", TEXT, "--progress", "--out", str(tmp_path / "p.wav")]) == 0
    assert "1/1 chunks" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["speak", "Hi.", "--voice", "nobody"], "known voices: af_test, bf_other"),
        (["speak", "Hi.", "--speed", "3"], "speed: expected 0.5..2.0"),
        (["speak", "..."], "nothing to speak"),
        (["speak", "hˈI Ʃ", "--phonemes"], "U+01A9"),
    ],
)
def test_errors_leave_no_file(
    shared_session: KokoroSession, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main([*argv, "--out", str(tmp_path / "out.wav")]) == 1
    assert message in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_interrupt_leaves_no_file(
    shared_session: KokoroSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_stream = shared_session.stream

    def interrupted_after_one_piece(*args: object, **kwargs: object):
        yield next(real_stream(phonemes="hˈI.", voice="af_test"))
        raise KeyboardInterrupt  # Ctrl-C (or SIGTERM, turned into the same) during the second chunk

    monkeypatch.setattr(shared_session, "stream", interrupted_after_one_piece)
    assert main(["speak", TEXT, "--out", str(tmp_path / "out.wav")]) == 130
    assert os.listdir(tmp_path) == []


def test_unsupported_format_is_refused_before_loading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(speak, "load_session", lambda args: pytest.fail("the model must not load"))
    assert main(["speak", "Hi.", "--out", str(tmp_path / "out.ogg")]) == 1
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "argv", [["speak", "Hi."], ["speak", "--out", "x.wav"], ["speak", "Hi.", "--file", "f.txt", "--out", "x.wav"]]
)
def test_missing_or_double_inputs_are_usage_errors(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(speak, "load_session", lambda args: pytest.fail("the model must not load"))
    assert main(argv) == 2


def test_list_voices_loads_the_model_folder(tiny_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["speak", "--list-voices", "--model", str(tiny_folder)]) == 0
    assert capsys.readouterr().out.split() == ["af_test", "bf_other"]


def test_missing_model_is_an_error_with_a_hint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["speak", "Hi.", "--model", str(tmp_path / "absent"), "--out", str(tmp_path / "o.wav")]) == 1
    assert "fetch_models.sh kokoro" in capsys.readouterr().err
