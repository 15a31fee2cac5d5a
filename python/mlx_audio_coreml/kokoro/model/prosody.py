"""Kokoro's prosody predictor (hexgrad's `ProsodyPredictor`): durations per token, then F0 and energy per frame.

Channels last throughout, style `s` is the prosody half of the reference style, `(B, style_dim)`.
- `DurationEncoder`: [BiLSTM, AdaLayerNorm] x n_layer over the projected ALBERT states, the
  style concatenated to the features before every LSTM (and to the output).
- `duration_logits`: one more BiLSTM and a linear layer to `max_dur` bins per token.
- `predict_f0_n` (hexgrad's `F0Ntrain`): the shared BiLSTM over the token states expanded to
  frames, then two stacks of AdainResBlk1d (the middle one doubles time) and a 1x1 projection:
  F0 and energy ("N") at twice the frame rate.
Inputs are unpadded (batch 1 or equal lengths): hexgrad's masks and packing change nothing then.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from .adain import AdainResBlk1d
from .lstm import BiLSTM

_LAYER_NORM_EPS = 1e-5


class AdaLayerNorm(nn.Module):
    """LayerNorm over channels without affine, then `(1 + gamma) * x + beta` from the style."""

    def __init__(self, style_dim: int, channels: int) -> None:
        super().__init__()
        self.fc = nn.Linear(style_dim, 2 * channels)

    def __call__(self, x: mx.array, s: mx.array) -> mx.array:
        gamma, beta = mx.split(self.fc(s)[:, None, :], 2, axis=-1)  # (B, 1, C) each
        return (1 + gamma) * mx.fast.layer_norm(x, None, None, _LAYER_NORM_EPS) + beta


def _with_style(x: mx.array, s: mx.array) -> mx.array:
    """Append the style to every frame: `(B, T, C)` -> `(B, T, C + style_dim)`."""
    styles = mx.broadcast_to(s[:, None, :], (x.shape[0], x.shape[1], s.shape[-1]))
    return mx.concatenate([x, styles], axis=-1)


class DurationEncoder(nn.Module):
    """`(B, T, d_model)`, style -> `(B, T, d_model + style_dim)`."""

    def __init__(self, sty_dim: int, d_model: int, nlayers: int) -> None:
        super().__init__()
        self.lstms: list[nn.Module] = []
        for _ in range(nlayers):
            self.lstms.append(BiLSTM(d_model + sty_dim, d_model // 2))
            self.lstms.append(AdaLayerNorm(sty_dim, d_model))

    def __call__(self, x: mx.array, s: mx.array) -> mx.array:
        x = _with_style(x, s)
        for lstm, norm in zip(self.lstms[0::2], self.lstms[1::2]):
            x = _with_style(norm(lstm(x), s), s)
        return x


class LinearNorm(nn.Module):
    """StyleTTS2's linear wrapper; kept so the key reads `duration_proj.linear_layer.weight`."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.linear_layer = nn.Linear(in_dim, out_dim)

    def __call__(self, x: mx.array) -> mx.array:
        return self.linear_layer(x)


def _adain_stack(d_hid: int, style_dim: int) -> list[AdainResBlk1d]:
    return [
        AdainResBlk1d(d_hid, d_hid, style_dim),
        AdainResBlk1d(d_hid, d_hid // 2, style_dim, upsample=True),
        AdainResBlk1d(d_hid // 2, d_hid // 2, style_dim),
    ]


class ProsodyPredictor(nn.Module):
    def __init__(self, style_dim: int, d_hid: int, nlayers: int, max_dur: int) -> None:
        super().__init__()
        self.text_encoder = DurationEncoder(sty_dim=style_dim, d_model=d_hid, nlayers=nlayers)
        self.lstm = BiLSTM(d_hid + style_dim, d_hid // 2)
        self.duration_proj = LinearNorm(d_hid, max_dur)
        self.shared = BiLSTM(d_hid + style_dim, d_hid // 2)
        self.F0 = _adain_stack(d_hid, style_dim)
        self.N = _adain_stack(d_hid, style_dim)
        self.F0_proj = nn.Conv1d(d_hid // 2, 1, 1)
        self.N_proj = nn.Conv1d(d_hid // 2, 1, 1)

    def duration_logits(self, d: mx.array) -> mx.array:
        """DurationEncoder output `(B, T, d_hid + style_dim)` -> `(B, T, max_dur)` logits."""
        return self.duration_proj(self.lstm(d))

    def predict_f0_n(self, en: mx.array, s: mx.array) -> tuple[mx.array, mx.array]:
        """Token states expanded to frames `(B, F, d_hid + style_dim)` -> F0 `(B, 2F)`, energy `(B, 2F)`."""
        x = self.shared(en)
        f0, n = x, x
        for block in self.F0:
            f0 = block(f0, s)
        for block in self.N:
            n = block(n, s)
        return self.F0_proj(f0)[..., 0], self.N_proj(n)[..., 0]
