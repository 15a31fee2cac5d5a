"""`mlx-audio-coreml info`: what this machine can run (see loading/diagnostics.py), as text or JSON."""

from __future__ import annotations

import argparse
import json

from ..loading.diagnostics import Diagnostics, collect


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "info", help="show the platform, MLX, BLAS, native shim, Core ML and Neural Engine status"
    )
    parser.add_argument("--json", action="store_true", help="print the same facts as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    found = collect()
    if args.json:
        print(json.dumps(found.as_dict(), indent=2, default=str))
    else:
        print(render(found))
    return 0


def _native_line(found: Diagnostics) -> str:
    status = found.native
    if status.state == "loaded":
        return f"loaded {status.path} [{status.build_info}]"
    if status.state == "not built":
        return "not built (no Swift compiler when the package was installed; Core ML runtime 'apple' unavailable)"
    return f"{status.state}: {status.path} ({status.detail})"


def render(found: Diagnostics) -> str:
    mlx = (
        f"{found.mlx_version}, default device {found.mlx_device}, GPU: {found.gpu}"
        if found.mlx_version
        else found.mlx_device
    )
    lines = [
        f"mlx-audio-coreml {found.package_version}",
        f"platform:       {found.platform} ({found.machine}), Python {found.python}",
        f"mlx:            {mlx}",
        f"blas:           {found.blas}",
        f"cpu kernels:    {found.cpu_kernels}",
        f"native:         {_native_line(found)}",
        f"core ml:        {found.coreml}",
        f"neural engine:  {found.neural_engine}",
        "core ml runtimes:",
    ]
    for row in found.runtimes:
        state = "available" if row.available else "unavailable"
        reason = f": {row.reason}" if row.reason else ""
        lines.append(f"  {row.name:<12}  {state}{reason}")
    return "\n".join(lines)
