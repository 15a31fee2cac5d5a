"""The model-agnostic loading lifecycle of one Core ML-capable component (encoder, vocoder).

Every session loads its fixed-shape part through this one contract (ARCHITECTURE.md, steps 3-5):

    select (selection.py: override, preference, Neural Engine, runtime, package present)
      -> check the package belongs to the model -> download it (DownloadingCoreML)
      -> compile and load it with a deadline and a cancel token (deadline.py; CompilingANE)
      -> build the Core ML implementation and warm it up (a prediction on zeros; NaN/Inf fails)
      -> switch it in; on any failure: emit the event, stay on MLX, record why.

Usage (a session, for one component):

    switch = FallbackVocoder(MLXVocoder(decoder))          # MLX serves from the start
    loader = CoreMLComponent(
        ComponentSpec(
            Component.VOCODER,
            find_package=lambda: sources.find_package(Component.VOCODER, resolved, options, hub, companion),
            fetch_package=lambda lookup, on_fraction: sources.fetch_package(lookup.location, hub, on_fraction),
            build=lambda model, runtime: CoreMLVocoder(model, sample_rate=24000),
        ),
        switch, options, environment, recorder, progress=lambda event: emit(handler, event),
    )
    loader.prepare()                    # select + download; records the decision
    if warmup and loader.compile_now:   # the seed's "pre-compiled OR user accepts compilation delay"
        loader.warm(None, options.compile_timeout_s, raise_errors=False)
    ...
    loader.warm(cancel_token, timeout_s)     # the session's warmup(): True when Core ML runs now
    await loader.warm_async(timeout_s)       # cancelling the awaiting task abandons the compile

`backend_overrides[component]`, `SessionInfo.<component>_backend`, the progress events, warm-up,
cancel and timeouts all come from here; a session only supplies the `ComponentSpec` (where its
package is, how to wrap a loaded model) and the switch its pipeline calls. A component made of
several packages (a vocoder's frame buckets) sets `ComponentSpec.packages` and `assemble`.

What it records (info.py): `did_fallback` only when Core ML was chosen or demanded and then could
not run; a component auto selection never tried on Core ML keeps its reason without a fallback;
a compile left to warmup() is pending. `CompilingANE` is emitted, and `ane_compiled` can be true,
only where a Neural Engine compile can happen: a runtime that uses it (not `portable`), a machine
that has one, and compute units that include it. Progress handlers may be called from worker
threads (background loading, compile ticks).
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from ..cancel import CancelToken
from ..coreml.fallback import FailureCallback
from ..coreml.runtime import LoadedModel
from ..errors import ANECompilationCancelled, ANECompilationError, ConversionError, MlxAudioCoreMLError
from ..info import ComponentInfo, SessionRecorder
from ..options import BackendPreference, Component, ComputeUnits, ModelLoadingOptions
from ..progress import (
    CompilationFailed,
    CompilingANE,
    CoreMLUnavailable,
    DownloadFailed,
    DownloadingCoreML,
    WhisperProgress,
)
from .packages import PackageRef, load_packages
from .selection import BackendDecision, LoadEnvironment, PackageLookup, Rule, compile_now_allowed, select_backend

_MLX = BackendPreference.MLX
_CORE_ML = BackendPreference.CORE_ML
_NEURAL_ENGINE_UNITS = (ComputeUnits.ALL, ComputeUnits.CPU_AND_NEURAL_ENGINE)


class CoreMLImplementation(Protocol):
    """What `ComponentSpec.build` returns: a Core ML encoder or vocoder."""

    backend: str

    @property
    def neural_engine_compiled(self) -> bool: ...

    def prewarm(self) -> None:
        """One prediction on zeros; raises the component's inference error on failure or NaN/Inf."""
        ...

    def close(self) -> None: ...


C = TypeVar("C", bound=CoreMLImplementation)
C_contra = TypeVar("C_contra", contravariant=True)
FractionCallback = Callable[[float], None]


class CoreMLSwitch(Protocol[C_contra]):
    """What the lifecycle needs of a fallback switch (coreml/fallback.py's FallbackSwitch)."""

    on_coreml_failure: FailureCallback | None

    @property
    def backend(self) -> str: ...

    def use_coreml(self, impl: C_contra) -> None: ...


def _fits(lookup: PackageLookup) -> str:
    return ""  # no check: any package found is taken for this model


@dataclass(frozen=True)
class ComponentSpec(Generic[C]):
    """What a session tells the lifecycle about one component."""

    component: Component
    find_package: Callable[[], PackageLookup]  # is there a package? (may ask the hub; store/sources.py)
    fetch_package: Callable[[PackageLookup, FractionCallback], Path]  # its local path (downloads, converts)
    # Wraps a loaded model (with the runtime's name) as the component's Core ML implementation;
    # raises MlxAudioCoreMLError or ValueError when the package does not fit the model.
    build: Callable[[LoadedModel, str], C]
    package_problem: Callable[[PackageLookup], str] = _fits  # '' or why it is not this model's (before download)
    # A component made of several packages (a vocoder's frame buckets): `packages` lists them from
    # the fetched path, each is loaded (one deadline for all) and built, and `assemble` makes the
    # one implementation the switch runs. Unset: the fetched path is the component's one package.
    packages: Callable[[Path], Sequence[Path | PackageRef]] | None = None  # a PackageRef: one function
    assemble: Callable[[Sequence[C]], C] | None = None


