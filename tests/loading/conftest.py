"""Fixtures for the loading tests: a tiny random Whisper model and its converted Core ML companion,
a loopback hub serving them, an isolated hub cache, and injected device facts."""

from __future__ import annotations

import shutil
from pathlib import Path

import mlx.core as mx
import pytest
from loading_fakehub import FakeHub, FakeRepo
from loading_helpers import M1_MAC, REAL_STORE, TURBO_COREML_REPO, TURBO_REPO, files_of

import mlx_audio_coreml  # noqa: F401  (BLAS first)
from mlx_audio_coreml.loading.selection import LoadEnvironment, RuntimeProvider
from mlx_audio_coreml.store.hub import HubSettings


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2+2-layer, 64-wide Whisper in MLX format, with tiny.en's tokenizer (English vocab)."""
    from mlx_audio_coreml.whisper.model import ModelDimensions, Whisper
    from mlx_audio_coreml.whisper.weights import mlx as mlx_format

    tokenizer = REAL_STORE / "tiny.en" / "tokenizer.json"
    if not tokenizer.is_file():
        pytest.skip("tiny.en's tokenizer.json is not installed (scripts/fetch_models.sh)")
    mx.random.seed(0)
    dims = ModelDimensions(
        n_mels=80, n_audio_ctx=1500, n_audio_state=64, n_audio_head=4, n_audio_layer=2,
        n_vocab=51864, n_text_ctx=448, n_text_state=64, n_text_head=4, n_text_layer=2,
    )  # fmt: skip
    model = Whisper(dims, mx.float32)
    mx.eval(model.parameters())
    folder = mlx_format.save(model, tmp_path_factory.mktemp("tiny-model") / "whisper-tiny-random")
    shutil.copy(tokenizer, folder / "tokenizer.json")
    return folder


@pytest.fixture(scope="session")
def tiny_companion_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`convert whisper --companion` of the tiny model: AudioEncoder.mlpackage, manifest.json, README.md."""
    from mlx_audio_coreml.convert.whisper import ConvertOptions, SourceInfo, convert_encoder
    from mlx_audio_coreml.whisper.loading import load_whisper

    bundle = load_whisper(tiny_model_dir, dtype=mx.float32)
    source = SourceInfo(TURBO_REPO, "local", bundle.weights_sha256, bundle.source_format)
    result = convert_encoder(
        bundle.model.encoder, bundle.dims.n_audio_head, source, tmp_path_factory.mktemp("companion"),
        ConvertOptions(companion=True, validate=False),
    )  # fmt: skip
    assert result.companion_dir is not None
    return result.companion_dir


@pytest.fixture(scope="session")
def vocoder_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stand-in vocoder as a real ML Program over VocoderFeatures' four inputs (F = 5):
    samples (1, 43) = [2 * asr flattened | f0 | energy | style]."""
    import coremltools as ct
    from coremltools.converters.mil import Builder as mb

    from mlx_audio_coreml.vocoders import SAMPLE_RATE_METADATA_KEY

    specs = [mb.TensorSpec(shape=s) for s in ((1, 4, 5), (1, 10), (1, 10), (1, 3))]

    @mb.program(input_specs=specs, opset_version=ct.target.macOS13)
    def program(asr, f0, energy, style):
        doubled = mb.reshape(x=mb.mul(x=asr, y=2.0), shape=[1, 20])
        return mb.concat(values=[doubled, f0, energy, style], axis=1, name="audio")

    model = ct.convert(
        program, convert_to="mlprogram", skip_model_load=True,
        minimum_deployment_target=ct.target.macOS13, compute_precision=ct.precision.FLOAT32,
    )  # fmt: skip
    model.user_defined_metadata[SAMPLE_RATE_METADATA_KEY] = "24000"
    path = tmp_path_factory.mktemp("vocoder") / "AudioVocoder.mlpackage"
    model.save(str(path))
    return path


@pytest.fixture()
def fake_hub():
    with FakeHub() as hub:
        yield hub


@pytest.fixture()
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty local model store and hub cache, so nothing on this machine is found by accident."""
    home = tmp_path / "home"
    monkeypatch.setenv("MLX_AUDIO_COREML_HOME", str(home / "mlx-audio-coreml"))
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    return home


@pytest.fixture()
def hub_settings(fake_hub: FakeHub, isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> HubSettings:
    """HF_ENDPOINT at the loopback hub, HF_HOME in the test's folder, read the way users' are."""
    monkeypatch.setenv("HF_ENDPOINT", fake_hub.url)
    monkeypatch.setenv("HF_HUB_ETAG_TIMEOUT", "2")
    return HubSettings.from_env()


@pytest.fixture()
def turbo_on_hub(fake_hub: FakeHub, tiny_model_dir: Path, tiny_companion_dir: Path) -> tuple[FakeRepo, FakeRepo]:
    """The seed's setup: large-v3-turbo on the hub (played by the tiny model) and its -coreml repo."""
    model = fake_hub.add(FakeRepo(TURBO_REPO, files_of(tiny_model_dir)))
    companion = fake_hub.add(FakeRepo(TURBO_COREML_REPO, files_of(tiny_companion_dir)))
    return model, companion


@pytest.fixture()
def m1_portable() -> LoadEnvironment:
    """An M1 Mac whose Core ML runtime is the portable one (the only one that runs here)."""
    return LoadEnvironment(device=M1_MAC, runtimes=RuntimeProvider())


class Events(list):
    """A progress handler that records every event."""

    def __call__(self, event: object) -> None:
        self.append(event)

    def of(self, kind: type) -> list:
        return [e for e in self if isinstance(e, kind)]


@pytest.fixture()
def events() -> Events:
    return Events()
