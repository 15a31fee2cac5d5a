"""Run coremltools' MIL op test suite through the portable runtime and tabulate the outcome per file.

    .venv/bin/python bench/portable_conformance.py [--fp32] [--files test_ios14_conv ...] [--fresh]

Each coremltools test file is wrapped by tests/coreml/conformance/test_<opset>_<name>.py; the
conftest there routes predictions to PortableRuntime. Outcomes per file: passed, failed,
unsupported (the package uses an op the portable runtime lacks), skipped (skipped by coremltools
itself, e.g. needs TensorFlow or macOS-only behaviour), xfailed (coremltools marks it a known
Core ML failure). The table goes to stdout and, with the raw records, to bench/results/.
Records accumulate in bench/results/portable_conformance_records.jsonl: a run redoes only the files
named with --files (or, without it, the files not recorded yet); --fresh starts over.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "tests" / "coreml" / "conformance"
RESULTS = ROOT / "bench" / "results"
COLUMNS = ("passed", "failed", "unsupported", "skipped", "xfailed")


def classify(record: dict) -> str:
    if record["outcome"] == "skipped":
        reason = record.get("reason", "")
        if "portable-unsupported:" in reason:
            return "unsupported"
        return "skipped"
    if record["outcome"] == "failed":
        return "failed"
    return "passed"


def run_file(path: Path, fp32: bool, report: Path, timeout_s: int) -> float:
    env = dict(os.environ, PORTABLE_CONFORMANCE_REPORT=str(report))
    if fp32:
        env["PORTABLE_CONFORMANCE_FP32"] = "1"
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:warnings",
        "-m",
        "slow or not slow",
        "--timeout",
        "120",
        str(path),
    ]
    start = time.perf_counter()
    try:
        subprocess.run(
            command,
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pass  # what finished is in the report; the table says the file timed out
    return time.perf_counter() - start


def tabulate(records: list[dict], seconds: dict[str, float]) -> tuple[str, dict]:
    counts: dict[str, Counter] = defaultdict(Counter)
    failures: dict[str, list[str]] = defaultdict(list)
    for record in records:
        name = _file_of(record)
        kind = "xfailed" if record.get("xfail") else classify(record)
        counts[name][kind] += 1
        if kind in ("failed", "unsupported"):
            failures[name].append(f"{kind}: {record['nodeid'].split('::', 1)[-1]} -- {record.get('reason', '')}")
    lines = ["| file | " + " | ".join(COLUMNS) + " | seconds |", "|---" * (len(COLUMNS) + 2) + "|"]
    total: Counter = Counter()
    for name in sorted(seconds):
        row = counts.get(name, Counter())
        total.update(row)
        cells = " | ".join(str(row.get(c, 0)) for c in COLUMNS)
        lines.append(f"| {name} | {cells} | {seconds[name]:.0f} |")
    lines.append(
        "| **total** | " + " | ".join(str(total.get(c, 0)) for c in COLUMNS) + f" | {sum(seconds.values()):.0f} |"
    )
    lines += ["", "Unsupported, by the op (or feature) the package needs:", "", "| op | tests |", "|---|---|"]
    lines += [f"| {op} | {n} |" for op, n in _unsupported_ops(records).most_common()] or ["| (none) | 0 |"]
    failed = [
        (name, item.removeprefix("failed: "))
        for name, items in sorted(failures.items())
        for item in items
        if item.startswith("failed: ")
    ]
    if failed:
        lines += ["", "Failed, with the last line of the failure:", "", "| file | test and reason |", "|---|---|"]
        lines += [f"| {name} | {item.replace('|', '/')[:300]} |" for name, item in failed]
    return "\n".join(lines), {"counts": {k: dict(v) for k, v in counts.items()}, "failures": failures}


def _unsupported_ops(records: list[dict]) -> Counter:
    ops: Counter = Counter()
    for record in records:
        if classify(record) == "unsupported":
            reason = record.get("reason", "").split("portable-unsupported:", 1)[-1].split()
            ops[reason[0] if reason else "?"] += 1
    return ops


def _load_records(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _file_of(record: dict) -> str:
    return record["nodeid"].split("::")[0].rsplit("/", 1)[-1].removesuffix(".py")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fp32", action="store_true", help="also run the fp32 variants")
    parser.add_argument("--files", nargs="*", help="wrapper names (test_ios14_conv ...) to (re)run")
    parser.add_argument("--fresh", action="store_true", help="forget earlier records")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed per file")
    args = parser.parse_args()
    suffix = "_fp32" if args.fp32 else ""
    RESULTS.mkdir(parents=True, exist_ok=True)
    records_path = RESULTS / f"portable_conformance_records{suffix}.jsonl"
    seconds_path = RESULTS / f"portable_conformance_seconds{suffix}.json"
    if args.fresh:
        records_path.unlink(missing_ok=True)
        seconds_path.unlink(missing_ok=True)
    seconds: dict[str, float] = json.loads(seconds_path.read_text()) if seconds_path.is_file() else {}
    files = sorted(SUITE.glob("test_ios*.py"))
    done = {_file_of(r) for r in _load_records(records_path)} | set(seconds)
    todo = [f for f in files if (f.stem in set(args.files) if args.files else f.stem not in done)]
    for path in todo:
        kept = [r for r in _load_records(records_path) if _file_of(r) != path.stem]
        records_path.write_text("".join(json.dumps(r) + "\n" for r in kept))
        seconds[path.stem] = run_file(path, args.fp32, records_path, args.timeout)
        seconds_path.write_text(json.dumps(seconds, indent=1) + "\n")
        print(f"{path.stem}: {seconds[path.stem]:.0f} s", file=sys.stderr)
    table, summary = tabulate(_load_records(records_path), seconds)
    print(table)
    (RESULTS / f"portable_conformance{suffix}.md").write_text(table + "\n")
    (RESULTS / f"portable_conformance{suffix}.json").write_text(json.dumps(summary, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
