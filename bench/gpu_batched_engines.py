"""The two pipelines gpu_batched.py times: ours (MLX) and transformers' batched recipe.

Each run turns `chunks` x 30 s of audio into `tokens` tokens per chunk, batch by batch, and
returns its wall time. With a `Parts` given, the run waits for the device after each phase and
adds the phase's time to it (mel, encoder, prefill, decode): the breakdown of gpu_batched.py.

Ours (`Plan`): the log-mel per chunk as `whisper/batched.py` computes it (lazy, stacked per batch;
"clip": the whole recording's mel first, as run 1 of this bench did), the encoder through
`Whisper.embed_audio` (on CUDA: `gpu_encoder`'s compiled layout, model.py's hook), the prefill,
then the product's greedy token loop (`gpu_loop.decode_tokens`: on a GPU the device loop) with a
`static_step.StepLayout`. `overlap`: "queue" builds and queues the next batch's mel and encoder
before this batch's decode (one stream: no idle gap between batches); "stream" runs them on a
second GPU stream, so the encoder's large products can run beside the decoder's small kernels.
"""

from __future__ import annotations

import contextlib
import time
import wave
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import gpu_common as gc
from mlx_audio_coreml.whisper import gpu_loop
from mlx_audio_coreml.whisper.gpu_step import StaticDecoderStep
from mlx_audio_coreml.whisper.mel import log_mel_spectrogram
from mlx_audio_coreml.whisper.model import ModelDimensions, Whisper
from mlx_audio_coreml.whisper.sampling import pipelining_pays
from mlx_audio_coreml.whisper.static_step import LAYOUT, StepLayout

import mlx.core as mx  # isort: skip
import numpy as np  # isort: skip

SAMPLE_RATE, CHUNK_S = 16000, 30
CHUNK_SAMPLES = SAMPLE_RATE * CHUNK_S
JFK = Path(__file__).resolve().parents[1] / "samples" / "jfk.wav"


