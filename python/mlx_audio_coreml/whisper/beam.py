"""Beam search over the text decoder, with the KV cache reordered as beams are chosen.

Rows are laid out audio-major: rows i*beam_size .. i*beam_size + beam_size - 1 belong to window i.
Each step the device returns the top `beam_size + 1` next tokens of every row; the host picks the
best continuations per window (one sync per step, a few dozen numbers), sets finished ones aside,
and gathers the cache rows of the surviving beams (on the CPU host decoder in place, copying only
the rows whose beam changed: `HostKV.moved`). A window is done once it holds
`round(beam_size * patience)` finished candidates; the loop stops when every window is done.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import mlx.core as mx
import numpy as np

from ..cpu import native_kernels
from ..cpu.host_math import log_normalizers
from .logit_filters import LogitFilter, apply_filters, apply_filters_np
from .sampling import host_step, pipelining_pays, step_team
from .top_tokens import top_k

Candidate = tuple[list[int], float]  # (sampled tokens without EOT, summed log-prob)


class BeamSearch:
    def __init__(self, beam_size: int, eot: int, patience: float | None = None) -> None:
        self.beam_size = beam_size
        self.eot = eot
        self.max_candidates = max(round(beam_size * (patience or 1.0)), 1)

    def run(
        self,
        decode_step: Any,
        logits: mx.array,
        cache: Any,
        tokens: mx.array,
        filters: Sequence[LogitFilter],
        *,
        n_audio: int,
        n_steps: int,
    ) -> list[list[Candidate]]:
        """Search from the prefix `tokens` (n_audio * beam_size, T0) whose next-token logits are `logits`.
        A window's rows start equal (`repeat_rows`): the first step extends its first row only.

        `decode_step(tokens, cache) -> (logits, cache)` also has `reorder(cache, rows)`, which keeps the
        cache of the surviving beams (`sampling.DecoderStep` does both for the text decoder).
        Returns, per window, its finished candidates (at least one, best first not guaranteed).
        """
        beam = self.beam_size
        sampled: list[list[int]] = [[] for _ in range(n_audio * beam)]
        scores = [0.0] * (n_audio * beam)
        finished: list[dict[tuple[int, ...], float]] = [{} for _ in range(n_audio)]
        on_host = not pipelining_pays()  # CPU: filters in numpy (same rules), ~2 ms a step less than as an MLX graph
        history: Any = np.array(tokens, dtype=np.int32) if on_host else tokens
        # on the host, the prefill's logits copied once: the filters write into the loop's own arrays
        current: Any = np.array(logits, dtype=np.float32) if on_host else logits
        with step_team(decode_step) if on_host else contextlib.nullcontext():  # one helper for the loop
            for step in range(n_steps):
                if on_host:
                    filtered = apply_filters_np(filters, current, history, step, in_place=True)
                else:
                    filtered = apply_filters(filters, current, history, step)
                top_ids, top_lps = self._top_candidates(filtered)
                sources: list[int] = []
                next_sampled: list[list[int]] = []
                next_scores: list[float] = []
                for i in range(n_audio):
                    for row, token, score in self._extend(
                        i, sampled, scores, top_ids, top_lps, finished[i], first=step == 0
                    ):
                        sources.append(row)
                        next_sampled.append(sampled[row] + [token])
                        next_scores.append(score)
                sampled, scores = next_sampled, next_scores
                if all(len(f) >= self.max_candidates for f in finished) or step + 1 == n_steps:
                    break
                rows = mx.array(sources, dtype=mx.int32)
                last = np.array([seq[-1] for seq in sampled], dtype=np.int32)[:, None]  # (B, 1)
                if step > 0:  # at first every source is a row equal to its window's others: nothing moves
                    cache = decode_step.reorder(cache, rows)
                if on_host:
                    history = np.concatenate([history[sources], last], axis=1)
                    current, cache = host_step(decode_step, mx.array(last), cache)
                else:
                    history = mx.concatenate([history[rows], mx.array(last)], axis=1)
                    current, cache = decode_step(mx.array(last), cache)
        return [self._finalize(i, finished[i], sampled, scores) for i in range(n_audio)]

    def _top_candidates(self, filtered: mx.array | np.ndarray) -> tuple[list[list[int]], list[list[float]]]:
        """Each row's `beam_size + 1` likeliest next tokens (best first, equal logits in id order) and
        their log-probs. Done on the host, in our C kernel (one call for the ids, values and each row's
        logsumexp) or numpy, not MLX: its CPU exp costs ~0.7 ms per row of a 51k vocabulary."""
        rows = np.asarray(filtered)  # (B, V)
        k = self.beam_size + 1
        fits = rows.ndim == 2 and rows.dtype == np.float32 and rows.strides[-1] == 4
        found = native_kernels.top_logprobs(rows, k) if fits and native_kernels.available() else None
        if found is None:  # no C kernels, or a row with NaN
            top, values = top_k(rows, k)  # (B, beam + 1); values[:, 0] is the row's max
            normalizers = log_normalizers(rows, maxima=values[:, 0])
        else:  # the same ids, values and normalizers (5 rows on the EPYC: 170 against 342 us)
            top, values, normalizers = found
        return top.tolist(), (values - normalizers[:, None]).tolist()

    def _extend(
        self,
        audio: int,
        sampled: list[list[int]],
        scores: list[float],
        top_ids: list[list[int]],
        top_lps: list[list[float]],
        finished: dict[tuple[int, ...], float],
        *,
        first: bool,
    ) -> list[tuple[int, int, float]]:
        """The `beam_size` best unfinished continuations (row, token, score) of one window's beams;
        finished ones (ending in EOT) go into `finished` until it holds `max_candidates`."""
        beam = self.beam_size
        rows = range(audio * beam, audio * beam + (1 if first else beam))  # at first all beams are equal
        candidates = [
            (scores[row] + lp, row, token)
            for row in rows
            for token, lp in zip(top_ids[row], top_lps[row])
            if lp > float("-inf")
        ]
        candidates.sort(key=lambda c: c[0], reverse=True)
        kept: list[tuple[int, int, float]] = []
        for score, row, token in candidates:
            if token == self.eot:
                if len(finished) < self.max_candidates:
                    finished.setdefault(tuple(sampled[row]), score)
            else:
                kept.append((row, token, score))
                if len(kept) == beam:
                    break
        while len(kept) < beam:  # too few live candidates (heavy filtering): repeat the best
            kept.append(kept[0] if kept else (audio * beam, self.eot, float("-inf")))
        return kept

    def _finalize(
        self,
        audio: int,
        finished: dict[tuple[int, ...], float],
        sampled: list[list[int]],
        scores: list[float],
    ) -> list[Candidate]:
        """Finished candidates, topped up with the best live beams when too few ended in EOT."""
        out = [(list(seq), score) for seq, score in finished.items()]
        if len(out) < self.beam_size:
            rows = range(audio * self.beam_size, (audio + 1) * self.beam_size)
            live = sorted(rows, key=lambda r: scores[r], reverse=True)
            for row in live:
                seq = [t for t in sampled[row] if t != self.eot]
                if scores[row] > float("-inf") and tuple(seq) not in finished:
                    out.append((seq, scores[row]))
                if len(out) >= self.beam_size:
                    break
        return out or [([], float("-inf"))]
