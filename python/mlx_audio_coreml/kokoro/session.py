"""`KokoroSession`: load Kokoro-82M (weights, voices, text frontend, vocoder backend) once, then speak.

    session = KokoroSession.from_pretrained("kokoro", ModelLoadingOptions.default(), on_progress)
    audio, info = session.synthesize("Hello there.", voice="jf_alpha", speed=1.0)  # float32, 24 kHz
    for piece in session.stream(long_text, voice="jf_alpha"):  # sentence by sentence
        play(piece.audio)

Loading follows ARCHITECTURE.md, as WhisperSession does: resolve the model (a folder, a name in
$MLX_AUDIO_COREML_HOME/models such as `kokoro` from `scripts/fetch_models.sh kokoro`, or a hub
repo: `Downloading`), the weights strictly into `KokoroModel` (`Loading`), then the vocoder's
backend through the shared lifecycle (loading/component.py: `backend_overrides[VOCODER]`,
selection with its reason, package download, compile with timeout and cancel, warm-up, fallback
to MLX recorded in `info`). The MLX vocoder serves from the start; a Core ML vocoder is switched
in when its compile completes (during the load, or on `warmup()`). A companion folder converted by
`convert kokoro` holds one package per frame bucket: all are loaded (one deadline), each chunk goes
to the smallest bucket that holds it and chunks longer than the largest to MLX (vocoder_bucket.py);
`info.notes` names the buckets while Core ML runs the vocoder.
Every input error is raised before any audio is made: `EmptyText`, `UnknownPhoneme` (naming the
symbols), `UnknownVoice` (listing the known voices), `SpeedOutOfRange`, `UnsupportedSampleRate`.
A session holds weights only; each call keeps its own buffers, so callers may share one session.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import mlx.core as mx
import numpy as np

from ..cancel import CancelToken
from ..coreml.runtime import LoadedModel
from ..errors import UnsupportedSampleRate
from ..info import SessionInfo, SessionRecorder
from ..loading.background import LoadState
from ..loading.component import ComponentSpec, CoreMLComponent, FractionCallback
from ..loading.packages import PackageRef, companion_units
from ..loading.selection import LoadEnvironment, PackageLookup
from ..options import BackendPreference, Component, ModelLoadingOptions, WhisperQuantization
from ..progress import Downloading, Loading, ProgressHandler, WhisperProgress, emit
from ..store import sources as store_sources
from ..store.hub import HubSettings
from ..vocoders import AudioVocoder, FallbackVocoder, MLXVocoder
from .config import KokoroConfig
from .model import KokoroModel, host_conv
from .pipeline import SAMPLE_RATE, KokoroPipeline, SpokenChunk, check_speed
from .sources import DEFAULT_MODEL, companion_search, resolve_model
from .text import DEFAULT_LANGUAGE, TextChunk, TextFrontend, resolve_language
from .vocoder_bucket import BucketedCoreMLVocoder
from .voices import VoiceLibrary
from .weights import load_kokoro_folder

DEFAULT_VOICE = "af_heart"  # hexgrad's default voice; folders without it default to their first


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


class KokoroSession:
    """A loaded Kokoro model, its voices, text frontend and vocoder. Create with `from_pretrained`."""

    def __init__(
        self,
        model: str | Path,
        options: ModelLoadingOptions,
        progress_handler: ProgressHandler | None,
        environment: LoadEnvironment,
        hub_settings: HubSettings,
        language: str,
        g2p: str,
    ) -> None:
        self.model_name = str(model)
        self.options = options
        self.progress_handler = progress_handler
        self.environment = environment
        self.hub_settings = hub_settings
        self.language = resolve_language(language)
        self.g2p_engine = g2p
        self.frontend: TextFrontend | None = None
        self.voice_library: VoiceLibrary | None = None
        self.pipeline: KokoroPipeline | None = None
        self._switch: FallbackVocoder | None = None
        self._vocoder: CoreMLComponent[BucketedCoreMLVocoder] | None = None
        self._recorder = SessionRecorder(self.model_name)
        self._state = LoadState()

    @classmethod
    def from_pretrained(
        cls,
        model: str | Path = DEFAULT_MODEL,
        options: ModelLoadingOptions | None = None,
        progress_handler: ProgressHandler | None = None,
        *,
        warmup: bool = True,
        language: str = DEFAULT_LANGUAGE,
        g2p: str = "auto",
        environment: LoadEnvironment | None = None,
        hub_settings: HubSettings | None = None,
    ) -> KokoroSession:
        """Load `model` (a folder, a name in the local store, or a hub repo id).

        `language` is the default G2P language (en-us, en-gb, or any espeak-ng code); `g2p` is
        "auto" (misaki for English when installed), "misaki" or "espeak". `warmup=False` leaves a
        selected Core ML vocoder's compile to `warmup()`; `environment` and `hub_settings` replace
        the device facts and the HF_* variables. Raises ModelNotFound, DownloadError or a
        KokoroWeightsError when the model cannot load (Core ML problems never raise: see `info`);
        with `options.load_in_background` it returns at once and they surface on first use.
        """
        options = options or ModelLoadingOptions.default()
        session = cls(
            model, options, progress_handler, environment or LoadEnvironment(), hub_settings or HubSettings.from_env(),
            language, g2p,
        )  # fmt: skip
        background = options.load_in_background
        session._state.start(lambda: session._load(warmup), background=background, name="kokoro-session-load")
        return session

    def _load(self, warmup: bool) -> None:
        started = time.monotonic()
        resolved = resolve_model(self.model_name, self.hub_settings, lambda f: self._emit(Downloading(f)))
        self._emit(Loading(0.0))
        weights = load_kokoro_folder(resolved.path)
        model = KokoroModel(KokoroConfig.from_dict(weights.config))
        model.load_state(weights.state)
        self.voice_library = weights.voice_library()
        self.frontend = TextFrontend(weights.vocab, engine=self.g2p_engine)
        self._emit(Loading(1.0))
        mlx_vocoder = MLXVocoder(model.decoder)
        self._switch = FallbackVocoder(mlx_vocoder)
        self.pipeline = KokoroPipeline(model, self._switch)
        int8 = self.options.quantization == WhisperQuantization.INT8 and host_conv.applies(mx.float32)
        model.decoder.generator.host_int8 = int8  # CPU host path: the generator's products in int8 (opt-in)
        precision = "float32, generator products int8" if int8 else "float32"
        self._recorder.update(quantization=WhisperQuantization.INT8 if int8 else WhisperQuantization.FLOAT32,
                              notes=(f"weights: {weights.format}, {precision}",))  # fmt: skip
        self._vocoder = CoreMLComponent(
            self._vocoder_spec(resolved, mlx_vocoder),
            self._switch, self.options, self.environment, self._recorder, self._emit,
        )  # fmt: skip
        self._vocoder.prepare()
        self._recorder.update(duration_s=time.monotonic() - started)
        self._state.usable()
        if warmup and self._vocoder.compile_pending and self._vocoder.compile_now:
            self._vocoder.warm(None, self.options.compile_timeout_s, raise_errors=False)
            self._recorder.update(duration_s=time.monotonic() - started)  # the compile was part of this load

    def _vocoder_spec(
        self, resolved: store_sources.ResolvedModel, mlx_vocoder: AudioVocoder
    ) -> ComponentSpec[BucketedCoreMLVocoder]:
        """Where the vocoder's package is, and how a loaded one becomes this session's vocoder."""
        component = Component.VOCODER
        search = companion_search(resolved)

        def find() -> PackageLookup:
            return store_sources.find_package(component, resolved, self.options, self.hub_settings, search)

        def fetch(lookup: PackageLookup, on_fraction: FractionCallback) -> Path:
            source: store_sources.PackageSource = lookup.location  # type: ignore[assignment]
            return store_sources.fetch_package(source, self.hub_settings, on_fraction)

        def build(loaded: LoadedModel, runtime: str) -> BucketedCoreMLVocoder:
            return BucketedCoreMLVocoder(loaded, mlx_vocoder, sample_rate=SAMPLE_RATE)

        def buckets(path: Path) -> list[PackageRef]:  # a package per bucket, or a function per bucket
            return companion_units(path, component)

        return ComponentSpec(component, find, fetch, build, packages=buckets, assemble=BucketedCoreMLVocoder.combine)

    def _ready(self) -> KokoroPipeline:
        self._state.wait_ready()
        assert self.pipeline is not None  # set by a load that did not fail
        return self.pipeline

    def _emit(self, event: WhisperProgress) -> None:
        emit(self.progress_handler, event)

    # --- Warmup ---------------------------------------------------------------------------------

    def warmup(self, cancel: CancelToken | None = None, timeout_s: float | None = None) -> bool:
        """Compile the Core ML vocoder now. True when Core ML runs the vocoder afterwards.

        Cancelling returns False within a fraction of a second without raising (the session stays
        on MLX and may warm up later); a timeout raises ANECompilationTimeout after falling back.
        """
        self._ready()
        assert self._vocoder is not None
        return self._vocoder.warm(cancel, timeout_s or self.options.compile_timeout_s)

    async def warmup_async(self, timeout_s: float | None = None) -> bool:
        """`warmup()` for asyncio; cancelling the awaiting task abandons the compile (returns False)."""
        self._ready()
        assert self._vocoder is not None
        return await self._vocoder.warm_async(timeout_s or self.options.compile_timeout_s)

    @property
    def ready(self) -> bool:
        """True once the model is usable (on MLX at least), or its background load failed."""
        return self._state.ready

    def wait_ready(self, timeout_s: float | None = None) -> bool:
        """Wait for a background load; raise its error if it failed. False on timeout."""
        return self._state.wait_ready(timeout_s)

    @property
    def vocoder(self) -> FallbackVocoder:
        """The vocoder the pipeline calls (`.backend` says which runs now)."""
        self._ready()
        assert self._switch is not None
        return self._switch

    def close(self) -> None:
        """Free the Core ML vocoder (the MLX weights go with the session)."""
        if self._switch is not None:
            self._switch.close()

    def __enter__(self) -> KokoroSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- What the session offers ----------------------------------------------------------------

    @property
    def info(self) -> SessionInfo:
        """What runs (vocoder backend, fallbacks and why, load duration); waits for the load."""
        self._ready()
        info = self._recorder.snapshot()
        running = self._switch.coreml if self._switch is not None else None
        if isinstance(running, BucketedCoreMLVocoder):
            info = replace(info, notes=(*info.notes, running.describe()))
        return info

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

    def chunks(
        self, text: str | None = None, *, phonemes: str | None = None, language: str | None = None, merge: bool = True
    ) -> list[TextChunk]:
        """The model calls `text` (or `phonemes`, G2P skipped) becomes: each <= 510 tokens."""
        self._ready()
        frontend: TextFrontend = self.frontend  # type: ignore[assignment]  # set by the load
        return list(frontend.chunks(text, phonemes=phonemes, language=language or self.language, merge=merge))

    def synthesize(
        self,
        text: str | None = None,
        voice: str | None = None,
        speed: float = 1.0,
        *,
        phonemes: str | None = None,
        language: str | None = None,
        sample_rate: int = SAMPLE_RATE,
    ) -> tuple[np.ndarray, SynthesisInfo]:
        """All of `text` (or `phonemes`) spoken: (float32 samples at 24 kHz, SynthesisInfo)."""
        started = time.monotonic()
        pieces = list(
            self.stream(text, voice, speed, phonemes=phonemes, language=language, sample_rate=sample_rate, merge=True)
        )
        audio = np.concatenate([p.audio for p in pieces]) if pieces else np.zeros(0, np.float32)
        return audio, self._synthesis_info(pieces, voice, speed, phonemes, language, time.monotonic() - started)

    def stream(
        self,
        text: str | None = None,
        voice: str | None = None,
        speed: float = 1.0,
        *,
        phonemes: str | None = None,
        language: str | None = None,
        sample_rate: int = SAMPLE_RATE,
        merge: bool = False,
    ) -> Iterator[SpokenChunk]:
        """Audio sentence by sentence (`merge=True`: as many sentences per call as fit), each piece
        yielded as soon as it is made. Inputs are checked before this returns."""
        pipeline = self._ready()
        if sample_rate != SAMPLE_RATE:
            raise UnsupportedSampleRate(sample_rate, [SAMPLE_RATE])
        speed = check_speed(speed)
        pack = self.voice_library.get(voice or self.default_voice)  # type: ignore[union-attr]
        chunks = self.chunks(text, phonemes=phonemes, language=language, merge=merge)
        return pipeline.run(chunks, pack, speed)

    def _synthesis_info(
        self,
        pieces: list[SpokenChunk],
        voice: str | None,
        speed: float,
        phonemes: str | None,
        language: str | None,
        elapsed_s: float,
    ) -> SynthesisInfo:
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
            vocoder_backend=BackendPreference.CORE_ML if self.vocoder.backend == "coreML" else BackendPreference.MLX,
        )
