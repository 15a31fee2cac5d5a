"""Fixtures for the bad-input matrix (issue #16): real tiny.en and jfk.wav where the findings were
made with them, a tiny random Whisper with its converted encoder package for the Core ML cases,
and a stand-in session for the command line's own logic (what it checks before any model loads)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import mlx_audio_coreml  # noqa: F401  (BLAS first)
from mlx_audio_coreml.whisper.segments import Segment, TranscriptionInfo
from speech_data import real_model_dir


@pytest.fixture(scope="session")
def tiny_en() -> Path:
    path = real_model_dir("tiny.en")
    if path is None:
        pytest.skip("real tiny.en weights not installed (scripts/fetch_models.sh tiny.en)")
    return path


@pytest.fixture(scope="session")
def tiny_random_dir(tmp_path_factory: pytest.TempPathFactory, tiny_en: Path) -> Path:
    """A random 2+2-layer, 64-wide Whisper in MLX format with tiny.en's tokenizer."""
    import mlx.core as mx

    from mlx_audio_coreml.whisper.model import ModelDimensions, Whisper
    from mlx_audio_coreml.whisper.weights import mlx as mlx_format

    mx.random.seed(0)
    dims = ModelDimensions(
        n_mels=80, n_audio_ctx=1500, n_audio_state=64, n_audio_head=4, n_audio_layer=2,
        n_vocab=51864, n_text_ctx=448, n_text_state=64, n_text_head=4, n_text_layer=2,
    )  # fmt: skip
    model = Whisper(dims, mx.float32)
    mx.eval(model.parameters())
    folder = mlx_format.save(model, tmp_path_factory.mktemp("tiny-random") / "whisper-tiny-random")
    shutil.copy(tiny_en / "tokenizer.json", folder / "tokenizer.json")
    return folder


@pytest.fixture(scope="session")
def tiny_package(tiny_random_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model's encoder converted to an ML Program package (float32, not validated)."""
    import mlx.core as mx

    from mlx_audio_coreml.convert.whisper import ConvertOptions, SourceInfo, convert_encoder
    from mlx_audio_coreml.whisper.loading import load_whisper

    bundle = load_whisper(tiny_random_dir, dtype=mx.float32)
    source = SourceInfo("local/whisper-tiny-random", "local", bundle.weights_sha256, bundle.source_format)
    options = ConvertOptions(precision="float32", validate=False)
    result = convert_encoder(
        bundle.model.encoder, bundle.dims.n_audio_head, source, tmp_path_factory.mktemp("pkg"), options
    )
    return Path(result.package)


@dataclass
class StandInSession:
    """Answers transcribe() with one segment naming the file, and counts the calls (no model)."""

    fail_on: set[str] = field(default_factory=set)
    calls: list[str] = field(default_factory=list)
    info: object = None

    def transcribe(self, path: str, progress=None, **options):
        from mlx_audio_coreml.errors import AudioDecodeError

        self.calls.append(path)
        if Path(path).name in self.fail_on:
            raise AudioDecodeError(path, "stand-in failure")
        segment = Segment(0, 0, 0.0, 1.0, f" text of {path}", (), 0.0, -0.1, 1.0, 0.0)
        return iter([segment]), TranscriptionInfo("en", 1.0, 1.0, None, None)


@pytest.fixture()
def stand_in(monkeypatch: pytest.MonkeyPatch) -> StandInSession:
    """The CLI's load_session gives a StandInSession; `stand_in.loaded` says whether it was asked."""
    from mlx_audio_coreml.cli import transcribe as cli_transcribe

    session = StandInSession()
    session.loaded = False  # type: ignore[attr-defined]

    def load(model, *args, **kwargs):
        session.loaded = True  # type: ignore[attr-defined]
        return session

    monkeypatch.setattr(cli_transcribe, "load_session", load)
    return session
