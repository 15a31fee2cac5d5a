"""`mlx-audio-coreml info`: every section present, JSON readable, the stand-in never passed off as
Core ML."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlx_audio_coreml import native
from mlx_audio_coreml.cli import main
from mlx_audio_coreml.loading.diagnostics import collect

SECTIONS = ("platform:", "mlx:", "blas:", "cpu kernels:", "native:", "core ml:", "neural engine:", "core ml runtimes:")


def test_info_prints_every_section_and_every_runtime(capsys) -> None:
    assert main(["info"]) == 0
    text = capsys.readouterr().out
    for section in SECTIONS:
        assert f"\n{section}" in text
    for runtime in ("apple", "coremltools", "portable"):
        assert f"\n  {runtime} " in text


def test_info_json_carries_the_same_facts(capsys) -> None:
    assert main(["info", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["mlx_version"] and data["blas"]
    assert {row["name"] for row in data["runtimes"]} == {"apple", "coremltools", "portable"}
    assert data["coreml"] == collect().coreml


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux facts")
def test_info_on_linux_says_core_ml_is_unavailable() -> None:
    found = collect()
    assert found.coreml.startswith("unavailable")
    assert not next(row for row in found.runtimes if row.name == "apple").available


@pytest.mark.standin
def test_info_labels_the_standin_as_test_only(standin_path, monkeypatch) -> None:
    monkeypatch.setenv(native.ENV_LIBRARY, str(standin_path))
    found = collect()
    assert found.facts is not None and found.facts.is_standin
    assert "TEST-ONLY stand-in" in found.coreml and "proves nothing about Core ML" in found.coreml
    assert "[stand-in]" in found.neural_engine


def test_info_runs_as_the_console_command() -> None:
    command = Path(sys.executable).with_name("mlx-audio-coreml")
    if not command.exists():
        pytest.skip("console script not installed next to this interpreter")
    env = {k: v for k, v in os.environ.items() if k != native.ENV_LIBRARY}
    result = subprocess.run([str(command), "info"], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("mlx-audio-coreml ")
