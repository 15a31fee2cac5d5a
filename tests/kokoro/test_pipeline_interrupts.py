"""A KeyboardInterrupt dropped while a chunk is spoken (as MLX's array constructor drops one raised
by a signal handler: cancel.py) stops the pipeline before the next chunk, and no audio of that
chunk is handed on."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import mlx.core as mx
import numpy as np
import pytest

from mlx_audio_coreml import cancel
from mlx_audio_coreml.kokoro.pipeline import KokoroPipeline
from mlx_audio_coreml.kokoro.text import TextChunk


@pytest.fixture(autouse=True)
def _forget_noted_signals() -> Iterator[None]:
    cancel.interrupt_handled()
    yield
    cancel.interrupt_handled()


class _Model:
    def features(self, token_ids: mx.array, ref_style: mx.array, speed: float = 1.0) -> tuple[object, mx.array]:
        return object(), mx.ones((token_ids.shape[1],), dtype=mx.int32)


class _Vocoder:
    """A short tone per chunk; the second chunk's call runs the handler and drops its exception."""

    def __init__(self) -> None:
        self.calls = 0

    def decode(self, features: object) -> mx.array:
        self.calls += 1
        if self.calls == 2:
            try:
                cancel.interrupt_handler(signal.SIGTERM, None)
            except KeyboardInterrupt:
                pass
        return mx.zeros((1, 240))


def test_an_interrupt_dropped_in_a_chunk_stops_before_the_chunk_is_handed_on() -> None:
    chunks = [TextChunk(f"word {i}.", "wɜːd", (1, 2, 3)) for i in range(4)]
    vocoder = _Vocoder()
    spoken = []
    pack = np.zeros((510, 1, 256), np.float32)
    with pytest.raises(KeyboardInterrupt, match="signal 15"):
        for piece in KokoroPipeline(_Model(), vocoder).run(chunks, pack, 1.0):
            spoken.append(piece.index)
    assert spoken == [0] and vocoder.calls == 2
