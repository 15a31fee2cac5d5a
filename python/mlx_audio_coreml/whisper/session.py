"""`WhisperSession`: load a Whisper model with the seed's options, pick each backend, transcribe.

    session = WhisperSession.from_pretrained("tiny.en", ModelLoadingOptions.default(), on_progress)
    segments, info = session.transcribe("speech.wav", language="en", word_timestamps=True)
    session.info.encoder_backend  # what really runs the encoder

Loading follows ARCHITECTURE.md: resolve the model (Downloading), load the weights (Loading),
then the encoder goes through loading/component.py's lifecycle (selection, package download
with DownloadingCoreML, compile with CompilingANE and the options' timeout, warm-up); any Core ML
failure emits its event and leaves the encoder on MLX, recorded in `info`.

The compile can also be left to the app (`from_pretrained(..., warmup=False)`): the session starts
on MLX and moves the encoder to Core ML when `warmup()` / `await warmup_async()` completes. Cancel
returns at once without raising (the native work is abandoned, not stopped) and the session stays
on MLX; a later warmup may try again. A timeout emits CompilationFailed(ANECompilationTimeout),
falls back to MLX for good, and warmup raises it.

A session holds the weights; every `transcribe` call holds its own buffers (the Core ML call's
outputs included), so one session serves concurrent callers without a session-wide lock.
Progress handlers may be called from worker threads (background loading, compile ticks).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import mlx.core as mx
import numpy as np

from ..cancel import CancelToken
from ..coreml.runtime import LoadedModel
from ..cpu import report as cpu_report
from ..encoders import CoreMLAudioEncoder, FallbackEncoder, MLXAudioEncoder
from ..errors import CoreMLError, QuantizationFailed
from ..info import SessionInfo, SessionRecorder
from ..loading.background import LoadState
from ..loading.component import ComponentSpec, CoreMLComponent
from ..loading.selection import LoadEnvironment, PackageLookup
from ..options import Component, ModelLoadingOptions, WhisperQuantization
from ..progress import Downloading, Loading, ProgressHandler, WhisperProgress, emit
from ..store import sources as store_sources
from ..store.hub import HubSettings
from ..store.progress import FractionCallback
from . import sources
from .encoder_layouts import detect_layout
from .streaming import ListenEvent, ListenOptions, listen

if TYPE_CHECKING:
    from ..vad import VadOptions
    from .loading import WhisperBundle
    from .segments import Segment, TranscriptionInfo
    from .transcribe import ProgressCallback, Transcriber
    from .transcribe_options import TranscribeOptions

AudioSource = str | Path | np.ndarray | mx.array  # a file, or samples at `sample_rate` (default 16 kHz)
Task = Literal["transcribe", "translate"]


class WhisperSession:
    """A loaded Whisper model and its encoder backend. Create with `from_pretrained`."""

    def __init__(
        self,
        model: str | Path,
        options: ModelLoadingOptions,
        progress_handler: ProgressHandler | None,
        environment: LoadEnvironment,
        hub_settings: HubSettings,
    ) -> None:
        self.model_name = str(model)
        self.options = options
        self.progress_handler = progress_handler
        self.environment = environment
        self.hub_settings = hub_settings
        self.bundle: WhisperBundle | None = None
        self._switch: FallbackEncoder | None = None
        self._transcriber: Transcriber | None = None
        self._encoder: CoreMLComponent[CoreMLAudioEncoder] | None = None
        self._recorder = SessionRecorder(self.model_name)
        self._state = LoadState()

    # --- Creation -------------------------------------------------------------------------------

    @classmethod
    def from_pretrained(
        cls,
        model: str | Path = "tiny.en",
        options: ModelLoadingOptions | None = None,
        progress_handler: ProgressHandler | None = None,
        *,
        warmup: bool = True,
        environment: LoadEnvironment | None = None,
        hub_settings: HubSettings | None = None,
    ) -> WhisperSession:
        """Load `model` (a short name, a hub repo id or a folder).

        `warmup=False` leaves a selected Core ML encoder's compile to `warmup()`. `environment`
        replaces the device facts and runtimes (tests, "what if" tools); `hub_settings` replaces
        the HF_* environment variables. Raises ModelNotFound, DownloadError or a ModelError when
        the model itself cannot be loaded; Core ML problems never raise here (see `info`).
        With `options.load_in_background` it returns at once and those errors surface on first use.
        """
        options = options or ModelLoadingOptions.default()
        session = cls(
            model, options, progress_handler, environment or LoadEnvironment(), hub_settings or HubSettings.from_env()
        )
        session._state.start(
            lambda: session._load(warmup), background=options.load_in_background, name="whisper-session-load"
        )
        return session

    def _load(self, warmup: bool) -> None:
        started = time.monotonic()
        resolved = sources.resolve_model(self.model_name, self.hub_settings, lambda f: self._emit(Downloading(f)))
        self._emit(Loading(0.0))
        bundle, quantization, notes = _load_bundle(resolved.path, self.options)
        self.bundle = bundle
        self._emit(Loading(1.0))
        self._switch = FallbackEncoder(MLXAudioEncoder(bundle.model.encoder, bundle.dims.n_mels))
        from .transcribe import Transcriber

        self._transcriber = Transcriber(bundle, self._switch)
        dtype = str(bundle.dtype).replace("mlx.core.", "")
        weights = f"{quantization.value} (other parameters in {dtype})" if quantization.bits else dtype
        self._recorder.update(notes=(*notes, f"MLX weights in {weights}"), quantization=quantization)
        self._encoder = CoreMLComponent(
            self._encoder_spec(resolved, bundle),
            self._switch,
            self.options,
            self.environment,
            self._recorder,
            self._emit,
        )
        self._encoder.prepare()
        self._recorder.update(duration_s=time.monotonic() - started)
        self._state.usable()
        if warmup and self._encoder.compile_pending and self._encoder.compile_now:
            self._encoder.warm(None, self.options.compile_timeout_s, raise_errors=False)
            self._recorder.update(duration_s=time.monotonic() - started)  # the compile was part of this load

    def _encoder_spec(
        self, resolved: store_sources.ResolvedModel, bundle: WhisperBundle
    ) -> ComponentSpec[CoreMLAudioEncoder]:
        """Where the encoder's package is, and how a loaded one becomes this model's encoder."""
        component = Component.ENCODER
        search = sources.companion_search(component, resolved)

        def find() -> PackageLookup:
            return store_sources.find_package(component, resolved, self.options, self.hub_settings, search)

        def fetch(lookup: PackageLookup, on_fraction: FractionCallback) -> Path:
            return store_sources.fetch_package(_source(lookup), self.hub_settings, on_fraction)

        def belongs(lookup: PackageLookup) -> str:
            return _source(lookup).weights_problem(bundle.weights_sha256)

        def build(model: LoadedModel, runtime: str) -> CoreMLAudioEncoder:
            encoder = CoreMLAudioEncoder(
                model, layout=detect_layout(model.description), output_dtype=bundle.dtype, runtime=runtime
            )
            dims = bundle.dims
            problem = encoder.fit_problem(dims.n_mels, dims.n_audio_ctx, dims.n_audio_state)
            if problem:
                raise CoreMLError(problem)
            return encoder

        return ComponentSpec(component, find, fetch, build, belongs)

    # --- Warmup ---------------------------------------------------------------------------------

    def warmup(self, cancel: CancelToken | None = None, timeout_s: float | None = None) -> bool:
        """Compile the Core ML encoder now. True when Core ML runs the encoder afterwards.

        Cancelling `cancel` returns False within a fraction of a second, without raising; the
        session stays on MLX and may warm up later. A timeout (default `options.compile_timeout_s`)
        raises ANECompilationTimeout after emitting CompilationFailed and falling back to MLX.
        Other compile failures emit CompilationFailed, fall back, and return False.
        """
        self.wait_ready()
        assert self._encoder is not None
        return self._encoder.warm(cancel, timeout_s or self.options.compile_timeout_s)

    async def warmup_async(self, timeout_s: float | None = None) -> bool:
        """`warmup()` for asyncio. Cancelling the awaiting task is the seed's `warmupTask.cancel()`:
        the compile is abandoned, the task ends without an error (returns False) within 1 s."""
        self.wait_ready()
        assert self._encoder is not None
        return await self._encoder.warm_async(timeout_s or self.options.compile_timeout_s)

    # --- Use --------------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """True once the model is usable (on MLX at least), or its background load failed."""
        return self._state.ready

    def wait_ready(self, timeout_s: float | None = None) -> bool:
        """Wait for a background load; raise its error if it failed. False on timeout."""
        return self._state.wait_ready(timeout_s)

    @property
    def encoder(self) -> FallbackEncoder:
        """The encoder the transcriber uses (`.backend` says which runs now)."""
        self.wait_ready()
        assert self._switch is not None
        return self._switch

    def transcribe(
        self,
        audio: AudioSource,
        options: TranscribeOptions | None = None,
        *,
        language: str | None = None,
        task: Task | None = None,
        temperature: float | tuple[float, ...] | None = None,
        beam_size: int | None = None,
        best_of: int | None = None,
        initial_prompt: str | None = None,
        condition_on_previous_text: bool | None = None,
        word_timestamps: bool | None = None,
        without_timestamps: bool | None = None,
        vad_filter: bool | None = None,
        vad_parameters: VadOptions | Mapping[str, float] | None = None,
        no_repeat_ngram_size: int | None = None,
        hallucination_silence_threshold: float | None = None,
        seed: int | None = None,
        progress: ProgressCallback | None = None,
        sample_rate: int | None = None,
        batch_size: int | None = None,
    ) -> tuple[Iterator[Segment], TranscriptionInfo]:
        """`segments, info = session.transcribe(audio, language="en", word_timestamps=True)`.

        `batch_size`: VAD chunks decoded `batch_size` at a time (batched.py), not window by window.

        `options` (TranscribeOptions) holds every decoding option (thresholds, punctuation, VAD
        parameters, ...); a keyword left at None keeps its value there (faster-whisper's names).
        Segments are decoded lazily as the iterator is read. Waits for a background load first.
        Safe to call from many threads at once on one session.
        """
        self.wait_ready()
        assert self._transcriber is not None and self.bundle is not None
        cpu_report.log_once(self.bundle.dtype, self.bundle.model.host_int8)  # the first call says which kernels run
        given = {
            "language": language, "task": task, "temperature": temperature, "beam_size": beam_size,
            "best_of": best_of, "initial_prompt": initial_prompt, "condition_on_previous_text": condition_on_previous_text,
            "word_timestamps": word_timestamps, "without_timestamps": without_timestamps, "vad_filter": vad_filter,
            "vad_parameters": vad_parameters, "no_repeat_ngram_size": no_repeat_ngram_size, "seed": seed,
            "hallucination_silence_threshold": hallucination_silence_threshold,
        }  # fmt: skip
        overrides = {name: value for name, value in given.items() if value is not None}
        if batch_size is not None:  # decoded here, all at once (batched.py)
            from .batched import BatchedTranscriber

            batched = BatchedTranscriber(self._transcriber).transcribe_many(
                [audio], options, batch_size=batch_size, sample_rate=sample_rate, **overrides
            )
            return iter(batched[0][0]), batched[0][1]
        return self._transcriber.transcribe(
            audio, options=options, progress=progress, sample_rate=sample_rate, **overrides
        )

    def listen(self, chunks: Iterable[Any], options: ListenOptions | None = None) -> Iterator[ListenEvent]:
        """Live transcription: events ("confirmed", "tentative", "final") as 16 kHz mono pieces
        (float32 or int16) arrive from `chunks`; VAD ends each utterance (see streaming.py)."""
        return listen(self, chunks, options)

    @property
    def info(self) -> SessionInfo:
        """What runs now (waits for a background load; never for a compile in progress)."""
        self.wait_ready()
        return self._recorder.snapshot()

    def close(self) -> None:
        """Free the Core ML model (the MLX weights go with the session)."""
        if self._switch is not None:
            self._switch.close()

    def __enter__(self) -> WhisperSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _emit(self, event: WhisperProgress) -> None:
        emit(self.progress_handler, event)


def _source(lookup: PackageLookup) -> store_sources.PackageSource:
    """The store's handle in a lookup that found a package (selection keeps it opaque)."""
    source = lookup.location
    assert isinstance(source, store_sources.PackageSource), source
    return source


def _load_bundle(
    path: Path, options: ModelLoadingOptions
) -> tuple[WhisperBundle, WhisperQuantization, tuple[str, ...]]:
    """The weights at the options' precision, the precision they really got, and notes.

    FLOAT16 asks for unquantized weights in MODEL's default dtype: float16 on a GPU, float32 on the
    CPU (MLX's float16 matrix products skip BLAS there); the precision returned says which, so
    `info.quantization` and its "MLX weights in ..." note agree. A quantization that fails, or
    that fits no layer of the model, falls back when `fallback_to_float16` allows.
    """
    from .loading import load_whisper
    from .quantize import quantized_layers

    wanted = options.quantization
    if wanted.bits is None:
        bundle = load_whisper(path, dtype=mx.float32 if wanted is WhisperQuantization.FLOAT32 else None)
        return bundle, _unquantized(bundle), ()
    try:
        bundle = load_whisper(path, quantization=wanted.value)
        problem = "" if quantized_layers(bundle.model) else "no layer's width divides into the quantization groups"
    except (ValueError, RuntimeError) as exc:
        bundle, problem = None, str(exc)
    if bundle is not None and not problem:
        host = ("int8 on the CPU: oneDNN int8 products (a scale per weight row and per input row); "
                "the float32 weights stay loaded too, so it saves time, not memory",)  # fmt: skip
        return bundle, wanted, host if bundle.model.host_int8 else ()
    if not options.fallback_to_float16:
        raise QuantizationFailed(wanted.value, problem)
    note = f"{wanted.value} quantization failed ({problem}); loaded unquantized"
    bundle = load_whisper(path)
    return bundle, _unquantized(bundle), (note,)


def _unquantized(bundle: WhisperBundle) -> WhisperQuantization:
    return WhisperQuantization.FLOAT32 if bundle.dtype == mx.float32 else WhisperQuantization.FLOAT16


def transcribe(
    audio: AudioSource,
    model: str | Path = "tiny.en",
    *,
    options: ModelLoadingOptions | None = None,
    progress_handler: ProgressHandler | None = None,
    transcribe_options: TranscribeOptions | None = None,
    language: str | None = None,
) -> tuple[list[Segment], TranscriptionInfo]:
    """One call: load `model`, transcribe `audio`, return (segments, info) with every segment decoded."""
    with WhisperSession.from_pretrained(model, options, progress_handler) as session:
        segments, info = session.transcribe(audio, transcribe_options, language=language)
        return list(segments), info
