"""staging.staged_path: results appear whole at their destination, or not at all."""

import pytest

from mlx_audio_coreml.store.staging import staged_path


def _litter(folder):
    return sorted(p.name for p in folder.iterdir())


def test_a_completed_build_is_moved_into_place(tmp_path):
    dest = tmp_path / "model"
    with staged_path(dest) as built:
        built.mkdir()
        (built / "weights.bin").write_bytes(b"abc")
    assert (dest / "weights.bin").read_bytes() == b"abc"
    assert _litter(tmp_path) == ["model"]


def test_a_failed_build_leaves_nothing(tmp_path):
    dest = tmp_path / "model"
    with pytest.raises(RuntimeError, match="boom"):
        with staged_path(dest) as built:
            built.mkdir()
            (built / "half").write_bytes(b"x")
            raise RuntimeError("boom")
    assert _litter(tmp_path) == []


def test_an_existing_destination_is_refused_unless_overwriting(tmp_path):
    dest = tmp_path / "out.txt"
    dest.write_text("old")
    with pytest.raises(FileExistsError):
        with staged_path(dest) as built:
            built.write_text("new")
    assert dest.read_text() == "old" and _litter(tmp_path) == ["out.txt"]


def test_overwrite_replaces_only_after_success(tmp_path):
    dest = tmp_path / "out.txt"
    dest.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with staged_path(dest, overwrite=True) as built:
            built.write_text("half")
            raise KeyboardInterrupt
    assert dest.read_text() == "old"
    with staged_path(dest, overwrite=True) as built:
        built.write_text("new")
    assert dest.read_text() == "new" and _litter(tmp_path) == ["out.txt"]


def test_building_nothing_is_an_error_and_leaves_nothing(tmp_path):
    with pytest.raises(FileNotFoundError):
        with staged_path(tmp_path / "never"):
            pass
    assert _litter(tmp_path) == []
