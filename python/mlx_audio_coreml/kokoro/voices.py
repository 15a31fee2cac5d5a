"""Kokoro voice packs (510, 1, 256), looked up and blended by name.

Sources: a folder of `<name>.npy` (what the installer writes), of `<name>.pt` (hexgrad's voices,
read without torch) or of single-tensor `<name>.safetensors` (mlx-community); or one `.npz` /
`voices-v1.0.bin` file with a pack per name (kokoro-onnx).

A pack holds one reference style per input length: `pack[n - 1]` styles an utterance of n phoneme
tokens (pads not counted); its first 128 values style the decoder, the other 128 the prosody.
A spec names one voice ("jf_alpha") or a blend: "a:0.7,b:0.3" mixes the packs with weights
normalized to sum to 1 (so "a:7,b:3" is the same blend); "a,b" is an equal mix, as hexgrad's
pipeline averages comma-separated voices; an entry without a weight counts 1.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors.kokoro import (
    InvalidVoiceSpec,
    KokoroInputError,
    KokoroWeightsError,
    UnknownVoice,
)

PACK_SHAPE = (510, 1, 256)  # one (1, 256) style per utterance length 1..510


class VoiceLibrary:
    """The voice packs of one folder or archive; packs are read on first use and kept."""

    def __init__(self, source: str | Path) -> None:
        self.source = Path(source)
        if self.source.is_dir():
            self._readers = _folder_readers(self.source)
        elif self.source.is_file():
            self._readers = _archive_readers(self.source)
        else:
            raise KokoroWeightsError(str(self.source), "no such voices folder or file")
        self._packs: dict[str, np.ndarray] = {}

    def names(self) -> list[str]:
        """The voices available, sorted."""
        return sorted(self._readers)

    def get(self, spec: str) -> np.ndarray:
        """The (510, 1, 256) float32 pack of a voice or a blend ("a:0.7,b:0.3", "a,b")."""
        parts = parse_spec(spec)
        for name, _ in parts:
            if name not in self._readers:
                raise UnknownVoice(name, self.names())
        total = sum(w for _, w in parts)
        blend = np.zeros(PACK_SHAPE, np.float32)
        for name, weight in parts:
            blend += self._pack(name) * np.float32(weight / total)
        return blend

    def style(self, spec: str, n_tokens: int) -> np.ndarray:
        """The (1, 256) reference style for an utterance of `n_tokens` phoneme tokens (pads not counted)."""
        return style_for(self.get(spec), n_tokens)

    def _pack(self, name: str) -> np.ndarray:
        if name not in self._packs:
            pack = np.asarray(self._readers[name]())
            if pack.shape != PACK_SHAPE or not np.all(np.isfinite(pack)):
                raise KokoroWeightsError(
                    f"{self.source}:{name}", f"a voice pack must be finite {PACK_SHAPE}, got {pack.shape}"
                )
            self._packs[name] = pack.astype(np.float32)
        return self._packs[name]


def _folder_readers(folder: Path) -> dict[str, Callable[[], np.ndarray]]:
    from .weights.pth import read_pth
    from .weights.safetensors_io import read_safetensors

    def single(path: Path) -> np.ndarray:
        tensors = read_safetensors(path)
        if len(tensors) != 1:
            raise KokoroWeightsError(str(path), f"a voice file holds one tensor, found {sorted(tensors)}")
        return next(iter(tensors.values()))

    kinds: dict[str, Callable[[Path], np.ndarray]] = {
        ".npy": lambda p: np.load(p, allow_pickle=False),
        ".pt": read_pth,
        ".safetensors": single,
    }
    readers: dict[str, Callable[[], np.ndarray]] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix in kinds:
            readers.setdefault(path.stem, lambda p=path, read=kinds[path.suffix]: read(p))
    return readers


def _archive_readers(path: Path) -> dict[str, Callable[[], np.ndarray]]:
    """An .npz (kokoro-onnx's voices-v1.0.bin is one): read whole once, it is small."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            packs = {name: archive[name] for name in archive.files}
    except (OSError, ValueError) as exc:
        raise KokoroWeightsError(str(path), f"not an .npz of voice packs ({exc})") from exc
    return {name: (lambda a=array: a) for name, array in packs.items()}


def style_for(pack: np.ndarray, n_tokens: int) -> np.ndarray:
    """pack[n_tokens - 1] as (1, 256): the style Kokoro was trained to use for that length."""
    if not 1 <= n_tokens <= pack.shape[0]:
        raise KokoroInputError("token count", f"1..{pack.shape[0]} phoneme tokens", str(n_tokens))
    return np.asarray(pack[n_tokens - 1], np.float32).reshape(1, -1)


def parse_spec(spec: str) -> list[tuple[str, float]]:
    """'a:0.7,b:0.3' -> [('a', 0.7), ('b', 0.3)]; repeated names add up; weights must be >= 0, sum > 0."""
    merged: dict[str, float] = {}
    for raw in spec.split(","):
        name, sep, weight_text = raw.strip().partition(":")
        name = name.strip()
        if not name:
            raise InvalidVoiceSpec(spec, "an empty voice name")
        try:
            weight = float(weight_text) if sep else 1.0
        except ValueError:
            raise InvalidVoiceSpec(spec, f"weight {weight_text.strip()!r} of {name!r} is not a number") from None
        if not np.isfinite(weight) or weight < 0:
            raise InvalidVoiceSpec(spec, f"weight of {name!r} must be a finite number >= 0")
        merged[name] = merged.get(name, 0.0) + weight
    if sum(merged.values()) <= 0:
        raise InvalidVoiceSpec(spec, "the weights sum to zero")
    return list(merged.items())
