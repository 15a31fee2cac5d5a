"""Importing mlx.core before the package leaves MLX on its bundled BLAS: the user is warned, not left to find out."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the BLAS preload is Linux-only")


def _imports(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)


def test_importing_mlx_first_warns_that_the_bundled_blas_is_used():
    out = _imports("import mlx.core; import mlx_audio_coreml")
    assert "RuntimeWarning" in out.stderr and "Import mlx_audio_coreml before mlx" in out.stderr


def test_importing_the_package_first_loads_a_blas_without_a_warning():
    out = _imports(
        "import mlx_audio_coreml; import mlx.core; from mlx_audio_coreml.cpu import blas; print(blas.blas_note)"
    )
    assert "RuntimeWarning" not in out.stderr
    assert "imported first" not in out.stdout
