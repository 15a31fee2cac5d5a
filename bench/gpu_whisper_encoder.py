"""Encoder rows of gpu_whisper.py: ms per 30 s window at a batch, ours (eager and compiled) and the peer's.

Ours: the product's call `MLXAudioEncoder(model.encoder).encode(mel)`, eager as the product runs
it and under mx.compile; the peer: transformers' WhisperEncoder (sdpa, inference_mode).
"""

from __future__ import annotations

import argparse

from gpu_common import N_FRAMES, Result, check_finite, clock, median_ms, mlx_done, not_available
from mlx_audio_coreml.encoders import MLXAudioEncoder
from mlx_audio_coreml.whisper.model import ModelDimensions, Whisper

import mlx.core as mx  # isort: skip


def encoder_flops(d: ModelDimensions) -> float:
    """Per window: two convs, then per layer q/k/v/out 8 T w^2, MLP 16 T w^2, QK^T and AV 4 T^2 w."""
    t, w = d.n_audio_ctx, d.n_audio_state
    convs = 2 * (2 * t) * 3 * d.n_mels * w + 2 * t * 3 * w * w
    return convs + d.n_audio_layer * (24 * t * w * w + 4 * t * t * w)


def our_encoder(
    model: Whisper, d: ModelDimensions, batch: int, args: argparse.Namespace, path: str
) -> tuple[Result, Result]:
    """(eager, compiled) ms per window of the product's encoder call."""
    encoder = MLXAudioEncoder(model.encoder, d.n_mels)
    mel = mx.random.normal((batch, d.n_mels, N_FRAMES))  # float32, as log_mel_spectrogram gives
    out = encoder.encode(mel)
    check_finite(
        bool(mx.all(mx.isfinite(out)).item()) and out.shape == (batch, d.n_audio_ctx, d.n_audio_state), "our encoder"
    )
    eager = median_ms(lambda: clock(lambda: encoder.encode(mel), mlx_done), args.warmup, args.repeats) / batch
    if path != "pure MLX ops":
        return eager, "n/a: the host-math path evaluates mid-graph"
    try:
        compiled_encode = mx.compile(encoder.encode)
        check_finite(bool(mx.all(mx.isfinite(compiled_encode(mel))).item()), "our compiled encoder")
        return eager, median_ms(
            lambda: clock(lambda: compiled_encode(mel), mlx_done), args.warmup, args.repeats
        ) / batch
    except Exception as exc:  # report, keep measuring the rest
        return eager, not_available(exc)


def peer_encoder(peer: tuple, d: ModelDimensions, batch: int, args: argparse.Namespace) -> Result:
    torch, model, device = peer
    done = (lambda _: torch.cuda.synchronize()) if device == "cuda" else (lambda _: None)
    mel = torch.randn(batch, d.n_mels, N_FRAMES, device=device, dtype=model.dtype)
    encoder = model.model.encoder
    with torch.inference_mode():
        check_finite(bool(torch.isfinite(encoder(input_features=mel).last_hidden_state).all()), "transformers encoder")
        return median_ms(lambda: clock(lambda: encoder(input_features=mel), done), args.warmup, args.repeats) / batch
