"""Zipped compiled models (whisper.cpp's `ggml-<size>-encoder.mlmodelc.zip`) unpack once into the
compiled cache, safely, and load like any .mlmodelc."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from mlx_audio_coreml.errors import PackageError
from mlx_audio_coreml.store.archives import is_compiled_archive, unpack_compiled, unpacked_path


@pytest.fixture(autouse=True)
def _private_compiled_cache(tmp_path_factory, monkeypatch):
    """Parsed text programs are kept in the compiled-model cache: this test's, not the user's
    (MLX_AUDIO_COREML_HOME stays, so installed real weights are still found)."""
    from mlx_audio_coreml import config

    cache = tmp_path_factory.mktemp("compiled")
    monkeypatch.setattr(config, "compiled_dir", lambda environ=None: cache)


PROGRAM = """program(1.3)
{
    func main<ios17>(tensor<fp32, [1, 4]> logmel_data) {
        tensor<fp32, [1, 4]> output = relu(x = logmel_data)[name = string("output")];
    } -> (output);
}
"""


def _archive(folder: Path, members: dict[str, str], name: str = "ggml-tiny-encoder.mlmodelc.zip") -> Path:
    path = folder / name
    with zipfile.ZipFile(path, "w") as zipped:
        for member, text in members.items():
            zipped.writestr(member, text)
    return path


def test_a_zipped_compiled_model_unpacks_once_and_loads(tmp_path):
    from mlx_audio_coreml.coreml.portable import PortableRuntime

    archive = _archive(
        tmp_path,
        {
            "ggml-tiny-encoder.mlmodelc/model.mil": PROGRAM,
            "ggml-tiny-encoder.mlmodelc/weights/": "",
            "__MACOSX/ggml-tiny-encoder.mlmodelc/._model.mil": "resource fork",
        },
    )
    assert is_compiled_archive(archive)
    cache = tmp_path / "compiled"
    model_dir = unpack_compiled(archive, cache)
    assert model_dir == unpacked_path(archive, cache) and model_dir.name == "ggml-tiny-encoder.mlmodelc"
    assert sorted(p.name for p in model_dir.iterdir()) == ["model.mil", "weights"]
    written = (model_dir / "model.mil").stat().st_mtime_ns
    assert unpack_compiled(archive, cache) == model_dir
    assert (model_dir / "model.mil").stat().st_mtime_ns == written  # the second use unpacks nothing
    model = PortableRuntime().load(model_dir)
    assert [t.name for t in model.description.outputs] == ["output"]
    assert [p.name for p in cache.rglob("*.partial")] == []


@pytest.mark.parametrize(
    "members, words",
    [
        ({"ggml-tiny-encoder.mlmodelc/../../evil.txt": "x"}, "points outside"),
        ({"/abs/model.mil": "x"}, "points outside"),
        ({"a.mlmodelc/model.mil": PROGRAM, "b.mlmodelc/model.mil": PROGRAM}, "expected one .mlmodelc folder"),
        ({"model.mil": PROGRAM}, "expected one .mlmodelc folder"),
    ],
)
def test_archives_that_are_not_one_compiled_model_are_refused(tmp_path, members, words):
    archive = _archive(tmp_path, members)
    with pytest.raises(PackageError, match=words):
        unpack_compiled(archive, tmp_path / "compiled")
    assert not (tmp_path / "evil.txt").exists()
    assert not unpacked_path(archive, tmp_path / "compiled").exists()


def test_a_file_that_is_not_a_zip_is_a_package_error(tmp_path):
    archive = tmp_path / "ggml-tiny-encoder.mlmodelc.zip"
    archive.write_bytes(b"not a zip at all")
    with pytest.raises(PackageError, match="cannot unpack"):
        unpack_compiled(archive, tmp_path / "compiled")
