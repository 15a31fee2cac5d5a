"""Kokoro-82M text to speech on this CPU: mlx-audio-coreml (MLX + the host kernels) vs onnxruntime on the int8 graph.

Same token ids, same reference style, same speed for both engines: the ids come from our text frontend
(espeak-ng), the style from the voice pack, and both engines run them. Each engine lives in its own
worker process (so each one's peak RSS is its own); after one warm-up each, they take turns, one
synthesis each per round, so a noisy shared CPU slows them alike. Cases: one sentence, and a paragraph
(its chunks as the session merges them, run one after the other). Also the first-chunk latency of
`KokoroSession.stream` on the paragraph (sentence by sentence), against onnxruntime on that same first
sentence (what an application splitting sentences itself would wait). Prints the CPU model and load
average before and after, a table of medians (wall and CPU time: on a shared machine the CPU time of
each engine's process is the steadier measure), real-time factors and ratios, and puts it first in
bench/results/kokoro_cpu.md as a dated section, earlier runs kept below.

    .venv/bin/python bench/kokoro_cpu.py --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_RATE = 24000
SENTENCE = "The quick brown fox jumps over the lazy dog, then runs far away into the quiet forest."
PARAGRAPH = (
    "Every morning the old lighthouse keeper climbed the narrow stairs to check the lamp. "
    "He wiped the salt from the windows and wrote the weather in a small blue notebook. "
    "In the evening he made tea, listened to the radio, and watched the waves roll in."
)


ENGINES = ("ours", "ours-int8", "onnxruntime")  # ours: float32 (the default); ours-int8: generator.host_int8
PEER = "onnxruntime"


def _model_dir() -> Path:
    home = Path(os.environ.get("MLX_AUDIO_COREML_HOME", Path.home() / ".cache" / "mlx-audio-coreml"))
    return home / "models" / "kokoro"


# ---- workers (one process per engine; JSON lines on stdin/stdout) ----


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _cpu_seconds() -> float:
    """User + system CPU time of this worker process, all its threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _serve(handlers: dict[str, Any], hello: dict[str, Any]) -> None:
    out = sys.stdout
    sys.stdout = sys.stderr  # anything a library prints must not corrupt the protocol
    out.write(json.dumps(hello) + "\n")
    out.flush()
    for line in sys.stdin:
        request = json.loads(line)
        reply = handlers[request["cmd"]](request)
        reply["peak_rss_mb"] = _peak_rss_mb()
        out.write(json.dumps(reply) + "\n")
        out.flush()


def worker_ours(voice: str, int8: bool) -> None:
    import mlx_audio_coreml  # noqa: F401, I001  (loads OpenBLAS before MLX)
    import mlx.core as mx
    import numpy as np

    from mlx_audio_coreml.kokoro.session import KokoroSession

    session = KokoroSession.from_pretrained(str(_model_dir()))
    pipeline = session.pipeline  # the model and vocoder the session speaks with
    assert pipeline is not None
    pipeline.model.decoder.generator.host_int8 = int8  # type: ignore[attr-defined]  # opt-in int8 products
    pack = session.voice_library.get(voice)  # type: ignore[union-attr]
    cases = {
        "sentence": [c.token_ids for c in session.chunks(SENTENCE, merge=True)],
        "paragraph": [c.token_ids for c in session.chunks(PARAGRAPH, merge=True)],
        "first sentence": [session.chunks(PARAGRAPH, merge=False)[0].token_ids],
    }

    def run(request: dict[str, Any]) -> dict[str, Any]:
        start, cpu, samples = time.perf_counter(), _cpu_seconds(), 0
        for ids in request["chunks"]:
            style = mx.array(pack[len(ids) - 1].reshape(1, 256))
            features, durations = pipeline.model.features(mx.array([[0, *ids, 0]], dtype=mx.int32), style, 1.0)
            audio = pipeline.vocoder.decode(features)
            mx.eval(audio, durations)
            samples += int(np.array(audio).shape[-1])
        return {"seconds": time.perf_counter() - start, "cpu": _cpu_seconds() - cpu, "samples": samples}

    def stream(_: dict[str, Any]) -> dict[str, Any]:
        start, cpu = time.perf_counter(), _cpu_seconds()
        pieces = session.stream(PARAGRAPH, voice=voice)
        first = next(iter(pieces))
        return {
            "seconds": time.perf_counter() - start,
            "cpu": _cpu_seconds() - cpu,
            "samples": int(first.audio.shape[-1]),
        }

    _serve({"run": run, "stream": stream}, {"cases": cases, "threads": _threads()})


def worker_ort(voice: str, threads: int, spin: bool) -> None:
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    # Idle intra-op threads spin by default: CPU time burnt waiting, which would count against it here
    # (and slow everyone on a shared machine). Off unless --ort-spin.
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    session = ort.InferenceSession(
        str(_model_dir() / "kokoro-v1.0.int8.onnx"), options, providers=["CPUExecutionProvider"]
    )
    pack = np.load(_model_dir() / "voices" / f"{voice}.npy")

    def run(request: dict[str, Any]) -> dict[str, Any]:
        start, cpu, samples = time.perf_counter(), _cpu_seconds(), 0
        for ids in request["chunks"]:
            feeds = {
                "tokens": np.array([[0, *ids, 0]], np.int64),
                "style": pack[len(ids) - 1].reshape(1, 256).astype(np.float32),
                "speed": np.array([1.0], np.float32),
            }
            (audio,) = session.run(["audio"], feeds)
            samples += int(np.asarray(audio).size)
        return {"seconds": time.perf_counter() - start, "cpu": _cpu_seconds() - cpu, "samples": samples}

    _serve({"run": run}, {"version": ort.__version__, "threads": threads})


