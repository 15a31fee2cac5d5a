"""A tiny random Kokoro decoder and its converted packages, shared by the Kokoro converter and vocoder tests."""

from __future__ import annotations

from typing import Any

import mlx.core as mx

from mlx_audio_coreml.kokoro.config import ISTFTNetConfig
from mlx_audio_coreml.kokoro.model.decoder import Decoder

TINY = ISTFTNetConfig(
    upsample_rates=(2, 4),
    upsample_kernel_sizes=(4, 8),
    upsample_initial_channel=8,
    resblock_kernel_sizes=(3, 5),
    resblock_dilation_sizes=((1, 3), (1, 2)),
    gen_istft_n_fft=8,
    gen_istft_hop_size=2,
)
DIM_IN, STYLE = 6, 4
SAMPLES_PER_FRAME = 32  # 2 F0 frames x (2 x 4) x hop 2


def tiny_decoder() -> Decoder:
    mx.random.seed(0)
    model = Decoder(DIM_IN, STYLE, TINY, hidden=12, asr_res_dim=3)
    mx.eval(model.parameters())
    return model


def convert_tiny(decoder: Decoder, out: Any, precision: str, buckets: tuple[int, ...]) -> dict[int, Any]:
    from mlx_audio_coreml.convert.kokoro import KokoroConvertOptions, convert_decoder

    result = convert_decoder(decoder, "tiny", out, KokoroConvertOptions(precision=precision, buckets=buckets))
    return dict(result.packages)
