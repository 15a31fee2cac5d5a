"""Kokoro-82M's network on MLX; module names follow hexgrad/kokoro so weights map one to one.

Text side: `albert` (CustomAlbert), `text_encoder` (TextEncoder), `prosody` (ProsodyPredictor,
DurationEncoder, AdaLayerNorm), `lstm` (BiLSTM), `alignment` (durations to frames), `adain`
(AdaIN1d, AdainResBlk1d, shared with the decoder), `state` (strict canonical loading), and
`kokoro_model` (KokoroModel). Vocoder side: `decoder` and the modules it uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .kokoro_model import KokoroModel

__all__ = ["KokoroModel"]


def __getattr__(name: str) -> Any:
    # Lazy, so importing one block (the decoder imports `adain`) does not build the whole model's imports.
    if name == "KokoroModel":
        from .kokoro_model import KokoroModel

        return KokoroModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
