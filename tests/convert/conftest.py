"""Fixtures for converter tests: a tiny random encoder and its source description."""

from __future__ import annotations

import mlx.core as mx
import pytest
from convert_helpers import TINY_HEADS

import mlx_audio_coreml  # noqa: F401  (BLAS first)
from mlx_audio_coreml.convert import SourceInfo
from mlx_audio_coreml.whisper.model import WhisperEncoder


@pytest.fixture(scope="session")
def tiny_encoder() -> WhisperEncoder:
    """A random 2-layer, 64-wide encoder with Whisper's fixed 3000-frame window."""
    mx.random.seed(0)
    encoder = WhisperEncoder(n_mels=80, n_ctx=1500, n_state=64, n_head=TINY_HEADS, n_layer=2)
    mx.eval(encoder.parameters())
    return encoder


@pytest.fixture()
def tiny_source() -> SourceInfo:
    return SourceInfo(name="tiny-random", revision="local", weights_sha256="0" * 64, source_format="mlx")


@pytest.fixture(scope="session")
def tiny_package(tiny_encoder, tmp_path_factory):
    """`tiny_package(layout, precision)`: the tiny encoder converted once per session (no validation),
    shared by the tests that only read or run the package."""
    from mlx_audio_coreml.convert import ConvertOptions, SourceInfo, convert_encoder

    source = SourceInfo(name="tiny-random", revision="local", weights_sha256="0" * 64, source_format="mlx")
    built = {}

    def get(layout: str, precision: str):
        if (layout, precision) not in built:
            out = tmp_path_factory.mktemp(f"tiny-{layout}-{precision}")
            options = ConvertOptions(layout=layout, precision=precision, validate=False)
            built[layout, precision] = convert_encoder(tiny_encoder, TINY_HEADS, source, out, options)
        return built[layout, precision]

    return get
