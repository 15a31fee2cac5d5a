"""One function of a multi-function model, through the real C ABI of the shim built against the stand-in.

A stand-in package with `functions` declares per-function tensors (a vocoder's frame buckets: each
function takes another frame count and scales by another factor), so the loaded description and the
prediction both say which function Core ML's stand-in handed back. The stand-in executes no model and
proves nothing about Core ML: these tests show the shim's side (function_name read from the versioned
macb_load_params, MLModelAsset's function list checked before MLModelConfiguration.functionName is set,
MACB_ERR_NO_FUNCTION, one job per function, one compile per package) and Python's typed errors. What
cannot run here: Core ML's own functionName handling, and the macOS < 15 refusal (`#available` is
always true off Apple platforms).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from native_support import calls

from mlx_audio_coreml.coreml.apple import AppleRuntime
from mlx_audio_coreml.errors import NativeError, UnknownFunction
from mlx_audio_coreml.native import abi, ffi

pytestmark = pytest.mark.standin

FUNCTIONS = {"frames_4": (4, 1.0), "frames_8": (8, 2.0)}  # name -> (frames, output scale)


def _function(name: str, frames: int, scale: float) -> dict[str, Any]:
    x = {"name": "asr", "dtype": "float32", "shape": [1, 3, frames]}
    audio = {"name": "audio", "dtype": "float32", "shape": [1, 3, frames], "from": "asr", "scale": scale}
    return {"name": name, "inputs": [x], "outputs": [audio]}


def _multifunction(tmp_path: Path, name: str = "vocoder", **extra: Any) -> Path:
    """A stand-in multi-function package (default function frames_8) whose call log sits beside it."""
    package = tmp_path / f"{name}.mlpackage"
    package.mkdir()
    spec = {
        "functions": [_function(n, frames, scale) for n, (frames, scale) in FUNCTIONS.items()],
        "default_function": "frames_8",
        "call_log": str(tmp_path / f"{name}.calls.log"),
        **extra,
    }
    (package / "standin.json").write_text(json.dumps(spec))
    return package


@pytest.fixture()
def runtime(standin_path: Path, tmp_path: Path) -> AppleRuntime:
    return AppleRuntime(library_path=standin_path, cache_dir=tmp_path / "compiled")


@pytest.mark.parametrize("function", ["frames_4", "frames_8"])
def test_a_named_function_is_the_model_that_loads_and_predicts(runtime, tmp_path, function) -> None:
    package = _multifunction(tmp_path)
    frames, scale = FUNCTIONS[function]
    model = runtime.load(package, function=function)
    try:
        assert [(t.name, t.shape) for t in model.description.inputs] == [("asr", (1, 3, frames))]
        x = np.arange(3 * frames, dtype=np.float32).reshape(1, 3, frames)
        np.testing.assert_array_equal(model.predict({"asr": x}).outputs["audio"], scale * x)
    finally:
        model.close()
    assert calls(package)[:2] == [f"compile {package.resolve()}", f"load 2 function={function}"]


def test_no_function_name_loads_the_default_function(runtime, tmp_path) -> None:
    package = _multifunction(tmp_path)
    model = runtime.load(package)
    try:
        assert model.description.inputs[0].shape == (1, 3, 8)
    finally:
        model.close()
    assert calls(package)[1] == "load 2"  # no functionName was set


def test_every_function_loads_from_one_compile_of_the_package(runtime, tmp_path) -> None:
    package = _multifunction(tmp_path)
    models = [runtime.load(package, function=name) for name in FUNCTIONS]
    try:
        assert [m.description.inputs[0].shape[-1] for m in models] == [4, 8]
        assert [m.used_compiled_cache for m in models] == [False, True]
    finally:
        for model in models:
            model.close()
    assert [line.split()[0] for line in calls(package)].count("compile") == 1


def test_loads_of_two_functions_at_once_are_separate_jobs(runtime, tmp_path) -> None:
    package = _multifunction(tmp_path, load_delay_s=0.5)  # both jobs are running at the same time
    results: dict[str, Any] = {}

    def load(name: str) -> None:
        results[name] = runtime.load(package, function=name, timeout_s=30)

    threads = [threading.Thread(target=load, args=(name,)) for name in FUNCTIONS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert {n: m.description.inputs[0].shape[-1] for n, m in results.items()} == {"frames_4": 4, "frames_8": 8}
        assert not any(m.adopted for m in results.values())  # never adopted across functions
    finally:
        for model in results.values():
            model.close()


def test_a_function_the_package_lacks_is_a_typed_error_naming_the_functions_it_has(runtime, tmp_path) -> None:
    package = _multifunction(tmp_path)
    with pytest.raises(UnknownFunction) as caught:
        runtime.load(package, function="frames_5")
    error = caught.value
    assert error.function == "frames_5" and error.path == str(package)
    assert error.available is None  # a stand-in package is no .mlpackage Python can list
    assert "no function 'frames_5'" in error.detail and "frames_4, frames_8" in error.detail
    native = error.__cause__  # the shim's status, kept under the typed error
    assert isinstance(native, NativeError) and native.status == abi.ERR_NO_FUNCTION
    assert not any(line.startswith("load") for line in calls(package))  # refused before MLModel(contentsOf:)


def test_a_function_name_on_a_model_without_functions_is_refused(runtime, make_package) -> None:
    with pytest.raises(UnknownFunction, match="not a multi-function model"):
        runtime.load(make_package(), function="main")


def _raw_begin(standin, package: Path, compiled: Path, struct_size: int, function: bytes | None) -> tuple[int, str]:
    """macb_load_begin with a hand-made struct_size (an older caller's struct is smaller)."""
    keep = [ffi.new("char[]", str(package).encode()), ffi.new("char[]", str(compiled).encode())]
    keep.append(ffi.new("char[]", function) if function is not None else ffi.NULL)
    params = ffi.new("macb_load_params *", {"struct_size": struct_size, "model_path": keep[0],
                                            "compiled_path": keep[1], "compute_units": 2, "function_name": keep[2]})  # fmt: skip
    job, msg = ffi.new("macb_job **"), ffi.new("char[]", 512)
    status = standin.raw.macb_load_begin(params, job, msg, 512)
    if status == abi.OK:
        with ffi.gc(job[0], standin.raw.macb_job_free) as handle:
            status = standin.raw.macb_job_wait(handle, 20_000, msg, 512)
    return status, ffi.string(msg).decode()


def test_an_abi_1_sized_struct_loads_the_default_function_and_never_reads_function_name(standin, tmp_path) -> None:
    package = _multifunction(tmp_path)
    version_1 = ffi.offsetof("macb_load_params", "function_name")  # sizeof(macb_load_params) in ABI 1
    assert _raw_begin(standin, package, tmp_path / "c.mlmodelc", version_1, b"frames_5") == (abi.OK, "")
    assert calls(package)[1] == "load 2"  # the name past struct_size was ignored, not read
    status, message = _raw_begin(standin, package, tmp_path / "c.mlmodelc", version_1 - 8, None)
    assert status == abi.CONSTANTS["MACB_ERR_INVALID_ARGUMENT"] and "struct_size" in message


def test_an_empty_function_name_is_an_invalid_argument(standin, tmp_path) -> None:
    package = _multifunction(tmp_path)
    size = ffi.sizeof("macb_load_params")
    status, message = _raw_begin(standin, package, tmp_path / "c.mlmodelc", size, b"")
    assert status == abi.CONSTANTS["MACB_ERR_INVALID_ARGUMENT"] and "function_name" in message
