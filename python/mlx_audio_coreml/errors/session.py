"""A loaded session that does not run what the caller demanded (`--backend coreml --strict`)."""

from __future__ import annotations

from ._base import MlxAudioCoreMLError


class CoreMLRequired(MlxAudioCoreMLError):
    """Core ML was demanded for `component` with strict checking, and `runs` runs it instead: `reason` says why."""

    def __init__(self, component: str, runs: str, reason: str) -> None:
        self.component = component
        self.runs = runs
        self.reason = reason
        super().__init__(f"Core ML was required for the {component} (--strict) but {runs} runs it: {reason}")
