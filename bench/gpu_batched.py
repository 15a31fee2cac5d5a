"""Batched Whisper throughput on one GPU: audio seconds per second, ours vs transformers' batched recipe,
and where each pipeline's time goes.

The peer is the core of insanely-fast-whisper's recipe (transformers, float16, sdpa, batch 24):
WhisperFeatureExtractor over 30 s chunks, then `generate` on 24 chunks at a time. Ours: the
product's log-mel per chunk (as whisper/batched.py), the encoder on a batch of windows (on CUDA
through gpu_encoder's layout), the product's greedy token loop (gpu_loop.decode_tokens: on a GPU
the device-resident loop, every row stopping on its own, with the logit filters). Variants of ours
change one thing each (gpu_batched_engines.Plan): the cache layout of the step, the mel as run 1
made it, the encoder's module path, the next batch's mel+encoder queued or run on a second
stream during this batch's decode; both engines also at a larger batch (--big-batch).
Random weights at large-v3-turbo shapes (nothing downloaded), so every chunk decodes exactly
`--tokens` tokens on both sides (EOT never stops ours: eot=-1; transformers: min_new_tokens =
max_new_tokens): the same work. Audio: samples/jfk.wav (real speech) repeated to `--chunks` x 30 s,
cut into non-overlapping 30 s chunks for both engines. Engines run in turns, `--rounds` times after
a warm-up round; the median counts. Then one run of some engines waits for the device after each
phase (the breakdown), and pieces of one decoder step are timed alone (gpu_batched_micro).
Everything is printed as it comes and the tables are rewritten after every round and row (a
failing engine or row says why; the others go on); sections past `--budget-s` are skipped.

GPU (H100):
    source /root/w/env.sh && PYTHONPATH=python:/tmp/site python3 bench/gpu_batched.py --out gpu_batched_h100_s5
CPU smoke test:
    .venv/bin/python bench/gpu_batched.py --dims tiny.en --dtype float32 --chunks 4 --batch 2 --big-batch 4 --tokens 3 --rounds 1 --out /tmp/smoke
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gpu_batched_engines as eng  # noqa: E402
import gpu_batched_micro as micro  # noqa: E402
import gpu_common as gc  # noqa: E402
from mlx_audio_coreml.whisper import batched  # noqa: E402
from mlx_audio_coreml.whisper.static_step import LAYOUT, StepLayout  # noqa: E402

import mlx.core as mx  # noqa: E402  # isort: skip

Run = Callable[[eng.Parts | None], float]  # one pass over all chunks: seconds (phases into Parts if given)


def product(batch: int) -> eng.Plan:
    """Our pipeline as the product runs it: whisper/batched.py's mel and encoding ahead, the default step layout."""
    return eng.Plan(batch, LAYOUT, overlap="stream" if batched.ENCODE_AHEAD else "none")


def engines(args: argparse.Namespace, model: object, bundle: tuple | str, audio: object) -> dict[str, tuple[int, Run]]:
    """name -> (batch, run). The first is the product; names starting "transformers" are the peer."""
    d, b, big = gc.DIMS[args.dims], args.batch, args.big_batch
    ahead = ", next batch encoded ahead on a 2nd stream" if batched.ENCODE_AHEAD else ""
    plans = {
        f"ours b{b}: product (per-chunk mel, gpu_encoder, device loop, select writes{ahead})": product(b),
        f"ours b{b}: as run 1 (whole-clip mel, slice_update writes, whole self cache)": eng.Plan(
            b, StepLayout(select_write_rows=4, span_quantum=0), mel="clip"
        ),
        f"ours b{b}: self cache kept at 128-position spans (select writes and attention over the span)": eng.Plan(
            b, StepLayout(span_rows=0)
        ),
        f"ours b{b}: audio attention explicit (QK^T, softmax, AV)": eng.Plan(b, StepLayout(cross="explicit")),
        f"ours b{b}: audio keys/values padded to 1536 (cuDNN decode attention if MLX takes it)": eng.Plan(
            b, StepLayout(audio_pad=256)
        ),
        f"ours b{b}: as s5's product (slice_update writes, spans)": eng.Plan(
            b, StepLayout(select_write_rows=4, span_rows=4)
        ),
        f"ours b{b}: encoder module path (gpu_encoder off)": eng.Plan(b, module_encoder=True),
        f"ours b{b}: next batch's mel+encoder queued before this decode": eng.Plan(b, overlap="queue"),
        f"ours b{b}: next batch's mel+encoder on a 2nd GPU stream": eng.Plan(b, overlap="stream"),
        f"ours b{b}: 2nd GPU stream + audio keys/values padded (cuDNN)": eng.Plan(
            b, StepLayout(audio_pad=256), overlap="stream"
        ),
        f"ours b{b}: 2nd GPU stream + explicit audio attention": eng.Plan(
            b, StepLayout(cross="explicit"), overlap="stream"
        ),
    }
    if big:
        plans[f"ours b{big}: product{ahead}"] = product(big)
    found: dict[str, tuple[int, Run]] = {
        name: (plan.batch, lambda parts, plan=plan: eng.ours(model, d, audio, args.chunks, args.tokens, plan, parts))
        for name, plan in plans.items()
    }
    if not isinstance(bundle, str):
        for batch in [b, big] if big else [b]:
            found[f"transformers b{batch}: generate (fp16, sdpa)"] = (
                batch,
                lambda parts, batch=batch: eng.peer(bundle, d, audio, args.chunks, args.tokens, batch, parts),
            )
    return found


