"""loading/packages.py with multi-function packages: `companion_units` reads either companion layout
(a package per bucket, or one package with a function per bucket) into PackageRefs, and `load_packages`
loads each named function through the runtime under one deadline, closing what loaded on a failure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import mlx_audio_coreml  # noqa: F401  (BLAS first)
from mlx_audio_coreml.cancel import CancelToken
from mlx_audio_coreml.coreml.runtime import ComputeUnits
from mlx_audio_coreml.errors import UnknownFunction
from mlx_audio_coreml.loading.packages import PackageRef, companion_units, load_packages
from mlx_audio_coreml.options import Component


def _manifest(folder: Path, vocoder: dict[str, Any]) -> None:
    (folder / "manifest.json").write_text(json.dumps({"components": {"vocoder": vocoder}}))


def test_a_multifunction_manifest_gives_one_function_per_bucket_in_numeric_order(tmp_path) -> None:
    package = tmp_path / "AudioVocoder.mlpackage"
    package.mkdir()
    _manifest(tmp_path, {"path": package.name, "functions": {"128": "frames_128", "64": "frames_64"}})
    expected = [PackageRef(package, "frames_64"), PackageRef(package, "frames_128")]
    assert companion_units(package, Component.VOCODER) == expected
    assert companion_units(tmp_path, Component.VOCODER) == expected  # the folder itself, as a lookup may give
    assert companion_units(package, Component.ENCODER) == [PackageRef(package)]


def test_a_per_bucket_manifest_gives_each_package_whole(tmp_path) -> None:
    for name in ("AudioVocoder-8.mlpackage", "AudioVocoder-16.mlpackage"):
        (tmp_path / name).mkdir()
    packages = {"16": "AudioVocoder-16.mlpackage", "8": "AudioVocoder-8.mlpackage"}
    _manifest(tmp_path, {"path": "AudioVocoder-8.mlpackage", "packages": packages})
    assert companion_units(tmp_path / "AudioVocoder-8.mlpackage", Component.VOCODER) == [
        PackageRef(tmp_path / "AudioVocoder-8.mlpackage"),
        PackageRef(tmp_path / "AudioVocoder-16.mlpackage"),
    ]


def test_functions_of_a_package_that_is_not_there_fall_back_to_the_package_found(tmp_path) -> None:
    found = tmp_path / "Other.mlpackage"
    found.mkdir()
    _manifest(tmp_path, {"path": "AudioVocoder.mlpackage", "functions": {"8": "frames_8"}})
    assert companion_units(found, Component.VOCODER) == [PackageRef(found)]


class _Recording:
    """A runtime that records what it was asked to load, and fails on one function."""

    name = "recording"
    claims_neural_engine = False

    def __init__(self, missing: str = "") -> None:
        self.missing = missing
        self.loads: list[tuple[Path, str | None]] = []
        self.closed: list[str | None] = []

    def load(self, package: Path, compute_units: ComputeUnits = ComputeUnits.ALL, **kwargs: Any) -> Any:
        function = kwargs.get("function")
        assert isinstance(kwargs.get("cancel"), CancelToken)  # every load shares the one deadline's token
        if function == self.missing:
            raise UnknownFunction(str(package), function, ["frames_8"])
        self.loads.append((package, function))
        closed = self.closed

        class Model:
            def close(self) -> None:
                closed.append(function)

        return Model()


def test_each_function_is_loaded_by_name_under_one_deadline(tmp_path) -> None:
    runtime = _Recording()
    refs = [PackageRef(tmp_path / "v.mlpackage", "frames_8"), PackageRef(tmp_path / "v.mlpackage", "frames_16")]
    models = load_packages(runtime, refs, ComputeUnits.ALL, timeout_s=30)  # type: ignore[arg-type]
    assert len(models) == 2 and runtime.loads == [(r.path, r.function) for r in refs]
    one = load_packages(runtime, refs[:1], ComputeUnits.ALL, timeout_s=30)  # type: ignore[arg-type]
    assert len(one) == 1 and runtime.loads[-1] == (refs[0].path, "frames_8")  # a lone function keeps its name


def test_a_missing_function_closes_the_functions_already_loaded(tmp_path) -> None:
    runtime = _Recording(missing="frames_16")
    refs = [PackageRef(tmp_path / "v.mlpackage", "frames_8"), PackageRef(tmp_path / "v.mlpackage", "frames_16")]
    with pytest.raises(UnknownFunction) as caught:
        load_packages(runtime, refs, ComputeUnits.ALL, timeout_s=30)  # type: ignore[arg-type]
    assert caught.value.function == "frames_16" and runtime.closed == ["frames_8"]
