"""`KokoroSession`: load Kokoro-82M (weights, voices, text frontend) once, then speak text.

    session = KokoroSession.from_pretrained("kokoro", ModelLoadingOptions.default(), on_progress)
    audio, info = session.synthesize("Hello there.", voice="jf_alpha", speed=1.0)  # float32, 24 kHz
    for piece in session.stream(long_text, voice="jf_alpha"):  # sentence by sentence
        play(piece.audio)

Loading: the model folder is a path, or a name under $MLX_AUDIO_COREML_HOME/models (default
`kokoro`, installed by `scripts/fetch_models.sh kokoro`); `Loading(0.0)`, the weights strictly
into `KokoroModel` (any format `kokoro.weights.load_kokoro_folder` reads), `Loading(1.0)`.
The vocoder runs on MLX: the Core ML vocoder is not wired into this session yet, so
`info.vocoder_backend` is MLX, and a caller who demanded Core ML for it sees the fallback and its
reason (`CoreMLUnavailable` event, `info.fallback_reasons`).
Every input error is raised before any audio is made: `EmptyText`, `UnknownPhoneme` (naming the
symbols), `UnknownVoice` (listing the known voices), `SpeedOutOfRange`, `UnsupportedSampleRate`.
A session holds weights only; each call keeps its own buffers, so callers may share one session.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import config
from ..errors import ModelNotFound, UnsupportedSampleRate
from ..info import ComponentInfo, SessionInfo, SessionRecorder
from ..options import BackendPreference, Component, ModelLoadingOptions, WhisperQuantization
from ..progress import CoreMLUnavailable, Loading, ProgressHandler, emit
from ..vocoders import MLXVocoder
from .config import KokoroConfig
from .model import KokoroModel
from .pipeline import SAMPLE_RATE, KokoroPipeline, SpokenChunk, check_speed
from .text import DEFAULT_LANGUAGE, TextChunk, TextFrontend, resolve_language
from .voices import VoiceLibrary
from .weights import load_kokoro_folder

DEFAULT_MODEL = "kokoro"
DEFAULT_VOICE = "af_heart"  # hexgrad's default voice; folders without it default to their first
_COREML_VOCODER_PENDING = "the Core ML vocoder is not wired into KokoroSession yet"


@dataclass(frozen=True)
class SynthesisInfo:
    """What one `synthesize` call did."""

    sample_rate: int
    duration_s: float  # length of the audio
    elapsed_s: float  # wall time of the call, text frontend included
    voice: str
    speed: float
    language: str
    g2p: str  # which phonemizer ran ("phonemes given" when G2P was skipped)
    chunks: tuple[TextChunk, ...]  # one model call each
    vocoder_backend: BackendPreference

    @property
    def phonemes(self) -> str:
        return " ".join(c.phonemes for c in self.chunks)

    @property
    def real_time_factor(self) -> float:
        """Seconds of compute per second of audio (below 1: faster than real time)."""
        return self.elapsed_s / self.duration_s if self.duration_s else float("inf")


def resolve_model_folder(model: str | Path) -> Path:
    """A folder path as given, else `models_dir()/<name>`; `ModelNotFound` with a hint otherwise."""
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    stored = config.models_dir() / str(model)
    if stored.is_dir():
        return stored
    hint = f"Install it with `scripts/fetch_models.sh kokoro` (into {config.models_dir()}) or pass a model folder."
    raise ModelNotFound(str(model), hint)


class KokoroSession:
    """A loaded Kokoro model, its voices and its text frontend. Create with `from_pretrained`."""

    def __init__(self, model: str | Path, options: ModelLoadingOptions, progress_handler: ProgressHandler | None,
                 language: str, g2p: str) -> None:
        self.model_name = str(model)
        self.options = options
        self.progress_handler = progress_handler
        self.language = resolve_language(language)
        self.g2p_engine = g2p
        self.frontend: TextFrontend | None = None
        self.voice_library: VoiceLibrary | None = None
        self.pipeline: KokoroPipeline | None = None
        self._recorder = SessionRecorder(self.model_name)
        self._usable = threading.Event()
        self._load_error: BaseException | None = None

    @classmethod
    def from_pretrained(
        cls,
        model: str | Path = DEFAULT_MODEL,
        options: ModelLoadingOptions | None = None,
        progress_handler: ProgressHandler | None = None,
        *,
        language: str = DEFAULT_LANGUAGE,
        g2p: str = "auto",
    ) -> KokoroSession:
        """Load `model` (a name under the models home, or a folder).

        `language` is the default G2P language (en-us, en-gb, or any espeak-ng code); `g2p` is
        "auto" (misaki for English when installed), "misaki" or "espeak". Raises ModelNotFound or
        a KokoroWeightsError when the model cannot load; with `options.load_in_background` it
        returns at once and those errors surface on first use.
        """
        options = options or ModelLoadingOptions.default()
        session = cls(model, options, progress_handler, language, g2p)
        if options.load_in_background:
            threading.Thread(target=session._load, name="kokoro-session-load", daemon=True).start()
        else:
            session._load()
            if session._load_error is not None:
                raise session._load_error
        return session

    def _load(self) -> None:
        started = time.monotonic()
        try:
            folder = resolve_model_folder(self.model_name)
            emit(self.progress_handler, Loading(0.0))
            weights = load_kokoro_folder(folder)
            model = KokoroModel(KokoroConfig.from_dict(weights.config))
            model.load_state(weights.state)
            self.voice_library = weights.voice_library()
            self.frontend = TextFrontend(weights.vocab, engine=self.g2p_engine)
            self.pipeline = KokoroPipeline(model, MLXVocoder(model.decoder))
            self._record_vocoder()
            self._recorder.update(quantization=WhisperQuantization.FLOAT32, notes=(f"weights: {weights.format}",))
            emit(self.progress_handler, Loading(1.0))
        except BaseException as exc:  # handed to the caller (foreground) or to first use (background)
            self._load_error = exc
        else:
            self._recorder.update(duration_s=time.monotonic() - started)
        finally:
            self._usable.set()

    def _record_vocoder(self) -> None:
        requested = self.options.preference_for(Component.VOCODER)
        if requested is BackendPreference.CORE_ML:
            emit(self.progress_handler, CoreMLUnavailable(_COREML_VOCODER_PENDING))
            reason, fallback = _COREML_VOCODER_PENDING, _COREML_VOCODER_PENDING
        elif requested is BackendPreference.AUTO:
            reason, fallback = f"auto: {_COREML_VOCODER_PENDING}", None
        else:
            reason, fallback = "MLX requested", None
        info = ComponentInfo(Component.VOCODER, requested, BackendPreference.MLX, "mlx", reason, fallback)
        self._recorder.record(info)

    def _ready(self) -> KokoroPipeline:
        self._usable.wait()
        if self._load_error is not None:
            raise self._load_error
        assert self.pipeline is not None  # set by a load that did not fail
        return self.pipeline

    # --- What the session offers ----------------------------------------------------------------

    @property
    def info(self) -> SessionInfo:
        """What runs (vocoder backend, fallbacks and why, load duration); waits for the load."""
        self._ready()
        return self._recorder.snapshot()

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    def voices(self) -> list[str]:
        """The installed voices, sorted."""
        self._ready()
        return self.voice_library.names()  # type: ignore[union-attr]

    @property
    def default_voice(self) -> str:
        names = self.voices()
        return DEFAULT_VOICE if DEFAULT_VOICE in names or not names else names[0]

    def chunks(self, text: str | None = None, *, phonemes: str | None = None, language: str | None = None,
               merge: bool = True) -> list[TextChunk]:
        """The model calls `text` (or `phonemes`, G2P skipped) becomes: each <= 510 tokens."""
        self._ready()
        frontend: TextFrontend = self.frontend  # type: ignore[assignment]  # set by the load
        return list(frontend.chunks(text, phonemes=phonemes, language=language or self.language, merge=merge))

    def synthesize(self, text: str | None = None, voice: str | None = None, speed: float = 1.0, *,
                   phonemes: str | None = None, language: str | None = None,
                   sample_rate: int = SAMPLE_RATE) -> tuple[np.ndarray, SynthesisInfo]:
        """All of `text` (or `phonemes`) spoken: (float32 samples at 24 kHz, SynthesisInfo)."""
        started = time.monotonic()
        pieces = list(self.stream(text, voice, speed, phonemes=phonemes, language=language, sample_rate=sample_rate,
                                  merge=True))
        audio = np.concatenate([p.audio for p in pieces]) if pieces else np.zeros(0, np.float32)
        return audio, self._synthesis_info(pieces, voice, speed, phonemes, language, time.monotonic() - started)

    def stream(self, text: str | None = None, voice: str | None = None, speed: float = 1.0, *,
               phonemes: str | None = None, language: str | None = None, sample_rate: int = SAMPLE_RATE,
               merge: bool = False) -> Iterator[SpokenChunk]:
        """Audio sentence by sentence (`merge=True`: as many sentences per call as fit), each piece
        yielded as soon as it is made. Inputs are checked before this returns."""
        pipeline = self._ready()
        if sample_rate != SAMPLE_RATE:
            raise UnsupportedSampleRate(sample_rate, [SAMPLE_RATE])
        speed = check_speed(speed)
        pack = self.voice_library.get(voice or self.default_voice)  # type: ignore[union-attr]
        chunks = self.chunks(text, phonemes=phonemes, language=language, merge=merge)
        return pipeline.run(chunks, pack, speed)

    def _synthesis_info(self, pieces: list[SpokenChunk], voice: str | None, speed: float, phonemes: str | None,
                        language: str | None, elapsed_s: float) -> SynthesisInfo:
        code = resolve_language(language or self.language)
        g2p = "phonemes given" if phonemes is not None else self.frontend.g2p(code).name  # type: ignore[union-attr]
        return SynthesisInfo(
            sample_rate=SAMPLE_RATE,
            duration_s=sum(p.duration_s for p in pieces),
            elapsed_s=elapsed_s,
            voice=voice or self.default_voice,
            speed=float(speed),
            language=code,
            g2p=g2p,
            chunks=tuple(p.chunk for p in pieces),
            vocoder_backend=self.info.vocoder_backend,
        )
