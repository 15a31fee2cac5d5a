"""Kokoro vocoder: the converted package through the portable runtime vs the MLX decoder, per call.

Two sources of weights and features:
- real (`--packages DIR`, a `convert kokoro` output folder): Kokoro-82M's installed weights, one real
  sentence's features, the smallest bucket of the folder that holds them;
- random (`--random-weights`): the decoder at Kokoro-82M's real shapes (hexgrad's config.json, kept in
  tests/kokoro/hexgrad_config.json) with MLX's seeded default initialization, converted in-process by
  our converter (coremltools' MIL builder: needs coremltools, nothing else from outside) into one
  package of `--bucket` frames; features: convert/kokoro_validate's deterministic chunk of `--frames`.
Source noise is off on both sides. The two engines run in turns (MLX, portable, MLX, ...) after one
warm-up call each; per call: wall time and this process's CPU time (user + sys, all threads; on Linux
also per thread, to tell work from threads spinning between calls). Prints
medians, the portable path's overhead, the SNR of its audio against MLX's and the load average before
and after; `--out FILE` also writes them as JSON.

CPU (here): .venv/bin/python bench/vocoder_portable_vs_mlx.py --packages DIR [--text "A sentence."]
            .venv/bin/python bench/vocoder_portable_vs_mlx.py --random-weights --bucket 256
CPU smoke test (random weights, 16-frame bucket, one call each):
            .venv/bin/python bench/vocoder_portable_vs_mlx.py --smoke
GPU (H100; coremltools' wheels and their pure-Python needs carried in .gpu/ct, see --help):
    source .gpu/b/env.sh && python3 -m pip install -q --no-index --no-deps --target /tmp/site .gpu/ct/*.whl \\
      && python3 bench/vocoder_portable_vs_mlx.py --random-weights --device gpu --bucket 256 --out vocoder_gpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "python"))

import mlx_audio_coreml  # noqa: E402,F401  (loads a fast BLAS before MLX on the CPU)

import mlx.core as mx  # noqa: E402  # isort: skip
import numpy as np  # noqa: E402  # isort: skip

CONFIG = ROOT / "tests" / "kokoro" / "hexgrad_config.json"
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "MLX_AUDIO_COREML_HOST_THREADS")


def random_decoder(seed: int) -> Any:
    """Kokoro-82M's decoder at its real shapes with MLX's default initialization, seeded."""
    from mlx_audio_coreml.kokoro.config import KokoroConfig
    from mlx_audio_coreml.kokoro.model.decoder import Decoder

    mx.random.seed(seed)
    decoder = Decoder.from_config(KokoroConfig.from_dict(json.loads(CONFIG.read_text())))
    mx.eval(decoder.parameters())
    return decoder


def random_setup(bucket: int, frames: int, precision: str, seed: int, folder: Path) -> tuple[Any, Any, Path]:
    """(decoder, features, package path): a random decoder converted in-process into `folder`."""
    from mlx_audio_coreml.convert.kokoro import KokoroConvertOptions, convert_decoder
    from mlx_audio_coreml.convert.kokoro_validate import validation_features

    decoder = random_decoder(seed)
    options = KokoroConvertOptions(precision=precision, buckets=(bucket,), validate=False)
    result = convert_decoder(decoder, "kokoro-random", folder, options)
    return decoder, validation_features(decoder.dim_in, decoder.style_dim, frames, seed), result.packages[bucket]


def real_setup(packages: Path, text: str | None, bucket: int | None) -> tuple[Any, Any, Path, str | None, int, str]:
    """(decoder, features, package path, function or None, bucket, precision) from a `convert kokoro`
    folder (either layout: a package per bucket, or one multi-function package) and the real weights:
    the smallest bucket that holds the sentence, as the session picks it (or `bucket`). `text`: phonemized by the
    project's G2P (misaki, else espeak-ng) as the session does; None: vocoder_features' fixed phonemes."""
    from vocoder_features import real_features

    if text is None:
        model, features = real_features()
    else:
        from mlx_audio_coreml.kokoro.text.g2p import make_g2p

        model, features = real_features(make_g2p("en-us", "auto")(text))
    vocoder = json.loads((packages / "manifest.json").read_text())["components"]["vocoder"]
    units = vocoder.get("packages") or vocoder["functions"]
    bucket = bucket or min(int(b) for b in units if int(b) >= features.frames)
    if "packages" in vocoder:
        return model.decoder, features, packages / units[str(bucket)], None, bucket, vocoder["precision"]
    return model.decoder, features, packages / vocoder["path"], units[str(bucket)], bucket, vocoder["precision"]


def thread_cpu() -> dict[str, float]:
    """CPU seconds (user + sys) of each thread of this process so far, by name: Python's thread name where
    it has one, else "native <tid>" (BLAS, OpenMP and MLX threads); {} where /proc is missing."""
    import threading

    names = {t.native_id: t.name for t in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    found: dict[str, float] = {}
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return found
    for tid in tids:
        try:
            fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        found[names.get(int(tid), f"native {tid}")] = (int(fields[11]) + int(fields[12])) / tick
    return found


def measured(call: Callable[[], np.ndarray]) -> tuple[float, float, np.ndarray, dict[str, float]]:
    """(wall s, CPU s of this process, output, CPU s per thread that ran) of one call. The per-thread
    split is what found BLAS threads spinning between calls (the process total only says "more")."""
    threads = thread_cpu()
    cpu, wall = time.process_time(), time.perf_counter()
    out = call()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    after = thread_cpu()
    spent = {name: round(t - threads.get(name, 0.0), 2) for name, t in after.items() if t > threads.get(name, 0.0)}
    return wall, cpu, out, spent


def in_turns(calls: dict[str, Callable[[], np.ndarray]], repeats: int) -> dict[str, Any]:
    """One warm-up call each, then `repeats` rounds of one call each; medians and the last outputs."""
    outputs = {name: call() for name, call in calls.items()}
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in calls}
    threads: dict[str, list[dict[str, float]]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            wall, cpu, outputs[name], spent = measured(call)
            times[name].append((wall, cpu))
            threads[name].append(spent)
    return {
        name: {
            "wall_s": statistics.median(t[0] for t in runs),
            "cpu_s": statistics.median(t[1] for t in runs),
            "walls": [t[0] for t in runs],
            "cpus": [t[1] for t in runs],
            "threads": threads[name],
            "output": outputs[name],
        }
        for name, runs in times.items()
    }


def engines(
    decoder: Any, features: Any, package: Path, bucket: int, function: str | None = None
) -> dict[str, Callable[[], np.ndarray]]:
    """The two calls timed: the MLX decoder, and the package (its `function`, for a multi-function
    one) through the portable runtime (padded in, trimmed out, as the bucketed vocoder does)."""
    from mlx_audio_coreml.convert.kokoro_validate import padded_inputs
    from mlx_audio_coreml.coreml.registry import get_runtime
    from mlx_audio_coreml.options import ComputeUnits

    loaded = get_runtime("portable").load(package, ComputeUnits.ALL, function=function)
    samples = features.frames * 600

    def mlx_call() -> np.ndarray:
        audio = decoder(features, key=None)
        mx.eval(audio)
        return np.asarray(audio)[0]

    def portable_call() -> np.ndarray:
        return np.asarray(loaded.predict(padded_inputs(features, bucket)).outputs["audio"])[0, :samples]

    return {"mlx": mlx_call, "portable": portable_call}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--packages", type=Path, help="a `convert kokoro` output folder (real weights)")
    source.add_argument("--random-weights", action="store_true", help="Kokoro-82M's shapes, random, converted here")
    source.add_argument("--smoke", action="store_true", help="random weights, bucket 16, one call each")
    parser.add_argument("--text", help="real weights: this sentence through the G2P (default: fixed phonemes)")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument(
        "--bucket", type=int, help="random weights: the package's frames (256); real: this bucket, not the smallest"
    )
    parser.add_argument("--frames", type=int, default=0, help="random weights: real frames (default 146/256 of it)")
    parser.add_argument("--precision", choices=("float32", "float16"), default="float32")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="also write the results here as JSON")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    mx.set_default_device(mx.gpu if args.device == "gpu" else mx.cpu)
    from mlx_audio_coreml.convert.kokoro_validate import snr_db

    if args.smoke:
        args.random_weights, args.bucket, args.repeats = True, 16, 1
    if args.random_weights:
        args.bucket = args.bucket or 256
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as scratch:
        if args.random_weights:
            frames = args.frames or max(2, args.bucket * 146 // 256)
            started = time.perf_counter()
            decoder, features, package = random_setup(args.bucket, frames, args.precision, args.seed, Path(scratch))
            precision, convert_s = args.precision, time.perf_counter() - started
            function, bucket = None, args.bucket
        else:
            decoder, features, package, function, bucket, precision = real_setup(args.packages, args.text, args.bucket)
            convert_s = 0.0
        results = in_turns(engines(decoder, features, package, bucket, function), args.repeats)
    mlx_run, portable_run = results["mlx"], results["portable"]
    report = {
        "device": str(mx.default_device()),
        "weights": "random (Kokoro-82M shapes)" if args.random_weights else "real",
        "precision": precision,
        "bucket": bucket,
        "text": args.text,
        "threads_env": {k: os.environ[k] for k in THREAD_VARIABLES if k in os.environ},
        "frames": features.frames,
        "repeats": args.repeats,
        "convert_s": round(convert_s, 1),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "snr_db": snr_db(portable_run["output"], mlx_run["output"]),
        **{
            f"{name}_{key}": run[key]
            for name, run in results.items()
            for key in ("wall_s", "cpu_s", "walls", "cpus", "threads")
        },
        "overhead_wall": portable_run["wall_s"] / mlx_run["wall_s"] - 1,
        "overhead_cpu": portable_run["cpu_s"] / mlx_run["cpu_s"] - 1,
    }
    print(f"device {report['device']}, {report['weights']} weights, {features.frames} frames in bucket {bucket}")
    print(f"({precision}); load average {load_before[0]:.1f} before, {report['load_average_after'][0]:.1f} after")
    print("| engine | wall ms / call | CPU ms / call |\n|---|---|---|")
    for name, run in results.items():
        print(f"| {name} | {run['wall_s'] * 1000:.0f} | {run['cpu_s'] * 1000:.0f} |")
    for name, run in results.items():
        print(
            f"{name} CPU s per round: {[round(c, 2) for c in run['cpus']]}, wall: {[round(w, 2) for w in run['walls']]}"
        )
        print(f"{name} CPU s per thread, last round: {run['threads'][-1]}")
    print(f"portable overhead: wall {report['overhead_wall']:+.1%}, CPU {report['overhead_cpu']:+.1%}")
    print(f"SNR portable vs MLX: {report['snr_db']:.1f} dB")
    if args.out is not None:
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
