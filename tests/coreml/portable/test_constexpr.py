"""Compressed models: each constexpr op decompresses to what coremltools' own decompression gives.

Packages come from coremltools.optimize.coreml (linear_quantize_weights, palettize_weights,
prune_weights) on an ML Program, for iOS16 (the first constexpr ops) and iOS18 (blockwise forms).
"""

from __future__ import annotations

import coremltools.optimize.coreml as cto
import numpy as np
import pytest
from portable_helpers import assert_close, ct, load, mb

rng = np.random.default_rng(2)
W = rng.standard_normal((64, 128)).astype(np.float32)  # above the 2048-element compression threshold
X = rng.standard_normal((3, 128)).astype(np.float32)


def _dense_model(opset):
    program = mb.program(input_specs=[mb.TensorSpec(shape=X.shape)], opset_version=opset)(
        lambda x: mb.linear(x=x, weight=W)
    )
    return ct.convert(
        program, convert_to="mlprogram", minimum_deployment_target=opset, compute_precision=ct.precision.FLOAT32
    )


def _ops_of(model) -> set[str]:
    main = model.get_spec().mlProgram.functions["main"]
    return {op.type for op in main.block_specializations[main.opset].operations}


def _run(tmp_path, model, name):
    path = tmp_path / f"{name}.mlpackage"
    model.save(str(path))
    return load(path).predict({"x": X}).outputs


CASES = {
    "affine_dequantize_ios16": (
        ct.target.iOS16,
        lambda: cto.OptimizationConfig(
            global_config=cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8")
        ),
        "constexpr_affine_dequantize",
    ),
    "lut_to_dense_ios16": (
        ct.target.iOS16,
        lambda: cto.OptimizationConfig(global_config=cto.OpPalettizerConfig(mode="uniform", nbits=4)),
        "constexpr_lut_to_dense",
    ),
    "sparse_to_dense_ios16": (
        ct.target.iOS16,
        lambda: cto.OptimizationConfig(global_config=cto.OpMagnitudePrunerConfig(target_sparsity=0.5)),
        "constexpr_sparse_to_dense",
    ),
    "blockwise_shift_scale_ios18": (
        ct.target.iOS18,
        lambda: cto.OptimizationConfig(
            global_config=cto.OpLinearQuantizerConfig(
                mode="linear", dtype="int4", granularity="per_block", block_size=16
            )
        ),
        "constexpr_blockwise_shift_scale",
    ),
    "lut_to_dense_ios18_grouped": (
        ct.target.iOS18,
        lambda: cto.OptimizationConfig(
            global_config=cto.OpPalettizerConfig(
                mode="uniform", nbits=3, granularity="per_grouped_channel", group_size=8
            )
        ),
        "constexpr_lut_to_dense",
    ),
    "sparse_to_dense_ios18": (
        ct.target.iOS18,
        lambda: cto.OptimizationConfig(global_config=cto.OpMagnitudePrunerConfig(target_sparsity=0.75)),
        "constexpr_sparse_to_dense",
    ),
}


def _compress(name, model, config):
    if name.startswith("affine") or name.startswith("blockwise"):
        return cto.linear_quantize_weights(model, config)
    if name.startswith("lut"):
        return cto.palettize_weights(model, config)
    return cto.prune_weights(model, config)


@pytest.mark.parametrize("name", sorted(CASES))
def test_constexpr_op_decompresses_like_coremltools(tmp_path, name):
    opset, config, op_type = CASES[name]
    compressed = _compress(name, _dense_model(opset), config())
    assert op_type in _ops_of(compressed), f"coremltools did not emit {op_type}: {_ops_of(compressed)}"
    got = _run(tmp_path, compressed, name)
    reference = _run(tmp_path, cto.decompress_weights(compressed), name + "_dense")
    for key in got:
        assert_close(got[key], reference[key])
    # and the compressed weight stays close to the original dense product
    dense = X @ W.T
    error = np.abs(got[next(iter(got))] - dense).max() / np.abs(dense).max()
    assert error < (0.9 if "sparse" in name else 0.25)


def test_joint_sparse_palettized_weights_decompress(tmp_path):
    """prune then palettize: constexpr_lut_to_sparse feeding constexpr_sparse_to_dense (iOS18)."""
    pruned = cto.prune_weights(
        _dense_model(ct.target.iOS18),
        cto.OptimizationConfig(global_config=cto.OpMagnitudePrunerConfig(target_sparsity=0.5)),
    )
    joint = cto.palettize_weights(
        pruned,
        cto.OptimizationConfig(global_config=cto.OpPalettizerConfig(mode="uniform", nbits=2)),
        joint_compression=True,
    )
    assert "constexpr_lut_to_sparse" in _ops_of(joint)
    got = _run(tmp_path, joint, "joint")
    reference = _run(tmp_path, cto.decompress_weights(joint), "joint_dense")
    for key in got:
        assert_close(got[key], reference[key])


def test_joint_sparse_quantized_weights_decompress(tmp_path):
    """prune then quantize: constexpr_sparse_blockwise_shift_scale feeding constexpr_sparse_to_dense."""
    pruned = cto.prune_weights(
        _dense_model(ct.target.iOS18),
        cto.OptimizationConfig(global_config=cto.OpMagnitudePrunerConfig(target_sparsity=0.5)),
    )
    joint = cto.linear_quantize_weights(
        pruned,
        cto.OptimizationConfig(global_config=cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8")),
        joint_compression=True,
    )
    assert "constexpr_sparse_blockwise_shift_scale" in _ops_of(joint)
    got = _run(tmp_path, joint, "joint_q")
    reference = _run(tmp_path, cto.decompress_weights(joint), "joint_q_dense")
    for key in got:
        assert_close(got[key], reference[key])
