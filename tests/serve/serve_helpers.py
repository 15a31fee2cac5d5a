"""Stand-ins the HTTP tests drive where a real model cannot be controlled: a speech session that
makes one tone per sentence (the HTTP layer's streaming and encoding, not Kokoro), and a slow
transcriber whose pace the cancel and drain tests set."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


class ToneSpeech:
    """`stream(text, voice=, speed=)`: one 0.25 s / speed tone per sentence, at 24 kHz."""

    sample_rate = 24000

    def stream(self, text: str, voice: str, speed: float = 1.0) -> Iterator[np.ndarray]:
        if voice == "nobody":
            from mlx_audio_coreml.errors.kokoro import UnknownVoice

            raise UnknownVoice(voice, ["tone"])
        for i, _sentence in enumerate(s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s):
            t = np.arange(int(0.25 / speed * self.sample_rate)) / self.sample_rate
            yield (0.3 * np.sin(2 * np.pi * (220 + 110 * i) * t)).astype(np.float32)


@dataclass
class _Segment:
    text: str


class SlowTranscriber:
    """`transcribe` yields `n` segments, one every `pace_s`; counts what was consumed."""

    def __init__(self, n: int = 20, pace_s: float = 0.2) -> None:
        self.n, self.pace_s = n, pace_s
        self.consumed = 0
        self.finished = threading.Event()

    def transcribe(self, audio: object, **options: object) -> tuple[Iterator[_Segment], object]:
        def segments() -> Iterator[_Segment]:
            try:
                for i in range(self.n):
                    time.sleep(self.pace_s)
                    self.consumed += 1
                    yield _Segment(f" word{i}")
            finally:
                self.finished.set()

        return segments(), type("Info", (), {"language": "en", "duration": 1.0})()
