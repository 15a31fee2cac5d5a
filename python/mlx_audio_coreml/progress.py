"""The seed's `WhisperProgress` events and the one function that hands them to a caller's handler.

Each Swift case is a small frozen dataclass under `WhisperProgress`, so handlers can `match` on
them:

    def on_progress(event: WhisperProgress) -> None:
        match event:
            case CompilingANE(elapsed_s=t): show_compiling(t)
            case CompilationFailed(error=e): show_fallback_notice(e)
            case CoreMLUnavailable(reason=r): log_fallback(r)
            case _: update_bar(event)

A handler that raises never breaks a load: `emit` logs the exception and carries on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)

__all__ = [
    "CompilationFailed",
    "CompilingANE",
    "CoreMLUnavailable",
    "DownloadFailed",
    "Downloading",
    "DownloadingCoreML",
    "Loading",
    "ProgressHandler",
    "WhisperProgress",
    "emit",
]


@dataclass(frozen=True)
class WhisperProgress:
    """Base of every loading event."""


@dataclass(frozen=True)
class Downloading(WhisperProgress):
    """Model weights download: `fraction` of all bytes, 0.0 to 1.0."""

    fraction: float


@dataclass(frozen=True)
class DownloadingCoreML(WhisperProgress):
    """Core ML package download: `fraction` of all bytes, 0.0 to 1.0."""

    fraction: float


@dataclass(frozen=True)
class CompilingANE(WhisperProgress):
    """Core ML compile + load + device specialization under way (minutes on first run).

    Sent when it starts (`elapsed_s` 0.0) and about once a second until it ends.
    """

    elapsed_s: float


@dataclass(frozen=True)
class Loading(WhisperProgress):
    """Weights going into memory: `fraction` done, 0.0 to 1.0 (sent at 0.0 and 1.0: the weight
    loader reports no steps in between)."""

    fraction: float


@dataclass(frozen=True)
class CoreMLUnavailable(WhisperProgress):
    """Core ML will not be used for a component; the session runs it on MLX instead."""

    reason: str


@dataclass(frozen=True)
class CompilationFailed(WhisperProgress):
    """The Core ML compile failed or timed out (`error` is ANECompilationTimeout then); MLX runs."""

    error: BaseException


@dataclass(frozen=True)
class DownloadFailed(WhisperProgress):
    """The Core ML package could not be downloaded (`error` is a DownloadError); MLX runs."""

    error: BaseException


ProgressHandler = Callable[[WhisperProgress], object]


def emit(handler: ProgressHandler | None, event: WhisperProgress) -> None:
    """Deliver `event` to `handler`. An exception from the handler is logged, never raised."""
    if handler is None:
        return
    try:
        handler(event)
    except Exception:  # a broken UI callback must not break the model load
        logger.exception("progress handler raised on %r; continuing", event)
