"""Load the packages of one component under one deadline: a single package, or several (a
vocoder's frame buckets, one fixed-shape package each).

One package goes through `deadline.load_with_deadline` as it is. Several load one after another on
one worker, within the same timeout and cancel token (deadline.run_with_deadline): on cancel or
timeout the caller returns at once, and the models that did load, or load after they were
abandoned, are closed. A failure on any package closes those already loaded and is raised.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..cancel import CancelToken
from ..coreml.runtime import ComputeUnits, CoreMLRuntime, LoadedModel
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
