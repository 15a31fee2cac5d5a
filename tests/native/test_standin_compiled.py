"""An already compiled model (.mlmodelc, e.g. WhisperKit's AudioEncoder.mlmodelc) loads through the
shim without a compile and without a copy in the compiled cache.

Shown with the CoreML stand-in, which executes no model: these tests prove the shim's path
selection (no compileModel call, no compiled_path), nothing about Core ML itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlx_audio_coreml.coreml.apple import AppleRuntime, compiled_cache_path
from mlx_audio_coreml.coreml.runtime import LoadStage
from mlx_audio_coreml.errors import NativeError

pytestmark = pytest.mark.standin


def _compiled_model(tmp_path: Path) -> tuple[Path, Path]:
    """A stand-in `AudioEncoder.mlmodelc` and the file its Core ML calls are logged to."""
    folder = tmp_path / "openai_whisper-tiny" / "AudioEncoder.mlmodelc"
    folder.mkdir(parents=True)
    log = tmp_path / "calls.log"
    spec = {
        "inputs": [{"name": "melspectrogram_features", "dtype": "float16", "shape": [1, 80, 1, 3000]}],
        "outputs": [
            {"name": "encoder_output_embeds", "dtype": "float16", "shape": [1, 384, 1, 1500], "scale": 0.0, "bias": 1.0}
        ],
        "call_log": str(log),
    }
    (folder / "standin.json").write_text(json.dumps(spec))
    return folder, log


def test_a_compiled_model_loads_without_compiling(standin_path, tmp_path) -> None:
    folder, log = _compiled_model(tmp_path)
    runtime = AppleRuntime(library_path=standin_path, cache_dir=tmp_path / "compiled")
    stages: list[LoadStage] = []
    model = runtime.load(folder, on_stage=stages.append)
    assert stages == [LoadStage.QUEUED, LoadStage.LOADING, LoadStage.PREWARMING, LoadStage.READY]
    assert [line.split()[0] for line in log.read_text().splitlines()] == ["load", "predict"]
    assert model.used_compiled_cache
    assert [t.name for t in model.description.inputs] == ["melspectrogram_features"]
    assert compiled_cache_path(folder, runtime.cache_dir) is None
    assert not (tmp_path / "compiled").exists()  # nothing copied into the cache
    model.close()


def test_only_a_compiled_model_may_omit_the_compiled_path(standin, tmp_path) -> None:
    folder, log = _compiled_model(tmp_path)
    with standin.begin_load(folder, None) as job:
        assert job.wait(10)
        assert job.state().stage == LoadStage.READY
    package = tmp_path / "AudioEncoder.mlpackage"
    folder.rename(package)
    with pytest.raises(NativeError, match="compiled_path is required"):
        standin.begin_load(package, None)
