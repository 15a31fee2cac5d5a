"""The package root: every public name resolves, and importing it stays cheap (no MLX yet)."""

import subprocess
import sys

import mlx_audio_coreml


def test_every_public_name_resolves():
    for name in mlx_audio_coreml.__all__:
        assert getattr(mlx_audio_coreml, name) is not None, name


def test_all_lists_the_lazy_table_and_the_version():
    # __all__ is spelled out as a literal for type checkers; it must not drift from the lazy table
    assert mlx_audio_coreml.__all__ == sorted(mlx_audio_coreml._PUBLIC) + ["__version__"]


def test_unknown_attribute_raises_attribute_error():
    try:
        mlx_audio_coreml.no_such_thing  # noqa: B018
    except AttributeError as exc:
        assert "no_such_thing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_import_loads_no_mlx_so_blas_can_come_first():
    code = "import sys, mlx_audio_coreml; print('mlx.core' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_package_ships_py_typed_marker():
    from importlib.resources import files

    assert files("mlx_audio_coreml").joinpath("py.typed").is_file()
