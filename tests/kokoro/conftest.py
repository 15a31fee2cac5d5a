"""Fixtures shared by the Kokoro tests: the real installed model folder (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest
from speech_data import KOKORO_MISSING, real_kokoro_dir


@pytest.fixture(scope="session")
def kokoro_dir() -> Path:
    """The folder scripts/fetch_models.sh kokoro installs; the test is skipped when it is absent."""
    path = real_kokoro_dir()
    if path is None:
        pytest.skip(KOKORO_MISSING)
    return path
