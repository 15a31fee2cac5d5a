"""Packages beyond plain weights written as text MIL read back to the package's program and run
like it: compressed weights (iOS16 constexpr ops whose parameters are attributes, iOS18 blockwise
forms with sub-byte blobs) and an iOS18 state (a `state<...>` input, `write_state` with no outputs)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from mlx_audio_coreml.convert.compiled import write_compiled
from mlx_audio_coreml.coreml.portable import PortableRuntime
from mlx_audio_coreml.coreml.portable.mil_text import read_compiled
from mlx_audio_coreml.coreml.portable.package import read_package

ct = pytest.importorskip("coremltools")
logging.getLogger("coremltools").setLevel(logging.ERROR)
cto = pytest.importorskip("coremltools.optimize.coreml")
from coremltools.converters.mil import Builder as mb  # noqa: E402


@pytest.fixture(autouse=True)
def _private_compiled_cache(tmp_path_factory, monkeypatch):
    """Parsed text programs are kept in the compiled-model cache: this test's, not the user's
    (MLX_AUDIO_COREML_HOME stays, so installed real weights are still found)."""
    from mlx_audio_coreml import config

    cache = tmp_path_factory.mktemp("compiled")
    monkeypatch.setattr(config, "compiled_dir", lambda environ=None: cache)


rng = np.random.default_rng(3)
W = rng.standard_normal((64, 128)).astype(np.float32)  # above coremltools' 2048-element compression threshold
X = rng.standard_normal((3, 128)).astype(np.float32)

CASES = {
    "affine_dequantize_ios16": (
        ct.target.iOS16,
        lambda: cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8"),
        "constexpr_affine_dequantize",
    ),
    "lut_to_dense_ios16": (
        ct.target.iOS16,
        lambda: cto.OpPalettizerConfig(mode="uniform", nbits=4),
        "constexpr_lut_to_dense",
    ),
    "sparse_to_dense_ios16": (
        ct.target.iOS16,
        lambda: cto.OpMagnitudePrunerConfig(target_sparsity=0.5),
        "constexpr_sparse_to_dense",
    ),
    "blockwise_shift_scale_ios18": (
        ct.target.iOS18,
        lambda: cto.OpLinearQuantizerConfig(mode="linear", dtype="int4", granularity="per_block", block_size=16),
        "constexpr_blockwise_shift_scale",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_compressed_weights_written_as_text_mil_decompress_the_same(tmp_path, name):
    opset, config, op_type = CASES[name]
    program = mb.program(input_specs=[mb.TensorSpec(shape=X.shape)], opset_version=opset)(
        lambda x: mb.linear(x=x, weight=W)
    )
    dense = ct.convert(
        program, convert_to="mlprogram", minimum_deployment_target=opset, compute_precision=ct.precision.FLOAT32
    )
    compressed = (
        cto.linear_quantize_weights
        if "dequantize" in op_type or "shift" in op_type
        else (cto.palettize_weights if "lut" in op_type else cto.prune_weights)
    )
    model = compressed(dense, cto.OptimizationConfig(global_config=config()))
    package = tmp_path / f"{name}.mlpackage"
    model.save(str(package))
    compiled = write_compiled(package, tmp_path / f"{name}.mlmodelc")
    assert f" = {op_type}(" in (compiled / "model.mil").read_text()
    assert read_compiled(compiled).program == read_package(package).program
    want = PortableRuntime().load(package).predict({"x": X}).outputs
    got = PortableRuntime().load(compiled).predict({"x": X}).outputs
    for key in want:  # float32: the CPU host kernels may split the product differently per load
        np.testing.assert_allclose(got[key], want[key], rtol=1e-5, atol=1e-5)


def test_a_stateful_ios18_package_round_trips_with_its_state(tmp_path):
    from coremltools.converters.mil.mil import types

    def build(acc, x):
        total = mb.add(x=mb.read_state(input=acc), y=x)
        return mb.mul(x=mb.coreml_update_state(state=acc, value=total), y=np.float16(2))

    specs = [mb.StateTensorSpec((2, 3), dtype=types.fp16), mb.TensorSpec((2, 3), dtype=types.fp16)]
    program = mb.program(input_specs=specs, opset_version=ct.target.iOS18)(build)
    model = ct.convert(
        program,
        convert_to="mlprogram",
        minimum_deployment_target=ct.target.iOS18,
        compute_precision=ct.precision.FLOAT32,
    )
    package = tmp_path / "acc.mlpackage"
    model.save(str(package))
    compiled = write_compiled(package, tmp_path / "acc.mlmodelc")
    assert read_compiled(compiled).program == read_package(package).program
    text = (compiled / "model.mil").read_text()
    assert "state<tensor<fp16, [2, 3]>> acc" in text and "\n        write_state(data = " in text  # no outputs
    results = []
    for path in (package, compiled):
        loaded = PortableRuntime().load(path)
        assert [s.name for s in loaded.description.states] == ["acc"]
        state = loaded.make_state()
        x = np.arange(6, dtype=np.float16).reshape(2, 3)
        outputs = [next(iter(loaded.predict({"x": x}, state=state).outputs.values())) for _ in range(2)]
        results.append((outputs, state.read_state("acc")))
    for want, got in zip(results[0][0] + [results[0][1]], results[1][0] + [results[1][1]]):
        np.testing.assert_array_equal(got, want)
