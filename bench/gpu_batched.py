"""Batched Whisper throughput on one GPU: audio seconds per second, ours vs transformers' batched recipe.

The peer is the core of insanely-fast-whisper's recipe (transformers, float16, sdpa, batch 24):
WhisperFeatureExtractor over 30 s chunks, then `generate` on 24 chunks at a time. Ours: the
product's log-mel (MLX), the encoder on 24 windows at a time, and the product's greedy token loop
at batch 24 (`gpu_loop.decode_tokens` with the static step, as `DecodingTask` runs it: on a GPU
the device-resident loop, every row stopping on its own), with the logit filters; for comparison
the previous loop (`sampling.sample_tokens`, a read-back of the (24, V) logits per token) and,
with --dynamic, the dynamic `DecoderStep`. Random weights at large-v3-turbo shapes (nothing
downloaded), so every chunk decodes exactly `--tokens` tokens on both sides (EOT never stops ours:
eot=-1; transformers: min_new_tokens = max_new_tokens): the same work.
Audio: samples/jfk.wav (real speech) repeated to `--chunks` x 30 s, cut into non-overlapping 30 s
chunks for both engines (transformers' pipeline with chunk_length_s=30 steps 20 s by default,
1.5x the windows: this comparison spares the peer that). Each engine runs all chunks in turns,
`--rounds` times; the median wall time counts, with and without feature extraction. The table is
printed and written after every round (a failing engine's cells say why), so a run cut short
still leaves one.

GPU (H100):
    source /root/w/env.sh && PYTHONPATH=python:/tmp/site python3 bench/gpu_batched.py --chunks 48 --rounds 2 --out gpu_batched_h100_s4
CPU smoke test:
    .venv/bin/python bench/gpu_batched.py --dims tiny.en --dtype float32 --chunks 2 --batch 2 --tokens 3 --rounds 1 --out /tmp/smoke
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import wave
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gpu_common as gc  # noqa: E402  (the shapes, the random models and the report helpers)
from mlx_audio_coreml.whisper import gpu_loop  # noqa: E402
from mlx_audio_coreml.whisper.gpu_step import StaticDecoderStep  # noqa: E402
from mlx_audio_coreml.whisper.mel import log_mel_spectrogram  # noqa: E402
from mlx_audio_coreml.whisper.model import ModelDimensions, Whisper  # noqa: E402
from mlx_audio_coreml.whisper.sampling import DecoderStep, pipelining_pays, sample_tokens  # noqa: E402

import mlx.core as mx  # noqa: E402  # isort: skip
import numpy as np  # noqa: E402  # isort: skip

SAMPLE_RATE, CHUNK_S = 16000, 30
JFK = Path(__file__).resolve().parents[1] / "samples" / "jfk.wav"
PEER = "transformers generate (fp16, sdpa)"


def long_audio(chunks: int) -> np.ndarray:
    """Real speech (jfk.wav) repeated to exactly `chunks` x 30 s, float32 16 kHz (read with `wave`:
    the product's reader needs soundfile, which the GPU machine may lack)."""
    with wave.open(str(JFK)) as wav:  # 16 kHz mono int16
        if (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) != (SAMPLE_RATE, 1, 2):
            raise RuntimeError(f"{JFK} is not 16 kHz mono 16-bit")
        clip = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16).astype(np.float32) / 32768.0
    total = chunks * CHUNK_S * SAMPLE_RATE
    return np.tile(clip, total // len(clip) + 1)[:total].astype(np.float32)


def ours(
    model: Whisper, d: ModelDimensions, audio: np.ndarray, args: argparse.Namespace, loop: str
) -> tuple[float, float]:
    """(seconds in all, seconds of which were the log-mel) for every chunk through our pipeline.
    `loop`: "product" (gpu_loop.decode_tokens + static step), "previous" (sample_tokens + static
    step) or "dynamic" (sample_tokens + DecoderStep)."""
    prompt = gc.prompt_tokens(d)
    start = time.perf_counter()
    mel = log_mel_spectrogram(audio, n_mels=d.n_mels)  # (n_mels, frames): the product's mel, whole clip
    windows = mel[:, : args.chunks * gc.N_FRAMES].reshape(d.n_mels, args.chunks, gc.N_FRAMES).transpose(1, 2, 0)
    mx.eval(windows)
    mel_s = time.perf_counter() - start
    made = 0
    for first in range(0, args.chunks, args.batch):
        batch = windows[first : first + args.batch]  # (B, 3000, n_mels)
        features = model.embed_audio(batch)
        prefix = mx.array(np.tile(np.array(prompt, dtype=np.int32), (batch.shape[0], 1)))
        logits, cache, _ = model.decoder(prefix, features)
        step = DecoderStep(model, features) if loop == "dynamic" else StaticDecoderStep(model, features)
        run = gpu_loop.decode_tokens if loop == "product" else sample_tokens
        filters = gc.product_filters(d, len(prompt))
        if loop == "product" and pipelining_pays() and gpu_loop.applies(step, filters, 0.0, d.n_vocab) is None:
            raise RuntimeError("the device loop does not apply: the row would time the host loop")
        tokens, _ = run(step, logits[:, -1, :], cache, prefix, filters, temperature=0.0, eot=-1, n_steps=args.tokens)
        made += tokens.shape[0] * (tokens.shape[1] - len(prompt))
    mx.synchronize()
    if made != args.chunks * args.tokens:
        raise RuntimeError(f"ours made {made} tokens, expected {args.chunks * args.tokens}")
    return time.perf_counter() - start, mel_s


def peer(bundle: tuple, d: ModelDimensions, audio: np.ndarray, args: argparse.Namespace) -> tuple[float, float]:
    """The same for transformers: WhisperFeatureExtractor, then generate() at batch `--batch`."""
    torch, model, device = bundle
    from transformers import GenerationMixin, WhisperFeatureExtractor

    extractor = WhisperFeatureExtractor(feature_size=d.n_mels)
    chunks = audio.reshape(args.chunks, CHUNK_S * SAMPLE_RATE)
    prefix = torch.tensor([gc.prompt_tokens(d)], device=device)
    start = time.perf_counter()
    feats = extractor(list(chunks), sampling_rate=SAMPLE_RATE, return_tensors="pt").input_features
    mel_s = time.perf_counter() - start
    made = 0
    with torch.inference_mode():
        for first in range(0, args.chunks, args.batch):
            batch = feats[first : first + args.batch].to(device, dtype=model.dtype)
            out = GenerationMixin.generate(
                model, input_features=batch, decoder_input_ids=prefix.repeat(batch.shape[0], 1),
                max_new_tokens=args.tokens, min_new_tokens=args.tokens, do_sample=False, num_beams=1,
            )  # fmt: skip
            made += out.shape[0] * (out.shape[1] - prefix.shape[1])
    torch.cuda.synchronize() if device == "cuda" else None
    if made != args.chunks * args.tokens:
        raise RuntimeError(f"transformers made {made} tokens, expected {args.chunks * args.tokens}")
    return time.perf_counter() - start, mel_s


def median_pair(runs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(r[0] for r in runs), statistics.median(r[0] - r[1] for r in runs)


def table(args: argparse.Namespace, header: list[str], times: dict, failed: dict[str, str], done: bool) -> str:
    """The report so far: one row per engine (its median, or why it has none)."""
    audio_s = args.chunks * CHUNK_S
    peer_full, peer_model = median_pair(times[PEER]) if times.get(PEER) else (float("nan"), float("nan"))
    lines = [
        *header,
        "| engine | s in all | audio s / s | x transformers | s without mel | audio s / s without mel | x transformers |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, runs in times.items():
        if not runs:
            lines.append(f"| {name} | {failed.get(name, 'no run finished')} | - | - | - | - | - |")
            continue
        full, model_only = median_pair(runs)
        lines.append(
            f"| {name} | {full:.3f} | {audio_s / full:.0f} | {peer_full / full:.2f} | {model_only:.3f} | "
            f"{audio_s / model_only:.0f} | {peer_model / model_only:.2f} |"
        )
    if not done:
        lines += ["", "(partial: the run had not finished when this was written)"]
    return "\n".join(lines) + "\n"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--dims", choices=sorted(gc.DIMS), default="large-v3-turbo")
    parser.add_argument("--dtype", choices=("float16", "bfloat16", "float32"), default="float16")
    parser.add_argument("--chunks", type=int, default=48, help="30 s chunks of audio (48: 24 minutes)")
    parser.add_argument("--batch", type=int, default=24)
    parser.add_argument("--tokens", type=int, default=100, help="tokens decoded per chunk, both engines")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--dynamic", action="store_true", help="also time the dynamic DecoderStep")
    parser.add_argument("--out", default="gpu_batched")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    d, dtype = gc.DIMS[args.dims], getattr(mx, args.dtype)
    model, _ = gc.build_ours(d, dtype)
    bundle = gc.load_peer(d, args.dtype)
    audio = long_audio(args.chunks)
    engines: dict[str, Callable[[], tuple[float, float]]] = {
        "ours, product greedy loop (gpu_loop.decode_tokens, static step)": lambda: ours(
            model, d, audio, args, "product"
        ),
        "ours, previous loop (sample_tokens, static step)": lambda: ours(model, d, audio, args, "previous"),
    }
    if args.dynamic:
        engines["ours, previous loop (sample_tokens, dynamic DecoderStep)"] = lambda: ours(
            model, d, audio, args, "dynamic"
        )
    if not isinstance(bundle, str):
        engines[PEER] = lambda: peer(bundle, d, audio, args)
    header = [
        f"# Whisper {args.dims} ({args.dtype}, random weights): batched throughput, {args.chunks * CHUNK_S / 60:.0f} min of real speech",
        "",
        *gc.environment(bundle),
        f"- {args.chunks} non-overlapping 30 s chunks of samples/jfk.wav repeated, batch {args.batch}, "
        f"{args.tokens} tokens per chunk on both sides; median of {args.rounds} rounds after a warm-up, engines in turns",
        f"- transformers: {bundle if isinstance(bundle, str) else 'WhisperFeatureExtractor (CPU) + GenerationMixin.generate'}",
        "",
    ]
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in engines}
    failed: dict[str, str] = {}
    written = None
    for round_ in range(args.rounds + 1):  # round 0 is the warm-up: compilation, cuBLAS handles, the allocator
        for name, run in engines.items():
            if name in failed:
                continue
            try:
                result = run()
            except Exception as exc:  # report it in the table, keep the other engines going
                failed[name] = gc.not_available(exc)
                continue
            finally:
                mx.clear_cache()
            if round_ > 0:
                times[name].append(result)
        text = table(args, header, times, failed, done=round_ == args.rounds)
        print(f"after round {round_} of {args.rounds} (0: warm-up):\n{text}", flush=True)
        written = gc.write_result(args.out, text)
    print(f"written to {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
