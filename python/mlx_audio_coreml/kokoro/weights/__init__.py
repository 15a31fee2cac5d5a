"""Kokoro-82M weights: every format read into one canonical state (see KOKORO.md), and the installer.

weights = load_kokoro_folder(path)     # KokoroWeights(config, state, vocab, voices, format)
"""

from __future__ import annotations

from .canonical import canonical_shapes, check_state
from .folder import KokoroWeights, load_kokoro_folder

__all__ = ["KokoroWeights", "canonical_shapes", "check_state", "load_kokoro_folder"]
