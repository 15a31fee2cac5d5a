"""`convert whisper --model <repo id>` downloads the model from the hub (a loopback stand-in for it)
and records the repo and the exact revision it converted."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import mlx.core as mx
import pytest
from convert_helpers import REPO

from mlx_audio_coreml.convert import ConversionStage, ConvertOptions, convert_whisper
from mlx_audio_coreml.errors import ModelNotFound
from mlx_audio_coreml.whisper.model_names import local_store

sys.path.insert(0, str(REPO / "tests" / "loading"))  # reuse LOADING's loopback hub
from loading_fakehub import FakeHub, FakeRepo  # noqa: E402

RANDOM_REPO = "someone/whisper-tiny-random"


@pytest.fixture(scope="module")
def random_model_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """A random 1+1-layer, 64-wide Whisper in MLX format, with tiny.en's tokenizer."""
    from mlx_audio_coreml.whisper.model import ModelDimensions, Whisper
    from mlx_audio_coreml.whisper.weights import mlx as mlx_format

    tokenizer = local_store() / "tiny.en" / "tokenizer.json"
    if not tokenizer.is_file():
        pytest.skip("tiny.en's tokenizer.json is not installed (scripts/fetch_models.sh)")
    mx.random.seed(1)
    dims = ModelDimensions(80, 1500, 64, 4, 1, 51864, 448, 64, 4, 1)
    model = Whisper(dims, mx.float32)
    folder = mlx_format.save(model, tmp_path_factory.mktemp("random-model") / "model")
    shutil.copy(tokenizer, folder / "tokenizer.json")
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture()
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with FakeHub() as fake:
        monkeypatch.setenv("HF_ENDPOINT", fake.url)
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
        monkeypatch.setenv("MLX_AUDIO_COREML_HOME", str(tmp_path / "home"))
        monkeypatch.setenv("HF_HUB_ETAG_TIMEOUT", "2")
        monkeypatch.delenv("HF_HUB_CACHE", raising=False)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        yield fake


def test_a_hub_model_is_downloaded_and_its_repo_and_revision_recorded(hub, random_model_files, tmp_path):
    repo = hub.add(FakeRepo(RANDOM_REPO, random_model_files))
    stages = []
    result = convert_whisper(
        RANDOM_REPO, tmp_path / "out", ConvertOptions(validate=False), lambda s, f: stages.append(s)
    )
    assert stages[0] == ConversionStage.DOWNLOADING
    assert result.metadata["mlx_audio_coreml.source_model"] == RANDOM_REPO
    assert result.metadata["mlx_audio_coreml.source_revision"] == repo.commit
    assert result.package == tmp_path / "out" / "whisper-tiny-random-encoder-default-float16.mlpackage"


def test_a_repo_missing_from_the_hub_fails_with_model_not_found_and_writes_nothing(hub, tmp_path):
    with pytest.raises(ModelNotFound):
        convert_whisper("someone/no-such-repo", tmp_path / "out", ConvertOptions(validate=False))
    assert not (tmp_path / "out").exists()
