"""Live transcription: audio arrives in pieces, text leaves as it is confirmed.

Silero VAD cuts the stream into utterances. While an utterance is being spoken, it is transcribed
again every `step_s` of new audio, and the words two successive hypotheses agree on (their common
prefix, "local agreement") are confirmed: they are never taken back. The rest of the newest
hypothesis is tentative. When VAD hears `min_silence_ms` of silence, the utterance is transcribed
once more and its final text is emitted.

    for event in session.listen(chunks):          # 16 kHz float32 (or int16) pieces of any size
        print(event.kind, event.text)             # "confirmed", "tentative" or "final"

Only the session's public `transcribe` is used, so any backend serves.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ..vad import FRAME_SAMPLES, SAMPLE_RATE, SileroVad

EventKind = Literal["confirmed", "tentative", "final"]


@dataclass(frozen=True)
class ListenOptions:
    step_s: float = 1.0  # new audio between two hypotheses (grows when decoding is slower)
    threshold: float = 0.5  # VAD: speech at or above this probability
    min_silence_ms: int = 600  # VAD: this much silence ends an utterance
    min_speech_ms: int = 96  # VAD: shorter blips do not start one
    speech_pad_ms: int = 300  # audio kept before the first speech frame
    max_utterance_s: float = 25.0  # longer speech is finalized here (one Whisper window)
    max_hypothesis_s: float = 2.0  # a hypothesis slower than this ends hypotheses for the utterance
    transcribe: dict[str, Any] = field(default_factory=dict)  # extra options for session.transcribe


@dataclass(frozen=True)
class ListenEvent:
    kind: EventKind
    text: str  # confirmed: the newly confirmed words; tentative: the unconfirmed rest; final: it all
    utterance: int  # 0, 1, ... in stream order
    start: float  # seconds from the start of the stream: the utterance's start
    end: float  # seconds: the audio heard when the event was made (final: the end of speech)


def common_prefix(a: list[str], b: list[str]) -> int:
    """How many leading words `a` and `b` share (compared without case or punctuation)."""
    n = 0
    for x, y in zip(a, b):
        if _key(x) != _key(y):
            break
        n += 1
    return n


def _key(word: str) -> str:
    return "".join(ch for ch in word.lower() if ch.isalnum())


class _Endpointer:
    """VAD probabilities, one per 32 ms frame, in; utterance starts and ends (frame numbers) out."""

    def __init__(self, options: ListenOptions) -> None:
        ms_per_frame = 1000 * FRAME_SAMPLES / SAMPLE_RATE
        self.threshold = options.threshold
        self.end_threshold = max(options.threshold - 0.15, 0.01)
        self.min_speech = max(1, round(options.min_speech_ms / ms_per_frame))
        self.min_silence = max(1, round(options.min_silence_ms / ms_per_frame))
        self.in_speech = False
        self.run = 0  # consecutive frames of speech (idle) or silence (in speech)

    @property
    def pausing(self) -> bool:
        """In speech, but the latest frames are silent."""
        return self.in_speech and self.run > 0

    def push(self, frame: int, prob: float) -> tuple[str, int] | None:
        """("start", first speech frame) or ("end", first silent frame) when one happens."""
        if not self.in_speech:
            self.run = self.run + 1 if prob >= self.threshold else 0
            if self.run >= self.min_speech:
                self.in_speech, self.run = True, 0
                return "start", frame - self.min_speech + 1
            return None
        self.run = self.run + 1 if prob < self.end_threshold else 0
        if self.run >= self.min_silence:
            self.in_speech, self.run = False, 0
            return "end", frame - self.min_silence + 1
        return None


class LiveTranscriber:
    """The listening state of one stream. `feed(samples)` and `finish()` return new events."""

    def __init__(self, session: Any, options: ListenOptions | None = None, vad: SileroVad | None = None) -> None:
        self.session = session
        self.options = options or ListenOptions()
        self._vad = (vad or SileroVad.shared()).stream()
        self._endpoint = _Endpointer(self.options)
        self._audio = np.zeros(0, dtype=np.float32)  # recent audio; _audio[0] is sample _origin
        self._origin = 0
        self._heard = 0  # samples fed so far
        self._start: int | None = None  # sample where the current utterance starts
        self._utterance = 0
        self._confirmed: list[str] = []
        self._previous: list[str] = []
        self._decoded_at = 0  # sample count at the last hypothesis
        self._step = int(self.options.step_s * SAMPLE_RATE)

    def feed(self, samples: Any) -> list[ListenEvent]:
        samples = _as_float(samples)
        self._audio = np.concatenate([self._audio, samples])
        self._heard += samples.size
        events: list[ListenEvent] = []
        first_frame = self._vad.frames_done
        for i, prob in enumerate(self._vad.feed(samples).tolist()):
            change = self._endpoint.push(first_frame + i, prob)
            if change is not None and change[0] == "start":
                pad = int(self.options.speech_pad_ms * SAMPLE_RATE / 1000)
                self._begin(max(self._origin, change[1] * FRAME_SAMPLES - pad))
            elif change is not None:
                events += self._final(change[1] * FRAME_SAMPLES)
        if self._start is None:
            self._forget(self._heard - int(self.options.speech_pad_ms * SAMPLE_RATE / 1000))
        elif self._heard - self._start >= self.options.max_utterance_s * SAMPLE_RATE:
            events += self._final(self._heard)
        elif self._heard - self._decoded_at >= self._step and not self._endpoint.pausing:
            events += self._hypothesis()  # not in a pause: the utterance may be ending, keep free for the final
        return events

    def finish(self) -> list[ListenEvent]:
        """The end of the stream: finalize an utterance still being spoken."""
        return self._final(self._heard) if self._start is not None else []

    # --- internals ------------------------------------------------------------------------------

    def _begin(self, start: int) -> None:
        self._start, self._confirmed, self._previous = start, [], []
        self._decoded_at = self._heard

    def _hypothesis(self) -> list[ListenEvent]:
        assert self._start is not None
        began = time.monotonic()
        words = self._words(self._start, self._heard)
        self._decoded_at = self._heard
        # a slow decode hypothesizes less often: at most half the time goes to hypotheses, so the
        # stream keeps pace and the final decode at the utterance's end starts without a backlog
        spent = time.monotonic() - began
        self._step = max(int(self.options.step_s * SAMPLE_RATE), int(2 * spent * SAMPLE_RATE))
        if spent > self.options.max_hypothesis_s:  # the next one would delay the final too long: none
            self._step = int(self.options.max_utterance_s * SAMPLE_RATE) + 1
        agreed = common_prefix(self._previous, words)
        self._previous = words
        events = []
        if agreed > len(self._confirmed):
            new = words[len(self._confirmed) : agreed]
            self._confirmed += new
            events.append(self._event("confirmed", new, self._heard))
        events.append(self._event("tentative", words[len(self._confirmed) :], self._heard))
        return events

    def _final(self, end: int) -> list[ListenEvent]:
        assert self._start is not None
        tail = int(self.options.speech_pad_ms * SAMPLE_RATE / 1000)  # the last word's fade-out
        words = self._words(self._start, min(self._heard, end + tail))
        events = []
        agreed = common_prefix(self._confirmed, words)
        rest = words[agreed:] if agreed == len(self._confirmed) else words[len(self._confirmed) :]
        if rest:
            events.append(self._event("confirmed", rest, end))
        if words:  # noise that woke the VAD but holds no words ends silently
            events.append(self._event("final", words, end))
        self._utterance += 1
        self._start = None
        self._step = int(self.options.step_s * SAMPLE_RATE)
        self._forget(end)
        return events

    def _words(self, start: int, end: int) -> list[str]:
        audio = self._audio[start - self._origin : end - self._origin]
        if audio.size < SAMPLE_RATE // 10:
            return []
        # text only (no timestamp tokens to decode), greedy, no fallback ladder: as fast as Whisper goes
        options = {"temperature": 0.0, "condition_on_previous_text": False, "without_timestamps": True,
                   **self.options.transcribe}  # fmt: skip
        segments, _info = self.session.transcribe(audio, **options)
        texts: list[str] = [s.text for s in segments]  # any backend: its segments have a str `text`
        return "".join(texts).split()

    def _event(self, kind: EventKind, words: list[str], at: int) -> ListenEvent:
        start = (self._start or 0) / SAMPLE_RATE
        return ListenEvent(kind, " ".join(words), self._utterance, round(start, 3), round(at / SAMPLE_RATE, 3))

    def _forget(self, before: int) -> None:
        """Drop audio no utterance can need any more."""
        cut = min(max(before, self._origin), self._heard) - self._origin
        if cut > 0:
            self._audio = self._audio[cut:]
            self._origin += cut


def _as_float(samples: Any) -> np.ndarray:
    array = np.asarray(samples).reshape(-1)
    if array.dtype == np.int16:
        return array.astype(np.float32) / 32768.0
    return array.astype(np.float32, copy=False)


def listen(
    session: Any,
    chunks: Iterable[Any],
    options: ListenOptions | None = None,
    vad: SileroVad | None = None,
) -> Iterator[ListenEvent]:
    """Events for a stream of 16 kHz mono pieces (float32 in [-1, 1] or int16), in order."""
    live = LiveTranscriber(session, options, vad)
    for chunk in chunks:
        yield from live.feed(chunk)
    yield from live.finish()
