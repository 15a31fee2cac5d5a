"""Fixtures shared by the Kokoro tests: the real installed model folder (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest
from onnx_reference import OnnxReference

from speech_data import KOKORO_MISSING, real_kokoro_dir


@pytest.fixture(scope="session")
def kokoro_dir() -> Path:
    """The folder scripts/fetch_models.sh kokoro installs; the test is skipped when it is absent."""
    path = real_kokoro_dir()
    if path is None:
        pytest.skip(KOKORO_MISSING)
    return path


@pytest.fixture(scope="session")
def onnx_reference(kokoro_dir: Path) -> OnnxReference:
    """onnxruntime on the real int8 graph (audio + predicted durations); built once per session (~6 s)."""
    return OnnxReference(kokoro_dir / "kokoro-v1.0.int8.onnx")
