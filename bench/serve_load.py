"""Load test of `mlx-audio-coreml serve` on loopback: bounded, stops by itself.

1. Starts the real server (`python -m mlx_audio_coreml serve`) in its own process on a free
   loopback port, and waits for /health.
2. Calibrates: `--calibrate` requests one at a time give the service time S, so the sustainable
   rate is workers / S.
3. Overload: `--requests` (default 1,000) requests with real clips (pocketsphinx-testdata and
   jfk.wav), arriving open-loop at `--overload` (default 4) times the sustainable rate, from up to
   `--clients` concurrent clients. 429s are expected; 5xx and lost requests (no HTTP answer) are not.
4. Prints latency percentiles of the answered (200) requests, throughput, counts by status, and
   the server's resident memory before, every 100 requests, and after. Exits 1 if any 5xx or lost
   request was seen, or if resident memory grew more than `--rss-slack-mb` over the run.

    .venv/bin/python bench/serve_load.py --model tiny.en --requests 1000 --overload 4
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
TESTDATA = Path("/usr/share/pocketsphinx/test/data")


@dataclass(frozen=True)
class Outcome:
    status: int  # 0: lost (no HTTP answer)
    seconds: float
    sent_at: float


def real_clips() -> list[tuple[str, bytes]]:
    """(name, wav bytes) of short real recordings: the raw pocketsphinx ones and jfk.wav."""
    clips = []
    for name in ("goforward.raw", "something.raw", "numbers.raw"):
        path = TESTDATA / name
        if path.is_file():
            samples = np.frombuffer(path.read_bytes(), dtype="<i2")
            buffer = io.BytesIO()
            sf.write(buffer, samples, 16000, format="WAV", subtype="PCM_16")
            clips.append((name.replace(".raw", ".wav"), buffer.getvalue()))
    clips.append(("jfk.wav", (ROOT / "samples" / "jfk.wav").read_bytes()))
    return clips


def resident_mb(pid: int) -> float:
    """Resident set size of `pid` in MiB (Linux /proc, else ps)."""
    status = Path(f"/proc/{pid}/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    out = subprocess.run(["ps", "-o", "rss=", "-p", str(pid)], capture_output=True, text=True, check=False).stdout
    return int(out.strip() or 0) / 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(args: argparse.Namespace, port: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "mlx_audio_coreml", "serve", "--model", args.model, "--port", str(port),
               "--max-queued", str(args.max_queued), "--workers", str(args.workers), "--log-level", "warning"]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited: {server.stderr.read().decode() if server.stderr else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.5)
    server.kill()
    raise SystemExit("the server did not answer /health within 300 s")


def send(client: httpx.Client, url: str, clip: tuple[str, bytes], model: str) -> Outcome:
    started = time.monotonic()
    try:
        response = client.post(url, files={"file": (clip[0], clip[1], "audio/wav")}, data={"model": model})
        return Outcome(response.status_code, time.monotonic() - started, started)
    except httpx.HTTPError:
        return Outcome(0, time.monotonic() - started, started)


def calibrate(url: str, clips: list, model: str, n: int) -> float:
    """Median seconds per request, one at a time (after one warm-up per clip)."""
    with httpx.Client(timeout=300) as client:
        for clip in clips:
            send(client, url, clip, model)
        seconds = [send(client, url, clips[i % len(clips)], model).seconds for i in range(n)]
    return statistics.median(seconds)


def overload(
    url: str, clips: list, args: argparse.Namespace, rate: float, pid: int
) -> tuple[list[Outcome], list[float]]:
    """`args.requests` requests arriving at `rate` per second; RSS sampled every 100 sent."""
    local = threading.local()
    outcomes: list[Outcome] = []
    rss = [resident_mb(pid)]

    def one(i: int) -> Outcome:
        if not hasattr(local, "client"):
            local.client = httpx.Client(timeout=args.timeout)
        return send(local.client, url, clips[i % len(clips)], args.model)

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=args.clients) as pool:
        futures = []
        for i in range(args.requests):
            time.sleep(max(0.0, start + i / rate - time.monotonic()))  # open loop: arrivals do not wait for answers
            futures.append(pool.submit(one, i))
            if (i + 1) % 100 == 0:
                rss.append(resident_mb(pid))
        outcomes = [f.result() for f in futures]
    rss.append(resident_mb(pid))
    return outcomes, rss


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def report(outcomes: list[Outcome], rss: list[float], service_s: float, rate: float, args: argparse.Namespace) -> bool:
    counts = Counter(o.status for o in outcomes)
    ok = [o.seconds for o in outcomes if o.status == 200]
    span = max(o.sent_at + o.seconds for o in outcomes) - min(o.sent_at for o in outcomes)
    server_errors = sum(n for status, n in counts.items() if status >= 500)
    lost = counts.get(0, 0)
    growth = rss[-1] - rss[1] if len(rss) > 2 else rss[-1] - rss[0]
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(f"\nmachine: {platform.machine()} {platform.system()}, {os.cpu_count()} cores, load avg {load[0]:.2f}")
    print(f"model {args.model}, workers {args.workers}, queue {args.max_queued}, clients {args.clients}")
    print(
        f"service time (1 at a time, median): {service_s:.3f} s -> sustainable {1 / service_s * args.workers:.2f} req/s"
    )
    print(f"offered: {rate:.2f} req/s ({args.overload:g}x) for {args.requests} requests over {span:.1f} s")
    print("\n| status | count |\n| --- | --- |")
    for status, n in sorted(counts.items()):
        print(f"| {status if status else 'lost'} | {n} |")
    print(
        f"\nlatency of 200s (s): p50 {percentile(ok, 50):.3f}  p95 {percentile(ok, 95):.3f}  p99 {percentile(ok, 99):.3f}"
    )
    print(f"throughput: {len(ok) / span:.2f} answered req/s ({len(ok)} x 200 in {span:.1f} s)")
    print(
        f"server RSS (MiB): before {rss[0]:.1f}, every 100 requests {[round(r) for r in rss[1:-1]]}, after {rss[-1]:.1f}"
    )
    print(f"RSS growth after the first 100 requests: {growth:+.1f} MiB (allowed {args.rss_slack_mb:g})")
    held = server_errors == 0 and lost == 0 and growth <= args.rss_slack_mb
    print(f"\n5xx: {server_errors}, lost: {lost} -> {'HELD' if held else 'FAILED'}")
    return held


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--overload", type=float, default=4.0, help="offered rate over the sustainable rate")
    parser.add_argument("--clients", type=int, default=32, help="most requests in flight at once")
    parser.add_argument("--calibrate", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--max-queued", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=120.0, help="a request unanswered this long is lost")
    parser.add_argument("--rss-slack-mb", type=float, default=64.0)
    args = parser.parse_args()
    clips = real_clips()
    port = free_port()
    server = start_server(args, port)
    url = f"http://127.0.0.1:{port}/v1/audio/transcriptions"
    try:
        service_s = calibrate(url, clips, args.model, args.calibrate)
        rate = args.overload * args.workers / service_s
        outcomes, rss = overload(url, clips, args, rate, server.pid)
        held = report(outcomes, rss, service_s, rate, args)
    finally:
        server.terminate()  # SIGTERM: uvicorn drains and exits
        server.wait(60)
    return 0 if held else 1


if __name__ == "__main__":
    sys.exit(main())
