"""What this machine can run, for `mlx-audio-coreml info`: platform, MLX and its device, the BLAS
in use, the native shim, Core ML and the Neural Engine, and which Core ML runtimes are available.

`collect()` never raises: whatever cannot be found out is reported as such.
"""

from __future__ import annotations

import platform
import sys
from dataclasses import asdict, dataclass
from typing import Any

from .. import __version__, native
from ..coreml import registry
from ..cpu import blas as _blas


@dataclass(frozen=True)
class RuntimeRow:
    name: str
    available: bool
    reason: str
    claims_neural_engine: bool | None  # None when the runtime's module cannot be imported


@dataclass(frozen=True)
class Diagnostics:
    package_version: str
    platform: str
    machine: str
    python: str
    mlx_version: str  # "" when MLX cannot be imported
    mlx_device: str
    gpu: str  # "Metal", "CUDA" or "none"
    blas: str
    cpu_kernels: str  # oneDNN for the CPU host path's products and our C kernels, or why not
    native: native.LibraryStatus
    facts: native.RuntimeFacts | None  # None when the shim is not loaded
    runtimes: tuple[RuntimeRow, ...]

    @property
    def coreml(self) -> str:
        """One line on Core ML: available, the test-only stand-in, or why not."""
        if self.facts is None:
            if sys.platform == "darwin":
                return f"unknown (native {self.native.state})"
            return f"unavailable: Core ML exists only on Apple platforms, not on {platform.system()}"
        if self.facts.is_standin:
            return "TEST-ONLY stand-in loaded: executes no model, proves nothing about Core ML"
        if self.facts.coreml_available:
            version = ".".join(str(v) for v in self.facts.os_version)
            return f"available ({self.facts.os_name} {version})"
        return f"unavailable: {self.facts.note}"

    @property
    def neural_engine(self) -> str:
        facts = self.facts
        if facts is None or facts.neural_engine_available is None:
            return "unknown"
        if facts.neural_engine_available:
            cores = f" ({facts.neural_engine_cores} cores)" if facts.neural_engine_cores else ""
            return f"present{cores}" + (" [stand-in]" if facts.is_standin else "")
        reason = facts.note if facts.coreml_available else ""  # without Core ML the core ml line says why
        return f"absent ({reason})" if reason else "absent"

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["coreml"] = self.coreml
        data["neural_engine"] = self.neural_engine
        return data


def _mlx() -> tuple[str, str, str]:
    try:
        import mlx.core as mx
    except ImportError as exc:
        return "", f"unavailable ({exc})", "none"
    gpu = "none"
    if mx.metal.is_available():
        gpu = "Metal"
    elif getattr(mx, "cuda", None) is not None and mx.cuda.is_available():
        gpu = "CUDA"
    version = str(getattr(mx, "__version__", ""))  # not in MLX's type stubs
    return version, str(mx.default_device()), gpu


def _runtime(name: str) -> RuntimeRow:
    found = registry.availability(name)
    try:
        claims = bool(registry.runtime_class(name).claims_neural_engine)
    except Exception:  # noqa: BLE001  (a runtime whose module fails to import is reported, not raised)
        claims = None
    return RuntimeRow(name, found.available, found.reason, claims)


def _cpu_kernels() -> str:
    from ..cpu import native_kernels, onednn

    found = onednn.version()
    ours = (
        "our C kernels (libmacb_cpu: the decoder step's attention, norms, GELU, logsumexp, int8 rows)"
        if native_kernels.available()
        else "libmacb_cpu not built (no C compiler at install) or turned off: numpy does its work"
    )
    if found is None:
        return f"none (oneDNN not installed: float32 through the BLAS above; int8 through MLX quantization); {ours}"
    return f"oneDNN {found} (float32 and int8 products on the CPU host path); {ours}"


def collect() -> Diagnostics:
    mlx_version, device, gpu = _mlx()
    status = native.library_status()
    facts = native.runtime_facts() if status.loaded else None
    return Diagnostics(
        package_version=__version__,
        platform=platform.platform(),
        machine=platform.machine(),
        python=platform.python_version(),
        mlx_version=mlx_version,
        mlx_device=device,
        gpu=gpu,
        blas=_blas.blas_note,
        cpu_kernels=_cpu_kernels(),
        native=status,
        facts=facts,
        runtimes=tuple(_runtime(name) for name in registry.RUNTIME_NAMES),
    )
