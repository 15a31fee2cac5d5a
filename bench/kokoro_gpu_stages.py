"""Where one Kokoro call's time goes on a GPU: each stage of our MLX model timed alone, LSTM kernel off and on.

Same random weights as bench/kokoro_gpu.py (hexgrad's KModel, seeded, through our .pth reader). Each
stage's inputs are evaluated first; a stage is timed from its call to mx.eval + mx.synchronize of its
outputs (medians after one warm-up). Stages, in call order: ALBERT + projection; the duration encoder
(three BiLSTMs with adaptive layer norm, over the tokens); the duration LSTM + head and reading the
durations back; F0 and energy (the shared BiLSTM over the frames, then the AdaIN blocks); the acoustic
text encoder (CNN + BiLSTM over the tokens) expanded to frames; the decoder's encode/decode blocks; the
generator's harmonic source + STFT; the generator's upsampling stacks, conv_post and inverse STFT.
Two configurations: A, LSTMs step by step (MLX_AUDIO_COREML_LSTM_CUDA_KERNEL=0) and convolutions as
per-tap products (kokoro/model/conv.py's CPU form); B, the defaults on a GPU (one fused kernel per LSTM,
MLX's own convolutions).
Peak memory is MLX's peak over each stage alone.

GPU (H100):  source /root/w/env.sh && python3 bench/kokoro_gpu_stages.py
CPU smoke:   .venv/bin/python bench/kokoro_gpu_stages.py --smoke
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mlx_audio_coreml  # noqa: E402, F401  (a fast BLAS before MLX on the CPU)
from kokoro_gpu import CONFIG, build_peer, ours_from_peer  # noqa: E402
from mlx_audio_coreml import config as settings  # noqa: E402
from mlx_audio_coreml.kokoro.config import KokoroConfig  # noqa: E402
from mlx_audio_coreml.kokoro.model import conv  # noqa: E402
from mlx_audio_coreml.kokoro.model.alignment import durations_from_logits, expand, frame_tokens  # noqa: E402
from mlx_audio_coreml.kokoro.model.kokoro_model import KokoroModel  # noqa: E402

import mlx.core as mx  # noqa: E402  # isort: skip
import numpy as np  # noqa: E402  # isort: skip


def timed(stage: Callable[[], Any], repeats: int) -> tuple[float, float, Any]:
    """(median ms, peak MB, output) of `stage` after one warm-up call."""
    out = stage()
    mx.eval(out)
    seconds = []
    mx.reset_peak_memory()
    for _ in range(repeats):
        start = time.perf_counter()
        out = stage()
        mx.eval(out)
        mx.synchronize()
        seconds.append(time.perf_counter() - start)
    return 1e3 * statistics.median(seconds), mx.get_peak_memory() / 2**20, out


def stages(model: KokoroModel, ids: mx.array, ref: mx.array, repeats: int) -> list[tuple[str, float, float]]:
    dim = model.config.style_dim
    style, prosody_style = ref[:, :dim], ref[:, dim:]
    rows: list[tuple[str, float, float]] = []

    def run(name: str, stage: Callable[[], Any]) -> Any:
        ms, mb, out = timed(stage, repeats)
        rows.append((name, ms, mb))
        return out

    d_en = run("ALBERT + projection", lambda: model.bert_encoder(model.bert(ids)))
    d = run("duration encoder (3 BiLSTM + AdaLN)", lambda: model.predictor.text_encoder(d_en, prosody_style))
    durations = run(
        "duration BiLSTM + head + read back",
        lambda: mx.array(np.array(durations_from_logits(model.predictor.duration_logits(d), 1.0))),
    )
    tokens = frame_tokens(durations)
    en = expand(d, tokens)
    mx.eval(en)
    f0, energy = run("F0 + energy (BiLSTM over frames)", lambda: model.predictor.predict_f0_n(en, prosody_style))
    asr = run("text encoder (CNN + BiLSTM) + expand", lambda: expand(model.text_encoder(ids), tokens))
    asr_t = asr.transpose(0, 2, 1)
    mx.eval(asr_t)
    frames = run("decoder encode/decode blocks", lambda: model.decoder.frames(asr_t, f0, energy, style))
    generator = model.decoder.generator
    har = run("generator: harmonic source + STFT", lambda: generator.harmonic_spectrum(f0, None))
    run("generator: upsampling, resblocks, iSTFT", lambda: generator.synthesize(frames, style, har))
    rows.append(("frames", float(tokens.shape[0]), 0.0))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[128, 510])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="CPU, 16 tokens, one repeat")
    args = parser.parse_args()
    import torch

    device = "cuda" if torch.cuda.is_available() and not args.smoke else "cpu"
    if args.smoke:
        mx.set_default_device(mx.cpu)
        args.lengths, args.repeats = [16], 1
    config = json.loads(CONFIG.read_text())
    try:
        model = ours_from_peer(build_peer(config, device, 0), config)
    except ImportError:  # no hexgrad kokoro here (the CPU smoke test): zero weights, shapes only
        model = KokoroModel(KokoroConfig.from_dict(config))
    rng = np.random.default_rng(0)
    print(f"device: {mx.default_device()}, mlx {mx.__version__}")
    for length in args.lengths:
        ids = mx.array(
            np.concatenate([[0], rng.integers(1, config["n_token"], length - 2), [0]])[None].astype(np.int32)
        )
        ref = mx.array((0.1 * rng.standard_normal((1, 256))).astype(np.float32))
        results = {}
        for kernel in ("0", "1"):
            os.environ[settings.LSTM_CUDA_KERNEL] = kernel
            conv.NATIVE_ON_GPU = kernel == "1"
            results[kernel] = stages(model, ids, ref, args.repeats)
        print(f"\n{length} tokens, {int(results['0'][-1][1])} frames")
        print("| stage | ms, A | ms, B | peak MB A | peak MB B |")
        print("| --- | --- | --- | --- | --- |")
        for off, on in zip(results["0"][:-1], results["1"][:-1]):
            print(f"| {off[0]} | {off[1]:.2f} | {on[1]:.2f} | {off[2]:.0f} | {on[2]:.0f} |")
        for kernel in ("0", "1"):
            print(f"sum of stages, {'AB'[int(kernel)]}: {sum(r[1] for r in results[kernel][:-1]):.1f} ms")


if __name__ == "__main__":
    main()
