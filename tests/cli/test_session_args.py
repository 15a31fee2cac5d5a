"""The shared session flags: what they ask the loader for, what the command says runs, --strict,
and the first transcription's kernel line; end to end with a tiny converted Core ML package."""

from __future__ import annotations

import argparse
import logging
import re
import shutil
import sys
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest
import soundfile as sf

from mlx_audio_coreml.cli import main
from mlx_audio_coreml.cli.session_args import SessionFlags, add_session_flags, explain, report, show_kernel_log
from mlx_audio_coreml.cpu import report as cpu_report
from mlx_audio_coreml.errors import CoreMLRequired, InvalidOption
from mlx_audio_coreml.info import ComponentInfo, SessionInfo
from mlx_audio_coreml.options import BackendPreference, Component, WhisperQuantization
from mlx_audio_coreml.whisper.model_names import local_store
from speech_data import JFK


def _flags(argv: list[str], component: Component = Component.ENCODER) -> SessionFlags:
    parser = argparse.ArgumentParser()
    add_session_flags(parser, component, dtype=True)
    return SessionFlags.from_args(parser.parse_args(argv), component)


def _info(backend: BackendPreference, reason: str, *, runtime: str = "mlx", fallback: str | None = None) -> SessionInfo:
    component = ComponentInfo(
        Component.ENCODER, BackendPreference.AUTO, backend, runtime, reason, fallback_reason=fallback
    )
    return SessionInfo.from_components(
        (component,), load_duration_s=0.1, quantization=WhisperQuantization.FLOAT32, model="m"
    )


def test_flags_become_the_api_loading_options(tmp_path: Path) -> None:
    package = tmp_path / "AudioEncoder.mlpackage"
    package.mkdir()
    argv = ["--backend", "coreml", "--runtime", "portable", "--coreml-package", str(package), "--dtype", "int8"]
    options = _flags(argv).options()
    assert options.backend_overrides == {Component.ENCODER: BackendPreference.CORE_ML}
    assert options.coreml_runtime == "portable"
    assert options.coreml_sources == {Component.ENCODER: package.resolve()}
    assert options.quantization is WhisperQuantization.INT8


def test_default_flags_leave_the_defaults_alone() -> None:
    options = _flags([]).options()
    assert options.backend is BackendPreference.AUTO and not options.backend_overrides
    assert options.coreml_runtime is None and not options.coreml_sources


def test_packages_name_their_component_and_hub_repos_pass_through(tmp_path: Path) -> None:
    flags = _flags(["--coreml-package", "vocoder=someone/kokoro-coreml"], Component.ENCODER)
    assert flags.packages == {Component.VOCODER: "someone/kokoro-coreml"}


def test_a_missing_package_folder_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        _flags(["--coreml-package", str(tmp_path / "nowhere.mlpackage")])
    assert done.value.code == 2
    assert "no Core ML package at" in capsys.readouterr().err


def test_strict_implies_coreml_and_refuses_mlx() -> None:
    assert _flags(["--strict"]).backend == "coreml"
    with pytest.raises(InvalidOption):
        _flags(["--strict", "--backend", "mlx"])


def test_report_says_what_runs_and_strict_fails_on_mlx(capsys: pytest.CaptureFixture[str]) -> None:
    info = _info(
        BackendPreference.MLX, "No Core ML runtime: apple: not here", fallback="No Core ML runtime: apple: not here"
    )
    report(info, _flags([]))
    assert capsys.readouterr().err.strip() == "encoder: MLX (Core ML failed: No Core ML runtime: apple: not here)"
    with pytest.raises(CoreMLRequired) as failed:
        report(info, _flags(["--strict"]))
    assert failed.value.component == "encoder" and "No Core ML runtime" in failed.value.reason


def test_strict_is_met_by_core_ml(capsys: pytest.CaptureFixture[str]) -> None:
    info = _info(BackendPreference.CORE_ML, "preference auto; runtime portable (named by caller)", runtime="portable")
    report(info, _flags(["--strict"]))
    assert capsys.readouterr().err.startswith("encoder: Core ML, runtime portable (")


def test_an_unused_package_gets_the_portable_hint(tmp_path: Path) -> None:
    package = tmp_path / "p.mlpackage"
    package.mkdir()
    info = _info(BackendPreference.MLX, "ANE not supported: Core ML is not available on Linux")
    lines = explain(info, _flags(["--coreml-package", str(package)]))
    assert lines[-1].startswith("hint:") and "--runtime portable" in lines[-1]
    assert not explain(info, _flags([]))[-1].startswith("hint:")


