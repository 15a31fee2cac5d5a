"""Kokoro vocoder: the converted package through the portable runtime vs the MLX decoder, per call.

Same real features (one sentence, real weights), noise off on both sides, bucket = the smallest of the
package folder's buckets that holds the sentence. Reports median wall time per call over --repeats
after one warm-up call, the overhead of the portable path, and the SNR between the two outputs.
CPU by default; `--device gpu` runs both on MLX's GPU (the coordinator runs GPU jobs).
Usage: python bench/vocoder_portable_vs_mlx.py --packages DIR [--device cpu|gpu] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def _timed(call, repeats: int) -> tuple[float, object]:
    import mlx.core as mx

    result = call()
    mx.eval(result)  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = call()
        mx.eval(result)
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--packages", type=Path, required=True, help="a `convert kokoro` output folder")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    import mlx.core as mx
    import numpy as np

    mx.set_default_device(mx.gpu if args.device == "gpu" else mx.cpu)
    from mlx_audio_coreml.convert.kokoro_validate import snr_db
    from mlx_audio_coreml.coreml.registry import get_runtime
    from mlx_audio_coreml.kokoro.vocoder_bucket import BucketedCoreMLVocoder
    from mlx_audio_coreml.options import ComputeUnits
    from mlx_audio_coreml.vocoders import MLXVocoder
    from vocoder_features import real_features

    model, features = real_features()
    manifest = json.loads((args.packages / "manifest.json").read_text())
    buckets = sorted(int(b) for b in manifest["components"]["vocoder"]["packages"])
    bucket = next(b for b in buckets if b >= features.frames)
    path = args.packages / manifest["components"]["vocoder"]["packages"][str(bucket)]
    mlx_vocoder = MLXVocoder(model.decoder, seed=None)
    loaded = get_runtime("portable").load(path, ComputeUnits.ALL)
    portable = BucketedCoreMLVocoder(loaded, mlx_vocoder)
    t_mlx, want = _timed(lambda: mlx_vocoder.decode(features), args.repeats)
    t_portable, got = _timed(lambda: portable.decode(features), args.repeats)
    snr = snr_db(np.asarray(got), np.asarray(want))
    print(
        f"device {args.device}, {features.frames} frames in bucket {bucket} ({manifest['components']['vocoder']['precision']})"
    )
    print(f"MLX decoder        {t_mlx * 1000:9.1f} ms / call")
    print(f"portable package   {t_portable * 1000:9.1f} ms / call  overhead {100 * (t_portable / t_mlx - 1):+.1f}%")
    print(f"SNR portable vs MLX {snr:.1f} dB")


if __name__ == "__main__":
    main()
