"""Constants and helpers shared by the loading tests (a uniquely named module: tests/ has no packages,
so `from conftest import ...` could pick up another folder's conftest)."""

from __future__ import annotations

from pathlib import Path

from mlx_audio_coreml.loading.devices import DeviceFacts
from speech_data import JFK  # noqa: F401
from speech_data import REPO as REPO_ROOT  # noqa: F401

REAL_STORE = Path.home() / ".cache" / "mlx-audio-coreml" / "models"

# The seed's model and its companion repo (whisper/model_names.py maps the short name to this repo).
TURBO = "large-v3-turbo"
TURBO_REPO = "mlx-community/whisper-large-v3-turbo"
TURBO_COREML_REPO = TURBO_REPO + "-coreml"
TINY_REPO = "mlx-community/whisper-tiny-mlx"

# The seed's devices. An M1 Mac has a Neural Engine; the A11 (iPhone X) counts as none.
M1_MAC = DeviceFacts(
    os_name="Darwin", os_version="14.5", chip="Apple M1", coreml_available=True, has_neural_engine=True
)
A11_IPHONE = DeviceFacts(
    os_name="iOS", os_version="16.7", chip="Apple A11 Bionic", coreml_available=True, has_neural_engine=False
)


def files_of(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` by its POSIX path relative to it."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def features(frames: int = 5):
    """Vocoder features: asr (1, 4, F) = 0..4F-1, f0 and energy (1, 2F), style (1, 3)."""
    import mlx.core as mx

    from mlx_audio_coreml.vocoders import VocoderFeatures

    return VocoderFeatures(
        asr=mx.arange(4 * frames, dtype=mx.float32).reshape(1, 4, frames),
        f0=mx.full((1, 2 * frames), 100.0),
        energy=-mx.ones((1, 2 * frames)),
        style=mx.array([[1.0, 2.0, 3.0]]),
    )
