"""The decoder's token loop alone, for a profiler: large-v3-turbo shapes, random float16 weights, batch 1.

Runs the product's greedy loop (`sampling.sample_tokens` with its logit filters) over `--tokens`
tokens with the static compiled step (`whisper/gpu_step.py`) or the dynamic `DecoderStep`, after a
warm-up run, and logs wall ms per token. Meant to run under Nsight Systems, which then reports the
kernels and CUDA API calls per token:
    nsys profile -t cuda -o $OUT/dec python3 bench/gpu_profile_decoder.py --step static
    nsys stats -r cuda_gpu_kern_sum,cuda_api_sum $OUT/dec.nsys-rep
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gpu_whisper as gw  # noqa: E402
from mlx_audio_coreml.whisper.gpu_step import StaticDecoderStep  # noqa: E402
from mlx_audio_coreml.whisper.sampling import DecoderStep, sample_tokens  # noqa: E402

import mlx.core as mx  # noqa: E402  # isort: skip

log = logging.getLogger("gpu_profile_decoder")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--step", choices=("static", "dynamic"), default="static")
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--dims", choices=sorted(gw.DIMS), default="large-v3-turbo")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    d = gw.DIMS[args.dims]
    model, _ = gw.build_ours(d, mx.float16)
    features = mx.random.normal((1, d.n_audio_ctx, d.n_audio_state)).astype(mx.float16)
    prompt = gw.prompt_tokens(d)
    prefix = mx.array([prompt], dtype=mx.int32)
    step = StaticDecoderStep(model, features) if args.step == "static" else DecoderStep(model, features)
    for label in ("warm-up", "timed"):
        logits, cache, _ = model.decoder(prefix, features)
        mx.eval(logits, cache)
        start = time.perf_counter()
        tokens, _ = sample_tokens(
            step,
            logits[:, -1, :],
            cache,
            prefix,
            gw.product_filters(d, len(prompt)),
            temperature=0.0,
            eot=-1,
            n_steps=args.tokens,
        )
        elapsed = (time.perf_counter() - start) * 1e3 / args.tokens
        log.info("%s %s: %d tokens, %.3f ms per token", args.step, label, tokens.shape[1] - len(prompt), elapsed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
