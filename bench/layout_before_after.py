"""Transcription speed of two commits of this project in one run: the layout move (issue #9) must not
change speed.

Each commit runs in its own worker process with its session loaded once; the workers take turns,
one transcription each per round, so a busy machine slows both alike. The old commit is checked
out as a git worktree and imported from there (the editable install's redirecting import finder is
removed in that worker only). Prints the CPU, load average before and after, and a table of
medians and the new/old ratio; writes bench/results/layout_before_after.md.

    .venv/bin/python bench/layout_before_after.py --old 286d6f1 --models tiny.en base --repeats 7
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WORKER = r"""
import json, sys, time
source = sys.argv[1]
if source != "-":
    sys.meta_path[:] = [f for f in sys.meta_path if "Redirecting" not in type(f).__name__]
    sys.path.insert(0, source)
import mlx_audio_coreml
from mlx_audio_coreml.options import ModelLoadingOptions, WhisperQuantization
from mlx_audio_coreml.whisper.session import WhisperSession
options = ModelLoadingOptions.mlx_only().with_(quantization=WhisperQuantization.FLOAT32)
session = WhisperSession.from_pretrained(sys.argv[2], options)
audio = sys.argv[3]
def run():
    segments, _ = session.transcribe(audio, language="en", beam_size=int(sys.argv[4]), temperature=0.0)
    return " ".join(s.text.strip() for s in segments)
run()  # warm-up
print(json.dumps({"ready": mlx_audio_coreml.__file__}), flush=True)
for line in sys.stdin:
    start = time.perf_counter()
    text = run()
    print(json.dumps({"seconds": time.perf_counter() - start, "text": text}), flush=True)
"""


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _worker(source: str, model: str, audio: str, beam: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", WORKER, source, model, audio, str(beam)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    assert proc.stdout is not None
    ready = json.loads(proc.stdout.readline())
    print(f"worker for {source}: imports {ready['ready']}", file=sys.stderr)
    return proc


def _ask(proc: subprocess.Popen[str]) -> dict[str, object]:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()
    return json.loads(proc.stdout.readline())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", default="286d6f1", help="commit before the layout move")
    parser.add_argument("--models", nargs="+", default=["tiny.en", "base"])
    parser.add_argument("--beam-sizes", nargs="+", type=int, default=[1])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--audio", default=str(ROOT / "samples" / "jfk.wav"))
    args = parser.parse_args()
    tree = Path("/tmp") / f"mlx-audio-coreml-{args.old}"
    if not tree.exists():
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), args.old], cwd=ROOT, check=True)
    new_commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    lines = [f"CPU: {_cpu()}; load average before: {_load()}", "",
             f"| model | beam | old ({args.old}) s | new ({new_commit}) s | new / old | same text |",
             "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for model in args.models:
        for beam in args.beam_sizes:
            workers = {
                "old": _worker(str(tree / "python"), model, args.audio, beam),
                "new": _worker("-", model, args.audio, beam),
            }
            times: dict[str, list[float]] = {name: [] for name in workers}
            texts: dict[str, str] = {}
            for _ in range(args.repeats):
                for name, proc in workers.items():
                    answer = _ask(proc)
                    times[name].append(float(answer["seconds"]))  # type: ignore[arg-type]
                    texts[name] = str(answer["text"])
            for proc in workers.values():
                proc.stdin.close()  # type: ignore[union-attr]
                proc.wait()
            old, new = statistics.median(times["old"]), statistics.median(times["new"])
            lines.append(
                f"| {model} | {beam} | {old:.3f} | {new:.3f} | {new / old:.2f}x | {texts['old'] == texts['new']} |"
            )
    lines += [
        "",
        f"Load average after: {_load()}; medians of {args.repeats} interleaved runs, float32, jfk.wav, English.",
    ]
    table = "\n".join(lines)
    print(table)
    out = ROOT / "bench" / "results" / "layout_before_after.md"
    out.write_text("# Transcription speed before and after the layout move (issue #9)\n\n"
                   f"`.venv/bin/python bench/layout_before_after.py {' '.join(sys.argv[1:])}`\n\n{table}\n")  # fmt: skip


if __name__ == "__main__":
    main()
