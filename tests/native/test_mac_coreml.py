"""Real Core ML through the shim: macOS on Apple silicon only (marker `mac`).

These run in .github/workflows/macos.yml and cannot run on Linux; nothing here has been run on a
Mac yet. Tiny ML Programs (y = 2x + 1, with float32 or float16 inputs and outputs) are built with
coremltools' MIL builder, then compiled, loaded and run through AppleRuntime, and compared with
numpy and with coremltools' own MLModel.predict. GitHub's macOS runners are virtual machines, where
the shim treats the Neural Engine as absent.
"""

from __future__ import annotations

import platform
import sys

import numpy as np
import pytest

from mlx_audio_coreml import native
from mlx_audio_coreml.coreml.apple import AppleRuntime
from mlx_audio_coreml.coreml.runtime import ComputeUnits
from mlx_audio_coreml.errors import TensorShapeMismatch
from mlx_audio_coreml.native import TensorDescriptor

pytestmark = [
    pytest.mark.mac,
    pytest.mark.skipif(
        sys.platform != "darwin" or platform.machine() != "arm64",
        reason="needs macOS on Apple silicon (runs in .github/workflows/macos.yml)",
    ),
]

LOAD_TIMEOUT_S = 300.0  # a hang becomes ANECompilationTimeout instead of a stuck job
X = (np.arange(24, dtype=np.float32).reshape(1, 4, 6) - 12) / 8


def build_package(path, half: bool):
    ct = pytest.importorskip("coremltools")
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.mil import types

    scalar = np.float16 if half else np.float32

    @mb.program(
        input_specs=[mb.TensorSpec(shape=(1, 4, 6), dtype=types.fp16 if half else types.fp32)],
        opset_version=ct.target.macOS13,
    )
    def program(x):
        return mb.add(x=mb.mul(x=x, y=scalar(2.0)), y=scalar(1.0), name="y")

    model = ct.convert(
        program,
        convert_to="mlprogram",
        minimum_deployment_target=ct.target.macOS13,
        compute_precision=ct.precision.FLOAT16 if half else ct.precision.FLOAT32,
    )
    model.user_defined_metadata["source"] = "tests/native/test_mac_coreml.py"
    model.save(str(path))
    return path


@pytest.fixture(scope="module")
def packages(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mac")
    return {
        "float32": build_package(folder / "f32.mlpackage", False),
        "float16": build_package(folder / "f16.mlpackage", True),
    }


@pytest.fixture()
def runtime(tmp_path):
    if not AppleRuntime.availability().available:
        pytest.fail(f"the apple runtime should be available here: {AppleRuntime.availability().reason}")
    return AppleRuntime(cache_dir=tmp_path / "compiled")


def test_runtime_facts_describe_this_mac() -> None:
    facts = native.runtime_facts()
    assert facts.backend == "coreml" and facts.coreml_available
    assert facts.os_name == "macOS" and facts.os_version >= (13, 0, 0)
    assert facts.running_in_vm is not None
    if facts.running_in_vm:
        assert facts.neural_engine_available is False


@pytest.mark.parametrize("units", [ComputeUnits.CPU_ONLY, ComputeUnits.CPU_AND_GPU, ComputeUnits.ALL])
def test_a_float32_model_predicts_through_core_ml(runtime, packages, units) -> None:
    if units == ComputeUnits.ALL and native.runtime_facts().running_in_vm:
        pytest.skip("Neural Engine compiles hang on macOS virtual machines (APPLE.md)")
    model = runtime.load(packages["float32"], units, timeout_s=LOAD_TIMEOUT_S)
    result = model.predict({"x": X})
    np.testing.assert_allclose(result.outputs["y"], 2 * X + 1, rtol=1e-5)
    assert model.description.metadata["source"] == "tests/native/test_mac_coreml.py"
    model.close()


def test_a_float16_model_fills_float32_buffers(runtime, packages) -> None:
    model = runtime.load(packages["float16"], ComputeUnits.CPU_ONLY, timeout_s=LOAD_TIMEOUT_S)
    assert model.description.input("x").dtype == "float16"
    caller = np.zeros((1, 4, 6), np.float32)
    result = model.predict({"x": X}, {"y": caller})
    assert result.input_copies == {"x"}  # float32 in, float16 model: an explicit conversion copy
    np.testing.assert_allclose(caller, 2 * X + 1, atol=1e-2)
    model.close()


def test_outputs_of_the_model_dtype_are_written_in_place_or_copied_correctly(runtime, packages) -> None:
    """Whether Core ML uses the backing is its choice: either way the values must be right."""
    model = runtime.load(packages["float32"], ComputeUnits.CPU_ONLY, timeout_s=LOAD_TIMEOUT_S)
    caller = np.zeros((1, 4, 6), np.float32)
    result = model.predict({"x": X}, {"y": caller})
    print("written in place by Core ML:", sorted(result.written_in_place))
    np.testing.assert_allclose(caller, 2 * X + 1, rtol=1e-5)
    model.close()


def test_the_second_load_uses_the_compiled_cache(runtime, packages) -> None:
    runtime.load(packages["float32"], ComputeUnits.CPU_ONLY, timeout_s=LOAD_TIMEOUT_S).close()
    model = runtime.load(packages["float32"], ComputeUnits.CPU_ONLY, timeout_s=LOAD_TIMEOUT_S)
    assert model.used_compiled_cache
    model.close()


def test_a_refused_descriptor_writes_nothing(runtime, packages) -> None:
    model = runtime.load(packages["float32"], ComputeUnits.CPU_ONLY, timeout_s=LOAD_TIMEOUT_S)
    sentinel = np.full((1, 4, 6), 7.0, np.float32)
    bad = TensorDescriptor("x", "float32", (1, 4, 5), (20, 5, 1), X)
    with pytest.raises(TensorShapeMismatch):
        model._model.predict_descriptors([bad], [TensorDescriptor.of("y", sentinel, writable=True)])
    assert (sentinel == 7.0).all()
    model.close()


def test_results_match_coremltools(runtime, packages) -> None:
    ct = pytest.importorskip("coremltools")
    reference = ct.models.MLModel(str(packages["float32"]), compute_units=ct.ComputeUnit.CPU_ONLY)
    expected = reference.predict({"x": X})["y"]
    model = runtime.load(packages["float32"], ComputeUnits.CPU_ONLY, timeout_s=LOAD_TIMEOUT_S)
    np.testing.assert_allclose(model.predict({"x": X}).outputs["y"], expected, rtol=1e-6)
    model.close()
