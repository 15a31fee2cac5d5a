"""Live transcription: local agreement confirms words two hypotheses share and never takes them
back; VAD ends utterances; real tiny.en on real speech fed in 100 ms pieces."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest
import soundfile as sf

from mlx_audio_coreml.whisper.streaming import ListenOptions, _Endpointer, common_prefix, listen
from speech_data import JFK, librivox_clips, real_model_dir
from speech_data import text_similarity as similarity


@pytest.fixture(scope="module")
def vad():
    from mlx_audio_coreml.errors.vad import VadError
    from mlx_audio_coreml.vad import SileroVad

    try:
        return SileroVad.shared()
    except VadError as exc:
        pytest.skip(f"Silero VAD not installed ({exc})")


def _pieces(audio: np.ndarray, size: int = 1600) -> Iterator[np.ndarray]:
    return (audio[i : i + size] for i in range(0, audio.size, size))


def _with_silence(*clips: np.ndarray, gap_s: float = 1.5) -> np.ndarray:
    gap = np.zeros(int(gap_s * 16000), np.float32)
    return np.concatenate([gap] + [part for clip in clips for part in (clip, gap)])


@dataclass
class _Segment:
    text: str


class ScriptedSession:
    """`transcribe` answers the next scripted hypothesis, whatever the audio."""

    def __init__(self, hypotheses: list[str]) -> None:
        self.hypotheses = iter(hypotheses)

    def transcribe(self, audio: np.ndarray, **options: object) -> tuple[list[_Segment], None]:
        return [_Segment(next(self.hypotheses, ""))], None


def test_common_prefix_ignores_case_and_punctuation():
    assert common_prefix("And so, my fellow".split(), "and so my Fellow Americans".split()) == 4
    assert common_prefix("ask not".split(), "task not".split()) == 0


def test_endpointer_needs_min_speech_to_start_and_min_silence_to_end():
    ends = _Endpointer(ListenOptions(min_speech_ms=96, min_silence_ms=320))  # 3 and 10 frames
    probs = [0.9, 0.1] + [0.9] * 5 + [0.5] * 3 + [0.1] * 10 + [0.0] * 5
    changes = [c for i, p in enumerate(probs) if (c := ends.push(i, p)) is not None]
    assert changes == [("start", 2), ("end", 10)]  # the lone 0.9 at frame 0 started nothing


def test_confirmed_words_are_those_successive_hypotheses_agree_on(vad):
    jfk, _ = sf.read(JFK, dtype="float32")
    script = [
        "And so",
        "And so my fellow",
        "And so my fellow Americans ask",
        "And so my fellow Americans, ask not what",
    ]
    session = ScriptedSession(script + ["And so my fellow Americans ask not what your country"] * 20)
    options = ListenOptions(step_s=1.0, min_silence_ms=1500)  # jfk pauses ~1 s after "Americans": one utterance
    events = list(listen(session, _pieces(_with_silence(jfk[: 16000 * 5])), options, vad))
    confirmed = [e.text for e in events if e.kind == "confirmed"]
    assert confirmed[0] == "And so"  # hypotheses 1 and 2 share "And so"; later ones extend it
    finals = [e for e in events if e.kind == "final"]
    assert len(finals) == 1
    # the confirmed words, in order, are the final text (each in the spelling that confirmed it)
    words = " ".join(confirmed).split()
    assert common_prefix(words, finals[0].text.split()) == len(words) == len(finals[0].text.split()) >= 6
    assert all(e.kind == "tentative" or e.text for e in events)


@pytest.mark.realweights
def test_two_utterances_from_real_speech_come_out_as_two_finals(vad):
    import mlx_audio_coreml as mac

    clips = librivox_clips()[:2]
    if real_model_dir("tiny.en") is None or len(clips) < 2:
        pytest.skip("needs tiny.en and pocketsphinx-testdata (scripts/setup.sh)")
    audio = [sf.read(path, dtype="float32")[0] for path, _ in clips]
    session = mac.WhisperSession.from_pretrained("tiny.en")
    events = list(session.listen(_pieces(_with_silence(*audio)), ListenOptions(step_s=2.0)))
    finals = [e for e in events if e.kind == "final"]
    assert len(finals) == 2, [e.text for e in finals]
    for final, (_, reference) in zip(finals, clips):
        assert similarity(reference, final.text) >= 0.7, final.text
    for utterance, final in enumerate(finals):
        confirmed = [e.text for e in events if e.kind == "confirmed" and e.utterance == utterance]
        words = " ".join(confirmed).split()
        assert common_prefix(words, final.text.split()) == len(words)  # the final text keeps what was confirmed
    assert finals[0].end < finals[1].start  # in stream order, apart
    assert any(e.kind == "tentative" for e in events)
