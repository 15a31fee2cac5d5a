"""The seed's selectBackend rules (loading/selection.py) and device facts (loading/devices.py), with injected facts."""

from __future__ import annotations

import platform

import pytest
from loading_helpers import A11_IPHONE, M1_MAC

from mlx_audio_coreml.coreml.runtime import Availability
from mlx_audio_coreml.errors import NetworkError
from mlx_audio_coreml.loading.devices import DeviceFacts, chip_has_neural_engine, read_device_facts
from mlx_audio_coreml.loading.selection import (
    LoadEnvironment,
    PackageLookup,
    Rule,
    RuntimeProvider,
    choose_runtime,
    select_backend,
)
from mlx_audio_coreml.options import BackendPreference, Component, ModelLoadingOptions
from mlx_audio_coreml.progress import CoreMLUnavailable, DownloadFailed

AUTO, CORE_ML, MLX = BackendPreference.AUTO, BackendPreference.CORE_ML, BackendPreference.MLX
ENCODER, VOCODER = Component.ENCODER, Component.VOCODER


class Runtimes(RuntimeProvider):
    """Runtime availability as a table (the registry's real answers are tested in test_runtimes)."""

    def __init__(self, available: dict[str, bool], ane: tuple[str, ...] = ("apple", "coremltools")) -> None:
        self.available = available
        self.ane = ane

    def availability(self, name: str) -> Availability:
        ok = self.available.get(name, False)
        return Availability(ok, "" if ok else f"{name} does not run here")

    def claims_neural_engine(self, name: str) -> bool:
        return name in self.ane


class Lookups:
    """Counts package lookups, answering as told."""

    def __init__(self, answer: PackageLookup) -> None:
        self.answer = answer
        self.calls = 0

    def __call__(self) -> PackageLookup:
        self.calls += 1
        return self.answer


FOUND = PackageLookup(True, "org/model-coreml/AudioEncoder.mlpackage")
MISSING = PackageLookup(False, "no Core ML repo org/model-coreml on the hub")
MAC = LoadEnvironment(device=M1_MAC, runtimes=Runtimes({"apple": True, "coremltools": True, "portable": True}))


def decide(
    options: ModelLoadingOptions, lookup: PackageLookup = FOUND, environment: LoadEnvironment = MAC, component=ENCODER
):
    lookups = Lookups(lookup)
    return select_backend(component, options, environment=environment, find_package=lookups), lookups


@pytest.mark.parametrize("preference", [AUTO, CORE_ML])
def test_coreml_chosen_when_package_ane_and_runtime_are_all_there(preference):
    decision, _ = decide(ModelLoadingOptions(backend=preference))
    assert decision.backend is CORE_ML and decision.rule is Rule.COREML
    assert decision.runtime == "apple"  # the first automatic runtime
    assert not decision.is_fallback and decision.event() is None


@pytest.mark.parametrize("preference", [AUTO, CORE_ML])
def test_missing_package_means_mlx_with_model_not_available(preference):
    decision, lookups = decide(ModelLoadingOptions(backend=preference), MISSING)
    assert decision.backend is MLX and decision.rule is Rule.MODEL_MISSING and lookups.calls == 1
    assert decision.is_fallback
    event = decision.event()
    assert isinstance(event, CoreMLUnavailable) and event.reason.startswith("Model not available")


def test_failed_lookup_is_a_download_failure_not_a_missing_model():
    error = NetworkError("org/model-coreml", "connection refused")
    decision, _ = decide(ModelLoadingOptions(), PackageLookup(False, error=error))
    assert decision.backend is MLX and decision.rule is Rule.LOOKUP_FAILED
    assert decision.event() == DownloadFailed(error)


@pytest.mark.parametrize("device", [A11_IPHONE, DeviceFacts("Darwin", "14.5", "Apple M2", True, True, is_vm=True)])
def test_no_usable_neural_engine_means_mlx_before_any_lookup(device):
    environment = LoadEnvironment(device=device, runtimes=MAC.runtimes)
    decision, lookups = decide(ModelLoadingOptions(), environment=environment)
    assert decision.backend is MLX and decision.rule is Rule.NO_NEURAL_ENGINE
    assert decision.reason.startswith("ANE not supported")
    assert lookups.calls == 0  # the hub is not asked when the device already rules Core ML out


def test_preference_mlx_never_looks_anything_up():
    decision, lookups = decide(ModelLoadingOptions.mlx_only())
    assert decision.backend is MLX and decision.rule is Rule.PREFERENCE_MLX
    assert lookups.calls == 0 and not decision.is_fallback and decision.event() is None


def test_override_mlx_beats_a_coreml_preference():
    options = ModelLoadingOptions(backend=CORE_ML, backend_overrides={ENCODER: MLX})
    decision, lookups = decide(options)
    assert decision.backend is MLX and decision.rule is Rule.OVERRIDE_MLX and lookups.calls == 0
    other, _ = decide(options, component=VOCODER)  # the override is for the encoder only
    assert other.backend is CORE_ML


