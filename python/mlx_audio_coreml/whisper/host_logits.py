"""One greedy step's logits on the CPU: a bfloat16 pass over the vocabulary, then float32 where it matters.

Why: the logits product reads the whole (V, D) embedding table per token and is the largest part of
a CPU decoder step (~10 ms of ~20-25 here). `bf16_kernel` reads half the bytes but is approximate.
Every row whose logit can decide anything is then recomputed exactly with float32 OpenBLAS gemv:

- all special and timestamp tokens (ids from 50256 on): logit filters force choices among them,
  so their order must be exact even when the model prefers text;
- every text token whose logit, within its error bound, can reach `BAND` nats below the best
  text token's lowest possible logit, so the text argmax is exact, and whatever the filters
  suppress, the best remaining token is exact too unless all of those tokens are suppressed;
- every text token when the rows left out would hold more than `TAIL_PROBABILITY` of the
  softmax (a flat distribution), so their error cannot move the log-softmax much.

Error bound: rounding to bfloat16 moves each weight by at most 2^-8 of its size (8 significant
bits), so logit r moves by at most 2^-8 |w_r| |x| (Cauchy-Schwarz); doubled here for the float32
sums' own rounding. So the chosen tokens are those of the float32 product; what is approximate is
the log-softmax normalizer, hence the summed log-probs: by at most TAIL_PROBABILITY times the
rows' error (measured here at most 0.1 nats, so 1e-3). Measured on jfk.wav and two LibriVox clips
(tiny.en, base): every argmax identical, the normalizer off by at most 1e-5 nats per step, a median
of 15-25 rows recomputed, and ~20% of steps recomputed in full.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import bf16_kernel, host_math

BAND = 8.0  # nats below the best text token that are recomputed exactly (see above)
TAIL_PROBABILITY = 1e-2  # the most probability the rows left approximate may hold
_FIRST_SPECIAL = 50256  # English-only EOT; multilingual specials start at 50257, one row later
_WHISPER_VOCAB = 51864  # the smallest Whisper vocabulary (English-only)


class Bf16Logits:
    """The embedding table (V, D) as bfloat16 for the approximate pass, with its float32 original."""

    def __init__(self, table: np.ndarray, kernel: Any) -> None:
        self.table = table
        self.half = bf16_kernel.to_bf16(table)
        self.kernel = kernel
        self.first_special = _FIRST_SPECIAL
        # 2 x 2^-8 |w_r|: times |x|, the most logit r can be off (see above)
        self.error_per_norm = (2.0 * 2.0**-8 * np.sqrt(np.einsum("vd,vd->v", table, table, dtype=np.float64))).astype(np.float32)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        logits = bf16_kernel.gemv(self.kernel, self.half, x)
        special = self.first_special
        if special < len(logits):  # contiguous rows: one exact product
            logits[special:] = host_math.matvec(self.table[special:], x)
        text = logits[:special]
        if len(text):
            error = self.error_per_norm[:special] * np.float32(np.linalg.norm(x))
            near = self._rows_to_correct(logits, text, error)
            if near is None:  # all of them: the contiguous rows in one product, no gathered copy
                text[:] = host_math.matvec(self.table[: len(text)], x)
            else:
                text[near] = host_math.matvec(self.table[near], x)  # (K, D) gathered rows
        return logits

    @staticmethod
    def _rows_to_correct(logits: np.ndarray, text: np.ndarray, error: np.ndarray) -> np.ndarray | None:
        """Text rows that can reach `BAND` nats below the best text token's lowest possible logit,
        or None (every text row) when the others would hold more than `TAIL_PROBABILITY` or
        the rows are so many that gathering them costs more than the whole product."""
        best = int(text.argmax())
        inside = text + error >= text[best] - error[best] - BAND
        probabilities = np.exp((logits - logits.max()).astype(np.float64))
        if probabilities[: len(text)][~inside].sum() > TAIL_PROBABILITY * probabilities.sum():
            return None  # a flat distribution: every row exact
        near = np.flatnonzero(inside)
        return near if len(near) < len(text) // 8 else None


def logits(owner: Any, weight: Any, table: np.ndarray, x: np.ndarray) -> np.ndarray:
    """table (V, D) @ x (D,), through a `Bf16Logits` kept on `owner` while `weight` is unchanged."""
    prepared = getattr(owner, "_host_logits", None)
    if prepared is None or prepared[0] is not weight:
        # Only Whisper's own vocabularies (51864 and up) have their special tokens from 50256 on;
        # with any other layout every row is computed exactly.
        kernel = bf16_kernel.load() if table.shape[0] >= _WHISPER_VOCAB else None
        prepared = (weight, Bf16Logits(table, kernel) if kernel is not None else None)
        object.__setattr__(owner, "_host_logits", prepared)  # not a parameter: kept off the module tree
    if prepared[1] is None:
        return host_math.matvec(table, x)
    return prepared[1](x)