def _threads() -> int:
    from mlx_audio_coreml.cpu import pool

    return pool.worker_count()


# ---- the parent: turns, table ----


class Worker:
    def __init__(self, engine: str, voice: str, threads: int, ort_spin: bool) -> None:
        command = [sys.executable, __file__, "--worker", engine, "--voice", voice, "--threads", str(threads)]
        command += ["--ort-spin"] if ort_spin else []
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        self.hello = self._read()

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.process.args} exited with {self.process.wait()}")
        return json.loads(line)

    def ask(self, **request: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait()


def _machine() -> str:
    model = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} logical cores, {platform.system()} {platform.release()}"


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _turns(
    workers: dict[str, Worker], cases: dict[str, list[list[int]]], repeats: int
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for worker in workers.values():
        worker.ask(cmd="run", chunks=next(iter(cases.values())))  # warm-up: first-call costs are not speed
    for case, chunks in cases.items():
        for _ in range(repeats):
            for name, worker in workers.items():
                results.setdefault((name, case), []).append(worker.ask(cmd="run", chunks=chunks))
    return results


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def _table(
    results: dict[tuple[str, str], list[dict[str, Any]]],
    cases: dict[str, list[list[int]]],
    streams: dict[str, list[dict[str, Any]]],
) -> list[str]:
    lines = ["| case | tokens | engine | audio s | wall s (median) | CPU s (median) | RTF (wall) | CPU s per audio s "
             "| onnxruntime / ours, wall | onnxruntime / ours, CPU |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for case, chunks in cases.items():
        peer = results[(PEER, case)]
        for engine in ENGINES:
            runs = results[(engine, case)]
            wall, cpu, audio = _median(runs, "seconds"), _median(runs, "cpu"), runs[0]["samples"] / SAMPLE_RATE
            ratios = (
                "| |"
                if engine == PEER
                else f"| {_median(peer, 'seconds') / wall:.2f}x | {_median(peer, 'cpu') / cpu:.2f}x |"
            )
            lines.append(f"| {case} | {sum(len(c) for c in chunks)} | {engine} | {audio:.2f} | {wall:.2f} | {cpu:.2f} | "
                         f"{wall / audio:.3f} | {cpu / audio:.3f} {ratios}")  # fmt: skip
    peer_first = results[(PEER, "first sentence")]
    lines.append("")
    for engine, stream in streams.items():
        lines.append(f"First-chunk latency of KokoroSession.stream ({engine}; paragraph, sentence by sentence, G2P "
                     f"included): {_median(stream, 'seconds'):.2f} s wall, {_median(stream, 'cpu'):.2f} s CPU (medians).")  # fmt: skip
    lines.append(f"onnxruntime on that first sentence (ids given): {_median(peer_first, 'seconds'):.2f} s wall, "
                 f"{_median(peer_first, 'cpu'):.2f} s CPU (medians).")  # fmt: skip
    return lines


def _write(path: Path, section: list[str]) -> None:
    """Put this run's section first under the title, the earlier sections kept below it."""
    title = "# Kokoro-82M on the CPU: mlx-audio-coreml vs onnxruntime (int8 graph)"
    earlier = path.read_text().split("\n", 1)[1].lstrip("\n") if path.exists() else ""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([title, "", *section, "", earlier]).rstrip("\n") + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--voice", default="jf_alpha")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--ort-spin", action="store_true", help="let onnxruntime's idle threads spin (its default)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "kokoro_cpu.md")
    parser.add_argument("--note", default="", help="a line added to the report (e.g. what else ran meanwhile)")
    parser.add_argument("--worker", choices=ENGINES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker in ("ours", "ours-int8"):
        return worker_ours(args.voice, int8=args.worker == "ours-int8")
    if args.worker == PEER:
        return worker_ort(args.voice, args.threads, args.ort_spin)

    header = [f"Machine: {_machine()}", f"Load average before: {_load()}"]
    print("\n".join(header), flush=True)
    workers = {engine: Worker(engine, args.voice, args.threads, args.ort_spin) for engine in ENGINES}
    cases: dict[str, list[list[int]]] = workers["ours"].hello["cases"]
    results = _turns(workers, cases, args.repeats)
    streams: dict[str, list[dict[str, Any]]] = {engine: [] for engine in ENGINES if engine != PEER}
    for _ in range(args.repeats):
        for engine in streams:
            streams[engine].append(workers[engine].ask(cmd="stream"))
    rss = {name: w.ask(cmd="run", chunks=cases["sentence"])["peak_rss_mb"] for name, w in workers.items()}
    for worker in workers.values():
        worker.close()
    section = [
        f"## Run of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "",
        *header, f"onnxruntime {workers['onnxruntime'].hello['version']}, {args.threads} intra-op threads "
        f"({'spinning' if args.ort_spin else 'not spinning'} while idle); ours: {workers['ours'].hello['threads']} host "
        "workers, float32 (default) and with the generator's opt-in int8 products; voice "
        f"{args.voice}, speed 1; {args.repeats} timed rounds after one warm-up, engines in turns. CPU s: user + system "
        "time of the engine's process (all threads).", *([args.note] if args.note else []), "",
        *_table(results, cases, streams), "",
        "Peak RSS over the whole run (each engine in its own process): "
        + ", ".join(f"{name} {mb:.0f} MB" for name, mb in rss.items()) + ".",
        f"Load average after: {_load()}", "",
        "Command: `.venv/bin/python bench/kokoro_cpu.py " + " ".join(sys.argv[1:]) + "`",
    ]  # fmt: skip
    print("\n".join(section))
    _write(args.out, section)


if __name__ == "__main__":
    main()
