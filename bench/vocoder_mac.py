"""Kokoro vocoder on a Mac: the Swift shim (`apple`) vs coremltools' MLModel.predict vs the MLX decoder.

NOT RUN HERE: this project is built on Linux, where neither Core ML runtime exists; no number in
bench/results comes from this script. On a Mac (Apple silicon, macOS 13+):
    mlx-audio-coreml convert kokoro --out converted --precision float16
    python bench/vocoder_mac.py --packages converted/kokoro-coreml [--compute-units all|cpuAndGPU|cpuOnly]
Per call: one sentence's real features through each engine (median of --repeats after a warm-up,
which includes the first-load specialization only in the `load` column). End to end: text to audio
through KokoroSession with the vocoder on each backend (backend_overrides), median wall time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

TEXT = "The quick brown fox jumps over the lazy dog."
UNITS_NAMES = {"cpuOnly": 0, "cpuAndGPU": 1, "all": 2, "cpuAndNeuralEngine": 3}


def _units() -> dict:
    from mlx_audio_coreml.options import ComputeUnits

    return {name: ComputeUnits(value) for name, value in UNITS_NAMES.items()}


def _bucket_package(packages: Path, frames: int) -> Path:
    manifest = json.loads((packages / "manifest.json").read_text())["components"]["vocoder"]["packages"]
    bucket = min(int(b) for b in manifest if int(b) >= frames)
    return packages / manifest[str(bucket)]


def _median_call(call, repeats: int) -> float:
    import mlx.core as mx

    mx.eval(call())
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        mx.eval(call())
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def per_call(packages: Path, units: str, repeats: int) -> None:
    from mlx_audio_coreml.coreml.registry import get_runtime
    from mlx_audio_coreml.kokoro.vocoder_bucket import BucketedCoreMLVocoder
    from mlx_audio_coreml.vocoders import MLXVocoder
    from vocoder_features import real_features

    model, features = real_features()
    path = _bucket_package(packages, features.frames)
    bucket = int(path.stem.split("-")[-1])
    UNITS = _units()
    mlx_vocoder = MLXVocoder(model.decoder, seed=None)
    print(f"per call, {features.frames} frames in bucket {bucket}, compute units {units}")
    print(f"  mlx          {_median_call(lambda: mlx_vocoder.decode(features), repeats) * 1000:8.1f} ms")
    for runtime in ("apple", "coremltools"):
        started = time.perf_counter()
        loaded = get_runtime(runtime).load(path, UNITS[units])
        load_s = time.perf_counter() - started
        vocoder = BucketedCoreMLVocoder(loaded, mlx_vocoder)
        ms = _median_call(lambda v=vocoder: v.decode(features), repeats) * 1000
        print(f"  {runtime:12s} {ms:8.1f} ms   (load {load_s:.1f} s)")
        loaded.close()


def end_to_end(packages: Path, repeats: int) -> None:
    from mlx_audio_coreml.kokoro.session import KokoroSession
    from mlx_audio_coreml.options import BackendPreference, Component, ModelLoadingOptions

    print(f"end to end: {TEXT!r}")
    package = _bucket_package(packages, 128)  # a sentence fits 128 frames (3.2 s); the session loads one bucket
    for name, backend in (("mlx", BackendPreference.MLX), ("coreML", BackendPreference.CORE_ML)):
        options = ModelLoadingOptions(
            backend_overrides={Component.VOCODER: backend}, coreml_sources={Component.VOCODER: str(package)}
        )
        session = KokoroSession.from_pretrained("kokoro", options=options)
        session.warmup()
        ms = _median_call(lambda s=session: s.synthesize(TEXT).audio, repeats) * 1000
        print(f"  vocoder on {name:7s} {ms:8.1f} ms   ({session.info.vocoder_backend}, {session.info.vocoder_runtime})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--packages", type=Path, required=True, help="a `convert kokoro` output folder")
    parser.add_argument("--compute-units", default="all", choices=("all", "cpuAndGPU", "cpuOnly", "cpuAndNeuralEngine"))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if sys.platform != "darwin":
        sys.exit("vocoder_mac.py needs macOS with Core ML; it has not been run on this project's Linux machines")
    per_call(args.packages, args.compute_units, args.repeats)
    end_to_end(args.packages, args.repeats)


if __name__ == "__main__":
    main()
