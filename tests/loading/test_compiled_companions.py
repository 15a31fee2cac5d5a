"""Compiled encoders users already own: WhisperKit's `openai_whisper-<size>/AudioEncoder.mlmodelc`
and whisper.cpp's `ggml-<size>-encoder.mlmodelc(.zip)` are found by their published names (in the
local store, in WhisperKit's and whisper.cpp's hub repos) and run through the portable runtime.

The seed's large-v3-turbo is played by the tiny random model; its published encoders are that
model's encoder converted in WhisperKit's and whisper.cpp's layouts and written as .mlmodelc.
"""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest
from loading_fakehub import FakeRepo
from loading_helpers import TURBO, TURBO_REPO, files_of

from mlx_audio_coreml import config
from mlx_audio_coreml.encoders import MLXAudioEncoder
from mlx_audio_coreml.options import BackendPreference, ModelLoadingOptions
from mlx_audio_coreml.whisper import published_encoders
from mlx_audio_coreml.whisper.model_names import local_store
from mlx_audio_coreml.whisper.session import WhisperSession

PORTABLE = ModelLoadingOptions.default().with_(coreml_runtime="portable")
CORE_ML = BackendPreference.CORE_ML
WHISPERKIT_FOLDER = "openai_whisper-large-v3-v20240930_turbo"
WHISPERCPP_ZIP = "ggml-large-v3-turbo-encoder.mlmodelc.zip"


@pytest.fixture(scope="module")
def compiled_encoders(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny model's encoder as WhisperKit's and whisper.cpp's compiled models."""
    from mlx_audio_coreml.convert.compiled import write_compiled
    from mlx_audio_coreml.convert.whisper import ConvertOptions, SourceInfo, convert_encoder
    from mlx_audio_coreml.whisper.loading import load_whisper

    bundle = load_whisper(tiny_model_dir, dtype=mx.float32)
    source = SourceInfo(TURBO_REPO, "local", bundle.weights_sha256, bundle.source_format)
    root = tmp_path_factory.mktemp("published")
    built = {}
    for layout, name in (
        ("whisperkit", "AudioEncoder.mlmodelc"),
        ("whispercpp", "ggml-large-v3-turbo-encoder.mlmodelc"),
    ):
        package = convert_encoder(
            bundle.model.encoder,
            bundle.dims.n_audio_head,
            source,
            root / layout,
            ConvertOptions(layout=layout, validate=False),
        ).package
        built[layout] = write_compiled(package, root / f"{layout}-compiled" / name)
    return built


def _zipped(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        for relative, data in files_of(folder).items():
            zipped.writestr(f"{folder.name}/{relative}", data)
    return buffer.getvalue()


def _encodes_like_mlx(session: WhisperSession) -> None:
    mel = mx.array(np.random.default_rng(0).standard_normal((1, 80, 3000)).astype(np.float32))
    got = np.asarray(session.encoder.encode(mel).astype(mx.float32))
    want = np.asarray(MLXAudioEncoder(session.bundle.model.encoder, 80).encode(mel).astype(mx.float32))
    np.testing.assert_allclose(got, want, rtol=5e-2, atol=5e-2)  # the packages compute in float16


def test_sizes_map_to_the_published_names():
    assert published_encoders.short_name("mlx-community/whisper-tiny.en-mlx") == "tiny.en"
    assert published_encoders.short_name("/models/base", Path("/models/base")) == "base"
    assert published_encoders.short_name("my-finetune") is None
    assert published_encoders.package_names("tiny") == (
        "openai_whisper-tiny/AudioEncoder.mlmodelc",
        "ggml-tiny-encoder.mlmodelc",
        "ggml-tiny-encoder.mlmodelc.zip",
    )
    assert published_encoders.whisperkit_names("large-v3-turbo")[0] == f"{WHISPERKIT_FOLDER}/AudioEncoder.mlmodelc"


def test_whisperkit_encoder_on_the_hub_runs_when_there_is_no_companion_repo(
    fake_hub, hub_settings, tiny_model_dir, compiled_encoders, m1_portable
):
    fake_hub.add(FakeRepo(TURBO_REPO, files_of(tiny_model_dir)))
    compiled = compiled_encoders["whisperkit"]
    fake_hub.add(
        FakeRepo(
            published_encoders.WHISPERKIT_REPO,
            {f"{WHISPERKIT_FOLDER}/AudioEncoder.mlmodelc/{path}": data for path, data in files_of(compiled).items()}
            | {"openai_whisper-tiny/AudioEncoder.mlmodelc/model.mil": b"not this one"},
        )
    )

    session = WhisperSession.from_pretrained(TURBO, PORTABLE, environment=m1_portable)

    info = session.info
    assert info.encoder_backend is CORE_ML and info.encoder_runtime == "portable" and not info.did_fallback
    assert info.components[0].package.endswith(f"{WHISPERKIT_FOLDER}/AudioEncoder.mlmodelc")
    assert not fake_hub.requested("openai_whisper-tiny/AudioEncoder.mlmodelc/model.mil")
    _encodes_like_mlx(session)


def test_whispercpp_zipped_encoder_on_the_hub_is_unpacked_and_runs(
    fake_hub, hub_settings, tiny_model_dir, compiled_encoders, m1_portable
):
    fake_hub.add(FakeRepo(TURBO_REPO, files_of(tiny_model_dir)))
    fake_hub.add(
        FakeRepo(
            published_encoders.WHISPERCPP_REPO,
            {
                WHISPERCPP_ZIP: _zipped(compiled_encoders["whispercpp"]),
                "ggml-large-v3-turbo.bin": b"unused ggml weights",
            },
        )
    )

    session = WhisperSession.from_pretrained(TURBO, PORTABLE, environment=m1_portable)

    assert session.info.encoder_backend is CORE_ML and not session.info.did_fallback
    unpacked = Path(session.info.components[0].package)  # the archive, unpacked into the compiled cache
    assert unpacked.name == "ggml-large-v3-turbo-encoder.mlmodelc" and unpacked.is_relative_to(config.compiled_dir())
    assert not fake_hub.requested("ggml-large-v3-turbo.bin")
    _encodes_like_mlx(session)


def test_whisperkit_folder_kept_as_a_local_companion_needs_no_hub(
    tiny_model_dir, compiled_encoders, isolated_home, m1_portable, monkeypatch
):
    shutil.copytree(tiny_model_dir, local_store() / TURBO)
    kept = local_store() / f"{TURBO}-coreml" / WHISPERKIT_FOLDER / "AudioEncoder.mlmodelc"
    shutil.copytree(compiled_encoders["whisperkit"], kept)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the hub is unreachable

    session = WhisperSession.from_pretrained(TURBO, PORTABLE, environment=m1_portable)

    assert session.info.encoder_backend is CORE_ML
    assert session.info.components[0].package == str(kept)
