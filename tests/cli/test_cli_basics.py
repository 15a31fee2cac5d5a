"""The command line's own behaviour: its version, and one clear line when MLX cannot load."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mlx_audio_coreml import __version__
from mlx_audio_coreml.cli import main


def test_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"mlx-audio-coreml {__version__}"


def test_a_missing_mlx_backend_is_one_line_not_a_traceback(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "mlx.core", None)  # `import mlx.core` now fails as on a bare install
    assert main(["transcribe", str(tmp_path / "a.wav"), "--output-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: MLX cannot load") and "pip install" in err[0]
    assert not list(tmp_path.iterdir())


def test_building_the_cli_imports_neither_coremltools_nor_torch():
    # coremltools pulls in torch when it is installed: seconds at start-up and a slow interpreter exit
    # (hundreds of thousands of objects finalized) for commands that never convert anything.
    code = (
        "import sys; from mlx_audio_coreml.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('coremltools', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
