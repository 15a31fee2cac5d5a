"""Voice activity detection: Silero VAD on onnxruntime, and speech timestamps with faster-whisper's
parameters (threshold, minimum speech and silence, speech padding, maximum speech duration).

    spans = speech_timestamps(samples)            # 16 kHz float32 -> [SpeechSpan(start, end)] in samples
    probs = SileroVad.shared().probabilities(samples)   # one speech probability per 32 ms frame
    stream = SileroVad.shared().stream(); stream.feed(piece)  # live audio, any piece size

The model is Silero's "sequence" ONNX export (`silero_vad_16k_sequence.onnx`, shipped in the
`silero-vad` wheel): one call takes many 512-sample frames, each led by the 64 samples before it,
and carries the LSTM state (h, c) between calls. Its probabilities equal those of Silero's
frame-by-frame model (`silero_vad.onnx`) exactly, in far fewer calls. The wheel depends on torch,
so it is never installed for us: scripts/fetch_models.sh extracts the file into
$MLX_AUDIO_COREML_HOME/models/silero-vad; an installed `silero-vad` package is used as well.
(faster-whisper's own `silero_vad_v6.onnx` gives different probabilities and is not used.)
"""

from __future__ import annotations

import functools
import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import config
from .errors import InvalidOption
from .errors.vad import VadModelMissing, VadUnavailable

SAMPLE_RATE = 16000
FRAME_SAMPLES = 512  # one probability per 32 ms
CONTEXT_SAMPLES = 64  # each frame is led by the previous frame's last 64 samples
MODEL_FILE = "silero_vad_16k_sequence.onnx"
MODEL_DIR = "silero-vad"  # under config.models_dir()
_FRAMES_PER_CALL = 512  # ~16 s per ONNX call: bounded memory, few Python round trips
_STATE_SHAPE = (1, 1, 128)


@dataclass(frozen=True)
class VadOptions:
    """faster-whisper's VAD parameters, with its defaults (tuned for cutting audio before Whisper)."""

    threshold: float = 0.5  # a frame at or above this probability is speech
    neg_threshold: float | None = None  # below this, speech ends; None: max(threshold - 0.15, 0.01)
    min_speech_duration_ms: int = 0  # shorter speech is dropped
    max_speech_duration_s: float = float("inf")  # longer speech is split (at a pause if there is one)
    min_silence_duration_ms: int = 2000  # silence this long ends a span
    speech_pad_ms: int = 400  # added to both ends of each span

    def validated(self) -> VadOptions:
        if not 0.0 < self.threshold < 1.0:
            raise InvalidOption("threshold", self.threshold, "must be between 0 and 1")
        if self.neg_threshold is not None and not 0.0 <= self.neg_threshold <= self.threshold:
            raise InvalidOption("neg_threshold", self.neg_threshold, "must be between 0 and threshold")
        for name in ("min_speech_duration_ms", "min_silence_duration_ms", "speech_pad_ms"):
            if getattr(self, name) < 0:
                raise InvalidOption(name, getattr(self, name), "must be >= 0")
        if not self.max_speech_duration_s > 0:
            raise InvalidOption("max_speech_duration_s", self.max_speech_duration_s, "must be > 0")
        return self

    @property
    def end_threshold(self) -> float:
        """Probability below which a frame counts as silence inside speech."""
        return self.neg_threshold if self.neg_threshold is not None else max(self.threshold - 0.15, 0.01)


@dataclass(frozen=True)
class SpeechSpan:
    """Speech from sample `start` up to (not including) sample `end`, at 16 kHz."""

    start: int
    end: int

    @property
    def start_s(self) -> float:
        return self.start / SAMPLE_RATE

    @property
    def end_s(self) -> float:
        return self.end / SAMPLE_RATE


# --- The model ----------------------------------------------------------------------------------


def model_search_path() -> list[Path]:
    """Where the model file is looked for, first hit wins."""
    paths = [config.models_dir() / MODEL_DIR / MODEL_FILE]
    spec = importlib.util.find_spec("silero_vad")  # finds the package without importing it (and torch)
    for location in (spec.submodule_search_locations or []) if spec else []:
        paths.append(Path(location) / "data" / MODEL_FILE)
    return paths


