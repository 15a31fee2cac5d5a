"""`WhisperSession`: load a Whisper model with the seed's options, pick each backend, transcribe.

    session = WhisperSession.from_pretrained("tiny.en", ModelLoadingOptions.default(), on_progress)
    segments, info = session.transcribe("speech.wav")
    session.info.encoder_backend  # what really runs the encoder

Loading follows ARCHITECTURE.md: resolve the model (Downloading), load the weights (Loading),
select the encoder's backend (selection.py), resolve and download its Core ML package
(DownloadingCoreML), then compile it (CompilingANE) with the options' timeout. Any Core ML failure
emits its event and leaves the encoder on MLX, recorded in `info`.

The compile can also be left to the app (`from_pretrained(..., warmup=False)`): the session starts
on MLX and moves the encoder to Core ML when `warmup()` / `await warmup_async()` completes. Cancel
returns at once without raising (the native work is abandoned, not stopped) and the session stays
on MLX; a later warmup may try again. A timeout emits CompilationFailed(ANECompilationTimeout),
falls back to MLX for good, and warmup raises it.

Progress handlers may be called from worker threads (background loading, compile ticks).
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..cancel import CancelToken
from ..coreml_encoder import CoreMLAudioEncoder, FallbackEncoder
from ..encoders import MLXAudioEncoder
from ..errors import (
    ANECompilationCancelled,
    ANECompilationError,
    ConversionError,
    CoreMLError,
    EncoderError,
    QuantizationFailed,
)
from ..info import ComponentInfo, SessionInfo, SessionRecorder
from ..loading.deadline import load_with_deadline
from ..loading.selection import (
    BackendDecision,
    LoadEnvironment,
    compile_now_allowed,
    select_backend,
)
from ..options import (
    BackendPreference,
    Component,
    ModelLoadingOptions,
    WhisperQuantization,
)
from ..progress import (
    CompilationFailed,
    CompilingANE,
    CoreMLUnavailable,
    DownloadFailed,
    Downloading,
    DownloadingCoreML,
    Loading,
    ProgressHandler,
    WhisperProgress,
    emit,
)
from ..store import sources
from ..store.hub import HubSettings

_MLX = BackendPreference.MLX
_CORE_ML = BackendPreference.CORE_ML


@dataclass(frozen=True)
class _CoreMLPlan:
    """A Core ML encoder selected and downloaded, waiting for its compile."""

    decision: BackendDecision
    package: Path
    runtime: str


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
        self.bundle: Any = None  # whisper.loading.WhisperBundle once loaded
        self._switch: FallbackEncoder | None = None
        self._transcriber: Any = None
        self._plan: _CoreMLPlan | None = None
        self._defer_compile = False  # the seed's third auto rule said: not during the load
        self._recorder = SessionRecorder(self.model_name)
        self._usable = threading.Event()  # MLX is loaded (or the load failed: see _load_error)
        self._load_error: BaseException | None = None
        self._warm_lock = threading.Lock()  # one compile at a time

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
        session = cls(model, options, progress_handler, environment or LoadEnvironment(), hub_settings or HubSettings.from_env())
        if options.load_in_background:
            threading.Thread(target=session._load, args=(warmup,), name="whisper-session-load", daemon=True).start()
        else:
            session._load(warmup)
            if session._load_error is not None:
                raise session._load_error
        return session

    def _load(self, warmup: bool) -> None:
        started = time.monotonic()
        try:
            resolved = sources.resolve_model(self.model_name, self.hub_settings, lambda f: self._emit(Downloading(f)))
            self._emit(Loading(0.0))
            self.bundle, quantization, notes = _load_bundle(resolved.path, self.options)
            self._emit(Loading(1.0))
            mlx_encoder = MLXAudioEncoder(self.bundle.model.encoder, self.bundle.dims.n_mels)
            self._switch = FallbackEncoder(mlx_encoder, self._on_coreml_failure)
            from .transcribe import Transcriber

            self._transcriber = Transcriber(self.bundle, self._switch)
            self._recorder.update(notes=notes, quantization=quantization)
            self._choose_encoder(resolved)
        except BaseException as exc:  # handed to the caller (foreground) or to first use (background)
            self._load_error = exc
            self._usable.set()
            return
        self._recorder.update(duration_s=time.monotonic() - started)
        self._usable.set()
        if warmup and self._plan is not None and not self._defer_compile:
            self._warm(None, self.options.compile_timeout_s, raise_errors=False)
            self._recorder.update(duration_s=time.monotonic() - started)  # the compile was part of this load

    def _choose_encoder(self, resolved: sources.ResolvedModel) -> None:
        """Steps 3 and 4 up to the compile: select, check the package belongs, download it."""
        component = Component.ENCODER
        decision = select_backend(
            component,
            self.options,
            environment=self.environment,
            find_package=lambda: sources.find_package(component, resolved, self.options, self.hub_settings),
        )
        self._emit(decision.event())
        if decision.backend is _MLX:
            self._record(decision, _MLX, "mlx", decision.reason, decision.reason if decision.is_fallback else None)
            return
        source: sources.PackageSource = decision.package.location  # type: ignore[union-attr,assignment]
        mismatch = source.weights_problem(self.bundle.weights_sha256)
        if mismatch:
            return self._stay_on_mlx(decision, CoreMLUnavailable(mismatch), mismatch)
        try:
            path = sources.fetch_package(source, self.hub_settings, lambda f: self._emit(DownloadingCoreML(f)))
        except ConversionError as exc:  # convert_missing: no download was involved
            reason = f"converting the encoder failed: {exc}"
            return self._stay_on_mlx(decision, CoreMLUnavailable(reason), reason)
        except Exception as exc:  # DownloadError, or anything the disk threw: the seed's downloadFailed
            return self._stay_on_mlx(decision, DownloadFailed(exc), f"Core ML download failed: {exc}")
        self._plan = _CoreMLPlan(decision, path, decision.runtime or "")
        waits = compile_now_allowed(decision, self.options, self.environment.runtimes, path)
        self._defer_compile = bool(waits)
        if waits:
            return self._stay_on_mlx(decision, CoreMLUnavailable(waits), waits, path)
        self._record(decision, _MLX, "mlx", f"{decision.reason}; compile pending (call warmup())", None, path)
        return None

    # --- Warmup ---------------------------------------------------------------------------------

    def warmup(self, cancel: CancelToken | None = None, timeout_s: float | None = None) -> bool:
        """Compile the Core ML encoder now. True when Core ML runs the encoder afterwards.

        Cancelling `cancel` returns False within a fraction of a second, without raising; the
        session stays on MLX and may warm up later. A timeout (default `options.compile_timeout_s`)
        raises ANECompilationTimeout after emitting CompilationFailed and falling back to MLX.
        Other compile failures emit CompilationFailed, fall back, and return False.
        """
        self.wait_ready()
        return self._warm(cancel, timeout_s or self.options.compile_timeout_s, raise_errors=True)

    async def warmup_async(self, timeout_s: float | None = None) -> bool:
        """`warmup()` for asyncio. Cancelling the awaiting task is the seed's `warmupTask.cancel()`:
        the compile is abandoned, the task ends without an error (returns False) within 1 s."""
        token = CancelToken()
        loop = asyncio.get_running_loop()
        job = loop.run_in_executor(None, functools.partial(self.warmup, token, timeout_s))
        try:
            return await asyncio.shield(job)
        except asyncio.CancelledError:
            token.cancel()
            task = asyncio.current_task()
            if task is not None and hasattr(task, "uncancel"):
                task.uncancel()  # the cancellation is handled here: keep asyncio.timeout() bookkeeping right
            await asyncio.wait([job])  # returns within a poll interval of the token
            return False

    def _warm(self, cancel: CancelToken | None, timeout_s: float, *, raise_errors: bool) -> bool:
        if not self._acquire_warm_lock(cancel):
            return False
        try:
            plan = self._plan
            if plan is None or self._switch is None:
                return self._switch is not None and self._switch.backend == "coreML"
            started = time.monotonic()
            outcome = self._compile(plan, timeout_s, cancel)
            self._recorder.update(compile_s=time.monotonic() - started)
            if raise_errors and isinstance(outcome, ANECompilationError) and not isinstance(outcome, ANECompilationCancelled):
                raise outcome
            return outcome is None
        finally:
            self._warm_lock.release()

    def _acquire_warm_lock(self, cancel: CancelToken | None) -> bool:
        while not self._warm_lock.acquire(timeout=0.05):
            if cancel is not None and cancel.cancelled:
                return False
        return True

    # --- Use --------------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """True once the model is usable (on MLX at least), or its background load failed."""
        return self._usable.is_set()

    def wait_ready(self, timeout_s: float | None = None) -> bool:
        """Wait for a background load; raise its error if it failed. False on timeout."""
        if not self._usable.wait(timeout_s):
            return False
        if self._load_error is not None:
            raise self._load_error
        return True

    @property
    def encoder(self) -> FallbackEncoder:
        """The encoder the transcriber uses (`.backend` says which runs now)."""
        self.wait_ready()
        assert self._switch is not None
        return self._switch

    def transcribe(self, audio: Any, **kwargs: Any) -> tuple[Iterator[Any], Any]:
        """`segments, info = session.transcribe(audio, language=..., word_timestamps=...)`: DECODE's
        Transcriber with this session's encoder (waits for a background load first)."""
        self.wait_ready()
        return self._transcriber.transcribe(audio, **kwargs)

    @property
    def info(self) -> SessionInfo:
        """What runs now (waits for a background load; never for a compile in progress)."""
        self.wait_ready()
        dtype = str(getattr(self.bundle, "dtype", "")).replace("mlx.core.", "")
        return self._recorder.snapshot((f"MLX weights in {dtype}",) if dtype else ())

    def close(self) -> None:
        """Free the Core ML model (the MLX weights go with the session)."""
        if self._switch is not None:
            self._switch.close()

    def __enter__(self) -> WhisperSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- Compile and bookkeeping --------------------------------------------------------------

    def _compile(self, plan: _CoreMLPlan, timeout_s: float, cancel: CancelToken | None) -> BaseException | None:
        """Compile, check and switch in the Core ML encoder. Returns the failure (already emitted and
        recorded), or None when Core ML now runs the encoder."""
        decision = plan.decision
        self._emit(CompilingANE(0.0))
        try:
            runtime = self.environment.runtimes.create(plan.runtime)
            loaded = load_with_deadline(
                runtime, plan.package, self.options.compute_units, timeout_s=timeout_s, cancel=cancel,
                on_tick=lambda elapsed: self._emit(CompilingANE(elapsed)),
            )  # fmt: skip
        except ANECompilationCancelled as exc:  # not a failure: the plan stays for a later warmup
            reason = "warmup cancelled before the Core ML compile finished; running on MLX (warmup() retries)"
            self._record(decision, _MLX, "mlx", reason, reason, plan.package)
            return exc
        except (CoreMLError, EncoderError, OSError) as exc:
            return self._give_up(plan, exc, CompilationFailed(exc), f"Core ML compile failed: {exc}")
        try:
            encoder = CoreMLAudioEncoder(loaded, output_dtype=self.bundle.dtype, runtime=plan.runtime)
            dims = self.bundle.dims
            problem = encoder.fit_problem(dims.n_mels, dims.n_audio_ctx, dims.n_audio_state)
        except CoreMLError as exc:  # UnknownEncoderLayout and friends
            loaded.close()
            return self._give_up(plan, exc, CoreMLUnavailable(str(exc)), str(exc))
        if problem:
            encoder.close()
            error = CoreMLError(problem)
            return self._give_up(plan, error, CoreMLUnavailable(problem), problem)
        assert self._switch is not None
        self._switch.use_coreml(encoder)
        self._plan = None
        uses_ane = self.environment.runtimes.claims_neural_engine(plan.runtime)
        self._recorder.update(ane_compiled=uses_ane and encoder.neural_engine_compiled)
        self._record(decision, _CORE_ML, plan.runtime, decision.reason, None, plan.package)
        return None

    def _give_up(self, plan: _CoreMLPlan, error: BaseException, event: WhisperProgress, reason: str) -> BaseException:
        """Core ML will not run this encoder: tell, record, and stay on MLX for good."""
        self._plan = None
        self._stay_on_mlx(plan.decision, event, reason, plan.package)
        return error

    def _stay_on_mlx(self, decision: BackendDecision, event: WhisperProgress, reason: str, package: Path | None = None) -> None:
        """Tell the handler why Core ML does not run this component (now) and record it."""
        self._emit(event)
        self._record(decision, _MLX, "mlx", reason, reason, package)

    def _record(
        self,
        decision: BackendDecision,
        backend: BackendPreference,
        runtime: str | None,
        reason: str,
        fallback_reason: str | None,
        package: Path | None = None,
    ) -> None:
        self._recorder.record(ComponentInfo(
            decision.component, decision.requested, backend, runtime, reason, fallback_reason,
            str(package) if package else None,
        ))  # fmt: skip

    def _emit(self, event: WhisperProgress | None) -> None:
        if event is not None:
            emit(self.progress_handler, event)

    def _on_coreml_failure(self, error: BaseException) -> None:
        """Core ML failed while transcribing: the switch already moved to MLX; record and tell."""
        reason = f"Core ML inference failed, encoder moved to MLX: {error}"
        self._emit(CoreMLUnavailable(reason))
        before = self._recorder.component(Component.ENCODER)
        if before is not None:
            self._recorder.record(replace(before, backend=_MLX, runtime="mlx", reason=reason, fallback_reason=reason))
        self._recorder.update(ane_compiled=False)


