"""A KeyboardInterrupt dropped inside a decoder step (as MLX's array constructor drops one raised
by a signal handler: cancel.py) is raised at the next step, greedy and beam search alike."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest
from decode_helpers import FakeTokenizer

from mlx_audio_coreml import cancel
from mlx_audio_coreml.whisper.decoding import DecodingOptions, DecodingTask

T = FakeTokenizer()


@pytest.fixture(autouse=True)
def _forget_noted_signals() -> Iterator[None]:
    cancel.interrupt_handled()
    yield
    cancel.interrupt_handled()


@pytest.mark.parametrize("beam_size", [None, 3])
def test_an_interrupt_dropped_in_a_step_stops_the_decoding_at_the_next(
    tiny_model, audio_features, beam_size, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = type(tiny_model.decoder).__call__

    def decoder(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # the third call (the second step): the handler runs, its exception dropped
            try:
                cancel.interrupt_handler(signal.SIGINT, None)
            except KeyboardInterrupt:
                pass
        return real(self, *args, **kwargs)

    monkeypatch.setattr(type(tiny_model.decoder), "__call__", decoder)
    task = DecodingTask(tiny_model, T, DecodingOptions(beam_size=beam_size, sample_len=40, suppress_tokens=[T.eot]))
    with pytest.raises(KeyboardInterrupt, match="signal 2"):
        task.run(audio_features)
    assert len(calls) == 3  # no step after the one that dropped it


def test_without_a_noted_signal_decoding_runs_to_its_end(tiny_model, audio_features) -> None:
    task = DecodingTask(tiny_model, T, DecodingOptions(sample_len=6, suppress_tokens=[T.eot]))
    assert len(task.run(audio_features)[0].tokens) == 6


def test_an_interrupt_dropped_in_a_window_stops_the_seek_loop_before_its_segments() -> None:
    """The last window too: a drop there would otherwise let the transcription finish normally."""
    from test_decode_seek_loop import WordWorld

    from mlx_audio_coreml.whisper.transcribe import SeekLoop, TranscribeOptions

    world = WordWorld(100)  # three windows

    def decode(seek, n_frames, prompt):
        window = world.decode(seek, n_frames, prompt)
        if len(world.calls) == 2:
            try:
                cancel.interrupt_handler(signal.SIGINT, None)
            except KeyboardInterrupt:
                pass
        return window

    segments = []
    with pytest.raises(KeyboardInterrupt):
        for segment in SeekLoop(TranscribeOptions(), T, round(world.duration * 100)).run(decode):
            segments.append(segment)
    assert len(world.calls) == 2 and all(s.end <= 30.0 for s in segments)  # the first window's only
