"""One function of a multi-function package on real Core ML: macOS on Apple silicon only (marker `mac`).

These run in .github/workflows/macos.yml and cannot run on Linux; nothing here has been run on a Mac
yet (the Swift side, MLModelConfiguration.functionName, is written blind). The package holds two
functions of different shapes and factors (y = 2x as [1, 3, 4], y = 3x as [1, 3, 8], the default),
so a load that dropped the function name would show it in the description and in the values. Before
macOS 15 a named function is refused (CoreMLRuntimeUnavailable), never silently the default.
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import numpy as np
import pytest

from mlx_audio_coreml.coreml.apple import AppleRuntime
from mlx_audio_coreml.coreml.coremltools_runtime import CoremltoolsRuntime
from mlx_audio_coreml.errors import CoreMLRuntimeUnavailable, UnknownFunction

pytestmark = [
    pytest.mark.mac,
    pytest.mark.skipif(
        sys.platform != "darwin" or platform.machine() != "arm64",
        reason="needs macOS on Apple silicon (runs in .github/workflows/macos.yml)",
    ),
]

LOAD_TIMEOUT_S = 300.0
FUNCTIONS = {"small": (4, 2.0), "large": (8, 3.0)}  # name -> (frames, factor)


def _macos() -> tuple[int, ...]:
    return tuple(int(p) for p in platform.mac_ver()[0].split(".") if p.isdigit())


def build_package(folder: Path) -> Path:
    """`folder/two.mlpackage`: the functions of FUNCTIONS, default 'large' (runs on Linux too: coremltools
    writes packages everywhere)."""
    ct = pytest.importorskip("coremltools")
    from coremltools.converters.mil import Builder as mb

    from mlx_audio_coreml.convert.package import save_multifunction

    def part(name: str, frames: int, factor: float) -> Path:
        @mb.program(input_specs=[mb.TensorSpec(shape=(1, 3, frames))], opset_version=ct.target.macOS15)
        def program(x):
            return mb.mul(x=x, y=np.float32(factor), name="y")

        model = ct.convert(program, convert_to="mlprogram", minimum_deployment_target=ct.target.macOS15)
        model.save(str(folder / f"{name}.mlpackage"))
        return folder / f"{name}.mlpackage"

    parts = {name: part(name, frames, factor) for name, (frames, factor) in FUNCTIONS.items()}
    save_multifunction(parts, "large", folder / "two.mlpackage", {"source": "tests/native"}, "two functions")
    return folder / "two.mlpackage"


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_package(tmp_path_factory.mktemp("functions"))


@pytest.mark.parametrize("runtime_class", [AppleRuntime, CoremltoolsRuntime])
@pytest.mark.parametrize("function", ["small", "large"])
def test_a_named_function_loads_and_predicts_as_that_function(package, tmp_path, runtime_class, function) -> None:
    runtime = AppleRuntime(cache_dir=tmp_path / "compiled") if runtime_class is AppleRuntime else runtime_class()
    if _macos() < (15,):
        with pytest.raises(CoreMLRuntimeUnavailable, match="macOS 15"):
            runtime.load(package, function=function, timeout_s=LOAD_TIMEOUT_S)
        return
    frames, factor = FUNCTIONS[function]
    model = runtime.load(package, function=function, timeout_s=LOAD_TIMEOUT_S)
    try:
        assert model.description.inputs[0].shape == (1, 3, frames)
        x = np.arange(3 * frames, dtype=np.float32).reshape(1, 3, frames)
        np.testing.assert_allclose(model.predict({"x": x}).outputs["y"], factor * x, rtol=1e-3)
    finally:
        model.close()


def test_a_function_the_package_lacks_names_the_functions_it_has(package, tmp_path) -> None:
    if _macos() < (15,):
        pytest.skip("function names are listed from macOS 15 on")
    with pytest.raises(UnknownFunction) as caught:
        AppleRuntime(cache_dir=tmp_path / "compiled").load(package, function="medium", timeout_s=LOAD_TIMEOUT_S)
    assert caught.value.function == "medium" and caught.value.available == ("small", "large")
