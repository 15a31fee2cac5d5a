"""ModelLoadingOptions (the seed's fields and presets), progress events and their delivery."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from mlx_audio_coreml.options import (
    DEFAULT_COMPILE_TIMEOUT_S,
    BackendPreference,
    Component,
    ComputeUnits,
    ModelLoadingOptions,
    WhisperQuantization,
)
from mlx_audio_coreml.progress import (
    CompilationFailed,
    CompilingANE,
    CoreMLUnavailable,
    DownloadFailed,
    Downloading,
    DownloadingCoreML,
    Loading,
    WhisperProgress,
    emit,
)


def _seed_fields(options: ModelLoadingOptions) -> tuple:
    return (options.quantization, options.load_in_background, options.fallback_to_float16, options.backend)


def test_default_preset_equals_the_seed():
    assert _seed_fields(ModelLoadingOptions.default()) == (
        WhisperQuantization.FLOAT16,
        False,
        True,
        BackendPreference.AUTO,
    )
    assert ModelLoadingOptions.default() == ModelLoadingOptions()  # the field defaults are the preset


def test_max_performance_preset_equals_the_seed():
    expected = (WhisperQuantization.INT4, True, True, BackendPreference.CORE_ML)
    assert _seed_fields(ModelLoadingOptions.max_performance()) == expected


def test_mlx_only_preset_equals_the_seed():
    assert _seed_fields(ModelLoadingOptions.mlx_only()) == (
        WhisperQuantization.FLOAT16,
        False,
        True,
        BackendPreference.MLX,
    )


def test_presets_have_no_overrides_automatic_runtime_and_ten_minute_timeout():
    for preset in (
        ModelLoadingOptions.default(),
        ModelLoadingOptions.max_performance(),
        ModelLoadingOptions.mlx_only(),
    ):
        assert dict(preset.backend_overrides) == {}
        assert preset.coreml_runtime is None
        assert preset.compute_units is ComputeUnits.ALL
        assert preset.compile_timeout_s == DEFAULT_COMPILE_TIMEOUT_S == 600.0


def test_options_are_frozen_and_their_mappings_read_only():
    options = ModelLoadingOptions(backend_overrides={Component.ENCODER: BackendPreference.MLX})
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.backend = BackendPreference.MLX  # type: ignore[misc]
    with pytest.raises(TypeError):
        options.backend_overrides[Component.VOCODER] = BackendPreference.MLX  # type: ignore[index]


def test_with_merges_changes_and_keeps_the_rest():
    base = ModelLoadingOptions.max_performance()
    changes = {"backend_overrides": {Component.ENCODER: BackendPreference.MLX}, "compile_timeout_s": 30}
    changed = base.with_(**changes)
    assert changed.backend_overrides[Component.ENCODER] is BackendPreference.MLX
    assert changed.compile_timeout_s == 30
    assert _seed_fields(changed) == _seed_fields(base)
    assert (
        hash(changed) != hash(base)
        and changed == base.with_(**changes)
        and hash(changed) == hash(base.with_(**changes))
    )


def test_override_is_the_preference_for_its_component_only():
    options = ModelLoadingOptions(
        backend=BackendPreference.CORE_ML, backend_overrides={Component.VOCODER: BackendPreference.MLX}
    )
    assert options.preference_for(Component.VOCODER) is BackendPreference.MLX
    assert options.preference_for(Component.ENCODER) is BackendPreference.CORE_ML


@pytest.mark.parametrize(
    "changes",
    [
        {"coreml_runtime": "metal"},
        {"compile_timeout_s": 0},
        {"backend_overrides": {"encoder": BackendPreference.MLX}},
        {"backend_overrides": {Component.ENCODER: "mlx"}},
        {"coreml_sources": {"encoder": "org/repo"}},
    ],
)
def test_invalid_options_are_refused(changes):
    with pytest.raises((ValueError, TypeError)):
        ModelLoadingOptions(**changes)


def test_enum_values_are_accepted_as_their_raw_values():
    options = ModelLoadingOptions(quantization="int8", backend="coreML", compute_units=3)  # type: ignore[arg-type]
    assert options.quantization is WhisperQuantization.INT8 and options.quantization.bits == 8
    assert options.backend is BackendPreference.CORE_ML
    assert options.compute_units is ComputeUnits.CPU_AND_NEURAL_ENGINE


def test_every_seed_progress_case_exists_with_its_payload():
    error = RuntimeError("x")
    cases = [
        Downloading(0.5), DownloadingCoreML(0.25), CompilingANE(3.0), Loading(1.0),
        CoreMLUnavailable("Model not available"), CompilationFailed(error), DownloadFailed(error),
    ]  # fmt: skip
    assert all(isinstance(c, WhisperProgress) for c in cases)
    assert [type(c).__name__ for c in cases] == [
        "Downloading", "DownloadingCoreML", "CompilingANE", "Loading", "CoreMLUnavailable", "CompilationFailed", "DownloadFailed",
    ]  # fmt: skip
    assert CoreMLUnavailable("r").reason == "r" and CompilationFailed(error).error is error


def test_handler_exceptions_are_logged_never_raised(caplog):
    def broken(event: WhisperProgress) -> None:
        raise ValueError("UI went away")

    with caplog.at_level(logging.ERROR, logger="mlx_audio_coreml.progress"):
        emit(broken, Loading(0.5))
    assert "progress handler raised" in caplog.text and "UI went away" in caplog.text
    emit(None, Loading(0.5))  # no handler: nothing to do
