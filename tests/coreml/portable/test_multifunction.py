"""The portable runtime on a real multi-function package: `convert kokoro` for macOS 15 writes one
AudioVocoder.mlpackage with a function `frames_<N>` per bucket, from a tiny random Kokoro decoder.

Each function must be its bucket and speak as MLX does (and, slow: exactly as the per-bucket package of
the same decoder), a load of a function the package lacks must name the functions it has, and the
coremltools runtime's description (read from the spec on any OS) must pick the same function.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kokoro_tiny import DIM_IN, SAMPLES_PER_FRAME, STYLE, tiny_decoder
from mlx_audio_coreml.convert.kokoro import KokoroConvertOptions, convert_decoder
from mlx_audio_coreml.convert.kokoro_validate import padded_inputs, snr_db, validation_features
from mlx_audio_coreml.coreml.coremltools_runtime import describe_spec
from mlx_audio_coreml.coreml.portable import PortableRuntime
from mlx_audio_coreml.coreml.portable.package import function_names
from mlx_audio_coreml.errors import PackageError, UnknownFunction

BUCKETS = (4, 8)


def _convert(decoder: Any, out: Path, layout: str) -> dict[int, Path]:
    """bucket -> package (no validation: these tests compare themselves)."""
    target = "macOS15" if layout == "multifunction" else "macOS13"
    options = KokoroConvertOptions(buckets=BUCKETS, deployment_target=target, layout=layout, validate=False)
    return dict(convert_decoder(decoder, layout, out, options).packages)


@pytest.fixture(scope="module")
def decoder() -> Any:
    return tiny_decoder()


@pytest.fixture(scope="module")
def package(decoder: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one multi-function package (functions frames_4 and frames_8) the converter writes."""
    return _convert(decoder, tmp_path_factory.mktemp("multi"), "multifunction")[4]


@pytest.fixture()
def single(tmp_path: Path) -> Path:
    """A one-function package (its function is 'main')."""
    from portable_helpers import mb, save_program

    return save_program(tmp_path, lambda x: mb.mul(x=x, y=2.0, name="y"), [(1, 3, 8)])


def test_each_function_is_its_bucket_and_speaks_as_mlx_does(decoder, package) -> None:
    for frames in BUCKETS:
        features = validation_features(DIM_IN, STYLE, frames - 1, seed=frames)
        want = np.asarray(decoder(features, key=None))[0]
        model = PortableRuntime().load(package, function=f"frames_{frames}")
        assert model.description.inputs[0].shape == (1, DIM_IN, frames)
        got = np.asarray(model.predict(padded_inputs(features, frames)).outputs["audio"])
        assert got.shape == (1, frames * SAMPLES_PER_FRAME)
        assert snr_db(got[0, : want.shape[0]], want) > 60.0  # float32 (measured ~96 dB per bucket package)


@pytest.mark.slow
def test_every_function_runs_exactly_as_the_per_bucket_package_does(decoder, package, tmp_path) -> None:
    """Same decoder, both layouts (two more conversions, ~40 s here): identical tensors and audio."""
    alone = _convert(decoder, tmp_path, "packages")
    for frames in BUCKETS:
        inputs = padded_inputs(validation_features(DIM_IN, STYLE, frames - 1, seed=frames), frames)
        function = PortableRuntime().load(package, function=f"frames_{frames}")
        whole = PortableRuntime().load(alone[frames])
        assert function.description.inputs == whole.description.inputs
        np.testing.assert_array_equal(function.predict(inputs).outputs["audio"], whole.predict(inputs).outputs["audio"])


def test_the_functions_of_a_package_are_listed_in_the_order_saved(package, single) -> None:
    assert function_names(package) == ("frames_4", "frames_8")
    assert function_names(single) == ("main",)


def test_a_function_the_package_lacks_names_the_functions_it_has(package, single) -> None:
    with pytest.raises(UnknownFunction) as caught:
        PortableRuntime().load(package, function="frames_16")
    assert isinstance(caught.value, PackageError)
    assert (caught.value.path, caught.value.function) == (str(package), "frames_16")
    assert caught.value.available == ("frames_4", "frames_8")
    with pytest.raises(UnknownFunction) as one:
        PortableRuntime().load(single, function="frames_8")
    assert one.value.available == ("main",)
    assert PortableRuntime().load(single, function="main").description.inputs[0].shape[-1] == 8


def test_the_coremltools_description_picks_the_named_function(package) -> None:
    ct = pytest.importorskip("coremltools")
    spec = ct.utils.load_spec(str(package))
    for frames in BUCKETS:
        described = describe_spec(spec, function=f"frames_{frames}", path=str(package))
        assert described.inputs == PortableRuntime().load(package, function=f"frames_{frames}").description.inputs
    assert describe_spec(spec).inputs[0].shape[-1] == 8  # the default function: the largest bucket
    with pytest.raises(UnknownFunction) as caught:
        describe_spec(spec, function="frames_5", path=str(package))
    assert caught.value.available == ("frames_4", "frames_8")
