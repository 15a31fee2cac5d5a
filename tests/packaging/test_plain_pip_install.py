"""A new user's first minutes: `pip install` of this checkout (a built wheel, no extras) into a
fresh venv, then the sample transcribed with the installed command.

Slow (a venv, the wheel build with the Swift shim when swiftc is around, the downloads from PyPI:
both tests 288 s on the shared 2-core machine at load average ~12-20); .ci/run runs it after the
default suite. The checkout is copied first (tracked and
untracked files git does not ignore) because the build writes the shim next to native.py.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from speech_data import JFK, JFK_TEXT, REPO, real_model_dir, text_similarity

pytestmark = pytest.mark.slow


def _copy_checkout(dest: Path) -> Path:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, check=True, capture_output=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args[:3]} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A fresh venv with `pip install <checkout copy>` done; (its bin folder, the environment to run it in)."""
    root = tmp_path_factory.mktemp("plain_pip")
    source = _copy_checkout(root / "src")
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True, timeout=300)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH", "MLX_AUDIO_COREML_ONEDNN"))
    }
    if Path("/opt/swift/usr/bin/swiftc").exists():  # as scripts/setup.sh: the shim is built when Swift is found
        env["PATH"] = f"/opt/swift/usr/bin:{env.get('PATH', '')}"
    bin_dir = root / "venv" / "bin"
    _run([str(bin_dir / "python"), "-m", "pip", "install", "-q", str(source)], root, env, timeout=1500)
    return bin_dir, env


def test_plain_install_is_a_wheel_without_torch(installed: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    bin_dir, env = installed
    probe = (
        "import importlib.util, mlx_audio_coreml; "
        "print(mlx_audio_coreml.__file__); print(importlib.util.find_spec('torch') is None)"
    )
    where, no_torch = _run([str(bin_dir / "python"), "-c", probe], tmp_path, env, timeout=120).stdout.split()
    assert "site-packages" in where, f"not installed as a wheel: {where}"
    assert no_torch == "True", "the default dependencies pulled torch"


def test_plain_install_transcribes_the_sample_on_the_fast_path(
    installed: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    if real_model_dir("tiny.en") is None:
        pytest.skip("real tiny.en weights not installed: bash scripts/fetch_models.sh tiny.en")
    bin_dir, env = installed
    info = _run([str(bin_dir / "mlx-audio-coreml"), "info"], tmp_path, env, timeout=300).stdout
    assert "mlx:            unavailable" not in info, info
    if shutil.which("cc") or shutil.which("gcc"):  # the wheel's build compiled our C kernels
        assert "our C kernels (libmacb_cpu" in info, info
    command = [str(bin_dir / "mlx-audio-coreml"), "transcribe", str(JFK), "--model", "tiny.en"]
    done = _run(command, tmp_path, env, timeout=600)
    assert text_similarity(JFK_TEXT, done.stdout) > 0.9, done.stdout
    kernels = [line for line in done.stderr.splitlines() if line.startswith("cpu kernels:")]
    assert len(kernels) == 1, done.stderr  # logged once, by the first transcription
    if sys.platform.startswith("linux") and platform.machine() == "x86_64":
        assert kernels[0].startswith("cpu kernels: oneDNN "), kernels[0]
