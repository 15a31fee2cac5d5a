"""Kokoro-82M weights: every format read into one canonical state (see KOKORO.md), and the installer."""

from __future__ import annotations

from .canonical import canonical_shapes, check_state

__all__ = ["canonical_shapes", "check_state"]
