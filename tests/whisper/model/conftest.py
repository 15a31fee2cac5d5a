"""Fixtures for the Whisper model tests (audio, mel, network, weights formats, tokenizer, names)."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from model_helpers import real_model_dir

import mlx_audio_coreml  # noqa: F401  (OpenBLAS before mlx.core)


@pytest.fixture(scope="session")
def tiny_en_dir() -> Path:
    path = real_model_dir("tiny.en")
    if path is None:
        pytest.skip("real tiny.en weights not installed (scripts/fetch_models.sh tiny.en)")
    return path


@pytest.fixture(scope="session")
def base_dir() -> Path:
    path = real_model_dir("base")
    if path is None:
        pytest.skip("real base weights not installed (scripts/fetch_models.sh base)")
    return path


@pytest.fixture(scope="session")
def openai_whisper_assets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """whisper/assets/ of the openai-whisper sdist (MIT): mel_filters.npz and the .tiktoken files.

    Fetched from PyPI with pip; skips when PyPI cannot be reached. For `slow` tests only.
    """
    folder = tmp_path_factory.mktemp("openai-whisper-sdist")
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "-q",
        "--no-deps",
        "--no-binary",
        ":all:",
        "-d",
        str(folder),
        "openai-whisper",
    ]
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=180)
    except (subprocess.SubprocessError, OSError):
        pytest.skip("PyPI not reachable: cannot fetch the openai-whisper sdist")
    assets = folder / "assets"
    assets.mkdir()
    with tarfile.open(next(folder.glob("*.tar.gz"))) as archive:
        for member in archive.getmembers():
            if "/whisper/assets/" in member.name and member.isfile():
                data = archive.extractfile(member)
                assert data is not None
                (assets / Path(member.name).name).write_bytes(data.read())
    return assets
