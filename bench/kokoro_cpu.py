"""Kokoro-82M text to speech on this CPU: mlx-audio-coreml (MLX + the host kernels) vs onnxruntime on the int8 graph.

Same token ids, same reference style, same speed for both engines: the ids come from our text frontend
(espeak-ng), the style from the voice pack, and both engines run them. Each engine lives in its own
worker process (so each one's peak RSS is its own); after one warm-up each, they take turns, one
synthesis each per round, so a noisy shared CPU slows them alike. Cases: one sentence, and a paragraph
(its chunks as the session merges them, run one after the other). Also the first-chunk latency of
`KokoroSession.stream` on the paragraph (sentence by sentence), against onnxruntime on that same first
sentence (what an application splitting sentences itself would wait). Prints the CPU model and load
average before and after, a table of medians, real-time factors and ratios, and writes it to
bench/results/kokoro_cpu.md.

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
        start, samples = time.perf_counter(), 0
        for ids in request["chunks"]:
            style = mx.array(pack[len(ids) - 1].reshape(1, 256))
            features, durations = pipeline.model.features(mx.array([[0, *ids, 0]], dtype=mx.int32), style, 1.0)
            audio = pipeline.vocoder.decode(features)
            mx.eval(audio, durations)
            samples += int(np.array(audio).shape[-1])
        return {"seconds": time.perf_counter() - start, "samples": samples}

    def stream(_: dict[str, Any]) -> dict[str, Any]:
        start = time.perf_counter()
        pieces = session.stream(PARAGRAPH, voice=voice)
        first = next(iter(pieces))
        return {"seconds": time.perf_counter() - start, "samples": int(first.audio.shape[-1])}

    _serve({"run": run, "stream": stream}, {"cases": cases, "threads": _threads()})


def worker_ort(voice: str, threads: int) -> None:
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(
        str(_model_dir() / "kokoro-v1.0.int8.onnx"), options, providers=["CPUExecutionProvider"]
    )
    pack = np.load(_model_dir() / "voices" / f"{voice}.npy")

    def run(request: dict[str, Any]) -> dict[str, Any]:
        start, samples = time.perf_counter(), 0
        for ids in request["chunks"]:
            feeds = {
                "tokens": np.array([[0, *ids, 0]], np.int64),
                "style": pack[len(ids) - 1].reshape(1, 256).astype(np.float32),
                "speed": np.array([1.0], np.float32),
            }
            (audio,) = session.run(["audio"], feeds)
            samples += int(np.asarray(audio).size)
        return {"seconds": time.perf_counter() - start, "samples": samples}

    _serve({"run": run}, {"version": ort.__version__, "threads": threads})


def _threads() -> int:
    from mlx_audio_coreml.cpu import pool

    return pool.worker_count()


# ---- the parent: turns, table ----


class Worker:
    def __init__(self, engine: str, voice: str, threads: int) -> None:
        command = [sys.executable, __file__, "--worker", engine, "--voice", voice, "--threads", str(threads)]
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


def _table(
    results: dict[tuple[str, str], list[dict[str, Any]]],
    cases: dict[str, list[list[int]]],
    streams: dict[str, list[dict[str, Any]]],
) -> list[str]:
    lines = ["| case | tokens | engine | audio s | seconds (median) | RTF | onnxruntime time / ours |",
             "| --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for case, chunks in cases.items():
        peer = statistics.median(r["seconds"] for r in results[(PEER, case)])
        for engine in ENGINES:
            runs = results[(engine, case)]
            seconds, audio = statistics.median(r["seconds"] for r in runs), runs[0]["samples"] / SAMPLE_RATE
            ratio = "" if engine == PEER else f"{peer / seconds:.2f}x"
            lines.append(f"| {case} | {sum(len(c) for c in chunks)} | {engine} | {audio:.2f} | {seconds:.2f} | "
                         f"{seconds / audio:.3f} | {ratio} |")  # fmt: skip
    peer_first = statistics.median(r["seconds"] for r in results[(PEER, "first sentence")])
    lines.append("")
    for engine, stream in streams.items():
        lines.append(f"First-chunk latency of KokoroSession.stream ({engine}; paragraph, sentence by sentence, G2P "
                     f"included): {statistics.median(r['seconds'] for r in stream):.2f} s median.")  # fmt: skip
    lines.append(f"onnxruntime on that first sentence (ids given): {peer_first:.2f} s median.")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--voice", default="jf_alpha")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "kokoro_cpu.md")
    parser.add_argument("--note", default="", help="a line added to the report (e.g. what else ran meanwhile)")
    parser.add_argument("--worker", choices=ENGINES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker in ("ours", "ours-int8"):
        return worker_ours(args.voice, int8=args.worker == "ours-int8")
    if args.worker == PEER:
        return worker_ort(args.voice, args.threads)

    header = [f"Machine: {_machine()}", f"Load average before: {_load()}"]
    print("\n".join(header), flush=True)
    workers = {engine: Worker(engine, args.voice, args.threads) for engine in ENGINES}
    cases: dict[str, list[list[int]]] = workers["ours"].hello["cases"]
    results = _turns(workers, cases, args.repeats)
    streams: dict[str, list[dict[str, Any]]] = {engine: [] for engine in ENGINES if engine != PEER}
    for _ in range(args.repeats):
        for engine in streams:
            streams[engine].append(workers[engine].ask(cmd="stream"))
    rss = {name: w.ask(cmd="run", chunks=cases["sentence"])["peak_rss_mb"] for name, w in workers.items()}
    for worker in workers.values():
        worker.close()
    footer = [f"Load average after: {_load()}"]
    lines = [
        "# Kokoro-82M on the CPU: mlx-audio-coreml vs onnxruntime (int8 graph)", "",
        *header, f"onnxruntime {workers['onnxruntime'].hello['version']}, {args.threads} intra-op threads; "
        f"ours: {workers['ours'].hello['threads']} host workers, float32 (default) and with the generator's "
        f"opt-in int8 products; voice {args.voice}, speed 1; {args.repeats} timed rounds after one warm-up, "
        "engines in turns.", *([args.note] if args.note else []), "",
        *_table(results, cases, streams), "",
        "Peak RSS (each engine in its own process): " + ", ".join(f"{name} {mb:.0f} MB" for name, mb in rss.items()) + ".",
        *footer, "",
        "Command: `.venv/bin/python bench/kokoro_cpu.py " + " ".join(sys.argv[1:]) + "`",
    ]  # fmt: skip
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
