"""Converter behaviour that needs no runtime: the package's I/O, metadata, companion folder, errors."""

from __future__ import annotations

import json
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest
from convert_helpers import TINY_HEADS, package_description

from mlx_audio_coreml.convert import ConversionStage, ConvertOptions, convert_encoder, convert_whisper
from mlx_audio_coreml.convert.companion import file_hashes
from mlx_audio_coreml.convert.encoder_weights import weights_from_mlx
from mlx_audio_coreml.errors import (
    ConversionDestinationExists,
    ConversionError,
    ConversionFailed,
    InvalidConversionOption,
    UnsupportedModelForConversion,
)
from mlx_audio_coreml.whisper.encoder_layouts import LAYOUTS, detect_layout, get_layout
from mlx_audio_coreml.whisper.model import WhisperEncoder

NO_CHECK = ConvertOptions(validate=False)


def test_weights_from_mlx_reads_every_parameter_in_pytorch_order(tiny_encoder):
    weights = weights_from_mlx(tiny_encoder, TINY_HEADS)
    assert (weights.n_mels, weights.d_model, weights.n_ctx, weights.n_layer) == (80, 64, 1500, 2)
    # MLX keeps conv weights (out, kernel, in); the builder wants (out, in, kernel)
    np.testing.assert_array_equal(weights.conv1.weight, np.array(tiny_encoder.conv1.weight).transpose(0, 2, 1))
    np.testing.assert_array_equal(weights.blocks[1].mlp2.weight, np.array(tiny_encoder.blocks[1].mlp2.weight))
    assert weights.blocks[0].key.bias is None
    np.testing.assert_array_equal(weights.positions, np.array(tiny_encoder._positional_embedding))


@pytest.mark.parametrize("layout_name", sorted(LAYOUTS))
@pytest.mark.parametrize("precision", ["float16", "float32"])
def test_each_layout_writes_its_published_io_and_metadata(tiny_package, tiny_source, layout_name, precision):
    result = tiny_package(layout_name, precision)
    description = package_description(result.package)
    layout = detect_layout(description)
    assert layout.name == layout_name
    io_dtype = layout.io_dtype(precision)
    assert description.inputs[0].shape == layout.input_shape(80) and description.inputs[0].dtype == io_dtype
    assert description.outputs[0].shape == layout.output_shape(64) and description.outputs[0].dtype == io_dtype
    meta = description.metadata
    assert meta["mlx_audio_coreml.layout"] == layout_name
    assert meta["mlx_audio_coreml.precision"] == precision
    assert meta["mlx_audio_coreml.weights_sha256"] == tiny_source.weights_sha256
    assert (meta["mlx_audio_coreml.n_mels"], meta["mlx_audio_coreml.n_ctx"], meta["mlx_audio_coreml.d_model"]) == (
        "80",
        "1500",
        "64",
    )
    assert meta["mlx_audio_coreml.coremltools_version"] and meta["mlx_audio_coreml.mlx_version"] == mx.__version__
    assert result.validation is None and "skipped" in result.validation_note
    assert sorted(p.name for p in result.package.parent.iterdir()) == [result.package.name]


def test_companion_folder_has_card_and_manifest_hashing_every_file(tiny_encoder, tiny_source, tmp_path):
    options = ConvertOptions(layout="whisperkit", companion=True, validate=False)
    result = convert_encoder(tiny_encoder, TINY_HEADS, tiny_source, tmp_path, options)
    assert result.companion_dir == tmp_path / "tiny-random-coreml"
    manifest = json.loads((result.companion_dir / "manifest.json").read_text())
    assert manifest["components"]["encoder"] == {
        "path": "AudioEncoder.mlpackage",
        "layout": "whisperkit",
        "precision": "float16",
    }
    assert manifest["source"]["weights_sha256"] == tiny_source.weights_sha256
    assert manifest["files"] == file_hashes(result.companion_dir)
    assert "AudioEncoder.mlpackage/Data/com.apple.CoreML/weights/weight.bin" in manifest["files"]
    card = (result.companion_dir / "README.md").read_text()
    assert "whisperkit" in card and "Not validated" in card
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny-random-coreml"]


class InjectedFailure(Exception):
    pass


@pytest.mark.parametrize(
    "failing_stage", [ConversionStage.BUILDING, ConversionStage.CONVERTING, ConversionStage.SAVING]
)
@pytest.mark.parametrize("companion", [False, True])
def test_failure_mid_conversion_leaves_no_package_and_no_litter(
    tiny_encoder, tiny_source, tmp_path, failing_stage, companion
):
    def progress(stage: ConversionStage, fraction: float) -> None:
        if stage == failing_stage and fraction >= 0.5:
            raise InjectedFailure(stage)

    options = ConvertOptions(companion=companion, validate=False)
    with pytest.raises(InjectedFailure):
        convert_encoder(tiny_encoder, TINY_HEADS, tiny_source, tmp_path, options, progress)
    assert list(tmp_path.iterdir()) == []


def test_disk_error_in_the_companion_files_is_typed_and_leaves_nothing(
    tiny_encoder, tiny_source, tmp_path, monkeypatch
):
    from mlx_audio_coreml.convert import companion

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(companion, "write_companion_files", disk_full)
    with pytest.raises(ConversionFailed, match="companion"):
        convert_encoder(tiny_encoder, TINY_HEADS, tiny_source, tmp_path, ConvertOptions(companion=True, validate=False))
    assert list(tmp_path.iterdir()) == []