def test_session_notes_follow_the_component_lines() -> None:
    info = _info(BackendPreference.MLX, "backend preference is mlx")
    info = SessionInfo.from_components(
        info.components,
        load_duration_s=0.1,
        quantization=info.quantization,
        model="m",
        notes=("MLX weights in float32",),
    )
    assert explain(info) == ["encoder: MLX (backend preference is mlx)", "note: MLX weights in float32"]


def test_kernel_line_is_logged_once_and_shown_on_stderr(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cpu_report, "_logged", set())
    logger = logging.getLogger("mlx_audio_coreml.cpu.report")
    monkeypatch.setattr(logger, "handlers", [])
    show_kernel_log()
    show_kernel_log()  # a second command in the same process adds no second handler
    cpu_report.log_once(mx.float32)
    cpu_report.log_once(mx.float32)
    err = capsys.readouterr().err.splitlines()
    assert err == [cpu_report.describe(mx.float32)] and err[0].startswith("cpu kernels: ")


@pytest.fixture(scope="module")
def tiny_with_package(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A random 1+1-layer Whisper folder and its encoder converted to an .mlpackage."""
    from mlx_audio_coreml.convert.whisper import ConvertOptions, SourceInfo, convert_encoder
    from mlx_audio_coreml.whisper.loading import load_whisper
    from mlx_audio_coreml.whisper.model import ModelDimensions, Whisper
    from mlx_audio_coreml.whisper.weights import mlx as mlx_format

    tokenizer = local_store() / "tiny.en" / "tokenizer.json"
    if not tokenizer.is_file():
        pytest.skip("tiny.en's tokenizer.json is not installed (scripts/fetch_models.sh tiny.en)")
    mx.random.seed(0)
    dims = ModelDimensions(
        n_mels=80, n_audio_ctx=1500, n_audio_state=64, n_audio_head=2, n_audio_layer=1,
        n_vocab=51864, n_text_ctx=448, n_text_state=64, n_text_head=2, n_text_layer=1,
    )  # fmt: skip
    model = Whisper(dims, mx.float32)
    mx.eval(model.parameters())
    folder = mlx_format.save(model, tmp_path_factory.mktemp("tiny") / "whisper-tiny-random")
    shutil.copy(tokenizer, folder / "tokenizer.json")
    bundle = load_whisper(folder, dtype=mx.float32)
    source = SourceInfo("local/whisper-tiny-random", "local", bundle.weights_sha256, bundle.source_format)
    result = convert_encoder(
        bundle.model.encoder,
        dims.n_audio_head,
        source,
        tmp_path_factory.mktemp("package"),
        ConvertOptions(validate=False),
    )
    return folder, Path(result.package)


def _transcribe(model: Path, tmp_path: Path, *flags: str) -> int:
    audio = tmp_path / "noise.wav"
    sf.write(audio, np.random.default_rng(0).normal(0, 0.05, 8000).astype(np.float32), 16000)
    quick = ["--beam-size", "1", "--temperature-increment-on-fallback", "0", "--language", "en"]
    return main(["transcribe", str(audio), "--model", str(model), *quick, *flags])


def test_cli_runs_a_named_package_on_the_portable_runtime(
    tiny_with_package: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, package = tiny_with_package
    assert _transcribe(model, tmp_path, "--coreml-package", str(package), "--runtime", "portable", "--strict") == 0
    err = capsys.readouterr().err
    assert "encoder: Core ML, runtime portable (" in err and str(package) in err


def test_cli_strict_fails_plainly_without_a_core_ml_runtime(
    tiny_with_package: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if sys.platform == "darwin":
        pytest.skip("the apple runtime may run here")
    model, package = tiny_with_package
    assert _transcribe(model, tmp_path, "--coreml-package", str(package), "--runtime", "apple", "--strict") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: Core ML was required for the encoder (--strict) but MLX runs it: ")


def test_a_package_given_as_the_model_says_where_it_goes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "converted"
    (folder / "tiny.en-encoder.mlpackage").mkdir(parents=True)
    audio = tmp_path / "a.wav"
    sf.write(audio, np.zeros(1600, np.float32), 16000)
    assert main(["transcribe", str(audio), "--model", str(folder)]) == 1
    err = capsys.readouterr().err
    assert "tiny.en-encoder.mlpackage is a Core ML package, not a model" in err and "--coreml-package" in err


@pytest.mark.realweights
def test_transcribe_prints_the_detected_language_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if not (local_store() / "base" / "model.bin").is_file():
        pytest.skip("real base weights not installed: bash scripts/fetch_models.sh base")
    assert main(["transcribe", str(JFK), "--model", str(local_store() / "base"), "--beam-size", "1"]) == 0
    detected = [line for line in capsys.readouterr().err.splitlines() if line.startswith("Detected language:")]
    assert len(detected) == 1 and re.fullmatch(r"Detected language: en \([01]\.\d\d\)", detected[0]), detected
