"""Shared paths and helpers for tests/native (a unique module name: tests have no packages)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STANDIN = REPO / "build" / "standin" / "libmacb_standin.so"
HEADER = REPO / "swift_bridge" / "include" / "macb.h"


def calls(package: Path) -> list[str]:
    """The stand-in's call log for a package made by `make_package` (one line per Core ML call)."""
    log = package.parent / package.name.replace(".mlpackage", ".calls.log")
    return log.read_text().splitlines() if log.exists() else []
