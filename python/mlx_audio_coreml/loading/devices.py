"""Facts about this machine that backend selection needs: Core ML present, a usable Neural Engine.

`read_device_facts()` reads the real machine once per process:
- macOS with the shim built: the shim's own answer (`native.runtime_facts()`: Core ML's
  `availableComputeDevices` on macOS 14+, sysctl before that);
- macOS without the shim: `sysctl hw.optional.arm64`, `kern.hv_vmm_present`, `machdep.cpu.brand_string`;
- anything else (Linux, Windows): no Core ML, no Neural Engine.

Tests and "what if" tools pass their own `DeviceFacts` instead (an M1 Mac, an A11 iPhone).
The macOS paths are written from Apple's documentation and have not run on a Mac here.
"""

from __future__ import annotations

import functools
import logging
import platform
import re
import subprocess
from dataclasses import dataclass

logger = logging.getLogger(__name__)

# The seed: "Check for A12+ (iPhone XS) or M1+ (Mac)". The A11's first Neural Engine is not open
# to Core ML models from apps, so it counts as none.
_FIRST_A_SERIES_WITH_ANE = 12
_CHIP_PATTERN = re.compile(r"\bApple\s+([AM])(\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class DeviceFacts:
    """What selection needs to know about a machine. Build one to play another device in tests."""

    os_name: str  # "Darwin", "Linux", "iOS" ...
    os_version: str
    chip: str  # e.g. "Apple M1", "Apple A11 Bionic", or the CPU model on other machines
    coreml_available: bool  # Core ML's framework exists on this OS
    has_neural_engine: bool  # the chip has a Neural Engine that Core ML models can use
    is_vm: bool = False  # a virtual machine: Neural Engine compiles hang there (CI runners)
    source: str = "injected"  # how the facts were read: "shim", "sysctl", "platform", "injected"

    @property
    def neural_engine_usable(self) -> bool:
        return self.coreml_available and self.has_neural_engine and not self.is_vm

    def neural_engine_problem(self) -> str:
        """Why the Neural Engine cannot be used, in words for a user; '' when it can."""
        if not self.coreml_available:
            return f"Core ML is not available on {self.os_name}"
        if self.is_vm:
            return "running in a virtual machine, where Neural Engine compiles hang"
        if not self.has_neural_engine:
            return f"{self.chip or 'this chip'} has no Neural Engine usable by Core ML (A12+ or M1+ needed)"
        return ""

    def describe(self) -> str:
        ane = "Neural Engine" if self.neural_engine_usable else "no usable Neural Engine"
        vm = ", VM" if self.is_vm else ""
        return f"{self.chip} ({self.os_name} {self.os_version}{vm}): {ane} [{self.source}]"


def chip_has_neural_engine(chip: str) -> bool | None:
    """The seed's rule on a chip name: M-series yes, A12 and later yes, A11 and earlier no.

    None when the name is not an Apple chip name this rule knows.
    """
    found = _CHIP_PATTERN.search(chip)
    if found is None:
        return None
    family, generation = found.group(1).upper(), int(found.group(2))
    if family == "M":
        return generation >= 1
    return generation >= _FIRST_A_SERIES_WITH_ANE


@functools.lru_cache(maxsize=1)
def read_device_facts() -> DeviceFacts:
    """The real machine's facts, read once."""
    system = platform.system()
    if system != "Darwin":
        return DeviceFacts(
            os_name=system,
            os_version=platform.release(),
            chip=_cpu_name(),
            coreml_available=False,
            has_neural_engine=False,
            source="platform",
        )
    return _facts_from_shim() or _facts_from_sysctl()


def _facts_from_shim() -> DeviceFacts | None:
    """The shim's answer on macOS, or None when the shim is not built or not loadable.

    Where the shim does not know (an OS before `availableComputeDevices`), sysctl fills in.
    """
    try:
        from ..native import runtime_facts

        facts = runtime_facts()
    except Exception as exc:  # not built, wrong ABI ...: sysctl still works
        logger.debug("shim device facts unavailable (%s); using sysctl", exc)
        return None
    fallback = _facts_from_sysctl()
    ane = facts.neural_engine_available
    vm = facts.running_in_vm
    return DeviceFacts(
        os_name="Darwin",
        os_version=".".join(str(v) for v in facts.os_version),
        chip=fallback.chip,
        coreml_available=bool(facts.coreml_available),
        has_neural_engine=fallback.has_neural_engine if ane is None else bool(ane),
        is_vm=fallback.is_vm if vm is None else bool(vm),
        source="shim" if ane is not None else "shim+sysctl",
    )


def _facts_from_sysctl() -> DeviceFacts:
    """Before macOS 14 Core ML cannot list devices: every Apple silicon Mac has a Neural Engine."""
    arm64 = _sysctl("hw.optional.arm64") == "1"
    is_vm = _sysctl("kern.hv_vmm_present") == "1"
    chip = _sysctl("machdep.cpu.brand_string") or platform.machine()
    by_name = chip_has_neural_engine(chip)
    return DeviceFacts(
        os_name="Darwin",
        os_version=platform.mac_ver()[0],
        chip=chip,
        coreml_available=True,
        has_neural_engine=arm64 if by_name is None else by_name and arm64,
        is_vm=is_vm,
        source="sysctl",
    )


def _sysctl(name: str) -> str:
    """`sysctl -n name`, or '' when the key does not exist here."""
    try:
        done = subprocess.run(["sysctl", "-n", name], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
