#!/usr/bin/env python3
"""Drives servers with wrk, a standard load tool, for scripts/bench: rounds that take
turns between the targets, one wrk thread on its own core, 50 connections. Prints a
Markdown table: each target's requests/s, p50 and p99 (median of rounds), errors,
the share of one core wrk itself used (near 100%, the tool is the limit and its
figures say so), and the share of the first target's requests/s.

Each --target is a JSON array: [label, url, script, script arguments...], the script
being one of backend/benches/wrk/*.lua (each prints a `WRK key=value...` line).
"""

import argparse
import json
import re
import statistics
import subprocess
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent.parent / "backend" / "benches" / "wrk"


def once(pin, connections, seconds, url, script, args):
    """One wrk run: its figures, and the share of a core it used."""
    command = pin + ["/usr/bin/time", "-f", "WRKCPU %P", "wrk", "-t1", f"-c{connections}",
                     f"-d{seconds}s", "-s", str(SCRIPTS / script), url, "--", *args]
    run = subprocess.run(command, capture_output=True, text=True, check=True)
    line = re.search(r"^WRK (.*)$", run.stdout, re.M)
    cpu = re.search(r"WRKCPU (\d+)%", run.stderr)
    if not line or not cpu:
        sys.exit(f"wrk gave no figures: {run.stdout}{run.stderr}")
    figures = dict(pair.split("=") for pair in line.group(1).split())
    return {
        "rate": int(figures["requests"]) / float(figures["seconds"]),
        "p50": int(figures["p50_us"]),
        "p99": int(figures["p99_us"]),
        "errors": int(figures["errors"]),
        "cpu": int(cpu.group(1)),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", action="append", required=True, type=json.loads)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--pin", default="", help="command prefix, e.g. 'taskset -c 1'")
    parser.add_argument("--targets", action="store_true",
                        help="judge the last row against the first: >= 80% of its requests/s, p99 < 2 ms")
    options = parser.parse_args()
    pin = options.pin.split()
    runs = {i: [] for i in range(len(options.target))}
    for i, (_, url, script, *args) in enumerate(options.target):  # warm-up
        once(pin, options.connections, 1, url, script, args)
    for _ in range(options.rounds):
        for i, (_, url, script, *args) in enumerate(options.target):
            runs[i].append(once(pin, options.connections, options.seconds, url, script, args))

    def median(i, key):
        return statistics.median(run[key] for run in runs[i])

    first = median(0, "rate")
    print(f"| server | requests/s (median of {options.rounds} rounds) | p50 | p99 (median of rounds) "
          "| p99 per round | errors | wrk's CPU (one core) | vs first row |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for i, (label, *_rest) in enumerate(options.target):
        per_round = ", ".join(f"{run['p99'] / 1000:.2f}" for run in runs[i])
        print(f"| {label} | {median(i, 'rate'):.0f} | {median(i, 'p50') / 1000:.2f} ms "
              f"| {median(i, 'p99') / 1000:.2f} ms | {per_round} "
              f"| {sum(run['errors'] for run in runs[i])} | {median(i, 'cpu'):.0f}% "
              f"| {100 * median(i, 'rate') / first:.0f}% |")
    print()
    if options.targets:
        last = len(options.target) - 1
        ratio = median(last, "rate") / first
        p99 = median(last, "p99") / 1000
        verdict = lambda met: "met" if met else "missed"
        print(f"Under wrk, {options.target[last][0]} / {options.target[0][0]}: **{100 * ratio:.0f}%** "
              f"(target ≥ 80%: {verdict(ratio >= 0.8)}); its p99 **{p99:.2f} ms** "
              f"(target < 2 ms: {verdict(p99 < 2)}); the first row's p99 {median(0, 'p99') / 1000:.2f} ms "
              f"under the same tool.")
        print()


if __name__ == "__main__":
    main()