def test_failure_while_replacing_keeps_the_old_package(tiny_encoder, tiny_source, tmp_path):
    first = convert_encoder(tiny_encoder, TINY_HEADS, tiny_source, tmp_path, NO_CHECK)
    before = file_hashes(first.package)

    def progress(stage: ConversionStage, fraction: float) -> None:
        if stage == ConversionStage.SAVING:
            raise InjectedFailure(stage)

    with pytest.raises(InjectedFailure):
        convert_encoder(
            tiny_encoder, TINY_HEADS, tiny_source, tmp_path, ConvertOptions(validate=False, overwrite=True), progress
        )
    assert file_hashes(first.package) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [first.package.name]


def test_existing_destination_is_replaced_only_when_asked(tiny_encoder, tiny_source, tmp_path):
    first = convert_encoder(tiny_encoder, TINY_HEADS, tiny_source, tmp_path, NO_CHECK)
    with pytest.raises(ConversionDestinationExists):
        convert_encoder(tiny_encoder, TINY_HEADS, tiny_source, tmp_path, NO_CHECK)
    again = convert_encoder(
        tiny_encoder, TINY_HEADS, tiny_source, tmp_path, ConvertOptions(validate=False, overwrite=True)
    )
    assert again.package == first.package and again.package.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == [first.package.name]


def test_progress_reports_each_stage_in_order_with_rising_fractions(tiny_encoder, tiny_source, tmp_path):
    seen: list[tuple[ConversionStage, float]] = []
    convert_encoder(
        tiny_encoder,
        TINY_HEADS,
        tiny_source,
        tmp_path,
        ConvertOptions(validate=False, companion=True),
        lambda s, f: seen.append((s, f)),
    )
    stages = list(dict.fromkeys(stage for stage, _ in seen))
    assert stages == [
        ConversionStage.LOADING,
        ConversionStage.BUILDING,
        ConversionStage.CONVERTING,
        ConversionStage.SAVING,
        ConversionStage.PUBLISHING,
    ]
    for stage in stages:
        fractions = [f for s, f in seen if s == stage]
        assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_quantized_encoder_is_an_unsupported_model(tiny_source, tmp_path):
    import mlx.nn as nn

    encoder = WhisperEncoder(n_mels=80, n_ctx=1500, n_state=64, n_head=TINY_HEADS, n_layer=1)
    nn.quantize(encoder, group_size=32, bits=4)
    with pytest.raises(UnsupportedModelForConversion, match="unexpected encoder parameters"):
        convert_encoder(encoder, TINY_HEADS, tiny_source, tmp_path, NO_CHECK)
    assert list(tmp_path.iterdir()) == []


def test_heads_that_do_not_divide_the_width_are_unsupported(tiny_encoder, tiny_source, tmp_path):
    with pytest.raises(UnsupportedModelForConversion, match="heads"):
        convert_encoder(tiny_encoder, 5, tiny_source, tmp_path, NO_CHECK)


def test_a_folder_without_whisper_weights_is_an_unsupported_model(tmp_path):
    model_dir = tmp_path / "not-whisper"
    model_dir.mkdir()
    (model_dir / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (model_dir / "pytorch_model.bin").write_bytes(b"\0" * 16)
    out = tmp_path / "out"
    with pytest.raises(ConversionError):
        convert_whisper(model_dir, out, NO_CHECK)
    assert not out.exists() or list(out.iterdir()) == []


@pytest.mark.parametrize(
    ("field", "value"), [("layout", "onnx"), ("precision", "int8"), ("deployment_target", "macOS11")]
)
def test_invalid_options_raise_before_any_work(tiny_encoder, tiny_source, tmp_path, field, value):
    options = ConvertOptions(validate=False, **{field: value})
    with pytest.raises(InvalidConversionOption) as info:
        convert_encoder(tiny_encoder, TINY_HEADS, tiny_source, tmp_path, options)
    assert info.value.name == field
    assert list(tmp_path.iterdir()) == []


def _op_types(package: Path) -> list[str]:
    import coremltools as ct

    main = ct.utils.load_spec(str(package)).mlProgram.functions["main"]
    block = main.block_specializations[main.opset]
    return [op.type for op in block.operations if op.type != "const"]


@pytest.mark.parametrize("layout_name", sorted(LAYOUTS))
def test_program_stays_channels_first_as_the_neural_engine_prefers(tiny_package, layout_name):
    ops = _op_types(tiny_package(layout_name, "float16").package)
    n_layer, n_head = 2, TINY_HEADS
    assert "linear" not in ops and "reshape" not in ops  # linears are 1x1 convs on (B, C, 1, S)
    assert ops.count("conv") == 2 + 6 * n_layer  # front end + q, k, v, out, mlp1, mlp2 per block
    assert ops.count("softmax") == n_head * n_layer  # one small score matrix per head
    assert ops.count("transpose") == (0 if get_layout(layout_name).output_channels_first else 1)  # only at the output
    # float16 end to end, except whisper.cpp's float32 I/O: one cast in, one out
    assert ops.count("cast") == (2 if layout_name == "whispercpp" else 0)
