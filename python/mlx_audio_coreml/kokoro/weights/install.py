"""Install the Kokoro model folder from the int8 ONNX export: `python -m mlx_audio_coreml.kokoro.weights.install`.

Writes, atomically (a `.partial` folder renamed into place) and idempotently (an installed folder
is left alone unless --force):
  model.safetensors       the canonical state (PyTorch names, float32, dequantized from the graph)
  config.json             hexgrad's Kokoro-82M config, rebuilt from the shapes, with the vocabulary
  voices/<name>.npy       each voice pack, (510, 1, 256) float32
  kokoro-v1.0.int8.onnx   the graph itself (hard link when possible), the reference for tests
Used by scripts/fetch_models.sh; needs the `kokoro-convert` extra (onnx).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ...errors.kokoro import KokoroWeightsError
from .hexgrad_config import checked_config
from .onnx_state import load_onnx_state
from .safetensors_io import write_safetensors

ONNX_NAME = "kokoro-v1.0.int8.onnx"
VOICE_SHAPE = (510, 1, 256)


def install_from_onnx(onnx_path: Path, vocab_path: Path, voices_path: Path, dest: Path, force: bool = False) -> bool:
    """Build `dest`; returns False when it was already installed (and force is off)."""
    if (dest / "model.safetensors").is_file() and not force:
        return False
    staging = dest.with_name(dest.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    state = load_onnx_state(onnx_path)
    vocab = json.loads(Path(vocab_path).read_text(encoding="utf-8"))
    config = checked_config(state, vocab.get("vocab", vocab))
    write_safetensors(staging / "model.safetensors", state)
    (staging / "config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    _write_voices(voices_path, staging / "voices")
    _link_or_copy(onnx_path, staging / ONNX_NAME)
    old = dest.with_name(dest.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if dest.exists():
        dest.rename(old)
    staging.rename(dest)
    shutil.rmtree(old, ignore_errors=True)
    return True


def _write_voices(npz_path: Path, folder: Path) -> None:
    folder.mkdir()
    with np.load(npz_path) as packs:
        for name in packs.files:
            pack = np.asarray(packs[name], dtype=np.float32)
            if pack.shape != VOICE_SHAPE:
                raise KokoroWeightsError(
                    str(npz_path), f"voice {name!r} has shape {pack.shape}, expected {VOICE_SHAPE}"
                )
            np.save(folder / f"{name}.npy", pack)


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system
        shutil.copyfile(src, dst)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Install the Kokoro model folder from the int8 ONNX export.")
    parser.add_argument("onnx", type=Path, help="kokoro-v1.0.int8.onnx")
    parser.add_argument("vocab", type=Path, help="vocab.json (phoneme -> id, or {'vocab': {...}})")
    parser.add_argument("voices", type=Path, help="an .npz of voice packs (510, 1, 256)")
    parser.add_argument("dest", type=Path, help="the model folder to create")
    parser.add_argument("--force", action="store_true", help="rebuild an installed folder")
    args = parser.parse_args(argv)
    install_from_onnx(args.onnx, args.vocab, args.voices, args.dest, force=args.force)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