def throughput_table(args: argparse.Namespace, runs: dict[str, list[float]], batches: dict[str, int],
                     failed: dict[str, str]) -> list[str]:  # fmt: skip
    """One row per engine: median seconds, audio s / s, and x the peer at the goal's batch and at its own."""
    audio_s = args.chunks * eng.CHUNK_S
    peer = {batches[n]: statistics.median(r) for n, r in runs.items() if n.startswith("transformers") and r}
    goal = peer.get(args.batch, float("nan"))
    lines = [
        f"| engine | batch | s in all (median) | audio s / s | x transformers b{args.batch} (goal: >= 2) "
        "| x transformers at the same batch |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, found in runs.items():
        if not found:
            lines.append(f"| {name} | {batches[name]} | {failed.get(name, 'no run finished')} | - | - | - |")
            continue
        s = statistics.median(found)
        same = peer.get(batches[name], float("nan"))
        lines.append(f"| {name} | {batches[name]} | {s:.3f} | {audio_s / s:.0f} | {goal / s:.2f} | {same / s:.2f} |")
    return lines


def breakdown_row(name: str, batch: int, args: argparse.Namespace, parts: eng.Parts, run_s: float | None) -> str:
    """A waited-for run's phases, ms per decoder step of the batch, and the unwaited median against their sum."""
    p = parts.seconds
    batches = -(-args.chunks // batch)
    total = sum(p.values())
    per_window = p["encoder"] * 1e3 / args.chunks
    per_step = p["decode"] * 1e3 / (batches * args.tokens)
    median = f"{run_s:.3f} | {run_s - total:+.3f}" if run_s is not None else "- | -"
    return (
        f"| {name} | {p['mel']:.3f} | {p['encoder']:.3f} ({per_window:.2f}) | {p['prefill']:.3f} | "
        f"{p['decode']:.3f} | {per_step:.3f} | {total:.3f} | {median} |"
    )


BREAKDOWN_HEAD = [
    "| engine | mel s | encoder s (ms / window) | prefill s | decode s | ms / decoder step of the batch "
    "| sum of phases s | unwaited run s (median) | run - phases s |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--dims", choices=sorted(gc.DIMS), default="large-v3-turbo")
    parser.add_argument("--dtype", choices=("float16", "bfloat16", "float32"), default="float16")
    parser.add_argument("--chunks", type=int, default=48, help="30 s chunks of audio (48: 24 minutes)")
    parser.add_argument("--batch", type=int, default=24, help="the goal's batch (transformers at 24)")
    parser.add_argument("--big-batch", type=int, default=48, help="both engines also at this batch (0: not)")
    parser.add_argument("--tokens", type=int, default=100, help="tokens decoded per chunk, both engines")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--only", default="", help="comma-separated substrings: run only engines whose name has one")
    parser.add_argument("--budget-s", type=float, default=170.0, help="skip sections that would start after this")
    parser.add_argument(
        "--clear-cache", action="store_true", help="empty MLX's buffer cache after every run (run 1 did)"
    )
    parser.add_argument("--out", default="gpu_batched")
    return parser.parse_args()


class Report:
    """The header and the three sections, printed and written whole after every change."""

    def __init__(self, args: argparse.Namespace, header: list[str], began: float) -> None:
        self.args, self.header, self.began = args, header, began
        self.throughput: list[str] = []
        self.breakdown: list[str] = []
        self.micro: list[str] = []

    def elapsed(self) -> float:
        return time.perf_counter() - self.began

    def write(self, note: str) -> None:
        text = "\n".join([*self.header, "## Throughput", "", *self.throughput, "",
                          "## Breakdown (one run per engine, the device waited for after each phase)", "",
                          *BREAKDOWN_HEAD, *self.breakdown, "",
                          f"## One decoder step's pieces at batch {self.args.batch}, timed alone", "",
                          "| piece | ms per call |", "| --- | --- |", *self.micro, "", note])  # fmt: skip
        print(f"--- {note}\n{text}", flush=True)
        gc.write_result(self.args.out, text + "\n")


def throughput(args: argparse.Namespace, found: dict[str, tuple[int, Run]], report: Report) -> dict[str, list[float]]:
    """Every engine `--rounds` times after a warm-up round, in turns; the table rewritten after each round.
    The variants likeliest to fail hard (cuDNN attention, a second stream) have their rounds after the rest."""
    runs: dict[str, list[float]] = {name: [] for name in found}
    batches = {name: batch for name, (batch, _) in found.items()}
    failed: dict[str, str] = {}
    risky = [n for n in found if "2nd GPU stream" in n or "padded" in n]
    for group in ([n for n in found if n not in risky], risky):
        for round_ in range(args.rounds + 1):  # round 0 is the warm-up: compilation, cuBLAS handles, the allocator
            if report.elapsed() > args.budget_s * 0.6 and round_ > 1:
                break  # keep time for the breakdown
            for name in group:
                if name in failed:
                    continue
                try:
                    seconds = found[name][1](None)
                except Exception as exc:  # report it in the table, keep the other engines going
                    failed[name] = gc.not_available(exc)
                    continue
                finally:
                    mx.clear_cache() if args.clear_cache else None
                if round_ > 0:
                    runs[name].append(seconds)
            report.throughput = throughput_table(args, runs, batches, failed)
            report.write(f"after round {round_} of {args.rounds} (0: warm-up), {report.elapsed():.0f} s")
    return runs


def breakdown(
    args: argparse.Namespace, found: dict[str, tuple[int, Run]], runs: dict[str, list[float]], report: Report
) -> None:
    """One run of the product rows, run 1's way, the module encoder and the peers, waited for per phase."""
    keys = ("product", "as run 1", "module path", "transformers")
    for name, (batch, run) in found.items():
        if not any(k in name for k in keys) or not runs[name]:  # failed engines have no runs
            continue
        if report.elapsed() > args.budget_s:
            report.breakdown.append(f"| {name} | skipped: past --budget-s | | | | | | | |")
            continue
        parts = eng.Parts()
        try:
            run(parts)
            median = statistics.median(runs[name]) if runs[name] else None
            report.breakdown.append(breakdown_row(name, batch, args, parts, median))
        except Exception as exc:
            report.breakdown.append(f"| {name} | {gc.not_available(exc)} | | | | | | | |")
        finally:
            mx.clear_cache() if args.clear_cache else None
        report.write(f"breakdown row done, {report.elapsed():.0f} s")


def main() -> int:
    args = parse_args()
    began = time.perf_counter()
    d, dtype = gc.DIMS[args.dims], getattr(mx, args.dtype)
    model, _ = gc.build_ours(d, dtype)
    bundle = gc.load_peer(d, args.dtype)
    audio = eng.long_audio(args.chunks)
    found = engines(args, model, bundle, audio)
    if args.only:
        found = {n: v for n, v in found.items() if any(k in n for k in args.only.split(","))}
    header = [
        f"# Whisper {args.dims} ({args.dtype}, random weights): batched throughput, "
        f"{args.chunks * eng.CHUNK_S / 60:.0f} min of real speech",
        "",
        *gc.environment(bundle),
        f"- {args.chunks} non-overlapping 30 s chunks of samples/jfk.wav repeated, {args.tokens} tokens per chunk on "
        f"both sides; median of {args.rounds} rounds after a warm-up, engines in turns",
        f"- transformers: {bundle if isinstance(bundle, str) else 'WhisperFeatureExtractor (CPU) + generate'}",
        "- allocators: torch's caching allocator keeps its pool between runs; MLX's buffer cache "
        + (
            "is emptied after every run (--clear-cache, as run 1)" if args.clear_cache else "is kept too (steady state)"
        ),
        f"- setup (models built, audio read): {time.perf_counter() - began:.1f} s",
        "",
    ]
    report = Report(args, header, began)
    runs = throughput(args, found, report)
    breakdown(args, found, runs, report)
    if report.elapsed() < args.budget_s:
        try:
            nodes = micro.token_nodes(model, d, args.batch)
        except Exception as exc:
            nodes = gc.not_available(exc)
        report.micro = [f"| graph nodes of one token of the product's loop at b{args.batch} | {nodes} |"]
        for batch in sorted({1, args.batch, args.big_batch} - {0}):
            try:
                ms = f"{micro.decode_ms(model, d, batch, args.tokens):.3f}"
            except Exception as exc:
                ms = gc.not_available(exc)
            report.micro.append(
                f"| product loop alone at b{batch}, ms per step of the batch ({args.tokens} steps) | {ms} |"
            )
        report.write(f"graph nodes and loops alone done, {report.elapsed():.0f} s")
        report.micro += [f"| {label} | {ms if isinstance(ms, str) else f'{ms:.4f}'} |"
                         for label, ms in micro.pieces(d, dtype, args.batch)]  # fmt: skip
    report.write(f"done in {report.elapsed():.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
