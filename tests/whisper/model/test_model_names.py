"""Model names: short names -> repos, the local store, and what a missing model says."""

from __future__ import annotations

import pytest

from mlx_audio_coreml.errors import ModelNotFound
from mlx_audio_coreml.whisper import model_names as models


def test_short_names_map_to_mlx_community_repos():
    assert models.repo_for("tiny.en") == "mlx-community/whisper-tiny.en-mlx"
    assert models.repo_for("large-v3") == "mlx-community/whisper-large-v3-mlx"
    assert models.repo_for("turbo") == models.repo_for("large-v3-turbo") == "mlx-community/whisper-large-v3-turbo"
    assert models.repo_for("base", transformers=True) == "openai/whisper-base"
    assert models.repo_for("someone/custom-whisper") == "someone/custom-whisper"
    expected = {"tiny", "tiny.en", "base", "base.en", "small", "small.en", "medium", "medium.en",
                "large-v1", "large-v2", "large-v3", "large-v3-turbo", "turbo"}  # fmt: skip
    assert all(models.is_known(name) for name in expected)


def test_unknown_short_name_lists_the_known_ones():
    with pytest.raises(ModelNotFound) as raised:
        models.repo_for("huge")
    assert "tiny.en" in raised.value.hint


def test_local_store_follows_the_home_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("MLX_AUDIO_COREML_HOME", str(tmp_path))
    assert models.local_store() == tmp_path / "models"
    monkeypatch.delenv("MLX_AUDIO_COREML_HOME")
    assert models.local_store().parts[-3:] == (".cache", "mlx-audio-coreml", "models")


def test_a_local_folder_wins_then_the_store(tmp_path, monkeypatch):
    monkeypatch.setenv("MLX_AUDIO_COREML_HOME", str(tmp_path / "home"))
    folder = tmp_path / "my-model"
    folder.mkdir()
    assert models.resolve_local(folder) == folder
    stored = tmp_path / "home" / "models" / "large-v3-turbo"
    stored.mkdir(parents=True)
    assert models.resolve_local("turbo") == stored
    repo_named = tmp_path / "home" / "models" / "someone--custom"
    repo_named.mkdir()
    assert models.resolve_local("someone/custom") == repo_named


def test_a_missing_model_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("MLX_AUDIO_COREML_HOME", str(tmp_path))
    with pytest.raises(ModelNotFound) as raised:
        models.resolve_local("tiny.en")
    hint = raised.value.hint
    assert "scripts/fetch_models.sh tiny.en" in hint and str(tmp_path / "models") in hint
    assert "mlx-community/whisper-tiny.en-mlx" in hint and "local folder" in hint
    with pytest.raises(ModelNotFound) as raised:
        models.resolve_local("small")
    assert "fetch_models.sh" not in raised.value.hint and "mlx-community/whisper-small-mlx" in raised.value.hint
