"""Root of the test tree.

- Loads the package first, so its BLAS preload runs before any test imports mlx.core (cpu/blas.py
  explains why the order matters).
- The default run (`-m 'not slow'`) does not even collect coremltools' op conformance suite
  (tests/coreml/conformance: ~10,000 generated cases, all slow); `-m slow` or naming the folder runs it.
- The summary ends with one line saying what was left out and how to run it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import mlx_audio_coreml  # noqa: F401

_CONFORMANCE = Path(__file__).parent / "coreml" / "conformance"


def _default_run(config: pytest.Config) -> bool:
    return str(config.getoption("markexpr") or "").replace(" ", "") == "notslow"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if _default_run(config) and _CONFORMANCE in (collection_path, *collection_path.parents):
        named = any(Path(arg.split("::")[0]).resolve().is_relative_to(_CONFORMANCE) for arg in config.args)
        return None if named else True
    return None


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    if not _default_run(config):
        return
    deselected = len(terminalreporter.stats.get("deselected", []))
    terminalreporter.write_line(
        f"Not in this run: {deselected} slow tests (real weights on long audio, base-model accuracy, "
        "multilingual translation) and coremltools' op conformance suite (tests/coreml/conformance). "
        "Run them with: bash scripts/test.sh -m slow"
    )
