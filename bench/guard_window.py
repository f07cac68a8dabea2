#!/usr/bin/env python3
"""Issue 18: how often ``kill -9`` of gocall still kills the target (guard/watch.py's window).

Usage: python bench/guard_window.py [N] [MS] [stop]    (defaults 1000 and 0)

N times: a gocall (Python API, ``guard=True``) attaches to a ``calls`` target (tests/fixtures,
the newest toolchain) and makes ``main.Sleep(MS)`` calls back to back (MS=0: short calls);
it is SIGKILLed at a random moment 20-120 ms into them. After each kill the target must be
alive and untraced; a dead target (or one that stops reporting: a thread held for ever, or its
in-order checks failing) is counted and restarted. Prints deaths out of N.

Measured (Go 1.27, 2 vCPUs, N=300 each, back to back): before the trap net (guard/net.py), with
parking at every stop, 122 of 300 died (load 7-12), every death a SIGTRAP at one of debugCallV2's
traps: the resume-to-collect round trips are ~40% of such a loop. With the net and no sweep of
the other threads, 9 of 300 (load 7-9): 2 SIGTRAPs of a hardware breakpoint of gocall's search
for a thread (call/advance.py, sigcode 4), the others a thread held by the net for a single
step's SIGTRAP (si_code 2) or sent into debugCallV2 with the guardian not told yet. With the
sweep and the run recorded before entering: 1 of 300 (load 11-14), a worker's in-order check
failing (the runtime's tail run after R12=16 in the instants before the park). With the tail's
hardware breakpoint instead of the park: 0 of 300 (load 11-14); then N=1000: 1 of 1000 (load
2.5-8), a SIGTRAP of a hardware breakpoint of the catch of parked goroutines (sigcode 4, at a
resume point in main.report), cause not pinned down. Session 8, the tail's hardware breakpoint
replaced by one INT3 per session (guard/watch.py Watch.tail): 0 of 300 (load 2-4), then 0 of
1000 (load 3-6); with ``stop``, 1 of 200 before ac7fe56 (a guardian waiting for ever for a stop's
thread killed just before it entered debugCallV2), 0 of 300 after. tests/guard/test_killed.py kills at each
stop, after each resume, and with hardware breakpoints armed.

With ``stop``: the caller works at stops instead (a breakpoint on ``main.(*forest).check``,
which the worker runs all the time: wait for the hit, two evaluations of ``main.Add(1, 2)`` at
the stop, the run kept open between them, continue; again and again), so that the kill lands
on a hit being collected, a step over the breakpoint, a call at the stop, a kept run, or its end.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from harness import FIXTURES, Target, tracer_pids  # noqa: E402

from gocall.toolchain import known_toolchains  # noqa: E402

CALLER = """
import inspect, sys, gocall
guard = {"guard": True} if "guard" in inspect.signature(gocall.attach).parameters else {}  # before: none
with gocall.attach(int(sys.argv[1]), **guard) as proc:
    expr = f"main.Sleep({sys.argv[2]})" if sys.argv[2] != "0" else "main.Add(1, 2)"
    proc.eval(expr)
    print("ready", flush=True)
    n = 0
    while True:
        proc.eval(expr)
        n += 1
        if n % 100 == 0:
            print(n, flush=True)
"""

AT_STOPS = """
import sys, gocall
with gocall.attach(int(sys.argv[1]), guard=True) as proc:
    proc.break_at("main.(*forest).check")
    print("ready", flush=True)
    while True:
        stop = proc.wait(10)
        assert isinstance(stop, gocall.Stop), stop
        stop.eval("main.Add(1, 2)")
        stop.eval("main.Add(1, 2)")
"""


def _healthy(target: Target) -> bool:
    """Alive, reporting, and no thread traced (a killed target may linger as a zombie, its traced
    thread not reaped yet, or be stopped: both fail here)."""
    try:
        target.assert_healthy(reports=2, timeout=3)
    except AssertionError as e:
        from gocall.process.threads import task_state

        states = {t: task_state(target.pid, t) for t in tracer_pids(target.pid)} if target.alive else None
        print(f"unhealthy: {str(e).splitlines()[0]} thread states {states}", file=sys.stderr)
        return False
    deadline = time.monotonic() + 2
    while set(tracer_pids(target.pid).values()) != {0}:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    ms = sys.argv[2] if len(sys.argv) > 2 else "0"
    at_stops = sys.argv[3:4] == ["stop"]
    toolchain = known_toolchains()[0]
    binary = toolchain.build_cached(FIXTURES / "calls", ())
    deaths = 0
    target = Target.start(binary)
    start = time.monotonic()
    try:
        for i in range(n):
            p = subprocess.Popen([sys.executable, "-c", AT_STOPS if at_stops else CALLER, str(target.pid), ms],
                                 stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, start_new_session=True)
            assert p.stdout is not None
            if p.stdout.readline().strip() != "ready":
                p.kill()
                p.wait()
                why = (p.stderr.read() if p.stderr else "").strip().splitlines()[-1:]
                print(f"trial {i}: the caller did not start: {why}", file=sys.stderr)
                if not _healthy(target):
                    target.kill()
                    target = Target.start(binary)
                continue
            time.sleep(random.uniform(0.02, 0.12))
            p.kill()
            p.wait()
            time.sleep(0.05 + int(ms) / 1000)
            if not _healthy(target):
                deaths += 1
                print(f"trial {i}: target died (or stopped reporting): {target.stderr()[:600]!r} tracers {tracer_pids(target.pid) if target.alive else None}", file=sys.stderr)
                target.kill()
                target = Target.start(binary)
            if (i + 1) % 50 == 0:
                print(f"{i + 1} trials, {deaths} deaths ({time.monotonic() - start:.0f} s)", file=sys.stderr)
    finally:
        target.kill()
    what = "stops and calls at them" if at_stops else "short calls" if ms == "0" else f"main.Sleep({ms}) calls"
    print(f"{toolchain.version}: SIGKILL of gocall at a random moment of back-to-back {what}: "
          f"{deaths} targets died out of {n}")


if __name__ == "__main__":
    main()
