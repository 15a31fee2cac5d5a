"""The decoder's token loop alone, for a profiler: large-v3-turbo shapes, random float16 weights, batch 1.

Runs a greedy loop over `--tokens` tokens after a warm-up run and logs wall ms per token:
`--loop device` the product's loop (`gpu_loop.decode_tokens` with the static step: device-resident
on a GPU), `--loop previous` the previous product loop (`sampling.sample_tokens`, a read-back per
token) with `--step static` or `--step dynamic`. Meant to run under a profiler, which then reports
the kernels per token:
    ncu --metrics gpu__time_duration.sum --csv --log-file ncu.csv python3 bench/gpu_profile_decoder.py --tokens 20
    python3 bench/gpu_ncu_summary.py ncu.csv --tokens 20 --argmax-per-token 2   (1 with --loop previous)
    nsys profile -t cuda -o $OUT/dec python3 bench/gpu_profile_decoder.py
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gpu_common as gc  # noqa: E402
from mlx_audio_coreml.whisper import gpu_loop  # noqa: E402
from mlx_audio_coreml.whisper.gpu_step import StaticDecoderStep  # noqa: E402
from mlx_audio_coreml.whisper.sampling import DecoderStep, sample_tokens  # noqa: E402

import mlx.core as mx  # noqa: E402  # isort: skip

log = logging.getLogger("gpu_profile_decoder")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--loop", choices=("device", "previous"), default="device")
    parser.add_argument("--step", choices=("static", "dynamic"), default="static")
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--dims", choices=sorted(gc.DIMS), default="large-v3-turbo")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    d = gc.DIMS[args.dims]
    model, _ = gc.build_ours(d, mx.float16)
    features = mx.random.normal((1, d.n_audio_ctx, d.n_audio_state)).astype(mx.float16)
    prompt = gc.prompt_tokens(d)
    prefix = mx.array([prompt], dtype=mx.int32)
    step = StaticDecoderStep(model, features) if args.step == "static" else DecoderStep(model, features)
    run = gpu_loop.decode_tokens if args.loop == "device" else sample_tokens
    for label in ("warm-up", "timed"):
        logits, cache, _ = model.decoder(prefix, features)
        mx.eval(logits, cache)
        start = time.perf_counter()
        filters = gc.product_filters(d, len(prompt))
        tokens, _ = run(step, logits[:, -1, :], cache, prefix, filters, temperature=0.0, eot=-1, n_steps=args.tokens)
        elapsed = (time.perf_counter() - start) * 1e3 / args.tokens
        log.info("%s loop, %s step, %s: %d tokens, %.3f ms per token", args.loop, args.step, label,
                 tokens.shape[1] - len(prompt), elapsed)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
