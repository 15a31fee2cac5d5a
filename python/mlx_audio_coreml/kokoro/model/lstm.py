"""A one-layer bidirectional LSTM with PyTorch's parameters, names and gate order, for inference.

`mlx.nn.LSTM` runs one direction with one bias (`Wx`, `Wh`, `bias`); Kokoro's LSTMs are PyTorch
`nn.LSTM(batch_first=True, bidirectional=True)`, with two biases per direction and their weights
named `weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0` (and `*_reverse`). Both use the
gate order (i, f, g, o) along the 4H rows, so the weights need no reordering; this module keeps
PyTorch's names so a canonical state loads one to one.

Padding: hexgrad packs every LSTM input with `pack_padded_sequence` using the full length of each
row. With batch 1 (or rows of equal length: no padding) packing changes nothing, which is the only
case this module serves: the backward direction starts at the last frame of the array.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from . import host_conv, host_lstm, lstm_recurrence


class BiLSTM(nn.Module):
    """`(B, T, input_size) -> (B, T, 2 * hidden_size)`: forward states, then backward states."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        gates = 4 * hidden_size
        self.weight_ih_l0 = mx.zeros((gates, input_size))
        self.weight_hh_l0 = mx.zeros((gates, hidden_size))
        self.bias_ih_l0 = mx.zeros((gates,))
        self.bias_hh_l0 = mx.zeros((gates,))
        self.weight_ih_l0_reverse = mx.zeros((gates, input_size))
        self.weight_hh_l0_reverse = mx.zeros((gates, hidden_size))
        self.bias_ih_l0_reverse = mx.zeros((gates,))
        self.bias_hh_l0_reverse = mx.zeros((gates,))

    def __call__(self, x: mx.array) -> mx.array:
        if host_conv.applies(x.dtype):  # MLX on the CPU: numpy recurrence (host_lstm.py)
            return host_lstm.run(self, x)
        forward = mx.addmm(self.bias_ih_l0 + self.bias_hh_l0, x, self.weight_ih_l0.T)  # (B, T, 4H)
        backward = mx.addmm(self.bias_ih_l0_reverse + self.bias_hh_l0_reverse, x, self.weight_ih_l0_reverse.T)
        # Both directions advance together: row 0 reads frame t, row 1 reads frame T-1-t.
        gx = mx.stack([forward, backward[:, ::-1]])  # (2, B, T, 4H)
        w_hh = mx.stack([self.weight_hh_l0.T, self.weight_hh_l0_reverse.T])  # (2, H, 4H)
        hs = lstm_recurrence.run(gx, w_hh)  # (2, B, T, H): one CUDA kernel, or a compiled cell per step
        return mx.concatenate([hs[0], hs[1][:, ::-1]], axis=-1)
