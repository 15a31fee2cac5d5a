"""Encoder layouts: recognising a package from its description and moving arrays in and out."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

import mlx_audio_coreml  # noqa: F401  (BLAS first)
from mlx_audio_coreml.coreml.runtime import ModelDescription, TensorSpec
from mlx_audio_coreml.errors import UnknownEncoderLayout
from mlx_audio_coreml.whisper.encoder_layouts import LAYOUT_METADATA_KEY, LAYOUTS, detect_layout, get_layout


def _description(layout_name: str, n_mels: int = 80, d_model: int = 384, dtype: str = "float16", **metadata: str):
    layout = get_layout(layout_name)
    return ModelDescription(
        inputs=(TensorSpec(layout.input_name, dtype, layout.input_shape(n_mels)),),
        outputs=(TensorSpec(layout.output_name, dtype, layout.output_shape(d_model)),),
        metadata=metadata,
    )


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_detect_layout_finds_each_layout_and_reads_its_shapes(name):
    description = _description(name, n_mels=128, d_model=512)
    layout = detect_layout(description)
    assert layout.name == name
    shapes = layout.shapes(description)
    assert (shapes.n_mels, shapes.n_frames, shapes.n_ctx, shapes.d_model) == (128, 3000, 1500, 512)


def test_published_shapes_match_whispercpp_and_whisperkit():
    assert get_layout("whispercpp").input_shape(80) == (1, 80, 3000)
    assert get_layout("whispercpp").output_shape(384) == (1, 1500, 384)
    assert get_layout("whisperkit").input_shape(80) == (1, 80, 1, 3000)
    assert get_layout("whisperkit").output_shape(384) == (1, 384, 1, 1500)
    assert get_layout("whispercpp").io_dtype("float16") == "float32"
    assert get_layout("whisperkit").io_dtype("float16") == "float16"


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_input_and_output_round_trip_numpy_and_mlx(name):
    layout = get_layout(name)
    rng = np.random.default_rng(0)
    mel = rng.standard_normal((2, 80, 3000)).astype(np.float32)
    packed = layout.to_input(mel, "float16")
    assert packed.dtype == np.float16 and packed.shape == layout.input_shape(80, batch=2)
    states = rng.standard_normal((2, 1500, 8)).astype(np.float32)
    # what the package would emit for these states, built by hand for each layout
    emitted = states.transpose(0, 2, 1)[:, :, None, :] if layout.output_channels_first else states
    np.testing.assert_array_equal(layout.from_output(emitted), states)
    np.testing.assert_array_equal(np.array(layout.from_output(mx.array(emitted))), states)
    packed_mx = layout.to_input(mx.array(mel), "float32")
    assert packed_mx.dtype == mx.float32 and tuple(packed_mx.shape) == layout.input_shape(80, batch=2)


def test_unknown_names_raise_with_the_tensors_found():
    description = ModelDescription(
        (TensorSpec("x", "float32", (1, 80, 3000)),), (TensorSpec("y", "float32", (1, 1500, 384)),)
    )
    with pytest.raises(UnknownEncoderLayout) as info:
        detect_layout(description)
    assert "x [1, 80, 3000]" in info.value.found


def test_known_names_with_wrong_shapes_raise():
    wrong_ctx = ModelDescription(
        (TensorSpec("logmel_data", "float32", (1, 80, 3000)),), (TensorSpec("output", "float32", (1, 1400, 384)),)
    )
    with pytest.raises(UnknownEncoderLayout, match="1400"):
        detect_layout(wrong_ctx)
    wrong_rank = ModelDescription(
        (TensorSpec("melspectrogram_features", "float16", (1, 80, 3000)),),
        (TensorSpec("encoder_output_embeds", "float16", (1, 384, 1, 1500)),),
    )
    with pytest.raises(UnknownEncoderLayout, match="ranks"):
        detect_layout(wrong_rank)


def test_metadata_contradicting_the_names_raises():
    with pytest.raises(UnknownEncoderLayout, match="metadata"):
        detect_layout(_description("default", **{LAYOUT_METADATA_KEY: "whisperkit"}))
    assert detect_layout(_description("default", **{LAYOUT_METADATA_KEY: "default"})).name == "default"


def test_extra_inputs_are_not_an_encoder():
    layout = get_layout("default")
    description = ModelDescription(
        (TensorSpec("mel", "float16", (1, 80, 3000)), TensorSpec("extra", "float16", (1,))),
        (TensorSpec(layout.output_name, "float16", (1, 1500, 384)),),
    )
    with pytest.raises(UnknownEncoderLayout, match="exactly one input"):
        detect_layout(description)
