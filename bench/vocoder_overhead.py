"""Kokoro vocoder, portable runtime vs MLX decoder: CPU overhead over several sentences and many processes.

Why: one process of bench/vocoder_portable_vs_mlx.py measures the same code from +6% to +30% on this
shared machine (process to process), so a change of a few percent needs many processes and medians.
Here each child process loads the real weights once, then for every sentence (short to long, each in
the smallest bucket of the package that holds it, as the session picks it) runs one warm-up call of
each engine and `--rounds` rounds in turns (ABBA order, so a drift in load hits both alike), timing
each call's wall time and the process's user and system CPU time (getrusage: all threads; page faults
of fresh buffers land in system time) and minor page faults. The driver runs `--processes` children
per code version, versions alternating (old, new, old, new ...), each child with the package of
its version's python/ folder only (the editable install's import hook dropped: it would load
/work/main/python whatever sys.path says), and prints per sentence the median over processes of the
per-process median ratio portable / MLX (CPU, user, sys, wall), the spread, the load average, the CPU
model and the SNR of the two engines' audio. `--out` is rewritten after every process, and
`--summarize FILE` prints the tables of such a file (a run cut short).

    .venv/bin/python bench/vocoder_overhead.py --packages DIR --processes 6 --rounds 3 --one-core \\
        [--code old=/tmp/old/python --code new=python] [--out runs.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import runpy
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SENTENCES = (
    "Yes, of course.",
    "Hello there, how are you?",
    "The quick brown fox jumps over the lazy dog.",
    "She opened the window, listened to the rain for a while, and then went back to her book.",
    "In the early morning light, the old fisherman pushed his boat into the quiet harbour and rowed slowly"
    " towards the open sea, hoping the weather would hold until noon.",
)
ONE_CORE_ENV = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
ONE_CORE_ENV["MLX_AUDIO_COREML_HOST_THREADS"] = "1"


def usage() -> tuple[float, float, float, int]:
    """(wall, user CPU, system CPU, minor page faults) of this process so far."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), r.ru_utime, r.ru_stime, r.ru_minflt


def timed(call: Any, outputs: dict[str, Any], name: str) -> dict[str, float]:
    before = usage()
    outputs[name] = call()
    after = usage()
    wall, user, system, faults = (b - a for a, b in zip(before, after))
    return {"wall": wall, "user": user, "sys": system, "cpu": user + system, "faults": faults}


def child(packages: Path, sentences: list[str], rounds: int) -> dict[str, Any]:
    """One process: every sentence, both engines in turns; per-call figures."""
    sys.path.insert(0, str(ROOT / "bench"))
    import mlx_audio_coreml  # noqa: F401  # isort: skip  (fast BLAS before MLX)
    import mlx.core as mx  # isort: skip

    mx.set_default_device(mx.cpu)
    from vocoder_features import real_features  # isort: skip  (bench/)
    from vocoder_portable_vs_mlx import engines  # isort: skip

    from mlx_audio_coreml.convert.kokoro_validate import snr_db
    from mlx_audio_coreml.kokoro.text.g2p import make_g2p

    g2p = make_g2p("en-us", "auto")
    vocoder = json.loads((packages / "manifest.json").read_text())["components"]["vocoder"]
    units = vocoder.get("packages") or vocoder["functions"]
    results = []
    for text in sentences:
        model, features = real_features(g2p(text))
        bucket = min(int(b) for b in units if int(b) >= features.frames)
        if "packages" in vocoder:
            package, function = packages / units[str(bucket)], None
        else:
            package, function = packages / vocoder["path"], units[str(bucket)]
        calls = engines(model.decoder, features, package, bucket, function)
        outputs = {name: call() for name, call in calls.items()}  # warm-up: kernels prepared, buffers cached
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in calls}
        for r in range(rounds):
            order = list(calls) if r % 2 == 0 else list(reversed(list(calls)))
            for name in order:
                runs[name].append(timed(calls[name], outputs, name))
        snr = snr_db(outputs["portable"], outputs["mlx"])
        results.append({"text": text, "frames": features.frames, "bucket": bucket, "runs": runs, "snr_db": snr})
    return {"code": mlx_audio_coreml.__file__, "sentences": results}


