"""Per-token kernel counts and GPU time from an Nsight Compute CSV of bench/gpu_profile_decoder.py.

    ncu --metrics gpu__time_duration.sum --csv --log-file ncu.csv python3 bench/gpu_profile_decoder.py --tokens 20
    python3 bench/gpu_ncu_summary.py ncu.csv --tokens 20

Tokens are told apart by the greedy argmax kernel that ends each token choice; the last `--tokens`
of them are the timed run. Kernels are grouped into a few kinds by name. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
from collections import defaultdict

KINDS = (  # (kind, substrings of the kernel name), first match wins
    ("timestamp-rule mask (logit filter, one fused kernel)", ("Hi4IBroadcastBIb1ILess",)),
    ("static-cache write (slice_update at a device offset)", ("copy_gg_dynamic", "compute_dynamic_offset")),
    ("matrix products (cuBLAS, nvjet, MLX gemv)", ("nvjet", "cublas", "gemv", "splitK", "gemm")),
    ("attention (MLX sdpa kernels)", ("sdpa", "attention")),
    ("layer norm", ("layer_norm",)),
    ("softmax / logsumexp", ("softmax", "logsumexp")),
)


def kind_of(name: str) -> str:
    return next(
        (kind for kind, keys in KINDS if any(k in name for k in keys)), "other elementwise, copy, gather, reduce"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv")
    parser.add_argument("--tokens", type=int, default=20)
    parser.add_argument(
        "--argmax-per-token", type=int, default=1, help="2 for gpu_loop's device loop (text and timestamp argmax)"
    )
    args = parser.parse_args()
    with open(args.csv, newline="") as handle:
        rows = [r for r in csv.reader(handle) if len(r) > 10]
    head, rows = rows[0], rows[1:]
    name_at, value_at = head.index("Kernel Name"), head.index("Metric Value")
    names = [r[name_at] for r in rows]
    micros = [float(r[value_at].replace(",", "")) / 1e3 for r in rows]  # ncu reports ns
    ends = [i for i, n in enumerate(names) if "arg_reduce" in n][:: -args.argmax_per_token][::-1][-args.tokens :]
    spans = list(zip(ends[1:-1], ends[2:], strict=True))  # whole tokens of the timed run, the first dropped
    if not spans:
        sys.exit("too few argmax kernels in the CSV")
    time_by, count_by = defaultdict(float), defaultdict(float)
    for start, end in spans:
        for i in range(start, end):
            time_by[kind_of(names[i])] += micros[i] / len(spans)
            count_by[kind_of(names[i])] += 1 / len(spans)
    per_token = [sum(micros[a:b]) for a, b in spans]
    print(
        f"{len(spans)} tokens: {statistics.median(b - a for a, b in spans)} kernels and "
        f"{statistics.median(per_token):.0f} us of kernel time per token (median)\n"
    )
    print("| kernels of | per token | us per token |\n| --- | --- | --- |")
    for kind in sorted(time_by, key=lambda k: -time_by[k]):
        print(f"| {kind} | {count_by[kind]:.0f} | {time_by[kind]:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