def test_override_coreml_beats_an_mlx_preference_and_skips_the_ane_rule():
    options = ModelLoadingOptions(backend=MLX, backend_overrides={ENCODER: CORE_ML})
    intel_mac = LoadEnvironment(
        device=DeviceFacts("Darwin", "13.6", "Intel(R) Core(TM) i7", True, False), runtimes=MAC.runtimes
    )
    decision, _ = decide(options, environment=intel_mac)
    assert decision.backend is CORE_ML and decision.requested is CORE_ML
    assert "override" in decision.reason
    still_needs_a_package, _ = decide(options, MISSING, environment=intel_mac)
    assert still_needs_a_package.backend is MLX and still_needs_a_package.rule is Rule.MODEL_MISSING


def test_override_auto_applies_the_auto_rules_under_an_mlx_preference():
    options = ModelLoadingOptions(backend=MLX, backend_overrides={ENCODER: AUTO})
    assert decide(options)[0].backend is CORE_ML
    assert decide(options, environment=LoadEnvironment(device=A11_IPHONE, runtimes=MAC.runtimes))[0].backend is MLX


def test_no_runtime_means_mlx_with_every_runtimes_reason():
    environment = LoadEnvironment(device=M1_MAC, runtimes=Runtimes({"portable": True}))
    decision, lookups = decide(ModelLoadingOptions(), environment=environment)
    assert decision.backend is MLX and decision.rule is Rule.NO_RUNTIME and lookups.calls == 0
    assert "apple does not run here" in decision.reason and "coremltools does not run here" in decision.reason


def test_portable_is_never_chosen_automatically_only_when_named():
    runtimes = Runtimes({"portable": True})
    assert choose_runtime(ModelLoadingOptions(), runtimes).name is None
    named = ModelLoadingOptions(coreml_runtime="portable")
    assert choose_runtime(named, runtimes).name == "portable"
    # Named, it does not need a Neural Engine (it never uses one), so it runs on a plain Linux box.
    linux = LoadEnvironment(
        device=read_device_facts() if platform.system() == "Linux" else A11_IPHONE, runtimes=runtimes
    )
    decision, _ = decide(named, environment=linux)
    assert decision.backend is CORE_ML and decision.runtime == "portable"


def test_a_named_runtime_that_is_unavailable_falls_back_with_its_reason():
    only_apple = LoadEnvironment(M1_MAC, Runtimes({"apple": True}))
    decision, _ = decide(ModelLoadingOptions(coreml_runtime="coremltools"), environment=only_apple)
    assert decision.backend is MLX and "coremltools does not run here" in decision.reason


@pytest.mark.parametrize(
    "chip, expected",
    [
        ("Apple M1", True), ("Apple M3 Max", True), ("Apple A12 Bionic", True), ("Apple A17 Pro", True),
        ("Apple A11 Bionic", False), ("Apple A10 Fusion", False), ("Intel(R) Core(TM) i9-9980HK", None), ("", None),
    ],
)  # fmt: skip
def test_chip_rule_is_a12_or_m1_and_later(chip, expected):
    assert chip_has_neural_engine(chip) is expected


def test_device_problem_names_the_reason():
    assert M1_MAC.neural_engine_usable and M1_MAC.neural_engine_problem() == ""
    assert "A11" in A11_IPHONE.neural_engine_problem()
    vm = DeviceFacts("Darwin", "14.5", "Apple M1", True, True, is_vm=True)
    assert not vm.neural_engine_usable and "virtual machine" in vm.neural_engine_problem()


@pytest.mark.skipif(platform.system() != "Linux", reason="checks what this Linux machine reports")
def test_real_linux_machine_reports_no_core_ml_and_no_neural_engine():
    facts = read_device_facts()
    assert facts.os_name == "Linux" and facts.source == "platform"
    assert not facts.coreml_available and not facts.neural_engine_usable
    assert "Core ML is not available on Linux" in facts.neural_engine_problem()


class _Precompiled(Runtimes):
    def __init__(self, precompiled: bool) -> None:
        super().__init__({"apple": True})
        self.precompiled = precompiled

    def is_precompiled(self, name, package) -> bool:
        return self.precompiled


@pytest.mark.parametrize(
    "preference, accept, precompiled, waits",
    [
        (AUTO, True, False, False),  # the default accepts the compile delay
        (AUTO, False, True, False),  # pre-compiled: no delay to accept
        (AUTO, False, False, True),  # the seed's third auto criterion fails
        (CORE_ML, False, False, False),  # asking for Core ML accepts the delay
    ],
)
def test_third_auto_rule_precompiled_or_delay_accepted(preference, accept, precompiled, waits):
    from pathlib import Path

    from mlx_audio_coreml.loading.selection import compile_now_allowed

    options = ModelLoadingOptions(backend=preference, accept_compile_delay=accept)
    decision, _ = decide(options)
    reason = compile_now_allowed(decision, options, _Precompiled(precompiled), Path("AudioEncoder.mlpackage"))
    assert bool(reason) is waits
