"""A converted encoder package written as a compiled model (.mlmodelc: text MIL, weights,
metadata.json) reads back to the package's program exactly and runs like it in the portable runtime."""

from __future__ import annotations

import json

import numpy as np
import pytest
from convert_helpers import TINY_HEADS

from mlx_audio_coreml.convert import ConvertOptions, convert_encoder
from mlx_audio_coreml.convert.compiled import write_compiled
from mlx_audio_coreml.convert.mil_text import program_text
from mlx_audio_coreml.coreml.portable import PortableRuntime
from mlx_audio_coreml.coreml.portable._proto import MIL_pb2
from mlx_audio_coreml.coreml.portable.mil_text import parse_program, read_compiled
from mlx_audio_coreml.coreml.portable.package import read_package
from mlx_audio_coreml.errors import ConversionDestinationExists, ConversionFailed


@pytest.fixture(autouse=True)
def _private_compiled_cache(tmp_path_factory, monkeypatch):
    """Parsed text programs are kept in the compiled-model cache: this test's, not the user's
    (MLX_AUDIO_COREML_HOME stays, so installed real weights are still found)."""
    from mlx_audio_coreml import config

    cache = tmp_path_factory.mktemp("compiled")
    monkeypatch.setattr(config, "compiled_dir", lambda environ=None: cache)


def _outputs(path, mel: np.ndarray) -> dict[str, np.ndarray]:
    model = PortableRuntime().load(path)
    spec = model.description.inputs[0]
    return model.predict({spec.name: mel.reshape(spec.shape).astype(spec.dtype)}).outputs


def _mel(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((1, 80, 3000)).astype(np.float32)


def assert_same_model(package, compiled, mel: np.ndarray) -> None:
    """The compiled folder holds the package's program exactly (proto equality), and runs like it:
    float16 outputs bit for bit; float32 within 1e-5, since the CPU host kernels split float32 work
    by thread and the same .mlpackage loaded twice already differed by 7.2e-7 in one test session."""
    assert read_compiled(compiled).program == read_package(package).program
    want, got = _outputs(package, mel), _outputs(compiled, mel)
    assert list(got) == list(want)
    for name in want:
        assert got[name].dtype == want[name].dtype
        if want[name].dtype == np.float16:
            np.testing.assert_array_equal(got[name], want[name])
        else:
            np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "layout, precision", [("default", "float16"), ("whisperkit", "float16"), ("whispercpp", "float32")]
)
def test_encoder_written_as_text_mil_matches_the_package(tiny_package, tmp_path, layout, precision):
    package = tiny_package(layout, precision).package
    compiled = write_compiled(package, tmp_path / "AudioEncoder.mlmodelc")
    assert_same_model(package, compiled, _mel())


def test_compiled_folder_keeps_description_weights_and_metadata(tiny_package, tmp_path):
    package = tiny_package("whisperkit", "float16").package
    compiled = write_compiled(package, tmp_path / "AudioEncoder.mlmodelc")
    source = read_package(package)
    assert sorted(p.name for p in compiled.iterdir()) == ["metadata.json", "model.mil", "weights"]
    assert (compiled / "weights" / "weight.bin").read_bytes() == (source.weights_dir / "weight.bin").read_bytes()
    loaded = PortableRuntime().load(compiled).description
    assert loaded.inputs == source.description.inputs
    assert loaded.outputs == source.description.outputs
    assert loaded.metadata == source.description.metadata
    (entry,) = json.loads((compiled / "metadata.json").read_text())
    assert entry["inputSchema"][0]["shape"] == "[1, 80, 1, 3000]"
    assert entry["inputSchema"][0]["dataType"] == "Float16"
    assert entry["outputSchema"][0]["name"] == "encoder_output_embeds"
    ops = source.program.functions["main"].block_specializations["CoreML6"].operations
    assert entry["mlProgramOperationTypeHistogram"]["Ios16.conv"] == sum(op.type == "conv" for op in ops) > 2


def test_written_text_reads_back_to_the_same_text(tiny_package):
    program = read_package(tiny_package("default", "float16").package).program
    text = program_text(program)
    assert text.startswith("program(1.0)\n[buildInfo = dict<tensor<string, []>, tensor<string, []>>(")
    assert "func main<ios16>(tensor<fp16, [1, 80, 3000]> mel)" in text
    assert program_text(parse_program(text)) == text


def test_an_ios18_package_is_written_in_the_program_1_3_spelling(tiny_encoder, tiny_source, tmp_path):
    options = ConvertOptions(precision="float32", deployment_target="iOS18", validate=False)
    package = convert_encoder(tiny_encoder, TINY_HEADS, tiny_source, tmp_path / "ios18", options).package
    compiled = write_compiled(package, tmp_path / "ios18.mlmodelc")
    text = (compiled / "model.mil").read_text()
    assert text.startswith("program(1.3)\n")
    assert "func main<ios18>(" in text
    assert "[name = string(" in text and "tensor<string, []>" not in text
    assert_same_model(package, compiled, _mel(1))


def test_an_existing_destination_is_kept_unless_overwrite(tiny_package, tmp_path):
    package = tiny_package("default", "float16").package
    destination = tmp_path / "enc.mlmodelc"
    destination.mkdir()
    (destination / "keep").write_text("mine")
    with pytest.raises(ConversionDestinationExists):
        write_compiled(package, destination)
    assert (destination / "keep").read_text() == "mine"
    write_compiled(package, destination, overwrite=True)
    assert not (destination / "keep").exists() and (destination / "model.mil").is_file()


def test_control_flow_is_refused_rather_than_written_wrong():
    program = parse_program("program(1.3) { func main<ios18>(tensor<bool, []> c) { } -> (c); }")
    block = program.functions["main"].block_specializations["CoreML8"]
    op = block.operations.add(type="cond")
    op.blocks.add()
    op.outputs.add(name="r").type.CopyFrom(program.functions["main"].inputs[0].type)
    with pytest.raises(ConversionFailed, match="nested blocks"):
        program_text(program)
    assert isinstance(program, MIL_pb2.Program)


@pytest.mark.realweights
def test_cli_compiled_flag_writes_the_mlmodelc_beside_the_package(tmp_path, capsys):
    from convert_helpers import real_model_dir

    from mlx_audio_coreml.cli import main

    model_dir = real_model_dir("tiny.en")
    code = main(
        ["convert", "whisper", "--model", str(model_dir), "--out", str(tmp_path), "--no-validate", "--compiled"]
    )
    assert code == 0
    package = tmp_path / "tiny.en-encoder-default-float16.mlpackage"
    compiled = package.with_suffix(".mlmodelc")
    assert f"wrote {compiled}" in capsys.readouterr().out
    assert_same_model(package, compiled, _mel(2))
