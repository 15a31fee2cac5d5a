"""loading/component.py for a component other than Whisper's encoder: the vocoder, as a Kokoro
session uses it. The package is a tiny real ML Program (conftest's `vocoder_package`) run by the
portable runtime; "apple" is played by that same runtime behind an injected RuntimeProvider that
claims a Neural Engine, to show where CompilingANE and ane_compiled may (not) appear."""

from __future__ import annotations

import math
import time
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest
from loading_helpers import A11_IPHONE, M1_MAC, features

import mlx_audio_coreml  # noqa: F401  (BLAS first)
from mlx_audio_coreml.cancel import CancelToken
from mlx_audio_coreml.coreml.portable import PortableRuntime
from mlx_audio_coreml.coreml.runtime import Availability
from mlx_audio_coreml.errors import NonFiniteOutput, VocoderCoreMLInferenceFailed
from mlx_audio_coreml.info import SessionRecorder
from mlx_audio_coreml.loading.component import ComponentSpec, CoreMLComponent
from mlx_audio_coreml.loading.selection import LoadEnvironment, PackageLookup, RuntimeProvider
from mlx_audio_coreml.options import BackendPreference, Component, ComputeUnits, ModelLoadingOptions
from mlx_audio_coreml.progress import CompilationFailed, CompilingANE, CoreMLUnavailable, DownloadingCoreML
from mlx_audio_coreml.vocoders import CoreMLVocoder, FallbackVocoder, MLXVocoder, VocoderFeatures

VOCODER, CORE_ML, MLX = Component.VOCODER, BackendPreference.CORE_ML, BackendPreference.MLX
PORTABLE = ModelLoadingOptions.default().with_(coreml_runtime="portable")
PACKAGE_OUTPUT = np.concatenate([2 * np.arange(20), np.full(10, 100.0), -np.ones(10), [1.0, 2.0, 3.0]])[None]


class _Silence:
    """The MLX vocoder: zeros, so tests can tell which backend answered."""

    sample_rate = 24000

    def __call__(self, features: VocoderFeatures, key: mx.array | None = None) -> mx.array:
        return mx.zeros((1, 43))


