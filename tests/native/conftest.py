"""Fixtures for the shim's tests: the real library, the test-only stand-in, stand-in packages."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from native_support import STANDIN

import mlx_audio_coreml  # noqa: F401  (loads the BLAS before mlx.core, see cpu/blas.py)
from mlx_audio_coreml import native


@pytest.fixture(scope="session")
def real_library() -> native.NativeLibrary:
    """The release build installed next to native/ (skips when the package was built without Swift)."""
    status = native.library_status(native.default_library_path())
    if not status.loaded:
        pytest.skip(f"native library {status.state}: {status.path} ({status.detail})")
    return native.library(status.path)


@pytest.fixture(scope="session")
def standin_path() -> Path:
    """The test-only build against the CoreML stand-in, which executes no model."""
    if not STANDIN.exists():
        pytest.skip(f"stand-in not built: run `bash scripts/build_standin.sh` (needs swiftc) to create {STANDIN}")
    return STANDIN


@pytest.fixture(scope="session")
def standin(standin_path: Path) -> native.NativeLibrary:
    return native.library(standin_path)


@pytest.fixture()
def make_package(tmp_path: Path) -> Callable[..., Path]:
    """Writes a stand-in package `<name>.mlpackage/standin.json`; the call log goes to tmp_path."""

    def make(name: str = "model", **spec: Any) -> Path:
        package = tmp_path / f"{name}.mlpackage"
        package.mkdir(exist_ok=True)
        spec.setdefault("inputs", [{"name": "x", "dtype": "float32", "shape": [1, 4, 6]}])
        spec.setdefault(
            "outputs", [{"name": "y", "dtype": "float32", "shape": [1, 4, 6], "from": "x", "scale": 2.0, "bias": 1.0}]
        )
        spec.setdefault("call_log", str(tmp_path / f"{name}.calls.log"))
        (package / "standin.json").write_text(json.dumps(spec))
        return package

    return make
