#!/usr/bin/env python3
"""Benchmark 2 (and 4 for it): cold attach -> first result -> detach, gocall vs Delve.

Usage: python bench/cold_attach.py [RUNS] [TARGETS]    (defaults 5, "small,cmdgo")

For each target (targets.py: ``small``, 1.8 MB, and ``cmdgo``, the real 16 MB
cmd/go with the call targets overlaid), on one running process:

- gocall: RUNS runs of ``gocall call PID 'main.Add(1, 2)'``, spawn to exit
  (interpreter, imports, reading the binary, attach, call, detach), and RUNS of
  the same interpreter only importing the CLI, to split the time;
- Delve: RUNS times ``dlv attach PID --headless``, connect, break on main.tick,
  continue, ``call main.Add(1, 2)`` (first result), then detach and reap dlv.

Prints a table, then one JSON line with the ratios (Delve first result / gocall
whole run) and each tool's peak RSS. No timing is asserted anywhere.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import delve  # noqa: E402
from targets import Stats, cli_peak_rss_mb, cmdgo_binary, load, run_measured, running, small_binary  # noqa: E402

EXPR = "main.Add(1, 2)"
BINARIES = {"small": small_binary, "cmdgo": cmdgo_binary}


def gocall_command() -> list[str]:
    exe = shutil.which("gocall", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "gocall.cli.main"]


def measure(name: str, runs: int) -> dict[str, object]:
    binary = BINARIES[name]()
    out: dict[str, object] = {"binary_mb": round(binary.stat().st_size / 2**20, 1)}
    imports = [run_measured([sys.executable, "-c", "import gocall.cli.main"]) for _ in range(runs)]
    out["gocall_imports"] = Stats.of([r.seconds for r in imports])
    with running(binary) as target:
        cli = [run_measured([*gocall_command(), "call", str(target.pid), EXPR]) for _ in range(runs)]
        if bad := [r for r in cli if r.returncode != 0 or r.stdout.strip() != "3"]:
            out["gocall_note"] = f"failed: {bad[0].stdout.strip()[-300:]}"
        else:
            out["gocall"] = Stats.of([r.seconds for r in cli])
            out["gocall_cpu"] = Stats.of([r.cpu_seconds for r in cli])
            out["gocall_rss_mb"] = cli_peak_rss_mb(["call", str(target.pid), EXPR])
        if (why := delve.unavailable()) is not None:
            out["delve_note"] = f"skipped: {why}"
            return out
        first, whole, rss, cpu = [], [], [], []
        for _ in range(runs):
            t0 = time.perf_counter()
            dlv = delve.Delve(target.pid)
            try:
                dlv.park()
                got = dlv.call(EXPR)
                first.append(time.perf_counter() - t0)
            finally:
                dlv.detach()
            whole.append(time.perf_counter() - t0)
            assert got == ["3"], got
            assert dlv.peak_rss_mb is not None
            rss.append(dlv.peak_rss_mb)
            cpu.append(dlv.cpu_seconds or 0.0)
        out["delve_first"], out["delve_whole"], out["delve_rss_mb"] = Stats.of(first), Stats.of(whole), max(rss)
        out["delve_cpu"] = Stats.of(cpu)
        out["target_alive"] = target.alive
    return out


def main(runs: int = 5, names: str = "small,cmdgo") -> dict[str, object]:
    load_before = load()
    results = {name: measure(name, runs) for name in names.split(",")}
    load_after = load()

    def cell(s: object) -> str:
        return f"{s.median:8.1f} {s.p90:8.1f}" if isinstance(s, Stats) else f"{'-':>8} {'-':>8}"

    def ratio(a: object, b: object) -> float | None:
        return round(a.median / b.median, 3) if isinstance(a, Stats) and isinstance(b, Stats) else None

    print(f"cold attach -> {EXPR} -> detach, ms (median p90), {runs} runs; load {load_before} -> {load_after}")
    print(f"{'':<14} {'gocall CLI':>17} {'(its imports)':>17} {'Delve 1st result':>17} {'Delve +detach':>17} "
          f"{'Delve/gocall':>12} {'CPU gocall/Delve ms':>20} {'RSS gocall/Delve MB':>20}")  # fmt: skip
    for name, r in results.items():
        rss = f"{r.get('gocall_rss_mb', 0):.0f} / {r.get('delve_rss_mb', 0):.0f}"
        g_cpu, d_cpu = r.get("gocall_cpu"), r.get("delve_cpu")
        cpu = f"{g_cpu.median if isinstance(g_cpu, Stats) else 0:.0f} / {d_cpu.median if isinstance(d_cpu, Stats) else 0:.0f}"
        print(f"{name + ' ' + str(r['binary_mb']) + 'MB':<14} {cell(r.get('gocall'))} {cell(r['gocall_imports'])} "
              f"{cell(r.get('delve_first'))} {cell(r.get('delve_whole'))} "
              f"{ratio(r.get('delve_first'), r.get('gocall')) or '-':>12} {cpu:>20} {rss:>20}")  # fmt: skip
        for key in ("gocall_note", "delve_note"):
            if key in r:
                print(f"  {name}, {key}: {r[key]}")
    result = {
        "bench": "cold_attach",
        "load": [load_before, load_after],
        "ratios": {
            **{f"delve_first_over_gocall[{n}]": ratio(r.get("delve_first"), r.get("gocall")) for n, r in results.items()},
            **{f"delve_cpu_over_gocall_cpu[{n}]": ratio(r.get("delve_cpu"), r.get("gocall_cpu")) for n, r in results.items()},
        },
        "targets": {
            n: {k: (v.to_json() if isinstance(v, Stats) else v) for k, v in r.items()} for n, r in results.items()
        },
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(*([int(sys.argv[1])] if len(sys.argv) > 1 else []), *sys.argv[2:3])
