"""Kokoro's decoder (hexgrad's istftnet `Decoder`), the seed's vocoder: VocoderFeatures -> 24 kHz audio.

The aligned text features, F0 and energy (both brought to the text frame rate by strided convs)
and the style go through one AdainResBlk1d (`encode`) and four more (`decode`; the last doubles the
frame rate), each re-fed the inputs until the upsampling one; the `Generator` turns the result
into audio. Channels last inside; `VocoderFeatures` arrive channels first, as hexgrad passes them.
`load_state` takes the canonical state's `decoder.*` keys (PyTorch layouts, weight norm folded).
"""

from __future__ import annotations

from collections.abc import Mapping

import mlx.core as mx
import numpy as np
from mlx import nn

from ...errors import KokoroStateMismatch, VocoderShapeConversionFailed
from ...vocoders import VocoderFeatures
from ..config import ISTFTNetConfig, KokoroConfig
from .adain import AdainResBlk1d
from .conv import Conv1d
from .generator import SAMPLE_RATE, Generator
from .state import load_canonical_state, parameter_shapes

PREFIX = "decoder."


class Decoder(nn.Module):
    """asr (B, dim_in, F), F0 and energy (B, 2F), style (B, style_dim) -> audio (B, F * 600)."""

    sample_rate = SAMPLE_RATE

    def __init__(
        self,
        dim_in: int = 512,
        style_dim: int = 128,
        istftnet: ISTFTNetConfig | None = None,  # Kokoro-82M's generator when None
        *,
        hidden: int = 1024,  # hexgrad's fixed width of encode/decode
        asr_res_dim: int = 64,  # hexgrad's fixed width of the asr residual re-fed to each decode block
    ) -> None:
        super().__init__()
        istftnet = istftnet or ISTFTNetConfig()
        self.dim_in = dim_in
        self.style_dim = style_dim
        refed = hidden + 2 + asr_res_dim  # x, asr_res, F0, N
        self.encode = AdainResBlk1d(dim_in + 2, hidden, style_dim)
        self.decode = [AdainResBlk1d(refed, hidden, style_dim) for _ in range(3)]
        self.decode.append(AdainResBlk1d(refed, istftnet.upsample_initial_channel, style_dim, upsample=True))
        self.F0_conv = nn.Conv1d(1, 1, 3, stride=2, padding=1)
        self.N_conv = nn.Conv1d(1, 1, 3, stride=2, padding=1)
        self.asr_res = [Conv1d(dim_in, asr_res_dim, 1)]  # an nn.Sequential in hexgrad: key asr_res.0.*
        self.generator = Generator(style_dim, istftnet)
        self.samples_per_frame = 2 * self.generator.upsample_scale  # two F0 frames per text frame

    @classmethod
    def from_config(cls, config: KokoroConfig) -> Decoder:
        return cls(config.hidden_dim, config.style_dim, config.istftnet)

    def __call__(self, features: VocoderFeatures, key: mx.array | None = None) -> mx.array:
        """features -> audio (B, F * samples_per_frame).

        The harmonic source adds hexgrad's Gaussian noise drawn with `key` (same key, same audio);
        with `key=None` it adds none, which is what the int8 ONNX export of Kokoro computes.
        """
        self._check(features)
        return self.forward(features.asr, features.f0, features.energy, features.style, key)

    def forward(self, asr: mx.array, f0: mx.array, energy: mx.array, style: mx.array, key: mx.array | None) -> mx.array:
        """hexgrad's Decoder.forward on plain arrays (asr channels first), without shape checks."""
        return self.generator(self.frames(asr, f0, energy, style), style, f0, key)

    def frames(self, asr: mx.array, f0: mx.array, energy: mx.array, style: mx.array) -> mx.array:
        """The encode/decode blocks: -> the generator's input (B, 2F, upsample_initial_channel), channels last."""
        f0_frames = self.F0_conv(f0[..., None])  # (B, F, 1)
        n_frames = self.N_conv(energy[..., None])
        asr = asr.transpose(0, 2, 1)  # (B, F, dim_in)
        x = self.encode(mx.concatenate([asr, f0_frames, n_frames], axis=-1), style)
        asr_res = self.asr_res[0](asr)
        refeed = True
        for block in self.decode:
            if refeed:
                x = mx.concatenate([x, asr_res, f0_frames, n_frames], axis=-1)
            x = block(x, style)
            refeed = refeed and not block.upsample  # after the upsampling block the rates differ
        return x

    def _check(self, features: VocoderFeatures) -> None:
        batch, channels, frames = features.asr.shape
        if channels != self.dim_in:
            raise VocoderShapeConversionFailed([batch, self.dim_in, frames], features.asr.shape, "asr channels")
        if features.style.shape[1] != self.style_dim:
            raise VocoderShapeConversionFailed([batch, self.style_dim], features.style.shape, "style width")

    def state_keys(self) -> list[str]:
        """The canonical keys this decoder loads (with the `decoder.` prefix)."""
        return sorted(PREFIX + name for name in parameter_shapes(self))

    def load_state(self, state: Mapping[str, np.ndarray]) -> None:
        """Load the `decoder.*` keys of a canonical state (other keys are ignored); strict over those.

        Raises KokoroStateMismatch naming every missing, unexpected and misshapen `decoder.*` key.
        """
        ours = {k[len(PREFIX) :]: v for k, v in state.items() if k.startswith(PREFIX)}
        try:
            load_canonical_state(self, ours)
        except KokoroStateMismatch as exc:
            raise KokoroStateMismatch(
                [PREFIX + k for k in exc.missing],
                [PREFIX + k for k in exc.unexpected],
                [PREFIX + e for e in exc.shape_errors],
            ) from None
