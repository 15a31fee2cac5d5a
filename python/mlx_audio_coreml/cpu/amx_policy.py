"""Which int8 products of a few rows may use oneDNN's AMX kernels (CPUs with AMX: Sapphire Rapids and
later Xeons), for `onednn_rows`.

An AMX tile multiply takes 16 rows; with one row 15/16 of each tile idles, and oneDNN still picks
its AMX implementation first. Products of 16 rows or more always keep oneDNN's first pick.
"""

from __future__ import annotations

from functools import lru_cache

from .. import config

_AMX_ROWS = config.ROWS_AMX  # "0": few-row products never use oneDNN's AMX kernels, "1": always
_AMX_WEIGHT_MIN = 1_000_000  # one row against a weight this large (the logits' pieces) keeps AMX


def amx_for_few_rows(rows: int, weight_size: int) -> bool:
    """Whether a product of `rows` (< 16) input rows against a weight of `weight_size` elements
    may use oneDNN's AMX implementations (its first pick on a Sapphire Rapids Xeon, even for one
    row); else it takes the next implementation without AMX (AVX-512 VNNI there).

    Default: AMX for several rows (beams), and for one row only against a large weight.
    - One row: one thread's products on such a Xeon (bench/xeon_cpu.gemm.py, 2026-12-06): tiny.en's
      logits 51864 x 384 1.12 ms with AMX against 1.19 without; 384 x 384, 1536 x 384, 384 x 1536
      0.007 / 0.022 / 0.020 ms without AMX against 0.009 / 0.028 / 0.029 with it.
    - Five rows: in the one-thread tables the two were within 10% either way (a logits piece 0.119
      with AMX, 0.126 without). In the real beam-5 step AMX was faster: 8.86 against 9.65 ms a step
      (bench/longform_phases.py, 3.2 min, 2 pinned cores, 2026-12-07; transcribe_cpu_xeon.md).
    MLX_AUDIO_COREML_ROWS_AMX=1 / 0 takes AMX always / never, to compare."""
    wanted = config.setting(_AMX_ROWS)
    if wanted in ("0", "1"):
        return wanted == "1"
    return rows > 1 or weight_size >= _AMX_WEIGHT_MIN


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as Linux's /proc/cpuinfo names them (empty elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_has_amx() -> bool:
    """The CPU reports AMX tiles (the flag `amx_tile`): a Sapphire Rapids or later Xeon. Also the
    proxy for "one core reads its L3 slowly" (~20 GB/s measured on such a Xeon against ~55 on this
    AMD EPYC), which host_decoder's cross-attention split relies on."""
    return "amx_tile" in cpu_flags()
