"""Shared helpers for the converter tests (a uniquely named module: tests/ has no packages)."""

from __future__ import annotations

from pathlib import Path

import pytest

import mlx_audio_coreml  # noqa: F401  (BLAS first)
from mlx_audio_coreml.coreml.runtime import ModelDescription, TensorSpec
from speech_data import JFK, JFK_TEXT, REPO  # noqa: F401
from speech_data import real_model_dir as _installed

TINY_HEADS = 4


def real_model_dir(name: str) -> Path:
    path = _installed(name)
    if path is None:
        pytest.skip(f"real weights for {name} are not installed (scripts/fetch_models.sh)")
    return path


def package_description(package: Path) -> ModelDescription:
    """A package's tensors and user metadata read from its spec with coremltools (no runtime)."""
    import coremltools as ct

    spec = ct.utils.load_spec(str(package))
    names = {
        ct.proto.FeatureTypes_pb2.ArrayFeatureType.FLOAT16: "float16",
        ct.proto.FeatureTypes_pb2.ArrayFeatureType.FLOAT32: "float32",
    }

    def tensors(features) -> tuple[TensorSpec, ...]:
        return tuple(
            TensorSpec(f.name, names[f.type.multiArrayType.dataType], tuple(f.type.multiArrayType.shape))
            for f in features
        )

    return ModelDescription(
        tensors(spec.description.input), tensors(spec.description.output), dict(spec.description.metadata.userDefined)
    )
