"""The HTTP server: OpenAI's audio API (transcriptions, translations, speech, models, health) over
sessions loaded once and shared, built only on the sessions' public API.

    from mlx_audio_coreml.serve import ServeLimits, ServedModels, create_app
"""

from __future__ import annotations

from .app import create_app
from .limits import ServeLimits
from .registry import ServedModels

__all__ = ["ServeLimits", "ServedModels", "create_app"]
