"""The `transcribe` command: output files in every format, stdout, errors, and interruption."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile
from decode_helpers import JFK, JFK_TEXT, REPO, librivox_clips, normalize

from mlx_audio_coreml.cli import main
from mlx_audio_coreml.cli.progress_bar import ProgressBar
from mlx_audio_coreml.cli.transcribe import temperatures


def test_temperature_ladder():
    assert temperatures(0.0, 0.2) == (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    assert temperatures(0.5, 0.25) == (0.5, 0.75, 1.0)
    assert temperatures(0.3, 0.0) == (0.3,)


def test_progress_bar_draws_only_when_enabled():
    stream = io.StringIO()
    bar = ProgressBar("a.wav", stream=stream, enabled=True, min_interval_s=0.0)
    bar.update(15.0, 60.0)
    bar.update(60.0, 60.0)
    bar.close()
    lines = stream.getvalue().split("\r")
    assert "25.0%" in lines[1] and "100.0%" in lines[2] and stream.getvalue().endswith("\n")
    quiet = io.StringIO()
    off = ProgressBar(stream=quiet, enabled=False)
    off.update(1.0, 2.0)
    off.close()
    assert quiet.getvalue() == ""
    assert not ProgressBar.wanted(False, io.StringIO()) and ProgressBar.wanted(True, io.StringIO())


@pytest.mark.realweights
def test_cli_writes_every_format_and_prints_the_text(tmp_path, capsys, tiny_en_bundle):
    rc = main(
        [
            "transcribe",
            str(JFK),
            "--model",
            "tiny.en",
            "--output-format",
            "all",
            "--output-dir",
            str(tmp_path),
            "--word-timestamps",
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert normalize(out) == normalize(JFK_TEXT)
    assert sorted(os.listdir(tmp_path)) == ["jfk.json", "jfk.srt", "jfk.tsv", "jfk.txt", "jfk.vtt"]
    document = json.loads((tmp_path / "jfk.json").read_text())
    assert normalize(document["text"]) == normalize(JFK_TEXT)
    assert all(seg["words"] for seg in document["segments"])
    assert (tmp_path / "jfk.srt").read_text().startswith("1\n00:00:00,000 --> ")
    assert (tmp_path / "jfk.vtt").read_text().startswith("WEBVTT\n\n00:00:00.000 --> ")
    assert (tmp_path / "jfk.tsv").read_text().startswith("start\tend\ttext\n0\t")
    assert normalize((tmp_path / "jfk.txt").read_text()) == normalize(JFK_TEXT)


@pytest.mark.realweights
def test_cli_reports_a_bad_file_and_goes_on_with_the_others(tmp_path, capsys, tiny_en_bundle):
    rc = main(["transcribe", str(tmp_path / "missing.wav"), str(JFK), "-f", "txt", "-o", str(tmp_path)])
    captured = capsys.readouterr()
    assert rc == 1
    assert "missing.wav" in captured.err
    assert os.listdir(tmp_path) == ["jfk.txt"]


@pytest.fixture(scope="module")
def long_wav(tmp_path_factory):
    clips = librivox_clips()
    if not clips:
        pytest.skip("pocketsphinx-testdata LibriVox clips not installed")
    # ~250 s, about 9 windows: with the CPU host path tiny.en takes ~0.5 s per window here, and the
    # signal below must land well inside this file (at ~75 s a run once finished before it: rc 0).
    pieces = [soundfile.read(str(p), dtype="float32")[0] for p, _ in clips] * 10
    path = tmp_path_factory.mktemp("audio") / "long.wav"
    soundfile.write(str(path), np.concatenate(pieces), 16000)
    return path


# Under load this once hung at exit: a signal's KeyboardInterrupt inside the host pool's thread
# hand-off left a lock held (cpu/pool.py says how it is safe now; tests/cpu/test_pool_interrupts.py
# hammers it). A rare heap-corruption abort (issue #16) was a signal frame written into the heap
# during a oneDNN sgemm (tests/cpu/test_signal_stack.py); PYTHONFAULTHANDLER below hid it on the
# main thread, as its own alternate signal stack does what cpu/signal_stack.py now does.
# The waits are generous: on a busy 2-core machine the exit alone took 10-26 s after the signal.
@pytest.mark.realweights
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_leaves_no_partial_output(tmp_path, long_wav, signum, tiny_en_bundle):
    """Kill the CLI with a real signal while it transcribes its second file: it exits with 130 (as
    after Ctrl-C), the first file's outputs are complete, the second has none, and no temporary
    file is left behind."""
    out_dir = tmp_path / "out"
    command = [
        sys.executable,
        "-u",
        "-m",
        "mlx_audio_coreml",
        "transcribe",
        str(JFK),
        str(long_wav),
        "-f",
        "all",
        "-o",
        str(out_dir),
    ]
    env = dict(os.environ, PYTHONFAULTHANDLER="1")  # a hang below is reported with every thread's stack
    # A handled SIGINT here is SIG_DFL in the CLI after exec, where Python makes it KeyboardInterrupt; an
    # ignored one (a shell's background job starts this test so) would stay ignored. Not preexec_fn: a
    # child forked from this threaded process can hang on a lock before exec.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        deadline = time.monotonic() + 600
        for line in process.stdout:
            if line.startswith("==> ") and "long.wav" in line:
                break
            assert time.monotonic() < deadline, "the CLI never reached the second file"
        else:
            pytest.fail(f"the CLI ended early: {process.stderr.read()}")
        time.sleep(1.0)  # well inside the second file's transcription (it takes several seconds)
        process.send_signal(signum)
        try:
            rc = process.wait(timeout=300)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGABRT)  # faulthandler writes each thread's Python stack
            process.wait(timeout=60)
            pytest.fail(f"no exit within 300 s of the signal: {process.stderr.read()[-6000:]}")
    finally:
        if process.poll() is None:
            process.kill()
    stderr = process.stderr.read()
    assert rc == 130, stderr
    assert "interrupted" in stderr
    assert sorted(os.listdir(out_dir)) == ["jfk.json", "jfk.srt", "jfk.tsv", "jfk.txt", "jfk.vtt"]
    assert normalize(json.loads((out_dir / "jfk.json").read_text())["text"]) == normalize(JFK_TEXT)
