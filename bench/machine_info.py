"""What every CPU bench prints about the machine: the CPU's model and vector/matrix extensions, package versions."""

from __future__ import annotations

_EXTENSIONS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16")


def _cpuinfo(field: str) -> str | None:
    try:
        return next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith(field))
    except (OSError, StopIteration):
        return None


def cpu_model() -> str:
    """The CPU's model name ("unknown CPU" where /proc/cpuinfo does not say)."""
    return _cpuinfo("model name") or "unknown CPU"


def cpu_flags() -> str:
    """The vector and matrix extensions the engines' kernels pick from (AVX-512, VNNI, AMX)."""
    flags = _cpuinfo("flags")
    if flags is None:
        return "?"
    present = flags.split()
    return ", ".join(f for f in _EXTENSIONS if f in present) or "none of avx2/avx512/vnni/amx"


def version(module: str) -> str:
    """An importable module's __version__, or "not installed"."""
    try:
        return __import__(module).__version__
    except ImportError:
        return "not installed"
