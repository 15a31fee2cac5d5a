"""Converted packages run through the portable runtime and agree with the MLX encoder.

Skipped (with the reason) where the portable runtime is not available.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from convert_helpers import JFK, TINY_HEADS, real_model_dir

from mlx_audio_coreml.convert import ConversionStage, ConvertOptions, convert_encoder, convert_whisper
from mlx_audio_coreml.convert.validate import (
    DEFAULT_TOLERANCES,
    mlx_states,
    relative_error,
    run_package,
    validation_mel,
    validation_runtime_available,
)
from mlx_audio_coreml.coreml.registry import get_runtime
from mlx_audio_coreml.coreml.runtime import ComputeUnits
from mlx_audio_coreml.errors import ConversionValidationFailed
from mlx_audio_coreml.whisper.encoder_layouts import LAYOUTS, detect_layout

_available, _reason = validation_runtime_available("portable")
pytestmark = pytest.mark.skipif(not _available, reason=f"portable runtime unavailable: {_reason}")


def _run_through_portable(package: Path, mel: np.ndarray) -> tuple[str, np.ndarray]:
    loaded = get_runtime("portable").load(package, ComputeUnits.CPU_ONLY)
    try:
        return detect_layout(loaded.description).name, run_package(loaded, mel)
    finally:
        loaded.close()


@pytest.mark.parametrize("layout_name", sorted(LAYOUTS))
@pytest.mark.parametrize("precision", ["float32", "float16"])
def test_each_layout_round_trips_and_agrees_with_mlx(tiny_encoder, tiny_package, layout_name, precision):
    mel = validation_mel(80, JFK)
    found, states = _run_through_portable(tiny_package(layout_name, precision).package, mel)
    assert found == layout_name
    assert states.shape == (1, 1500, 64)
    assert relative_error(states, mlx_states(tiny_encoder, mel)) <= DEFAULT_TOLERANCES[precision]


def test_batched_attention_agrees_with_per_head_attention(tiny_encoder, tiny_package, tiny_source, tmp_path):
    per_head = tiny_package("default", "float32")
    batched = convert_encoder(
        tiny_encoder,
        TINY_HEADS,
        tiny_source,
        tmp_path,
        ConvertOptions(precision="float32", split_heads=False, validate=False),
    )
    mel = validation_mel(80)
    _, a = _run_through_portable(per_head.package, mel)
    _, b = _run_through_portable(batched.package, mel)
    assert relative_error(a, b) <= 1e-5


def test_validation_reports_to_progress_and_a_failed_check_leaves_nothing(tiny_encoder, tiny_source, tmp_path):
    seen = []
    options = ConvertOptions(validate=True)
    result = convert_encoder(
        tiny_encoder, TINY_HEADS, tiny_source, tmp_path / "ok", options, lambda s, f: seen.append(s)
    )
    assert ConversionStage.VALIDATING in seen
    assert result.validation is not None and result.validation.passed and result.validation.runtime == "portable"
    impossible = ConvertOptions(validate=True, tolerance=1e-12)  # float16 cannot meet this
    with pytest.raises(ConversionValidationFailed):
        convert_encoder(tiny_encoder, TINY_HEADS, tiny_source, tmp_path / "bad", impossible)
    assert list((tmp_path / "bad").iterdir()) == []


@pytest.mark.realweights
@pytest.mark.parametrize("precision", ["float32", "float16"])
def test_real_tiny_en_matches_mlx_on_real_speech(tmp_path, precision):
    options = ConvertOptions(precision=precision, validate=True, validation_audio=JFK)
    result = convert_whisper(real_model_dir("tiny.en"), tmp_path, options)
    assert result.validation is not None
    assert result.validation.relative_error <= DEFAULT_TOLERANCES[precision]
    assert result.metadata["mlx_audio_coreml.source_model"] == "tiny.en"


@pytest.mark.realweights
@pytest.mark.parametrize(("layout_name", "precision"), [("whispercpp", "float32"), ("whisperkit", "float16")])
def test_real_tiny_en_other_layouts_match_mlx(tmp_path, layout_name, precision):
    # each layout at the precision its published packages use (every pairing runs on random weights above)
    options = ConvertOptions(layout=layout_name, precision=precision, validate=True, validation_audio=JFK)
    result = convert_whisper(real_model_dir("tiny.en"), tmp_path, options)
    assert result.validation is not None and result.validation.relative_error <= DEFAULT_TOLERANCES[precision]


@pytest.mark.realweights
@pytest.mark.slow
@pytest.mark.parametrize("precision", ["float32", "float16"])
def test_real_base_matches_mlx_on_real_speech(tmp_path, precision):
    options = ConvertOptions(precision=precision, validate=True, validation_audio=JFK)
    result = convert_whisper(real_model_dir("base"), tmp_path, options)
    assert result.validation is not None
    assert result.validation.relative_error <= DEFAULT_TOLERANCES[precision]
