"""The type checker and the linter as part of the test run (pyproject.toml configures both).

pyright must report no error on the whole package (the public API and the loading contract, listed
under [tool.pyright].strict, in strict mode; the rest in standard mode); ruff must find the tree
clean and formatted.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "python" / "mlx_audio_coreml"


def _tool(name: str) -> str | None:
    beside = Path(sys.executable).parent / name  # the test's own virtualenv first
    return str(beside) if beside.exists() else shutil.which(name)


def _run(args: list[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=timeout_s, check=False)


def test_pyright_reports_no_error_on_the_package() -> None:
    pyright = _tool("pyright")
    if pyright is None:
        pytest.skip("pyright is not installed (pip install -e '.[dev]')")
    if shutil.which("node") is None:  # without it the pyright wheel downloads Node.js, which CI cannot reach
        pytest.skip("pyright needs Node.js on PATH (Debian: apt-get install nodejs)")
    # every module: [tool.pyright].strict applies strict mode to its files whatever paths are given
    out = _run([pyright, "--outputjson", str(PACKAGE)], timeout_s=900)
    try:
        report = json.loads(out.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"pyright did not run (rc {out.returncode}): {out.stdout[-2000:]}{out.stderr[-2000:]}")
    errors = [
        f"{d['file']}:{d['range']['start']['line'] + 1}: {d['message']}"
        for d in report["generalDiagnostics"]
        if d["severity"] == "error"
    ]
    assert report["summary"]["filesAnalyzed"] > 200  # the package was found
    assert not errors, "\n".join(errors)


def _ruff() -> str:
    ruff = _tool("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    return ruff


def test_ruff_finds_no_lint_error() -> None:
    out = _run([_ruff(), "check", "--no-cache", "python", "tests", "bench"], timeout_s=300)
    assert out.returncode == 0, out.stdout[-4000:]


def test_ruff_format_leaves_the_tree_unchanged() -> None:
    out = _run([_ruff(), "format", "--check", "--no-cache", "python", "tests", "bench"], timeout_s=300)
    assert out.returncode == 0, out.stdout[-4000:]
