"""The seed's `selectBackend`: the one place where a component's backend is chosen, with its reason.

Rules, in the order they are checked (the seed's, with the local checks before the one that may
touch the network, so a machine that cannot use Core ML never asks the hub for a package):

1. An explicit override for the component wins. `MLX` is final. `CORE_ML` skips the "is the
   Neural Engine there" rule (the caller asked for Core ML on this component knowingly), but a
   package and a runtime are still needed to run it. `AUTO` applies the rules below.
2. Preference `MLX`: MLX, and nothing about Core ML is looked up or downloaded.
3. `AUTO` / `CORE_ML`: the device must have a usable Neural Engine ("ANE not supported"), unless
   the caller named a runtime that does not use one (`portable`: named, never chosen silently).
4. A Core ML runtime must run here: the named one, else `apple`, else `coremltools`.
5. A Core ML package must exist for the component ("Model not available"); a lookup that fails
   on the network is a download failure, not an absent model.
Otherwise: Core ML. Then, once the package is on disk, the seed's third auto criterion
(`compile_now_allowed`): under AUTO the model must be pre-compiled or the caller must accept the
compile delay (`options.accept_compile_delay`); if not, MLX runs until `warmup()` compiles it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..coreml import registry
from ..coreml.runtime import Availability, CoreMLRuntime
from ..options import BackendPreference, Component, ModelLoadingOptions
from ..progress import CoreMLUnavailable, DownloadFailed, WhisperProgress
from .devices import DeviceFacts, read_device_facts

# The seed's event texts; details follow after a colon.
MODEL_NOT_AVAILABLE = "Model not available"
ANE_NOT_SUPPORTED = "ANE not supported"
NO_RUNTIME = "No Core ML runtime"

# Tried in this order when the caller names none. `portable` is never chosen automatically.
AUTOMATIC_RUNTIMES: tuple[str, ...] = ("apple", "coremltools")


class Rule(enum.Enum):
    """Which rule decided; lets callers and tests tell the reasons apart without parsing text."""

    OVERRIDE_MLX = "override_mlx"
    PREFERENCE_MLX = "preference_mlx"
    NO_NEURAL_ENGINE = "no_neural_engine"
    NO_RUNTIME = "no_runtime"
    MODEL_MISSING = "model_missing"
    LOOKUP_FAILED = "lookup_failed"
    COREML = "coreml"


@dataclass(frozen=True)
class PackageLookup:
    """Whether a Core ML package exists for a component, as the hub (or a local path) answered."""

    found: bool
    detail: str = ""  # where it is, or why there is none
    error: BaseException | None = None  # set when the lookup itself failed (network, server)
    location: object = None  # the hub's handle to download it later (opaque here)


@dataclass(frozen=True)
class RuntimeChoice:
    name: str | None  # None: no runtime can run Core ML here
    reason: str
    claims_neural_engine: bool = False


@dataclass(frozen=True)
class BackendDecision:
    component: Component
    requested: BackendPreference
    backend: BackendPreference  # MLX or CORE_ML
    rule: Rule
    reason: str
    runtime: str | None = None
    package: PackageLookup | None = None

    @property
    def is_fallback(self) -> bool:
        """Core ML was asked for (explicitly or by auto) and MLX was chosen."""
        return self.requested is not BackendPreference.MLX and self.backend is BackendPreference.MLX

    def event(self) -> WhisperProgress | None:
        """What the progress handler hears about this decision (None when there is nothing to say)."""
        if not self.is_fallback:
            return None
        if self.rule is Rule.LOOKUP_FAILED and self.package is not None and self.package.error is not None:
            return DownloadFailed(self.package.error)
        return CoreMLUnavailable(self.reason)


class RuntimeProvider:
    """Core ML runtimes by name; the default asks the registry. Tests subclass it to inject one."""

    def availability(self, name: str) -> Availability:
        return registry.availability(name)

    def claims_neural_engine(self, name: str) -> bool:
        try:
            return bool(registry.runtime_class(name).claims_neural_engine)
        except Exception:
            return False

    def create(self, name: str) -> CoreMLRuntime:
        return registry.get_runtime(name)

    def is_precompiled(self, name: str, package: Path) -> bool:
        """Whether loading `package` on runtime `name` skips the slow Core ML compile.

        apple: its compiled cache holds this package (device specialization may still run on the
        first load after an OS update). portable: there is no Core ML compile. coremltools:
        recompiles into a temporary folder on every load, so never.
        """
        if name == "portable":
            return True
        if name != "apple":
            return False
        from ..coreml.apple import compiled_cache_path, default_cache_dir

        cached = compiled_cache_path(package, default_cache_dir())
        return cached is None or cached.exists()  # None: the package is already a compiled .mlmodelc


@dataclass
class LoadEnvironment:
    """The machine as loading sees it: device facts and runtimes. Inject one to play another device."""

    device: DeviceFacts = field(default_factory=read_device_facts)
    runtimes: RuntimeProvider = field(default_factory=RuntimeProvider)


def choose_runtime(options: ModelLoadingOptions, runtimes: RuntimeProvider) -> RuntimeChoice:
    """The runtime that would run a Core ML component: the named one, else the first that runs here."""
    names = (options.coreml_runtime,) if options.coreml_runtime else AUTOMATIC_RUNTIMES
    problems: list[str] = []
    for name in names:
        found = runtimes.availability(name)
        if found.available:
            how = "named by caller" if options.coreml_runtime else "first available"
            return RuntimeChoice(name, f"runtime {name} ({how})", runtimes.claims_neural_engine(name))
        problems.append(f"{name}: {found.reason}")
    return RuntimeChoice(None, f"{NO_RUNTIME}: " + "; ".join(problems))


def select_backend(
    component: Component,
    options: ModelLoadingOptions,
    *,
    environment: LoadEnvironment,
    find_package: Callable[[], PackageLookup],
) -> BackendDecision:
    """Apply the rules above. `find_package` is only called when every local rule allows Core ML."""
    override = options.backend_overrides.get(component)
    requested = override or options.backend

    def decide(backend: BackendPreference, rule: Rule, reason: str, **extra: object) -> BackendDecision:
        return BackendDecision(component, requested, backend, rule, reason, **extra)  # type: ignore[arg-type]

    if override is BackendPreference.MLX:
        return decide(BackendPreference.MLX, Rule.OVERRIDE_MLX, f"override for {component.value}: mlx")
    if requested is BackendPreference.MLX:
        return decide(BackendPreference.MLX, Rule.PREFERENCE_MLX, "backend preference is mlx")

    runtime = choose_runtime(options, environment.runtimes)
    forced = override is BackendPreference.CORE_ML
    named_without_ane = (
        options.coreml_runtime is not None and runtime.name is not None and not runtime.claims_neural_engine
    )
    if not (forced or named_without_ane):
        problem = environment.device.neural_engine_problem()
        if problem:
            return decide(BackendPreference.MLX, Rule.NO_NEURAL_ENGINE, f"{ANE_NOT_SUPPORTED}: {problem}")
    if runtime.name is None:
        return decide(BackendPreference.MLX, Rule.NO_RUNTIME, runtime.reason)

    package = find_package()
    if package.error is not None:
        return decide(
            BackendPreference.MLX,
            Rule.LOOKUP_FAILED,
            f"Core ML package lookup failed: {package.error}",
            package=package,
        )
    if not package.found:
        return decide(
            BackendPreference.MLX, Rule.MODEL_MISSING, f"{MODEL_NOT_AVAILABLE}: {package.detail}", package=package
        )

    why = f"override for {component.value}: coreML" if forced else f"preference {requested.value}"
    return decide(
        BackendPreference.CORE_ML,
        Rule.COREML,
        f"{why}; Core ML package found ({package.detail}); {runtime.reason}",
        runtime=runtime.name,
        package=package,
    )


def compile_now_allowed(
    decision: BackendDecision, options: ModelLoadingOptions, runtimes: RuntimeProvider, package: Path
) -> str:
    """'' when the compile may run as part of loading; else why Core ML waits for `warmup()`.

    The seed: auto prefers Core ML when the "model has been pre-compiled OR user accepts
    compilation delay". An explicit CORE_ML preference or override accepts the delay by itself.
    """
    if decision.requested is not BackendPreference.AUTO or options.accept_compile_delay:
        return ""
    if decision.runtime is not None and runtimes.is_precompiled(decision.runtime, package):
        return ""
    return "Core ML package not compiled yet and accept_compile_delay is off: MLX runs until warmup() compiles it"