def find_model() -> Path:
    """The Silero VAD model file; raises VadModelMissing with the places searched."""
    searched = model_search_path()
    for path in searched:
        if path.is_file():
            return path
    hint = "Install it with `bash scripts/fetch_models.sh silero-vad` (extracts it from the silero-vad wheel)."
    raise VadModelMissing([str(p) for p in searched], hint)


class SileroVad:
    """One loaded Silero VAD model. `run` is thread-safe (onnxruntime sessions are), so one
    instance serves every caller; state lives in each `VadStream`."""

    def __init__(self, path: str | Path | None = None) -> None:
        try:
            import onnxruntime
        except ImportError as exc:
            raise VadUnavailable(f"onnxruntime is not installed ({exc})") from exc
        self.path = Path(path) if path is not None else find_model()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # a tiny LSTM: threads cost more than they give
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # the export carries unused initializers ORT warns about
        try:
            self._session = onnxruntime.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors for unreadable files
            raise VadUnavailable(f"onnxruntime cannot load {self.path}: {exc}") from exc

    @classmethod
    def shared(cls) -> SileroVad:
        """The process-wide instance (loaded on first use)."""
        return _shared_model()

    def run(
        self, blocks: np.ndarray, state: tuple[np.ndarray, np.ndarray]
    ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """Probabilities for `blocks` (n, 64 + 512) and the LSTM state after them."""
        probs, h, c = self._session.run(None, {"input": blocks, "h": state[0], "c": state[1]})
        return np.asarray(probs, dtype=np.float32).reshape(-1), (np.asarray(h), np.asarray(c))

    def stream(self) -> VadStream:
        return VadStream(self)

    def probabilities(self, samples: np.ndarray) -> np.ndarray:
        """One speech probability per 512 samples of 16 kHz audio (the last frame zero-padded)."""
        stream = self.stream()
        head = stream.feed(samples)
        return np.concatenate([head, stream.flush()])


_shared_lock = threading.Lock()


@functools.cache
def _shared_model() -> SileroVad:
    with _shared_lock:
        return SileroVad()


class VadStream:
    """Audio in pieces of any size; out, one probability per frame as each frame completes."""

    def __init__(self, model: SileroVad) -> None:
        self.model = model
        self.frames_done = 0  # frame i covers samples [i * 512, (i + 1) * 512)
        self._pending = np.zeros(0, dtype=np.float32)
        self._context = np.zeros(CONTEXT_SAMPLES, dtype=np.float32)
        self._state = (np.zeros(_STATE_SHAPE, np.float32), np.zeros(_STATE_SHAPE, np.float32))

    def feed(self, samples: Any) -> np.ndarray:
        """Add samples (16 kHz float32); returns the probabilities of the frames now complete."""
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        audio = np.concatenate([self._pending, samples]) if self._pending.size else samples
        whole = audio.size // FRAME_SAMPLES * FRAME_SAMPLES
        self._pending = audio[whole:].copy()
        return self._frames(audio[:whole].reshape(-1, FRAME_SAMPLES))  # (n, 512)

    def flush(self) -> np.ndarray:
        """The probability of the part-filled last frame (zero-padded), if any."""
        if not self._pending.size:
            return np.zeros(0, dtype=np.float32)
        frame = np.zeros((1, FRAME_SAMPLES), dtype=np.float32)
        frame[0, : self._pending.size] = self._pending
        self._pending = np.zeros(0, dtype=np.float32)
        return self._frames(frame)

    def _frames(self, frames: np.ndarray) -> np.ndarray:
        out = [np.zeros(0, dtype=np.float32)]
        for first in range(0, len(frames), _FRAMES_PER_CALL):
            block = frames[first : first + _FRAMES_PER_CALL]
            contexts = np.empty((len(block), CONTEXT_SAMPLES), dtype=np.float32)
            contexts[0] = self._context
            contexts[1:] = block[:-1, -CONTEXT_SAMPLES:]
            self._context = block[-1, -CONTEXT_SAMPLES:].copy()
            probs, self._state = self.model.run(np.concatenate([contexts, block], axis=1), self._state)
            out.append(probs)
        result = np.concatenate(out)
        self.frames_done += len(result)
        return result


# --- Speech timestamps ----------------------------------------------------------------------------


def speech_timestamps(
    audio: Any, options: VadOptions | None = None, model: SileroVad | None = None
) -> list[SpeechSpan]:
    """Speech spans of 16 kHz mono float32 `audio`, in samples, padded and in order."""
    samples = np.asarray(audio, dtype=np.float32).reshape(-1)
    options = (options or VadOptions()).validated()
    probs = (model or SileroVad.shared()).probabilities(samples)
    return spans_from_probabilities(probs, samples.size, options)


def spans_from_probabilities(probs: np.ndarray, n_samples: int, options: VadOptions | None = None) -> list[SpeechSpan]:
    """Silero's (and faster-whisper's) rules turning frame probabilities into padded speech spans."""
    options = (options or VadOptions()).validated()
    raw = _Segmenter(options).run(probs, n_samples)
    return _padded(raw, round(SAMPLE_RATE * options.speech_pad_ms / 1000), n_samples)


class _Segmenter:
    """The hysteresis state machine: speech starts at `threshold`, ends after `min_silence` below
    `end_threshold`; overlong speech is cut at its last pause of ~100 ms, else where it stands."""

    def __init__(self, options: VadOptions) -> None:
        rate = SAMPLE_RATE
        pad = rate * options.speech_pad_ms / 1000
        self.threshold = options.threshold
        self.end_threshold = options.end_threshold
        self.min_speech = rate * options.min_speech_duration_ms / 1000
        self.max_speech = rate * options.max_speech_duration_s - FRAME_SAMPLES - 2 * pad
        self.min_silence = rate * options.min_silence_duration_ms / 1000
        self.pause_at_max = rate * 98 / 1000  # a pause this long is a place to cut overlong speech
        self.spans: list[tuple[int, int]] = []
        self.start: int | None = None  # None: not in speech
        self.silence_start = 0  # where the current silence inside speech began (0: none)
        self.last_pause_end = 0  # end of speech before the last long-enough pause (0: none)
        self.after_pause = 0  # where speech resumed after that pause

    def run(self, probs: np.ndarray, n_samples: int) -> list[tuple[int, int]]:
        for i, prob in enumerate(np.asarray(probs, dtype=np.float64).tolist()):
            self._step(i * FRAME_SAMPLES, prob)
        if self.start is not None and n_samples - self.start > self.min_speech:
            self.spans.append((self.start, n_samples))
        return self.spans

    def _step(self, pos: int, prob: float) -> None:
        if prob >= self.threshold and self.silence_start:
            self.silence_start = 0
            if self.after_pause < self.last_pause_end:
                self.after_pause = pos
        if self.start is None:
            if prob >= self.threshold:
                self.start = pos
            return
        if pos - self.start > self.max_speech and not self._split(pos):
            return
        if prob < self.end_threshold and self.start is not None:
            self._silence(pos)

    def _split(self, pos: int) -> bool:
        """Cut overlong speech; True when the frame still needs its silence check."""
        assert self.start is not None
        if not self.last_pause_end:
            self.spans.append((self.start, pos))
            self._reset(None)
            return False
        self.spans.append((self.start, self.last_pause_end))
        resumed = self.after_pause >= self.last_pause_end  # speech came back after the pause
        self._reset(self.after_pause if resumed else None)
        return True

    def _silence(self, pos: int) -> None:
        assert self.start is not None
        if not self.silence_start:
            self.silence_start = pos
        if pos - self.silence_start > self.pause_at_max:
            self.last_pause_end = self.silence_start
        if pos - self.silence_start < self.min_silence:
            return
        if self.silence_start - self.start > self.min_speech:
            self.spans.append((self.start, self.silence_start))
        self._reset(None)

    def _reset(self, start: int | None) -> None:
        self.start = start
        self.silence_start = self.last_pause_end = self.after_pause = 0


def _padded(spans: list[tuple[int, int]], pad: int, n_samples: int) -> list[SpeechSpan]:
    """Pad each span by `pad`; where two spans are closer than 2 * pad, meet halfway instead."""
    starts = [s for s, _ in spans]
    ends = [e for _, e in spans]
    for i in range(len(spans)):
        if i == 0:
            starts[0] = max(0, starts[0] - pad)
        if i == len(spans) - 1:
            ends[i] = min(n_samples, ends[i] + pad)
            continue
        gap = starts[i + 1] - ends[i]
        if gap < 2 * pad:
            ends[i] += gap // 2
            starts[i + 1] = max(0, starts[i + 1] - gap // 2)
        else:
            ends[i] = min(n_samples, ends[i] + pad)
            starts[i + 1] = max(0, starts[i + 1] - pad)
    return [SpeechSpan(int(s), int(e)) for s, e in zip(starts, ends)]