def _load_bundle(path: Path, options: ModelLoadingOptions) -> tuple[Any, WhisperQuantization, tuple[str, ...]]:
    """The weights at the options' precision, the precision they really got, and notes.

    FLOAT16 means unquantized weights in MODEL's default dtype: float16 on a GPU, float32 on the
    CPU (MLX's float16 matrix products skip BLAS there); `info.notes` says which. A quantization
    that fails, or that fits no layer of the model, falls back when `fallback_to_float16` allows.
    """
    import mlx.core as mx

    from .loading import load_whisper

    wanted = options.quantization
    if wanted.bits is None:
        return load_whisper(path, dtype=mx.float32 if wanted is WhisperQuantization.FLOAT32 else None), wanted, ()
    try:
        bundle = load_whisper(path, quantization=wanted.value)
        problem = "" if _quantized_layers(bundle.model) else "no layer's width divides into the quantization groups"
    except (ValueError, RuntimeError) as exc:
        bundle, problem = None, str(exc)
    if not problem:
        host = ("int8 on the CPU: oneDNN int8 products (a scale per weight row and per input row); "
                "the float32 weights stay loaded too, so it saves time, not memory",)
        return bundle, wanted, host if getattr(bundle.model, "host_int8", False) else ()
    if not options.fallback_to_float16:
        raise QuantizationFailed(wanted.value, problem)
    note = f"{wanted.value} quantization failed ({problem}); loaded unquantized"
    return load_whisper(path), WhisperQuantization.FLOAT16, (note,)


def _quantized_layers(model: Any) -> int:
    from .quantize import quantized_layers

    return quantized_layers(model)


def transcribe(
    audio: Any,
    model: str | Path = "tiny.en",
    *,
    options: ModelLoadingOptions | None = None,
    progress_handler: ProgressHandler | None = None,
    **transcribe_options: Any,
) -> tuple[list[Any], Any]:
    """One call: load `model`, transcribe `audio`, return (segments, info) with every segment decoded."""
    with WhisperSession.from_pretrained(model, options, progress_handler) as session:
        segments, info = session.transcribe(audio, **transcribe_options)
        return list(segments), info
