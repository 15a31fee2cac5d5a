"""MLX streams are cleared at exit even when a second Ctrl-C cuts the first attempt short (a
stream left to C++ thread-local teardown can abort the exit: cpu/teardown.py)."""

from __future__ import annotations

import mlx.core as mx
import pytest

from mlx_audio_coreml.cpu import teardown


def test_streams_are_cleared_though_an_interrupt_cuts_the_first_attempt(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def synchronize() -> None:
        calls.append("synchronize")
        if calls.count("synchronize") == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(mx, "synchronize", synchronize)
    monkeypatch.setattr(mx, "clear_streams", lambda: calls.append("clear"), raising=False)
    teardown._clear_streams()
    assert calls == ["synchronize", "synchronize", "clear"]