class _SlowLoad:
    """A runtime whose load takes `delay_s` (then the portable runtime loads the package)."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s

    def load(self, package, compute_units=ComputeUnits.ALL, **kwargs):
        time.sleep(self.delay_s)
        return PortableRuntime().load(package, compute_units)


class _NeuralEngineRuntimes(RuntimeProvider):
    """'apple' (played by the portable runtime) claims a Neural Engine; its models say they compiled for it."""

    def __init__(self, load_delay_s: float = 0.0) -> None:
        self.load_delay_s = load_delay_s

    def availability(self, name: str) -> Availability:
        return Availability(True) if name == "apple" else super().availability(name)

    def claims_neural_engine(self, name: str) -> bool:
        return name == "apple" or super().claims_neural_engine(name)

    def create(self, name: str):
        return _SlowLoad(self.load_delay_s) if name == "apple" else super().create(name)

    def is_precompiled(self, name: str, package: Path) -> bool:
        return True


class Events(list):
    def __call__(self, event: object) -> None:
        self.append(event)

    def of(self, kind: type) -> list:
        return [e for e in self if isinstance(e, kind)]


def _loader(
    package: Path | None, options: ModelLoadingOptions, device=M1_MAC, runtimes=None, *, ane_claim: bool = False
):
    """A vocoder switch (MLX first) and its lifecycle, as a Kokoro session builds them."""
    events, recorder = Events(), SessionRecorder("kokoro-test")
    looked_up: list[int] = []

    def find() -> PackageLookup:
        looked_up.append(1)
        return (
            PackageLookup(True, str(package), location=package) if package else PackageLookup(False, "no vocoder here")
        )

    def fetch(lookup: PackageLookup, on_fraction) -> Path:
        on_fraction(1.0)
        return lookup.location

    def build(model, runtime: str) -> CoreMLVocoder:
        model.neural_engine_compiled = ane_claim
        return CoreMLVocoder(model)

    switch = FallbackVocoder(MLXVocoder(_Silence()))
    environment = LoadEnvironment(device=device, runtimes=runtimes or RuntimeProvider())
    loader = CoreMLComponent(ComponentSpec(VOCODER, find, fetch, build), switch, options, environment, recorder, events)
    return loader, switch, events, recorder, looked_up


def test_vocoder_moves_to_coreml_and_info_says_so(vocoder_package):
    loader, switch, events, recorder, _ = _loader(vocoder_package, PORTABLE)

    loader.prepare()
    assert loader.compile_pending and loader.compile_now
    assert loader.warm(None, timeout_s=60) is True

    info = recorder.snapshot()
    assert info.vocoder_backend is CORE_ML and info.vocoder_runtime == "portable" and not info.did_fallback
    assert info.compile_duration_s is not None and info.ane_compiled is False
    assert events.of(DownloadingCoreML) == [DownloadingCoreML(1.0)]
    assert not events.of(CompilingANE)  # the portable runtime has no Neural Engine compile
    assert np.array_equal(np.array(switch.decode(features())), PACKAGE_OUTPUT.astype(np.float32))


def test_an_mlx_override_for_the_vocoder_asks_for_nothing(vocoder_package):
    loader, switch, events, recorder, looked_up = _loader(
        vocoder_package, PORTABLE.with_(backend_overrides={VOCODER: MLX})
    )

    loader.prepare()

    info = recorder.snapshot()
    assert info.vocoder_backend is MLX and not info.did_fallback and not loader.compile_pending
    assert looked_up == [] and list(events) == []  # no lookup, no Core ML event at all
    assert switch.backend == "mlx"


def test_auto_without_a_package_is_recorded_but_not_a_fallback():
    loader, _, events, recorder, _ = _loader(None, PORTABLE)

    loader.prepare()

    info = recorder.snapshot()
    assert info.vocoder_backend is MLX and info.did_fallback is False and info.fallback_reasons == ()
    assert info.component(VOCODER).reason.startswith("Model not available")
    assert [e.reason for e in events.of(CoreMLUnavailable)] == [info.component(VOCODER).reason]
    assert not events.of(DownloadingCoreML) and not events.of(CompilingANE)


def test_auto_on_a_device_without_neural_engine_is_not_a_fallback(vocoder_package):
    loader, _, events, recorder, looked_up = _loader(vocoder_package, ModelLoadingOptions.default(), device=A11_IPHONE)

    loader.prepare()

    info = recorder.snapshot()
    assert info.vocoder_backend is MLX and not info.did_fallback and looked_up == []
    assert events.of(CoreMLUnavailable)[0].reason.startswith("ANE not supported")


@pytest.mark.parametrize("how", ["preference", "override"])
def test_demanded_coreml_that_cannot_run_is_a_fallback(how):
    demand = {"backend": CORE_ML} if how == "preference" else {"backend_overrides": {VOCODER: CORE_ML}}
    loader, _, events, recorder, _ = _loader(None, PORTABLE.with_(**demand))

    loader.prepare()

    info = recorder.snapshot()
    assert info.vocoder_backend is MLX and info.did_fallback
    assert info.fallback_reasons[0].startswith("vocoder: Model not available")
    assert events.of(CoreMLUnavailable)


def test_a_warmup_that_gives_nan_falls_back_with_compilation_failed(vocoder_package):
    loader, switch, events, recorder, _ = _loader(vocoder_package, PORTABLE)
    build = loader.spec.build

    def nan_build(model, runtime):
        model.predict_mlx = lambda inputs: {"audio": mx.full((1, 43), math.nan)}
        return build(model, runtime)

    loader.spec = ComponentSpec(VOCODER, loader.spec.find_package, loader.spec.fetch_package, nan_build)
    loader.prepare()

    assert loader.warm(None, timeout_s=60) is False

    [failed] = events.of(CompilationFailed)
    assert isinstance(failed.error, VocoderCoreMLInferenceFailed) and isinstance(
        failed.error.underlying, NonFiniteOutput
    )
    info = recorder.snapshot()
    assert info.vocoder_backend is MLX and info.did_fallback and "warm-up" in info.fallback_reasons[0]
    assert switch.backend == "mlx" and loader.warm(None, timeout_s=60) is False  # not retried


def test_nan_output_while_running_moves_the_vocoder_to_mlx(vocoder_package):
    loader, switch, events, recorder, _ = _loader(vocoder_package, PORTABLE)
    loader.prepare()
    assert loader.warm(None, timeout_s=60)
    switch.coreml.model.predict_mlx = lambda inputs: {"audio": mx.full((1, 43), math.inf)}

    audio = switch.decode(features())

    assert float(mx.abs(audio).max()) == 0.0  # answered by MLX
    info = recorder.snapshot()
    assert info.vocoder_backend is MLX and info.did_fallback and "inference failed" in info.fallback_reasons[0]
    assert "inference failed" in events.of(CoreMLUnavailable)[-1].reason


def test_cancel_returns_at_once_and_a_later_warm_succeeds(vocoder_package):
    loader, switch, events, recorder, _ = _loader(
        vocoder_package, ModelLoadingOptions.default(), runtimes=_NeuralEngineRuntimes(1.0)
    )
    loader.prepare()
    token = CancelToken()
    token.cancel()

    started = time.monotonic()
    assert loader.warm(token, timeout_s=60) is False
    assert time.monotonic() - started < 0.5 and loader.compile_pending and switch.backend == "mlx"
    assert not events.of(CompilationFailed)
    assert loader.warm(None, timeout_s=60) is True and recorder.snapshot().vocoder_backend is CORE_ML


def test_compiling_ane_and_ane_compiled_only_where_a_neural_engine_compile_can_happen(vocoder_package):
    on_m1, _, m1_events, m1_recorder, _ = _loader(
        vocoder_package, ModelLoadingOptions.default(), runtimes=_NeuralEngineRuntimes(), ane_claim=True
    )
    on_m1.prepare()
    assert on_m1.warm(None, timeout_s=60)
    assert m1_events.of(CompilingANE)[0] == CompilingANE(0.0) and m1_recorder.snapshot().ane_compiled

    forced = ModelLoadingOptions.default().with_(backend_overrides={VOCODER: CORE_ML})
    cpu_only = ModelLoadingOptions.default().with_(compute_units=ComputeUnits.CPU_ONLY)
    for options, device in ((forced, A11_IPHONE), (cpu_only, M1_MAC)):
        loader, _, events, recorder, _ = _loader(
            vocoder_package, options, device=device, runtimes=_NeuralEngineRuntimes(), ane_claim=True
        )
        loader.prepare()
        assert loader.warm(None, timeout_s=60)
        info = recorder.snapshot()
        assert info.vocoder_backend is CORE_ML and info.vocoder_runtime == "apple"
        assert not events.of(CompilingANE) and info.ane_compiled is False


class _Buckets:
    """A vocoder made of several fixed-shape ones (the session's pad-and-trim wrapper stands here)."""

    backend = "coreML"

    def __init__(self, vocoders) -> None:
        self.vocoders = list(vocoders)
        self.neural_engine_compiled = False
        self.warmed = 0

    def prewarm(self) -> None:
        for vocoder in self.vocoders:
            vocoder.prewarm()
            self.warmed += 1

    def decode(self, features: VocoderFeatures) -> mx.array:
        return self.vocoders[0].decode(features)

    def close(self) -> None:
        for vocoder in self.vocoders:
            vocoder.close()


def _bucket_folder(vocoder_package: Path, tmp_path: Path) -> Path:
    import shutil

    for frames in (5, 10):  # two "buckets" (the same tiny program twice)
        shutil.copytree(vocoder_package, tmp_path / "buckets" / f"AudioVocoder-{frames}.mlpackage")
    return tmp_path / "buckets"


def test_a_component_of_several_packages_loads_builds_and_warms_them_all(vocoder_package, tmp_path):
    loader, switch, _, recorder, _ = _loader(_bucket_folder(vocoder_package, tmp_path), PORTABLE)
    spec = loader.spec
    loader.spec = ComponentSpec(
        VOCODER, spec.find_package, spec.fetch_package, spec.build,
        packages=lambda folder: sorted(folder.glob("*.mlpackage")), assemble=_Buckets,
    )  # fmt: skip
    loader.prepare()

    assert loader.warm(None, timeout_s=60) is True

    assert isinstance(switch.coreml, _Buckets) and len(switch.coreml.vocoders) == 2 and switch.coreml.warmed == 2
    assert recorder.snapshot().vocoder_backend is CORE_ML
    assert np.array_equal(np.array(switch.decode(features())), PACKAGE_OUTPUT.astype(np.float32))


def test_a_package_that_does_not_fit_closes_every_package_loaded(vocoder_package, tmp_path):
    loader, switch, events, recorder, _ = _loader(_bucket_folder(vocoder_package, tmp_path), PORTABLE)
    closed: list[object] = []
    builds: list[object] = []
    spec = loader.spec

    def build(model, runtime):
        original = model.close
        model.close = lambda: closed.append(model) or original()
        builds.append(model)
        if len(builds) == 2:  # the second bucket does not fit
            raise ValueError("bucket 10 does not fit")
        return spec.build(model, runtime)

    loader.spec = ComponentSpec(
        VOCODER, spec.find_package, spec.fetch_package, build,
        packages=lambda folder: sorted(folder.glob("*.mlpackage")), assemble=_Buckets,
    )  # fmt: skip
    loader.prepare()

    assert loader.warm(None, timeout_s=60) is False

    assert len(closed) == 2 and switch.backend == "mlx"  # the one built and the one refused
    assert "bucket 10 does not fit" in events.of(CoreMLUnavailable)[-1].reason
    assert recorder.snapshot().did_fallback
