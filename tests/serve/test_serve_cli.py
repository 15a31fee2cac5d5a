"""`mlx-audio-coreml serve` as a process: serves on loopback with a key, and exits cleanly on SIGTERM
while a request is in flight (the request is answered first)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

from speech_data import JFK, real_model_dir

pytestmark = [pytest.mark.realweights, pytest.mark.slow]  # a process with its own model load


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_command_answers_then_drains_on_sigterm():
    if real_model_dir("tiny.en") is None:
        pytest.skip("real tiny.en weights not installed (scripts/fetch_models.sh)")
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mlx_audio_coreml", "serve", "--model", "tiny.en", "--port", str(port), "--api-key", "k"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        result: dict = {}

        def transcribe() -> None:
            with open(JFK, "rb") as f:
                result["response"] = httpx.post(
                    base + "/v1/audio/transcriptions", files={"file": ("jfk.wav", f, "audio/wav")},
                    data={"model": "tiny.en", "response_format": "text"}, headers={"Authorization": "Bearer k"},
                    timeout=300,
                )  # fmt: skip

        thread = threading.Thread(target=transcribe)
        thread.start()
        while httpx.get(base + "/health", timeout=5).json()["running"] == 0 and thread.is_alive():
            time.sleep(0.05)
        server.send_signal(signal.SIGTERM)  # uvicorn stops accepting, finishes the request, exits
        thread.join(300)
        # uvicorn re-raises the signal once it has shut down gracefully: death by SIGTERM, after the drain
        assert server.wait(120) in (0, -signal.SIGTERM)
    finally:
        if server.poll() is None:
            server.kill()
    response = result["response"]
    assert response.status_code == 200 and "ask not what your country can do for you" in response.text.lower()
