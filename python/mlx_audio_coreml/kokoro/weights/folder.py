"""One entry point for every Kokoro model folder: detect its format, load it strictly.

| format | files | config / vocabulary |
| --- | --- | --- |
| ours (installer) | model.safetensors, config.json, voices/*.npy | config.json |
| mlx-audio / mlx-community | one *.safetensors, config.json, voices/ | config.json |
| hexgrad Kokoro-82M | kokoro-v1_0.pth (any one *.pth), config.json, voices/*.pt | config.json |
| kokoro-onnx | kokoro-v1.0.onnx (or the int8 export), voices-v1.0.bin | config.json, else vocab.json; the rest rebuilt from shapes |
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...errors.kokoro import KokoroWeightsError, UnsupportedKokoroFormat
from ..voices import VoiceLibrary
from .canonical import canonical_shapes
from .formats import canonicalize, load_pth_state, load_safetensors_state
from .hexgrad_config import checked_config
from .onnx_state import load_onnx_state


@dataclass(frozen=True)
class KokoroWeights:
    """A loaded Kokoro model: hexgrad's config dict, the canonical state, the vocabulary and the voices' source."""

    config: dict[str, Any]
    state: dict[str, np.ndarray]
    vocab: dict[str, int]
    voices: Path | None  # a folder of packs or an .npz; None when the folder ships none
    format: str  # "safetensors", "pth" or "onnx"

    def voice_library(self) -> VoiceLibrary:
        if self.voices is None:
            raise KokoroWeightsError("(voices)", "this model folder has no voice packs")
        return VoiceLibrary(self.voices)


def load_kokoro_folder(path: str | Path) -> KokoroWeights:
    """Load whichever format `path` holds (table above); raises UnsupportedKokoroFormat if none."""
    folder = Path(path)
    if not folder.is_dir():
        raise KokoroWeightsError(str(folder), "not a folder")
    files = sorted(p.name for p in folder.iterdir())
    safetensors = sorted(folder.glob("*.safetensors"))
    pths = sorted(folder.glob("*.pth"))
    onnxs = sorted(folder.glob("*.onnx"))
    config_path = folder / "config.json"
    if config_path.is_file() and (len(safetensors) == 1 or (folder / "model.safetensors").is_file()):
        config = _read_json(config_path)
        source = folder / "model.safetensors" if (folder / "model.safetensors").is_file() else safetensors[0]
        return _weights(
            config, load_safetensors_state(source, canonical_shapes(config)), _voices(folder), "safetensors"
        )
    if config_path.is_file() and len(pths) == 1:
        config = _read_json(config_path)
        return _weights(config, load_pth_state(pths[0], canonical_shapes(config)), _voices(folder), "pth")
    if onnxs:
        return _from_onnx(folder, onnxs)
    raise UnsupportedKokoroFormat(str(folder), files)


def _from_onnx(folder: Path, onnxs: list[Path]) -> KokoroWeights:
    """kokoro-onnx: prefer the float graph; the config comes from config.json or is rebuilt around vocab.json."""
    graph = next((p for p in onnxs if p.name == "kokoro-v1.0.onnx"), onnxs[0])
    state = load_onnx_state(graph)
    if (folder / "config.json").is_file():
        config = _read_json(folder / "config.json")
        if set(config) == {"vocab"}:  # kokoro-onnx's own config.json holds only the vocabulary
            config = checked_config(state, config["vocab"])
        state = canonicalize(state, canonical_shapes(config), str(graph))
    elif (folder / "vocab.json").is_file():
        vocab = _read_json(folder / "vocab.json")
        config = checked_config(state, vocab.get("vocab", vocab))
    else:
        raise KokoroWeightsError(str(folder), "an ONNX graph without config.json or vocab.json: no vocabulary")
    return _weights(config, state, _voices(folder), "onnx")


def _weights(config: dict[str, Any], state: dict[str, np.ndarray], voices: Path | None, fmt: str) -> KokoroWeights:
    vocab = {str(k): int(v) for k, v in config.get("vocab", {}).items()}
    if not vocab:
        raise KokoroWeightsError("config.json", "no `vocab` (phoneme -> id) in the config")
    return KokoroWeights(config=config, state=state, vocab=vocab, voices=voices, format=fmt)


def _voices(folder: Path) -> Path | None:
    """voices/ when present, else kokoro-onnx's voices-v1.0.bin (or any voices*.npz / .bin)."""
    if (folder / "voices").is_dir():
        return folder / "voices"
    archives = sorted(folder.glob("voices*.bin")) + sorted(folder.glob("voices*.npz"))
    return archives[0] if archives else None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise KokoroWeightsError(str(path), f"unreadable JSON ({exc})") from exc
