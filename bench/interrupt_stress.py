"""Interrupt the CLI many times in the middle of a long transcription; count how each run ended.

Why: tests/whisper/decode/test_decode_cli.py sends one signal per run, and a rare bad ending gets
past it. This sends SIGTERM (or SIGINT) to `mlx-audio-coreml transcribe samples/jfk.wav LONG` at
a random moment inside the second file, N times, and prints a table of (exit code, "interrupted"
printed) with a count each. A clean run exits 130 and prints "interrupted". `--patch block` runs
the CLI with each decoder block's kernels called from Python instead of in one C call (host_block),
to compare.

    python3 bench/interrupt_stress.py --runs 25 [--signal INT] [--patch block]

Found on 2026-12-07 (AMD EPYC, 2 cores, tiny.en, the CLI's defaults, code at 97244f1), 25 runs each:
with our C kernels, 2-3 runs ended in glibc's "corrupted size vs. prev_size" abort (exit -6), also
with MLX_AUDIO_COREML_STEP_TEAM=0; with MLX_AUDIO_COREML_CPU_KERNELS=none, and with `--patch block`,
25 of 25 were clean. The cause, found from a core dump: oneDNN's sgemm kernels run with the stack
pointer in a heap buffer, and the signal's frame was written there (cpu/signal_stack.py). With each
thread given an alternate signal stack: 25 of 25 clean (130, "interrupted"), same machine and seed.

Found on 2026-12-07 (session 12, code at b4a4a7d), SIGINT: 1 of 20 runs (seed 5) and 1 of 80 (seed 11)
ran on to the end and exited 0 without "interrupted" (the other 139 clean). A handler that printed
its stack showed it ran at a decoder step's `mx.array(logits ...)`: MLX's array constructor drops a
KeyboardInterrupt raised while it converts a numpy array (cancel.py). With the CLI's handler noting
each signal and the decoding loops raising a dropped one again (cancel.raise_dropped_interrupt):
80 of 80 clean (seed 11). Runs that do not end cleanly now print what the CLI wrote last.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests")]

# run in the child: optional patches, then the CLI's own entry point
_CHILD = """
import sys
import mlx_audio_coreml
if "block" in sys.argv[1].split(","):
    from mlx_audio_coreml.whisper import host_block
    host_block.applies = lambda w: False
from mlx_audio_coreml.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _long_audio(folder: Path) -> Path:
    """~250 s of real speech (the LibriVox clips ten times), as the CLI test uses."""
    from speech_data import librivox_clips

    pieces = [soundfile.read(str(path), dtype="float32")[0] for path, _ in librivox_clips()] * 10
    if not pieces:
        raise SystemExit("the LibriVox clips of pocketsphinx-testdata are not installed")
    path = folder / "long.wav"
    soundfile.write(str(path), np.concatenate(pieces), 16000)
    return path


def _one_run(long_wav: Path, patch: str, signum: int, rng: random.Random) -> tuple[int, bool, str]:
    command = [
        sys.executable,
        "-u",
        "-c",
        _CHILD,
        patch,
        "transcribe",
        str(ROOT / "samples" / "jfk.wav"),
        str(long_wav),
    ]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stderr is not None
    for line in process.stdout:
        if line.startswith("==> ") and "long.wav" in line:
            break
    delay = rng.uniform(0.2, 3.0)
    time.sleep(delay)  # somewhere inside the second file (it takes ~10 s here)
    process.send_signal(signum)
    code = process.wait(timeout=300)
    stderr = process.stderr.read()
    return code, "interrupted" in stderr, f"signal {delay:.2f} s into the second file; stderr ends:\n{stderr[-3000:]}"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=25)
    parser.add_argument("--signal", choices=["TERM", "INT"], default="TERM")
    parser.add_argument("--patch", default="", help="comma-separated: block (each block's kernels from Python)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    settings = {k: v for k, v in os.environ.items() if k.startswith("MLX_AUDIO_COREML_")}
    print(f"runs {args.runs}, SIG{args.signal}, patch {args.patch or 'none'}, settings {settings}")
    print(f"load before {os.getloadavg()[:3]}")
    counts: collections.Counter[tuple[int, bool]] = collections.Counter()
    with tempfile.TemporaryDirectory() as folder:
        long_wav = _long_audio(Path(folder))
        for _ in range(args.runs):
            code, said, detail = _one_run(long_wav, args.patch, getattr(signal, f"SIG{args.signal}"), rng)
            counts[code, said] += 1
            if (code, said) != (130, True):  # not a clean interrupt: what the CLI wrote last
                print(f"exit {code}, interrupted printed: {said}; {detail}", flush=True)
    print(f'load after {os.getloadavg()[:3]}\n\n| exit code | printed "interrupted" | runs |\n| --- | --- | --- |')
    for (code, said), count in sorted(counts.items()):
        print(f"| {code} | {said} | {count} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
