"""Load the packages of one component under one deadline: a single package, or several (a
vocoder's frame buckets, one fixed-shape package each).

One package goes through `deadline.load_with_deadline` as it is. Several load one after another on
one worker, within the same timeout and cancel token (deadline.run_with_deadline): on cancel or
timeout the caller returns at once, and the models that did load, or load after they were
abandoned, are closed. A failure on any package closes those already loaded and is raised.
`companion_packages` lists a component's packages from its companion folder's manifest.json
(convert/kokoro.py writes `components.vocoder.packages`: frame bucket -> package folder).
`companion_units` lists what to load for each bucket in either layout: a package per bucket, or one
multi-function package (`components.vocoder.path` + `functions`: frame bucket -> function name, the
macOS 15 / iOS 18 layout), each bucket a `PackageRef` to that package's function.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from ..cancel import CancelToken
from ..coreml.runtime import ComputeUnits, CoreMLRuntime, LoadedModel
from ..options import Component
from .deadline import TickCallback, load_with_deadline, run_with_deadline


@dataclass(frozen=True)
class PackageRef:
    """One loadable unit: a package, and which of its functions to load (None: its default function;
    a name for each bucket of a multi-function package)."""

    path: Path
    function: str | None = None


def _ref(package: Path | PackageRef) -> PackageRef:
    return package if isinstance(package, PackageRef) else PackageRef(Path(package))


def load_packages(
    runtime: CoreMLRuntime,
    packages: Sequence[Path | PackageRef],
    compute_units: ComputeUnits,
    *,
    timeout_s: float,
    cancel: CancelToken | None = None,
    on_tick: TickCallback | None = None,
) -> list[LoadedModel]:
    """Every package (or package function) loaded, in order; raises what `load_with_deadline` raises."""
    refs = [_ref(p) for p in packages]
    if len(refs) == 1 and refs[0].function is None:
        return [
            load_with_deadline(
                runtime, refs[0].path, compute_units, timeout_s=timeout_s, cancel=cancel, on_tick=on_tick
            )
        ]

    def load_all(token: CancelToken) -> list[LoadedModel]:
        loaded: list[LoadedModel] = []
        try:
            for ref in refs:
                model = runtime.load(ref.path, compute_units, timeout_s=timeout_s, cancel=token, function=ref.function)
                loaded.append(model)
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
        name=f"coreml-load:{len(refs)} packages",
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
    keys = sorted(names, key=_bucket_order)
    found = [folder / names[k] for k in keys if (folder / names[k]).exists()]
    return found or [package]


def companion_units(package: Path, component: Component, manifest_name: str = "manifest.json") -> list[PackageRef]:
    """What to load for `component`: every function of the multi-function package the manifest names
    (`path` + `functions`: bucket -> function name, sorted numerically), when it lists functions and
    that package exists; else every package `companion_packages` finds, each whole."""
    folder = package if package.is_dir() and package.suffix not in (".mlpackage", ".mlmodelc") else package.parent
    try:
        manifest: Any = json.loads((folder / manifest_name).read_text(encoding="utf-8"))
        entry: Any = manifest["components"][component.value]
        listed: Any = entry["functions"]
        path = folder / str(entry["path"])
    except (OSError, ValueError, KeyError, TypeError):
        return [PackageRef(p) for p in companion_packages(package, component, manifest_name)]
    if not isinstance(listed, dict) or not listed or not path.exists():
        return [PackageRef(p) for p in companion_packages(package, component, manifest_name)]
    functions = {str(k): str(v) for k, v in cast(dict[object, object], listed).items()}
    return [PackageRef(path, functions[k]) for k in sorted(functions, key=_bucket_order)]


def _bucket_order(key: str) -> tuple[int, int, str]:
    """Numeric keys (frame buckets) in numeric order, before any other key."""
    return (0, int(key), key) if key.isdigit() else (1, 0, key)
