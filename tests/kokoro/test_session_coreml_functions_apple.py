"""KokoroSession with a multi-function vocoder companion on the apple runtime, played by the shim's
test-only stand-in build (through the real C ABI).

The companion is one stand-in package whose functions frames_8 and frames_24 take the tiny model's
vocoder inputs at those buckets and answer a constant "audio" (1 and 2), so the audio tells which
function spoke a chunk. The stand-in executes no model and proves nothing about Core ML (nor about
MLModelConfiguration.functionName on a Mac): it shows that the session asks the shim for each
bucket's function by name, from one compile of the package.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from session_tiny import TINY_CONFIG, build_tiny_folder

from mlx_audio_coreml.kokoro.session import KokoroSession
from mlx_audio_coreml.options import BackendPreference, Component, ModelLoadingOptions

pytestmark = pytest.mark.standin
STANDIN = Path(__file__).resolve().parents[2] / "build" / "standin" / "libmacb_standin.so"
FACTORS = {8: 1.0, 24: 2.0}  # bucket -> the function's constant audio


def _function(frames: int, factor: float) -> dict[str, Any]:
    hidden, style = TINY_CONFIG["hidden_dim"], TINY_CONFIG["style_dim"]
    shapes = {"asr": [1, hidden, frames], "f0": [1, 2 * frames], "energy": [1, 2 * frames], "style": [1, style]}
    audio = {"name": "audio", "dtype": "float32", "shape": [1, 600 * frames], "scale": 0.0, "bias": factor}
    inputs = [{"name": n, "dtype": "float32", "shape": s} for n, s in shapes.items()]
    return {"name": f"frames_{frames}", "inputs": inputs, "outputs": [audio]}


def _companion(folder: Path) -> Path:
    package = folder / "AudioVocoder.mlpackage"
    package.mkdir(parents=True)
    spec = {
        "functions": [_function(frames, factor) for frames, factor in FACTORS.items()],
        "default_function": "frames_24",
        "metadata": {"mlx_audio_coreml.sample_rate": "24000"},
        "call_log": str(folder / "calls.log"),
    }
    (package / "standin.json").write_text(json.dumps(spec))
    functions = {str(b): f"frames_{b}" for b in FACTORS}
    vocoder = {"path": package.name, "functions": functions, "sample_rate": 24000}
    (folder / "manifest.json").write_text(json.dumps({"components": {"vocoder": vocoder}}))
    return folder


def test_each_bucket_loads_its_function_by_name_through_the_shim(tmp_path, monkeypatch) -> None:
    if not STANDIN.exists():
        pytest.skip(f"the shim's stand-in is not built ({STANDIN}); run: bash scripts/build_standin.sh")
    monkeypatch.setenv("MLX_AUDIO_COREML_NATIVE_LIB", str(STANDIN))
    monkeypatch.setenv("MLX_AUDIO_COREML_HOME", str(tmp_path / "home"))  # the compiled cache
    companion = _companion(tmp_path / "tiny-coreml")
    options = ModelLoadingOptions(
        backend_overrides={Component.VOCODER: BackendPreference.CORE_ML},
        coreml_runtime="apple",
        coreml_sources={Component.VOCODER: companion},
    )
    session = KokoroSession.from_pretrained(build_tiny_folder(tmp_path / "model"), options, g2p="espeak")
    info = session.info
    assert session.vocoder.backend == "coreML" and info.vocoder_runtime == "apple" and not info.did_fallback
    assert "vocoder buckets on Core ML (text frames): 8, 24; chunks over 24 frames on MLX" in info.notes
    log = (companion / "calls.log").read_text().splitlines()
    assert [line for line in log if line.startswith(("compile", "load"))][1:] == [
        "load 2 function=frames_8",
        "load 2 function=frames_24",
    ]
    assert sum(line.startswith("compile") for line in log) == 1  # one compile serves both functions
    for tokens, factor in ((3, 1.0), (7, 2.0)):  # 5 frames -> bucket 8; 9 frames -> bucket 24
        (piece,) = list(session.stream(phonemes="a" * tokens, voice="af_test"))
        np.testing.assert_array_equal(piece.audio, np.full((tokens + 2) * 600, factor, np.float32))
