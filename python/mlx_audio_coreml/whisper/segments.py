"""What a transcription produces (Word, Segment, TranscriptionInfo) and how one 30 s window's
tokens are cut into segments at their timestamp tokens.

Whisper writes a window as `<|t0|> text <|t1|><|t1'|> text <|t2|> ...`: a timestamp pair marks a
segment boundary. A window that ends on a lone timestamp (`... text <|t|>` + EOT) was heard to its
end; otherwise its last segment may stop mid-word at the window's edge, so the next window starts
at the last complete segment's end and decodes the cut-off speech again, from its beginning.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .audio import FRAMES_PER_SECOND, N_SAMPLES_PER_TOKEN, SAMPLE_RATE

# One timestamp step is 0.02 s: 320 samples (2 mel frames) per encoder position.
TIME_PRECISION = N_SAMPLES_PER_TOKEN / SAMPLE_RATE
FRAMES_PER_TIMESTAMP = N_SAMPLES_PER_TOKEN * FRAMES_PER_SECOND // SAMPLE_RATE  # 2


@dataclass(frozen=True)
class Word:
    """One word with its time span (seconds from the start of the audio) and its mean probability."""

    start: float
    end: float
    word: str  # with its leading space, as the tokenizer spells it
    probability: float


@dataclass(frozen=True)
class Segment:
    """A stretch of speech between two timestamp tokens, with the numbers behind its decode."""

    id: int
    seek: int  # mel frame where its window began
    start: float
    end: float
    text: str
    tokens: tuple[int, ...]  # its tokens as decoded: text between its two timestamp tokens
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float
    words: tuple[Word, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["tokens"] = list(self.tokens)
        data["words"] = None if self.words is None else [asdict(w) for w in self.words]
        return data


@dataclass(frozen=True)
class TranscriptionInfo:
    """What is known before the first segment: language, duration and the options in force."""

    language: str
    language_probability: float
    duration: float  # seconds of audio
    options: Any  # the TranscribeOptions used (after overrides)
    all_language_probs: tuple[tuple[str, float], ...] | None = None  # best first; None if not detected

    def to_dict(self) -> dict[str, Any]:
        options = self.options
        opts = asdict(options) if hasattr(options, "__dataclass_fields__") else options
        probs = None if self.all_language_probs is None else [list(p) for p in self.all_language_probs]
        return {
            "language": self.language,
            "language_probability": self.language_probability,
            "duration": self.duration,
            "all_language_probs": probs,
            "options": opts,
        }


@dataclass(frozen=True)
class TokenSpan:
    """A segment as found in one window: its timestamps (seconds from the window's start) and its
    tokens (text with the opening and closing timestamp tokens, when there are any)."""

    start: float
    end: float
    tokens: tuple[int, ...]


@dataclass(frozen=True)
class WindowCut:
    """How one window's tokens split: its segments, how many mel frames the seek may advance, and
    the tokens it consumed (the next window's prompt continues from them)."""

    spans: list[TokenSpan] = field(default_factory=list)
    consumed: tuple[int, ...] = ()
    advance_frames: int = 0
    ended_on_single_timestamp: bool = False


def cut_window(
    tokens: Sequence[int],
    timestamp_begin: int,
    window_frames: int,
) -> WindowCut:
    """Split a window's tokens (text and timestamps, no EOT) into spans at timestamp pairs.

    `window_frames` is how many mel frames of real audio the window held; the returned
    `advance_frames` never exceeds it and is at least one frame's worth of progress when the
    decode found any complete segment.
    """
    is_ts = [t >= timestamp_begin for t in tokens]
    ended_single = len(tokens) >= 2 and not is_ts[-2] and is_ts[-1]
    # A boundary sits between two timestamps in a row: the first ends a segment, the second starts one.
    boundaries = [i for i in range(1, len(tokens)) if is_ts[i - 1] and is_ts[i]]
    if ended_single:
        boundaries.append(len(tokens))  # the lone closing timestamp ends a complete segment too

    def seconds(token: int) -> float:
        return (token - timestamp_begin) * TIME_PRECISION

    if boundaries:
        spans, start = [], 0
        for end in boundaries:
            piece = tuple(tokens[start:end])
            has_text = any(t < timestamp_begin for t in piece)
            if has_text and is_ts[start] and is_ts[end - 1]:
                spans.append(TokenSpan(seconds(piece[0]), seconds(piece[-1]), piece))
            start = end
        if ended_single:
            advance = window_frames  # heard to the end: nothing was cut off
        else:
            # resume where the last complete segment ended; what follows is decoded again
            advance = (tokens[boundaries[-1] - 1] - timestamp_begin) * FRAMES_PER_TIMESTAMP
        consumed = tuple(tokens[: boundaries[-1]])
        return WindowCut(spans, consumed, max(min(advance, window_frames), 1), ended_single)

    # no timestamp pair (or no timestamps at all): the whole window is one segment
    has_text = any(not ts for ts in is_ts)
    start = seconds(tokens[0]) if tokens and is_ts[0] else 0.0
    end = max(window_frames / FRAMES_PER_SECOND, start)
    spans = [TokenSpan(start, end, tuple(tokens))] if has_text else []
    return WindowCut(spans, tuple(tokens), max(window_frames, 1), False)


def join_text(segments: Sequence[Segment]) -> str:
    """The plain transcript: the segments' text joined and stripped."""
    return "".join(s.text for s in segments).strip()
