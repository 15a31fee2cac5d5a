"""Beam search's host work on real weights and real speech (whisper/beam.py, host_cache.py,
top_tokens.py): the cache reordered in place and the block top-k give the segments that copying
every beam's cache rows and `np.argpartition` (the earlier way) give."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile
from decode_helpers import JFK, librivox_clips

from mlx_audio_coreml.whisper import beam, host_cache
from mlx_audio_coreml.whisper.host_cache import HostKV

pytestmark = pytest.mark.realweights


def _speech() -> np.ndarray:
    clips = [JFK, *(path for path, _ in librivox_clips()[:1])]
    return np.concatenate([soundfile.read(str(path), dtype="float32")[0] for path in clips])


def _segments(transcriber, audio):
    segments, _ = transcriber.transcribe(audio, beam_size=5, temperature=0.0, language="en")
    return [(s.start, s.end, s.text, tuple(s.tokens)) for s in segments]


def _partitioned_top_k(rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k tokens `np.argpartition` picks, best first (beam search reads the row max there)."""
    top = np.argpartition(-rows, k - 1, axis=-1)[:, :k]
    values = np.take_along_axis(rows, top, axis=-1)
    order = np.argsort(-values, axis=-1, kind="stable")
    return np.take_along_axis(top, order, axis=-1), np.take_along_axis(values, order, axis=-1)


def test_in_place_reorder_and_block_top_k_give_the_segments_of_copies_and_argpartition(tiny_en, monkeypatch):
    audio = _speech()
    rewrites = []
    gather = host_cache._gather_in_place
    monkeypatch.setattr(host_cache, "_gather_in_place", lambda *a: rewrites.append(1) or gather(*a))
    fast = _segments(tiny_en, audio)
    assert rewrites, "no beam moved a cache row in place: the path under test did not run"
    monkeypatch.setattr(HostKV, "moved", lambda self, rows: self[rows])  # a copy of every beam, as before
    monkeypatch.setattr(beam, "top_k", _partitioned_top_k)
    assert _segments(tiny_en, audio) == fast
