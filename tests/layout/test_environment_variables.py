"""Every MLX_AUDIO_COREML_* variable is named in config.py, in its table and as a constant, and
nowhere else in the package as a string: one place says what a user can set."""

from __future__ import annotations

import re
from pathlib import Path

from mlx_audio_coreml import config

PACKAGE = Path(config.__file__).resolve().parent
NAME = re.compile(r"[\"'](MLX_AUDIO_COREML_[A-Z0-9_]+)[\"']")


def _constants() -> set[str]:
    return {
        value for value in vars(config).values() if isinstance(value, str) and value.startswith("MLX_AUDIO_COREML_")
    }


def test_no_module_but_config_spells_a_variable_as_a_string():
    stray = [
        f"{path.relative_to(PACKAGE)}: {name}"
        for path in PACKAGE.rglob("*.py")
        if path.name != "config.py"
        for name in NAME.findall(path.read_text())
    ]
    assert stray == []


def test_every_constant_is_in_the_table_of_the_docstring():
    documented = set(re.findall(r"^\| (MLX_AUDIO_COREML_[A-Z0-9_]+) \|", config.__doc__ or "", re.MULTILINE))
    assert _constants() and _constants() <= documented
    assert documented <= _constants()
