"""load_kokoro_folder: format detection and the real weights through every format we read."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from mlx_audio_coreml.errors import UnsupportedKokoroFormat
from mlx_audio_coreml.kokoro.weights import load_kokoro_folder
from mlx_audio_coreml.kokoro.weights.safetensors_io import read_safetensors

NOT_WEIGHT_NORMED = ("noise_convs", "F0_proj", "N_proj")  # plain nn.Conv1d in hexgrad


def test_a_folder_without_weights_names_its_files(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("hello")
    with pytest.raises(UnsupportedKokoroFormat) as err:
        load_kokoro_folder(tmp_path)
    assert err.value.found == ["README.md"]


def test_installed_folder_loads_as_ours(kokoro_dir: Path) -> None:
    weights = load_kokoro_folder(kokoro_dir)
    assert weights.format == "safetensors"
    assert len(weights.state) == 457 and weights.vocab["ɑ"] == 69
    assert weights.voice_library().names()[0] == "jf_alpha"


def test_kokoro_onnx_style_folder_gives_the_installed_state(kokoro_dir: Path, tmp_path: Path) -> None:
    os.link(kokoro_dir / "kokoro-v1.0.int8.onnx", tmp_path / "kokoro-v1.0.int8.onnx")
    config = json.loads((kokoro_dir / "config.json").read_text(encoding="utf-8"))
    (tmp_path / "vocab.json").write_text(json.dumps({"vocab": config["vocab"]}), encoding="utf-8")
    packs = {p.stem: np.load(p) for p in (kokoro_dir / "voices").glob("*.npy")}
    with open(tmp_path / "voices-v1.0.bin", "wb") as f:
        np.savez(f, **packs)
    weights = load_kokoro_folder(tmp_path)
    assert weights.format == "onnx" and weights.config == config
    installed = read_safetensors(kokoro_dir / "model.safetensors")
    assert set(weights.state) == set(installed)
    assert all(np.array_equal(weights.state[k], installed[k]) for k in installed)
    np.testing.assert_array_equal(weights.voice_library().get("jm_kumo"), packs["jm_kumo"])


@pytest.mark.slow
def test_hexgrad_folder_written_by_torch_gives_the_same_state(kokoro_dir: Path, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    installed = read_safetensors(kokoro_dir / "model.safetensors")
    parts: dict[str, dict] = {}
    for key, value in installed.items():
        part, _, rest = key.partition(".")
        tensors = {rest: value}
        if value.ndim == 3 and not any(s in key for s in NOT_WEIGHT_NORMED) and rest.endswith(".weight"):
            g = np.linalg.norm(value.reshape(value.shape[0], -1), axis=1).reshape(-1, 1, 1)
            tensors = {rest[: -len("weight")] + "weight_g": g, rest[: -len("weight")] + "weight_v": value}
        for name, array in tensors.items():
            parts.setdefault(part, {})[f"module.{name}"] = torch.from_numpy(np.ascontiguousarray(array))
    torch.save(parts, tmp_path / "kokoro-v1_0.pth")
    (tmp_path / "config.json").write_text((kokoro_dir / "config.json").read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "voices").mkdir()
    torch.save(torch.from_numpy(np.load(kokoro_dir / "voices" / "jf_nezumi.npy")), tmp_path / "voices" / "jf_nezumi.pt")
    weights = load_kokoro_folder(tmp_path)
    assert weights.format == "pth" and set(weights.state) == set(installed)
    for key, value in installed.items():
        np.testing.assert_allclose(weights.state[key], value, rtol=1e-5, atol=1e-6, err_msg=key)
    np.testing.assert_array_equal(
        weights.voice_library().get("jf_nezumi"), np.load(kokoro_dir / "voices" / "jf_nezumi.npy")
    )


@pytest.mark.slow
def test_installer_rebuilds_the_same_folder_and_is_idempotent(kokoro_dir: Path, tmp_path: Path) -> None:
    from mlx_audio_coreml.kokoro.weights.install import install_from_onnx

    config = json.loads((kokoro_dir / "config.json").read_text(encoding="utf-8"))
    (tmp_path / "vocab.json").write_text(json.dumps({"vocab": config["vocab"]}), encoding="utf-8")
    np.savez(tmp_path / "voices.npz", **{p.stem: np.load(p) for p in (kokoro_dir / "voices").glob("*.npy")})
    dest = tmp_path / "models" / "kokoro"
    args = (kokoro_dir / "kokoro-v1.0.int8.onnx", tmp_path / "vocab.json", tmp_path / "voices.npz", dest)
    assert install_from_onnx(*args) is True
    assert install_from_onnx(*args) is False  # already there: left alone
    assert sorted(p.name for p in dest.parent.iterdir()) == ["kokoro"]  # no .partial / .old left behind
    assert json.loads((dest / "config.json").read_text(encoding="utf-8")) == config
    assert (dest / "model.safetensors").read_bytes() == (kokoro_dir / "model.safetensors").read_bytes()
    assert sorted(p.name for p in (dest / "voices").iterdir()) == sorted(
        p.name for p in (kokoro_dir / "voices").iterdir()
    )