def long_audio(chunks: int) -> np.ndarray:
    """Real speech (jfk.wav) repeated to exactly `chunks` x 30 s, float32 16 kHz (read with `wave`:
    the product's reader needs soundfile, which the GPU machine may lack)."""
    with wave.open(str(JFK)) as wav:  # 16 kHz mono int16
        if (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) != (SAMPLE_RATE, 1, 2):
            raise RuntimeError(f"{JFK} is not 16 kHz mono 16-bit")
        clip = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16).astype(np.float32) / 32768.0
    total = chunks * CHUNK_SAMPLES
    return np.tile(clip, total // len(clip) + 1)[:total].astype(np.float32)


@dataclass
class Parts:
    """Seconds per phase, summed over batches (each phase waited for)."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    last: float = field(default_factory=time.perf_counter)

    def mark(self, phase: str, *arrays: object) -> None:
        """Wait for `arrays` and the device, and book the time since the last mark to `phase`."""
        mx.eval(*arrays) if arrays else None
        mx.synchronize()
        now = time.perf_counter()
        self.seconds[phase] += now - self.last
        self.last = now


@dataclass(frozen=True)
class Plan:
    """One way of running our pipeline (see the module docstring)."""

    batch: int
    layout: StepLayout = LAYOUT
    mel: Literal["chunks", "clip"] = "chunks"
    overlap: Literal["none", "queue", "stream"] = "none"
    module_encoder: bool = False  # the encoder module's own path instead of gpu_encoder's layout


_SIDE: list[mx.Stream] = []  # one second GPU stream for the process (made on first use)


def side_stream() -> mx.Stream:
    if not _SIDE:
        _SIDE.append(mx.new_stream(mx.gpu))
    return _SIDE[0]


def _chunk_mels(samples: mx.array, first: int, count: int, n_mels: int) -> mx.array:
    """(count, 3000, n_mels): each chunk's log-mel as batched.py makes it (padded by 30 s, cut to 3000 frames)."""
    mels = [
        log_mel_spectrogram(
            samples[(first + i) * CHUNK_SAMPLES : (first + i + 1) * CHUNK_SAMPLES], n_mels, CHUNK_SAMPLES
        )
        for i in range(count)
    ]
    return mx.stack([m[:, : gc.N_FRAMES] for m in mels]).transpose(0, 2, 1)


def _clip_mels(audio: np.ndarray, chunks: int, n_mels: int) -> mx.array:
    """(chunks, 3000, n_mels) from the whole recording's log-mel (run 1's way; evaluated: it syncs per 60 s)."""
    mel = log_mel_spectrogram(audio, n_mels=n_mels)
    windows = mel[:, : chunks * gc.N_FRAMES].reshape(n_mels, chunks, gc.N_FRAMES).transpose(1, 2, 0)
    mx.eval(windows)
    return windows


def ours(
    model: Whisper, d: ModelDimensions, audio: np.ndarray, chunks: int, tokens: int, plan: Plan, parts: Parts | None
) -> float:
    """Seconds for every chunk through our pipeline; `parts` (if given) gets the phases."""
    from mlx_audio_coreml.whisper import gpu_encoder

    prompt, b = gc.prompt_tokens(d), plan.batch
    filters = gc.product_filters(d, len(prompt))
    side = side_stream() if plan.overlap == "stream" else None
    start = time.perf_counter()
    if parts is not None:
        parts.last = start
    samples = mx.array(audio) if plan.mel == "chunks" else None
    clip = _clip_mels(audio, chunks, d.n_mels) if plan.mel == "clip" else None

    def encode(first: int) -> mx.array:
        count = min(b, chunks - first)
        with mx.stream(side) if side is not None else contextlib.nullcontext():
            mel = clip[first : first + count] if clip is not None else _chunk_mels(samples, first, count, d.n_mels)
            if parts is not None:
                parts.mark("mel", mel)
            with gpu_encoder.disabled() if plan.module_encoder else contextlib.nullcontext():
                features = model.embed_audio(mel)
            mx.async_eval(features)
        if parts is not None:
            parts.mark("encoder", features)
        return features

    made = 0
    features = encode(0)
    for first in range(0, chunks, b):
        later = first + b < chunks
        upcoming = encode(first + b) if later and plan.overlap != "none" else None
        prefix = mx.array(np.tile(np.array(prompt, dtype=np.int32), (features.shape[0], 1)))
        logits, cache, _ = model.decoder(prefix, features)
        step = StaticDecoderStep(model, features)
        if pipelining_pays() and gpu_loop.applies(step, filters, 0.0, d.n_vocab) is None:
            raise RuntimeError("the device loop does not apply: the row would time the host loop")
        if parts is not None:
            parts.mark("prefill", logits, cache)
        out, _ = gpu_loop.decode_tokens(
            step, logits[:, -1, :], cache, prefix, filters, temperature=0.0, eot=-1, n_steps=tokens, layout=plan.layout
        )
        if parts is not None:
            parts.mark("decode")
        made += out.shape[0] * (out.shape[1] - len(prompt))
        features = upcoming if upcoming is not None else (encode(first + b) if later else features)
    mx.synchronize()
    if made != chunks * tokens:
        raise RuntimeError(f"ours made {made} tokens, expected {chunks * tokens}")
    return time.perf_counter() - start


def peer(bundle: tuple, d: ModelDimensions, audio: np.ndarray, chunks: int, tokens: int, batch: int,
         parts: Parts | None) -> float:  # fmt: skip
    """The same for transformers: WhisperFeatureExtractor (CPU), then generate() `batch` chunks at a
    time. With `parts`: the encoder runs apart and generate() takes its output (the split)."""
    torch, model, device = bundle
    from transformers import GenerationMixin, WhisperFeatureExtractor
    from transformers.modeling_outputs import BaseModelOutput

    def sync() -> None:
        torch.cuda.synchronize() if device == "cuda" else None

    def mark(phase: str) -> None:
        if parts is not None:
            sync()
            now = time.perf_counter()
            parts.seconds[phase] += now - parts.last
            parts.last = now

    extractor = WhisperFeatureExtractor(feature_size=d.n_mels)
    pieces = audio.reshape(chunks, CHUNK_SAMPLES)
    prefix = torch.tensor([gc.prompt_tokens(d)], device=device)
    start = time.perf_counter()
    if parts is not None:
        parts.last = start
    feats = extractor(list(pieces), sampling_rate=SAMPLE_RATE, return_tensors="pt").input_features
    mark("mel")
    made = 0
    with torch.inference_mode():
        for first in range(0, chunks, batch):
            rows = feats[first : first + batch].to(device, dtype=model.dtype)
            given: dict = {"input_features": rows}
            if parts is not None:
                mark("mel")  # the copy to the device
                given = {"encoder_outputs": BaseModelOutput(last_hidden_state=model.model.encoder(rows)[0])}
                mark("encoder")
            out = GenerationMixin.generate(
                model, **given, decoder_input_ids=prefix.repeat(rows.shape[0], 1),
                max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False, num_beams=1,
            )  # fmt: skip
            mark("decode")
            made += out.shape[0] * (out.shape[1] - prefix.shape[1])
    sync()
    if made != chunks * tokens:
        raise RuntimeError(f"transformers made {made} tokens, expected {chunks * tokens}")
    return time.perf_counter() - start