def isolated(code: Path, argv: list[str]) -> None:
    """Run this script's child mode with the package from `code` (a python/ folder) only."""
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in type(f).__module__ and "editable" not in repr(f)]
    sys.path.insert(0, str(code))
    sys.argv = [__file__, *argv]
    runpy.run_path(__file__, run_name="__child__")


def spawn(code: Path, args: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, __file__, "--isolated", str(code), "--packages", str(args.packages)]
    command += ["--rounds", str(args.rounds), *(a for t in args.text for a in ("--text", t))]
    env = dict(os.environ)
    if args.one_core:
        env.update(ONE_CORE_ENV)
        command = ["taskset", "-c", str(args.core), *command]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"child failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def ratios(sentence: dict[str, Any], key: str) -> list[float]:
    """portable / MLX of `key` per round (the two calls of a round ran next to each other)."""
    return [p[key] / m[key] for p, m in zip(sentence["runs"]["portable"], sentence["runs"]["mlx"]) if m[key] > 0]


def summary(processes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per sentence: the median over processes of each process's median ratio, and its spread."""
    rows = []
    for i, first in enumerate(processes[0]["sentences"]):
        items = [p["sentences"][i] for p in processes]
        row: dict[str, Any] = {"text": first["text"], "frames": first["frames"], "bucket": first["bucket"]}
        row["snr_db"] = min(s.get("snr_db", float("nan")) for s in items)
        for key in ("cpu", "user", "sys", "wall"):  # system time may read 0 for a call (clock ticks)
            per_process = [statistics.median(found) for s in items if (found := ratios(s, key))] or [float("nan")]
            row[key] = statistics.median(per_process) - 1
            row[f"{key}_range"] = (min(per_process) - 1, max(per_process) - 1)
        totals = [_total(s, "portable") / _total(s, "mlx") - 1 for s in items]  # all of a process's rounds
        row["cpu_totals"], row["cpu_totals_all"] = statistics.median(totals), sorted(totals)
        for engine in ("mlx", "portable"):
            for key in ("cpu", "sys", "faults"):
                row[f"{engine}_{key}"] = statistics.median(r[key] for s in items for r in s["runs"][engine])
        rows.append(row)
    rows.append(_pooled(processes))
    return rows


def _total(sentence: dict[str, Any], engine: str) -> float:
    return sum(r["cpu"] for r in sentence["runs"][engine])


def _pooled(processes: list[dict[str, Any]]) -> dict[str, Any]:
    """All sentences together: per round, the sum of portable CPU over the sum of MLX CPU (a user's
    mix of lengths), median over rounds, then over processes."""
    row: dict[str, Any] = {"text": "all sentences (sums)", "frames": "-", "bucket": "-", "snr_db": float("nan")}
    for key in ("cpu", "user", "sys", "wall"):
        per_process = []
        for p in processes:
            sums = {
                e: [sum(s["runs"][e][r][key] for s in p["sentences"]) for r in range(len(p["sentences"][0]["runs"][e]))]
                for e in ("mlx", "portable")
            }
            found = [a / b for a, b in zip(sums["portable"], sums["mlx"]) if b > 0]
            if found:
                per_process.append(statistics.median(found))
        per_process = per_process or [float("nan")]
        row[key] = statistics.median(per_process) - 1
        row[f"{key}_range"] = (min(per_process) - 1, max(per_process) - 1)
    totals = [
        sum(_total(x, "portable") for x in p["sentences"]) / sum(_total(x, "mlx") for x in p["sentences"]) - 1
        for p in processes
    ]
    row["cpu_totals"], row["cpu_totals_all"] = statistics.median(totals), sorted(totals)
    for engine in ("mlx", "portable"):
        for key in ("cpu", "sys", "faults"):
            row[f"{engine}_{key}"] = statistics.median(
                sum(s["runs"][engine][r][key] for s in p["sentences"])
                for p in processes
                for r in range(len(p["sentences"][0]["runs"][engine]))
            )
    return row


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def report(label: str, rows: list[dict[str, Any]], count: int) -> None:
    print(f"\n{label}: {count} processes; overhead = median over processes of the per-process median of")
    print("portable / MLX per round (range over processes); CPU s per call: medians of all calls")
    print("| sentence | frames in bucket | CPU overhead (range) | user | sys | wall | MLX CPU s | portable CPU s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        lo, hi = r["cpu_range"]
        print(
            f"| {r['text'][:28]} | {r['frames']} in {r['bucket']} | {r['cpu']:+.1%} ({lo:+.1%} .. {hi:+.1%}) | "
            f"{r['user']:+.1%} | {r['sys']:+.1%} | {r['wall']:+.1%} | {r['mlx_cpu']:.3f} | {r['portable_cpu']:.3f} |"
        )
    sys_pairs = ", ".join(f"{r['mlx_sys']:.3f}/{r['portable_sys']:.3f}" for r in rows)
    fault_pairs = ", ".join(f"{r['mlx_faults']:.0f}/{r['portable_faults']:.0f}" for r in rows)
    print(f"sys s per call, MLX / portable: {sys_pairs}")
    print(f"minor faults per call, MLX / portable: {fault_pairs}")
    for r in rows:  # the steadier estimate: each process's CPU summed over all its rounds, portable over MLX
        spread = ", ".join(f"{t:+.1%}" for t in r["cpu_totals_all"])
        print(f"CPU overhead from each process's totals, {r['text'][:28]}: median {r['cpu_totals']:+.1%} ({spread})")
    snrs = ", ".join(f"{r['snr_db']:.1f}" for r in rows)
    print(f"SNR portable vs MLX (dB, lowest over processes): {snrs}")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--packages", type=Path, help="a `convert kokoro` output folder (real weights)")
    parser.add_argument(
        "--text", action="append", default=[], help="a sentence (repeat; default: five of ~40-410 frames)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds per sentence per process")
    parser.add_argument("--processes", type=int, default=4, help="processes per code version")
    parser.add_argument(
        "--code", action="append", default=[], help="NAME=python/ folder (repeat to compare; default: this checkout)"
    )
    parser.add_argument("--one-core", action="store_true", help="taskset to one core, one thread everywhere")
    parser.add_argument("--core", type=int, default=0)
    parser.add_argument("--out", type=Path, help="write every call's figures here as JSON (after each process)")
    parser.add_argument("--summarize", type=Path, help="only print the tables of an --out file (a run cut short)")
    parser.add_argument("--isolated", type=Path, help=argparse.SUPPRESS)  # child: the python/ folder to import from
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    args.text = args.text or list(SENTENCES)
    if args.isolated is not None:
        isolated(args.isolated, [a for a in argv if a != "--isolated" and a != str(args.isolated)] + ["--child"])
        return
    if args.child:
        print(json.dumps(child(args.packages, args.text, args.rounds)))
        return
    if args.summarize is not None:
        runs = json.loads(args.summarize.read_text())["runs"]
        for name, results in runs.items():
            if results:
                print(f"{name} = {results[0]['code']}; load per process {[round(r['load'], 1) for r in results]}")
                report(name, summary(results), len(results))
        return
    codes = [tuple(c.split("=", 1)) for c in args.code] or [("this", str(ROOT / "python"))]
    load_before, started = os.getloadavg(), time.strftime("%H:%M:%S", time.gmtime())
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in codes}
    for _ in range(args.processes):
        for name, code in codes:
            result = spawn(Path(code).resolve(), args)
            result["load"] = os.getloadavg()[0]
            runs[name].append(result)
            print(f"{name}: process {len(runs[name])} done, load {result['load']:.1f}", file=sys.stderr)
            if args.out is not None:  # so far: a run cut short still leaves its processes
                args.out.write_text(json.dumps({"runs": runs}) + "\n")
    load_after = os.getloadavg()
    print(
        f"CPU: {cpu_model()}, {os.cpu_count()} cores; {'one core (taskset), one thread' if args.one_core else 'default threads'}"
    )
    print(
        f"UTC {started} - {time.strftime('%H:%M:%S', time.gmtime())}; load average {load_before[0]:.1f} before, "
        f"{load_after[0]:.1f} after; per process: {[round(r['load'], 1) for v in runs.values() for r in v]}"
    )
    summaries = {name: summary(results) for name, results in runs.items()}
    for name, _ in codes:
        print(f"{name} = {runs[name][0]['code']}")
        report(name, summaries[name], len(runs[name]))
    if args.out is not None:
        args.out.write_text(json.dumps({"runs": runs, "summary": summaries}, indent=1) + "\n")


if __name__ in ("__main__", "__child__"):
    main(sys.argv[1:])