@dataclass(frozen=True)
class _Plan:
    """Selected and downloaded, waiting for its compile."""

    decision: BackendDecision
    package: Path
    runtime: str


class CoreMLComponent(Generic[C]):
    """One component's way from selection to a warm Core ML implementation, or MLX with a reason."""

    def __init__(
        self,
        spec: ComponentSpec[C],
        switch: CoreMLSwitch[C],
        options: ModelLoadingOptions,
        environment: LoadEnvironment,
        recorder: SessionRecorder,
        progress: Callable[[WhisperProgress], None],
    ) -> None:
        self.spec = spec
        self.switch = switch
        self.options = options
        self.environment = environment
        self.recorder = recorder
        self.progress = progress
        self.compile_now = False  # prepare() found the compile may run as part of loading
        self._plan: _Plan | None = None
        self._compile_s: float | None = None
        self._warm_lock = threading.Lock()  # one compile at a time
        switch.on_coreml_failure = self._on_inference_failure

    @property
    def component(self) -> Component:
        return self.spec.component

    @property
    def compile_pending(self) -> bool:
        """A package is downloaded and waits for `warm()`."""
        return self._plan is not None

    # --- Select and download ------------------------------------------------------------------

    def prepare(self) -> None:
        """Select the backend, check and download the package. Never raises for Core ML problems."""
        decision = select_backend(
            self.component, self.options, environment=self.environment, find_package=self.spec.find_package
        )
        event = decision.event()
        if event is not None:
            self.progress(event)
        if decision.backend is _MLX:
            self._record(decision, decision.reason, self._fallback_reason(decision))
            return
        assert decision.package is not None and decision.runtime is not None
        mismatch = self.spec.package_problem(decision.package)
        if mismatch:
            return self._give_up(decision, CoreMLUnavailable(mismatch), mismatch)
        try:
            path = self.spec.fetch_package(decision.package, lambda f: self.progress(DownloadingCoreML(f)))
        except ConversionError as exc:  # convert_missing: no download was involved
            reason = f"converting the {self.component.value} failed: {exc}"
            return self._give_up(decision, CoreMLUnavailable(reason), reason)
        except Exception as exc:  # DownloadError, or anything the disk threw: the seed's downloadFailed
            return self._give_up(decision, DownloadFailed(exc), f"Core ML download failed: {exc}")
        self._plan = _Plan(decision, path, decision.runtime)
        waits = compile_now_allowed(decision, self.options, self.environment.runtimes, path)
        self.compile_now = not waits
        if waits:  # pending, not a fallback: warmup() compiles it when the app chooses
            self.progress(CoreMLUnavailable(waits))
            self._record(decision, waits, None, path)
        else:
            self._record(decision, f"{decision.reason}; compile pending (call warmup())", None, path)

    # --- Compile and warm up ------------------------------------------------------------------

    def warm(self, cancel: CancelToken | None, timeout_s: float, *, raise_errors: bool = True) -> bool:
        """Compile, warm up and switch in the Core ML implementation. True when Core ML runs now.

        Cancelling returns False within a fraction of a second without raising; the plan stays for
        a later warm(). With `raise_errors`, a timeout raises ANECompilationTimeout (after the
        CompilationFailed event and the fallback); other failures fall back and return False.
        """
        if not self._acquire(cancel):
            return False
        try:
            plan = self._plan
            if plan is None:
                return self.switch.backend == "coreML"
            outcome = self._compile(plan, timeout_s, cancel)
            if (
                raise_errors
                and isinstance(outcome, ANECompilationError)
                and not isinstance(outcome, ANECompilationCancelled)
            ):
                raise outcome
            return outcome is None
        finally:
            self._warm_lock.release()

    async def warm_async(self, timeout_s: float) -> bool:
        """`warm()` for asyncio. Cancelling the awaiting task is the seed's `warmupTask.cancel()`:
        the compile is abandoned and the task ends without an error (returns False) within 1 s."""
        token = CancelToken()
        loop = asyncio.get_running_loop()
        job = loop.run_in_executor(None, functools.partial(self.warm, token, timeout_s))
        try:
            return await asyncio.shield(job)
        except asyncio.CancelledError:
            token.cancel()
            task = asyncio.current_task()
            if task is not None and hasattr(task, "uncancel"):
                task.uncancel()  # the cancellation is handled here: keep asyncio.timeout() bookkeeping right
            await asyncio.wait([job])  # returns within a poll interval of the token
            return False

    def neural_engine_possible(self, runtime: str) -> bool:
        """Whether loading on `runtime` here can involve a Neural Engine compile."""
        return (
            self.environment.runtimes.claims_neural_engine(runtime)
            and self.environment.device.neural_engine_usable
            and self.options.compute_units in _NEURAL_ENGINE_UNITS
        )

    def _acquire(self, cancel: CancelToken | None) -> bool:
        while not self._warm_lock.acquire(timeout=0.05):
            if cancel is not None and cancel.cancelled:
                return False
        return True

    def _compile(self, plan: _Plan, timeout_s: float, cancel: CancelToken | None) -> BaseException | None:
        """The failure (already emitted and recorded), or None when Core ML now runs the component."""
        ane = self.neural_engine_possible(plan.runtime)

        def tick(elapsed_s: float) -> None:
            self.progress(CompilingANE(elapsed_s))

        on_tick = tick if ane else None
        if ane:
            self.progress(CompilingANE(0.0))
        started = time.monotonic()
        try:
            paths = self.spec.packages(plan.package) if self.spec.packages else (plan.package,)
            runtime = self.environment.runtimes.create(plan.runtime)
            loaded = load_packages(
                runtime, paths, self.options.compute_units, timeout_s=timeout_s, cancel=cancel, on_tick=on_tick
            )
        except ANECompilationCancelled as exc:  # not a failure of Core ML: the plan stays for a later warm()
            self._compile_s = time.monotonic() - started
            reason = "warmup cancelled before the Core ML compile finished; running on MLX (warmup() retries)"
            self._record(plan.decision, reason, reason, plan.package)
            return exc
        except (MlxAudioCoreMLError, OSError, ValueError) as exc:
            self._compile_s = time.monotonic() - started
            return self._drop_plan(plan, exc, CompilationFailed(exc), f"Core ML compile failed: {exc}")
        self._compile_s = time.monotonic() - started
        return self._switch_in(plan, loaded, ane)

    def _switch_in(self, plan: _Plan, loaded: Sequence[LoadedModel], ane: bool) -> BaseException | None:
        built: list[C] = []
        try:
            for model in loaded:
                built.append(self.spec.build(model, plan.runtime))
            impl = self._assemble(built)
        except (MlxAudioCoreMLError, ValueError) as exc:  # a package does not fit the model
            for done in built:
                done.close()
            for model in loaded[len(built) :]:
                model.close()
            return self._drop_plan(plan, exc, CoreMLUnavailable(str(exc)), str(exc))
        try:
            impl.prewarm()
        except MlxAudioCoreMLError as exc:  # a load that "succeeded" after a failed compile shows here
            impl.close()
            return self._drop_plan(plan, exc, CompilationFailed(exc), f"Core ML warm-up prediction failed: {exc}")
        self.switch.use_coreml(impl)
        self._plan = None
        self._record(
            plan.decision,
            plan.decision.reason,
            None,
            plan.package,
            _CORE_ML,
            plan.runtime,
            ane and impl.neural_engine_compiled,
        )
        return None

    def _assemble(self, built: list[C]) -> C:
        if self.spec.assemble is not None:
            return self.spec.assemble(built)
        if len(built) != 1:
            raise ValueError(f"{len(built)} {self.component.value} packages need ComponentSpec.assemble")
        return built[0]

    # --- Bookkeeping --------------------------------------------------------------------------

    def _drop_plan(self, plan: _Plan, error: BaseException, event: WhisperProgress, reason: str) -> BaseException:
        """Core ML will not run this component: tell, record, and stay on MLX for good."""
        self._plan = None
        self._give_up(plan.decision, event, reason, plan.package)
        return error

    def _give_up(
        self, decision: BackendDecision, event: WhisperProgress, reason: str, package: Path | None = None
    ) -> None:
        self.progress(event)
        self._record(decision, reason, reason, package)

    @staticmethod
    def _fallback_reason(decision: BackendDecision) -> str | None:
        """A fallback when Core ML was demanded, or the package lookup (the download's first step)
        failed; auto finding no Neural Engine, runtime or package never tried Core ML."""
        tried = decision.rule is Rule.LOOKUP_FAILED or decision.requested is _CORE_ML
        return decision.reason if tried and decision.is_fallback else None

    def _record(
        self,
        decision: BackendDecision,
        reason: str,
        fallback_reason: str | None,
        package: Path | None = None,
        backend: BackendPreference = _MLX,
        runtime: str = "mlx",
        ane_compiled: bool = False,
    ) -> None:
        self.recorder.record(ComponentInfo(
            decision.component, decision.requested, backend, runtime, reason, fallback_reason,
            str(package) if package else None, ane_compiled, self._compile_s,
        ))  # fmt: skip

    def _on_inference_failure(self, error: BaseException) -> None:
        """Core ML failed while running: the switch already moved to MLX; record and tell."""
        reason = f"Core ML inference failed, {self.component.value} moved to MLX: {error}"
        self.progress(CoreMLUnavailable(reason))
        before = self.recorder.component(self.component)
        if before is not None:
            self.recorder.record(
                replace(before, backend=_MLX, runtime="mlx", reason=reason, fallback_reason=reason, ane_compiled=False)
            )
