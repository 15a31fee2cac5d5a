"""Transcription and translation requests: the form's fields checked into one typed request, the
work a worker runs for it (through the session's public `transcribe`), and the response bodies in
OpenAI's formats (json, text, srt, verbose_json, vtt) and server-sent events.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..cancel import CancelToken
from ..errors.serve import InvalidRequest
from ..whisper.tokenizer import LANGUAGES
from ..whisper.writers import format_srt, format_vtt
from .work import JobCancelled

RESPONSE_FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
GRANULARITIES = ("word", "segment")
MEDIA_TYPES = {"json": "application/json", "verbose_json": "application/json", "text": "text/plain",
               "srt": "text/plain", "vtt": "text/vtt"}  # fmt: skip


@dataclass(frozen=True)
class TranscriptionRequest:
    """One `/v1/audio/transcriptions` or `/translations` request, checked."""

    task: str  # "transcribe" or "translate"
    model: str
    language: str | None = None
    prompt: str | None = None
    response_format: str = "json"
    temperature: float | None = None
    granularities: tuple[str, ...] = ("segment",)
    stream: bool = False

    @classmethod
    def from_form(cls, task: str, form: Mapping[str, Any], granularities: Sequence[str]) -> TranscriptionRequest:
        model = _text(form, "model")
        if not model:
            raise InvalidRequest("model", "you must provide a model parameter", "missing_required_parameter")
        response_format = _text(form, "response_format") or "json"
        if response_format not in RESPONSE_FORMATS:
            raise InvalidRequest("response_format", f"response_format must be one of {list(RESPONSE_FORMATS)}")
        unknown = sorted(set(granularities) - set(GRANULARITIES))
        if unknown:
            raise InvalidRequest(
                "timestamp_granularities[]", f"unknown granularity {unknown[0]!r}; use word or segment"
            )
        if granularities and response_format != "verbose_json":
            raise InvalidRequest(
                "timestamp_granularities[]", "timestamp_granularities needs response_format=verbose_json"
            )
        stream = (_text(form, "stream") or "false").lower() in ("true", "1")
        if stream and response_format not in ("json", "text"):
            raise InvalidRequest("stream", "streaming answers only the json and text formats")
        return cls(
            task=task, model=model, language=_text(form, "language") or None, prompt=_text(form, "prompt") or None,
            response_format=response_format, temperature=_temperature(form),
            granularities=tuple(granularities) or ("segment",), stream=stream,
        )  # fmt: skip

    def options(self) -> dict[str, Any]:
        """Keyword options for the session's `transcribe`."""
        options: dict[str, Any] = {"task": self.task, "word_timestamps": "word" in self.granularities}
        if self.language:
            options["language"] = self.language
        if self.prompt:
            options["initial_prompt"] = self.prompt
        if self.temperature is not None and self.temperature > 0:
            options["temperature"] = self.temperature  # 0 (OpenAI's default) keeps the fallback ladder
        return options


def _text(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidRequest(name, f"{name} must be a text field")
    return value.strip()


def _temperature(form: Mapping[str, Any]) -> float | None:
    raw = _text(form, "temperature")
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise InvalidRequest("temperature", f"temperature must be a number, got {raw!r}") from None
    if not 0.0 <= value <= 1.0:
        raise InvalidRequest("temperature", "temperature must be between 0 and 1")
    return value


@dataclass(frozen=True)
class Transcript:
    segments: tuple[Any, ...]
    info: Any

    @property
    def text(self) -> str:
        return "".join(s.text for s in self.segments).strip()


def transcribe_job(
    session: Any,
    audio: Path,
    request: TranscriptionRequest,
    on_segment: Callable[[Any], None] | None = None,
) -> Callable[[CancelToken], Transcript]:
    """The work a worker runs: decode window by window, stopping at the next one once cancelled."""

    def run(token: CancelToken) -> Transcript:
        segments, info = session.transcribe(str(audio), **request.options())
        done = []
        try:
            for segment in segments:
                if token.cancelled:
                    raise JobCancelled()
                done.append(segment)
                if on_segment is not None:
                    on_segment(segment)
        finally:
            close = getattr(segments, "close", None)
            if close is not None:
                close()  # a cancelled decode lets go of its buffers now, not when collected
        return Transcript(tuple(done), info)

    return run


# --- Response bodies ------------------------------------------------------------------------------


def render(transcript: Transcript, request: TranscriptionRequest) -> str:
    """The response body in the request's format."""
    fmt, segments = request.response_format, list(transcript.segments)
    if fmt == "text":
        return transcript.text + "\n"
    if fmt == "srt":
        return format_srt(segments)
    if fmt == "vtt":
        return format_vtt(segments)
    if fmt == "verbose_json":
        return json.dumps(verbose(transcript, request), ensure_ascii=False)
    return json.dumps({"text": transcript.text, "usage": _usage(transcript)}, ensure_ascii=False)


def verbose(transcript: Transcript, request: TranscriptionRequest) -> dict[str, Any]:
    info = transcript.info
    body: dict[str, Any] = {
        "task": request.task,
        "language": LANGUAGES.get(info.language, info.language),  # OpenAI names it: "english"
        "duration": round(float(info.duration), 3),
        "text": transcript.text,
        "usage": _usage(transcript),
    }
    if "segment" in request.granularities:
        body["segments"] = [_segment(s) for s in transcript.segments]
    if "word" in request.granularities:
        body["words"] = [
            {"word": w.word.strip(), "start": w.start, "end": w.end} for s in transcript.segments for w in s.words or ()
        ]
    return body


def _segment(s: Any) -> dict[str, Any]:
    return {
        "id": s.id, "seek": s.seek, "start": s.start, "end": s.end, "text": s.text, "tokens": list(s.tokens),
        "temperature": s.temperature, "avg_logprob": s.avg_logprob, "compression_ratio": s.compression_ratio,
        "no_speech_prob": s.no_speech_prob,
    }  # fmt: skip


def _usage(transcript: Transcript) -> dict[str, Any]:
    return {"type": "duration", "seconds": round(float(transcript.info.duration), 3)}


def sse(event: Mapping[str, Any]) -> str:
    """One server-sent event carrying `event` as JSON (OpenAI's stream framing)."""
    return f"data: {json.dumps(event, ensure_ascii=False)}\n\n"
