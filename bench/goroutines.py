#!/usr/bin/env python3
"""Goroutine listing grouped by user location: ``gocall goroutines --group userloc`` beside
``dlv goroutines -group userloc``, on one process with N parked goroutines.

Usage: python bench/goroutines.py [RUNS] [N,...]     (defaults 5, "1000,10000")

The target is tests/fixtures/goroutines built by Debian's Go 1.19 (Delve 1.20 reads Go <= 1.20),
optimized as programs ship, started with N goroutines parked in ``main.parked`` (plus a worker,
five labelled goroutines and main). For each N:

- gocall CLI: RUNS runs of ``gocall goroutines PID --group userloc --json``, spawn to exit
  (interpreter, imports, reading the binary, every goroutine's stack, grouping);
- gocall API: one ``gocall.attach``, then RUNS listings ``proc.goroutine_groups("userloc")``
  in the same process (what the shell pays per listing);
- Delve: RUNS times ``dlv attach PID --headless``, connect, ``ListGoroutines`` grouped by
  user location (what ``goroutines -group userloc`` sends), detach; the listing RPC alone and
  the whole run.

Both must count N goroutines in main.parked's group (checked). Prints a table, then one JSON
line. No timing is asserted anywhere.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import delve  # noqa: E402
from cold_attach import gocall_command  # noqa: E402
from targets import Stats, die_with_the_benchmark, go119, load, run_measured  # noqa: E402

import gocall  # noqa: E402

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "goroutines"
_USERLOC = 2  # service/api GoroutineField: None, CurrentLoc, UserLoc, GoLoc, StartLoc, Label, ...


def start(binary: Path, n: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen([str(binary), str(n)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, preexec_fn=die_with_the_benchmark)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith(f"ready pid={proc.pid}"):
        proc.kill()
        raise RuntimeError(f"{binary} did not start: {line!r}")
    return proc


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def measure(binary: Path, n: int, runs: int) -> dict[str, object]:
    target = start(binary, n)
    out: dict[str, object] = {"goroutines": n + 7}
    try:
        cmd = [*gocall_command(), "goroutines", str(target.pid), "--group", "userloc", "--json"]
        cli = [run_measured(cmd) for _ in range(runs)]
        for r in cli:
            groups = {g["group"].split()[0]: g["count"] for g in json.loads(r.stdout)}
            assert groups.get("main.parked", 0) == n, groups
        out["gocall_cli"] = Stats.of([r.seconds for r in cli])
        out["gocall_cli_cpu"] = Stats.of([r.cpu_seconds for r in cli])

        wall, cpu = [], []
        with gocall.attach(target.pid) as proc:
            proc.goroutine_groups("userloc")  # the first listing symbolizes every PC once
            for _ in range(runs):
                c0, t0 = _cpu(), time.perf_counter()
                groups = {g.key.split()[0]: g.count for g in proc.goroutine_groups("userloc")}
                wall.append(time.perf_counter() - t0)
                cpu.append(_cpu() - c0)
                assert groups.get("main.parked", 0) == n, groups
        out["gocall_api"], out["gocall_api_cpu"] = Stats.of(wall), Stats.of(cpu)

        if (why := delve.unavailable()) is not None:
            out["delve_note"] = f"skipped: {why}"
            return out
        listing, whole, dcpu = [], [], []
        for _ in range(runs):
            t0 = time.perf_counter()
            dlv = delve.Delve(target.pid)
            try:
                t1 = time.perf_counter()
                # GoroutineGroupingOptions is embedded in ListGoroutinesIn: its fields sit at the top.
                reply = dlv.rpc("ListGoroutines", Start=0, Count=0, Filters=[], GroupBy=_USERLOC, GroupByKey="",
                                MaxGroupMembers=5, MaxGroups=0)
                listing.append(time.perf_counter() - t1)
            finally:
                dlv.detach()
            whole.append(time.perf_counter() - t0)
            dcpu.append(dlv.cpu_seconds or 0.0)
            counts = {g["Name"]: g["Total"] for g in reply.get("Groups") or []}
            assert any(total == n and name.endswith("main.parked") for name, total in counts.items()), counts
        out["delve_list"], out["delve_whole"], out["delve_cpu"] = Stats.of(listing), Stats.of(whole), Stats.of(dcpu)
        out["target_alive"] = target.poll() is None
    finally:
        target.kill()
        target.wait()
    return out


def main(runs: int = 5, sizes: str = "1000,10000") -> dict[str, object]:
    binary = go119().build_cached(FIXTURE)
    load_before = load()
    results = {int(n): measure(binary, int(n), runs) for n in sizes.split(",")}
    load_after = load()

    def cell(s: object) -> str:
        return f"{s.median:8.0f} {s.p90:8.0f}" if isinstance(s, Stats) else f"{'-':>8} {'-':>8}"

    print(f"goroutines grouped by user location, ms (median p90), {runs} runs; load {load_before} -> {load_after}")
    print(f"{'goroutines':<11} {'gocall CLI':>17} {'(CLI CPU)':>17} {'gocall API':>17} {'(API CPU)':>17} "
          f"{'Delve list RPC':>17} {'Delve whole':>17} {'(Delve CPU)':>17}")
    for r in results.values():
        print(f"{r['goroutines']:<11} {cell(r.get('gocall_cli'))} {cell(r.get('gocall_cli_cpu'))} "
              f"{cell(r.get('gocall_api'))} {cell(r.get('gocall_api_cpu'))} {cell(r.get('delve_list'))} "
              f"{cell(r.get('delve_whole'))} {cell(r.get('delve_cpu'))}")
    summary = {str(n): {k: (v.to_json() if isinstance(v, Stats) else v) for k, v in r.items()}
               for n, r in results.items()}
    print(json.dumps({"load": [load_before, load_after], "results": summary}))
    return summary


if __name__ == "__main__":
    main(*(int(a) if i == 0 else a for i, a in enumerate(sys.argv[1:])))  # type: ignore[arg-type]
