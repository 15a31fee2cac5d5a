"""The release build on Linux: the same symbols as on macOS, reporting Core ML unavailable; a
static Swift runtime; no trap on bad arguments."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from mlx_audio_coreml import native
from mlx_audio_coreml.coreml.apple import AppleRuntime
from mlx_audio_coreml.errors import CoreMLRuntimeUnavailable, NativeError

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux build only")

EXPORTS = {
    "macb_abi_version",
    "macb_build_info",
    "macb_runtime_facts_get",
    "macb_load_begin",
    "macb_job_wait",
    "macb_job_state_get",
    "macb_job_cancel",
    "macb_job_take_model",
    "macb_job_free",
    "macb_model_feature_count",
    "macb_model_feature",
    "macb_model_metadata_count",
    "macb_model_metadata",
    "macb_model_info_get",
    "macb_predict",
    "macb_model_free",
    "macb_validate_tensors",
}


def test_linux_reports_coreml_unavailable(real_library) -> None:
    facts = real_library.runtime_facts()
    assert facts.coreml_available is False
    assert facts.backend == "none"
    assert facts.os_name == "Linux"
    assert "Core ML is not available on Linux" in facts.note


def test_load_returns_unavailable_status_with_message(real_library, tmp_path) -> None:
    package = tmp_path / "enc.mlpackage"
    package.mkdir()
    with pytest.raises(CoreMLRuntimeUnavailable) as caught:
        real_library.begin_load(package, tmp_path / "enc.mlmodelc")
    assert "Core ML is not available on Linux" in caught.value.reason
    cause = caught.value.__cause__
    assert isinstance(cause, NativeError)
    assert cause.status == native.abi.ERR_UNAVAILABLE
    assert cause.function == "macb_load_begin"


def test_raw_load_begin_writes_the_message_into_the_caller_buffer(real_library, tmp_path) -> None:
    ffi = native.ffi
    msg = ffi.new("char[]", 64)  # smaller than the message: it is cut and NUL-terminated
    params = ffi.new("macb_load_params *", {"struct_size": ffi.sizeof("macb_load_params")})
    path = ffi.new("char[]", str(tmp_path).encode())
    params.model_path = path
    job = ffi.new("macb_job **")
    status = real_library.raw.macb_load_begin(params, job, msg, 64)
    assert status == native.abi.ERR_UNAVAILABLE
    text = ffi.string(msg).decode()
    assert text.startswith("Core ML is not available") and len(text.encode()) == 63
    assert job[0] == ffi.NULL


def test_apple_runtime_is_unavailable_with_a_reason() -> None:
    found = AppleRuntime.availability()
    assert not found.available
    assert "Linux" in found.reason or "not built" in found.reason
    with pytest.raises(CoreMLRuntimeUnavailable):
        AppleRuntime().load("anything.mlpackage")


def test_bad_arguments_are_statuses_not_crashes(real_library) -> None:
    ffi = native.ffi
    raw = real_library.raw
    invalid = native.abi.CONSTANTS["MACB_ERR_INVALID_ARGUMENT"]
    assert raw.macb_runtime_facts_get(ffi.NULL, ffi.NULL, 0) == invalid
    small = ffi.new("macb_runtime_facts *", {"struct_size": 4})
    assert raw.macb_runtime_facts_get(small, ffi.NULL, 0) == invalid
    assert raw.macb_job_cancel(ffi.NULL) == invalid
    assert raw.macb_model_feature_count(ffi.NULL, 1, ffi.new("int32_t *")) == invalid
    raw.macb_job_free(ffi.NULL)
    raw.macb_model_free(ffi.NULL)


def test_release_library_exports_only_the_c_abi(real_library) -> None:
    if shutil.which("nm") is None:
        pytest.skip("nm not installed")
    listing = subprocess.run(
        ["nm", "-D", "--defined-only", str(real_library.path)], capture_output=True, text=True, check=True
    ).stdout
    functions = {line.split()[-1] for line in listing.splitlines() if " T " in line}
    assert functions == EXPORTS


def test_release_library_loads_without_a_swift_runtime_on_the_path(real_library) -> None:
    """-static-stdlib: no libswiftCore.so needed, so the wheel runs where Swift is not installed."""
    if shutil.which("ldd"):
        deps = subprocess.run(["ldd", str(real_library.path)], capture_output=True, text=True).stdout
        assert "swift" not in deps.lower() and "dispatch" not in deps.lower()
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    env["PATH"] = "/usr/bin:/bin"
    code = (
        "import cffi; f = cffi.FFI(); f.cdef('unsigned int macb_abi_version(void);');"
        f"print(f.dlopen({str(real_library.path)!r}).macb_abi_version())"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(native.ABI_VERSION)
