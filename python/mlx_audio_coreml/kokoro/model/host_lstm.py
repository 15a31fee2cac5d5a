"""Kokoro's bidirectional LSTMs on the CPU host path: one product for every timestep's input projection, then a
numpy loop over time for the recurrence.

Why: the MLX BiLSTM builds a graph of ~10 nodes per timestep and MLX's CPU sigmoid/tanh are scalar loops,
so the five LSTMs of a 100-token sentence (one of them over ~300 frames) took ~1.2 s under load here. Here
the input projections of both directions are one (T, in) x (in, 8H) oneDNN product; each step is two
numpy vector-matrix products (h (H,) against the (H, 4H) transposed recurrent weights: ~20 us each here,
where the preloaded OpenBLAS's threaded gemv waited on a busy second core for milliseconds) and a
handful of vectorized numpy passes over 2 x 4H gates, with sigmoid written as 0.5 tanh(x / 2) + 0.5 so one
tanh call covers all four gates of both directions.
Same equations and gate order (i, f, g, o) as lstm.py; batch rows run one after another.
"""

from __future__ import annotations

from typing import Any

import mlx.core as mx
import numpy as np

from ...cpu import onednn
from .host_conv import prepared


class HostBiLSTM:
    """A prepared BiLSTM: (T, in) -> (T, 2H), forward states then backward states."""

    def __init__(self, lstm: Any) -> None:
        hidden = self.hidden = lstm.hidden_size
        w_ih = [np.asarray(lstm.weight_ih_l0, np.float32), np.asarray(lstm.weight_ih_l0_reverse, np.float32)]
        self.w_ih = np.ascontiguousarray(np.concatenate(w_ih))  # (8H, in): forward gates, then backward
        biases = [lstm.bias_ih_l0 + lstm.bias_hh_l0, lstm.bias_ih_l0_reverse + lstm.bias_hh_l0_reverse]
        self.bias = np.concatenate([np.asarray(b, np.float32) for b in biases])  # (8H,)
        # (H, 4H) each: h @ w_hh.T as a row times a plain matrix
        self.w_hh_t = [
            np.ascontiguousarray(np.asarray(w, np.float32).T) for w in (lstm.weight_hh_l0, lstm.weight_hh_l0_reverse)
        ]
        # sigmoid(x) = 0.5 tanh(x / 2) + 0.5 for i, f, o; tanh itself for g: one tanh over all gates
        half = np.full(4 * hidden, 0.5, np.float32)
        half[2 * hidden : 3 * hidden] = 1.0
        self.pre = np.stack([half, half])  # (2, 4H): scale before tanh
        self.post = self.pre.copy()  # scale after tanh
        self.shift = np.stack([0.5 * (half == 0.5)] * 2).astype(np.float32)  # (2, 4H)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        steps, hidden = x.shape[0], self.hidden
        projected = np.empty((steps, 8 * hidden), np.float32)
        onednn.sgemm(np.ascontiguousarray(x), self.w_ih, projected, b_transposed=True)
        projected += self.bias
        forward, backward = projected[:, : 4 * hidden], projected[:, 4 * hidden :]
        out = np.empty((steps, 2 * hidden), np.float32)
        h = np.zeros((2, hidden), np.float32)
        c = np.zeros((2, hidden), np.float32)
        gates = np.empty((2, 4 * hidden), np.float32)
        for t in range(steps):  # both directions advance together: forward reads t, backward T-1-t
            back = steps - 1 - t
            np.dot(h[0], self.w_hh_t[0], out=gates[0])
            np.dot(h[1], self.w_hh_t[1], out=gates[1])
            gates[0] += forward[t]
            gates[1] += backward[back]
            gates *= self.pre
            np.tanh(gates, out=gates)
            gates *= self.post
            gates += self.shift
            i, f, g, o = (
                gates[:, :hidden],
                gates[:, hidden : 2 * hidden],
                gates[:, 2 * hidden : 3 * hidden],
                gates[:, 3 * hidden :],
            )
            c *= f
            c += i * g
            np.multiply(o, np.tanh(c), out=h)
            out[t, :hidden] = h[0]
            out[back, hidden:] = h[1]
        return out


def run(lstm: Any, x: mx.array) -> mx.array:
    """The BiLSTM through the host path: x (B, T, in) -> (B, T, 2H)."""
    host = prepared(lstm, HostBiLSTM, [lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.weight_hh_l0_reverse])
    mx.eval(x)
    return mx.array(np.stack([host(np.array(x[b], np.float32)) for b in range(x.shape[0])]))
