"""Timing machinery of bench/gpu_encoder_probe.py: medians with device syncs, table rows that fail alone.

MLX regions end in mx.eval + mx.synchronize, torch regions in torch.cuda.synchronize; short ops run
`inner` times per region. `dispatch_ms` is the host's share: ms until `mx.async_eval` returns.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import mlx.core as mx

try:
    import torch
except ImportError:  # the torch cells then say n/a
    torch = None  # type: ignore[assignment]

Cell = float | str  # ms, or "n/a: reason"


@dataclass
class Probe:
    args: argparse.Namespace
    rows: list[tuple[str, str, Cell, Cell, float]] = field(default_factory=list)  # section, what, mlx, torch, flop
    seen: dict[str, float] = field(default_factory=dict)  # key -> MLX or torch ms, for the sums
    raw: list[str] = field(default_factory=list)  # rendered rows from child processes (f)
    start: float = field(default_factory=time.perf_counter)

    def over_budget(self) -> bool:
        return time.perf_counter() - self.start > self.args.budget_s

    def row(self, section: str, what: str, ours: Callable[[], float] | None, peer: Callable[[], float] | None,
            flop: float, key: str = "") -> None:  # fmt: skip
        if self.over_budget():
            ours = peer = lambda: "skipped: past --budget-s"  # type: ignore[assignment,return-value]  # noqa: E731
        cells = [attempt(ours), attempt(peer)]
        for side, cell in zip(("mlx", "torch"), cells, strict=True):
            if key and isinstance(cell, float):
                self.seen[f"{side}:{key}"] = cell
        self.rows.append((section, what, cells[0], cells[1], flop))

    def mlx(self, fn: Callable[[], object], inner: int | None = None) -> Callable[[], float]:
        return lambda: _median(fn, inner or self.args.inner, self.args, _mlx_sync)

    def torch(self, fn: Callable[[], object], inner: int | None = None) -> Callable[[], float] | None:
        if torch is None or self.args.no_torch or not torch.cuda.is_available() and not self.args.tiny:
            return None
        return lambda: _median(fn, inner or self.args.inner, self.args, _torch_sync)


def attempt(measure: Callable[[], float] | None) -> Cell:
    if measure is None:
        return "-"
    try:
        return measure()
    except Exception as exc:  # noqa: BLE001  (one failing row must not lose the table)
        return f"n/a: {type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:70]}"


def _mlx_sync(out: object) -> None:
    mx.eval(out)
    mx.synchronize()


def _torch_sync(out: object) -> None:
    del out
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _median(fn: Callable[[], object], inner: int, args: argparse.Namespace, sync: Callable[[object], None]) -> float:
    """ms per call: `inner` calls per timed region (their outputs kept, so none is skipped)."""
    for _ in range(args.warmup):
        sync([fn() for _ in range(inner)])
    samples = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        sync([fn() for _ in range(inner)])
        samples.append((time.perf_counter() - start) * 1e3 / inner)
    return statistics.median(samples)


def in_rounds(p: Probe, fns: dict[str, Callable[[], mx.array]]) -> dict[str, list[float]]:
    """Each candidate's median ms in --rounds interleaved rounds (all candidates once per round), so a
    drift of the card or host over the run falls on every candidate alike; failures give no entry."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(p.args.rounds):
        for name, fn in fns.items():
            cell = attempt(p.mlx(fn, inner=1))
            if isinstance(cell, float):
                times[name].append(cell)
    return times


def dispatch_ms(fn: Callable[[], mx.array], args: argparse.Namespace) -> float:
    """Median ms until `mx.async_eval` returns: the host's share (graph build, captures, launches)."""
    samples = []
    for i in range(args.warmup + args.repeats):
        mx.synchronize()
        start = time.perf_counter()
        out = fn()
        mx.async_eval(out)
        if i >= args.warmup:
            samples.append((time.perf_counter() - start) * 1e3)
        mx.eval(out)
        mx.synchronize()
    return statistics.median(samples)


def render(p: Probe) -> str:
    def cell(v: Cell, flop: float) -> str:
        if isinstance(v, str):
            return f"{v} | -"
        return f"{v:.4f} | {flop / v / 1e9:.1f}" if flop else f"{v:.4f} | -"

    lines = [
        "| part | what | MLX ms | MLX TFLOP/s | torch ms | torch TFLOP/s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    lines += [f"| {s} | {w} | {cell(a, f)} | {cell(b, f)} |" for s, w, a, b, f in p.rows]
    lines += p.raw
    return "\n".join(lines)
