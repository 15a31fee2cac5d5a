"""Load the packages of one component under one deadline: a single package, or several (a
vocoder's frame buckets, one fixed-shape package each).

One package goes through `deadline.load_with_deadline` as it is. Several load one after another on
one worker, within the same timeout and cancel token (deadline.run_with_deadline): on cancel or
timeout the caller returns at once, and the models that did load, or load after they were
abandoned, are closed. A failure on any package closes those already loaded and is raised.
`companion_packages` lists a component's packages from its companion folder's manifest.json
(convert/kokoro.py writes `components.vocoder.packages`: frame bucket -> package folder).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from ..cancel import CancelToken
from ..coreml.runtime import ComputeUnits, CoreMLRuntime, LoadedModel
from ..options import Component
from .deadline import TickCallback, load_with_deadline, run_with_deadline


def load_packages(
    runtime: CoreMLRuntime,
    packages: Sequence[Path],
    compute_units: ComputeUnits,
    *,
    timeout_s: float,
    cancel: CancelToken | None = None,
    on_tick: TickCallback | None = None,
) -> list[LoadedModel]:
    """Every package loaded, in order; raises what `load_with_deadline` raises."""
    if len(packages) == 1:
        return [
            load_with_deadline(runtime, packages[0], compute_units, timeout_s=timeout_s, cancel=cancel, on_tick=on_tick)
        ]

    def load_all(token: CancelToken) -> list[LoadedModel]:
        loaded: list[LoadedModel] = []
        try:
            for package in packages:
                loaded.append(runtime.load(package, compute_units, timeout_s=timeout_s, cancel=token))
        except BaseException:
            _close_all(loaded)
            raise
        return loaded

    return run_with_deadline(
        load_all,
        timeout_s=timeout_s,
        cancel=cancel,
        on_tick=on_tick,
        dispose=_close_all,
        name=f"coreml-load:{len(packages)} packages",
    )


def _close_all(models: Sequence[LoadedModel]) -> None:
    for model in models:
        model.close()


def companion_packages(package: Path, component: Component, manifest_name: str = "manifest.json") -> list[Path]:
    """Every package of `component` that the manifest beside `package` (or inside it, for a folder)
    lists and that exists, in the manifest's key order sorted numerically when keys are numbers
    (frame buckets); `[package]` when there is no such list."""
    folder = package if package.is_dir() and package.suffix not in (".mlpackage", ".mlmodelc") else package.parent
    try:
        manifest: Any = json.loads((folder / manifest_name).read_text(encoding="utf-8"))
        listed: Any = manifest["components"][component.value]["packages"]
    except (OSError, ValueError, KeyError, TypeError):
        return [package]
    if not isinstance(listed, dict) or not listed:
        return [package]
    names = {str(k): str(v) for k, v in cast(dict[object, object], listed).items()}
    keys = sorted(names, key=lambda k: (0, int(k), k) if k.isdigit() else (1, 0, k))
    found = [folder / names[k] for k in keys if (folder / names[k]).exists()]
    return found or [package]
