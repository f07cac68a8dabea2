#!/usr/bin/env python3
"""Benchmark 3 (and 4 for it): how much of a busy program's throughput survives calls into it,
gocall non-stop (only the calling thread is ever stopped) against gocall --stop-the-world and
Delve's all-stop.

Usage: python bench/pause.py [N] [ROUNDS] [--paced N] [--interval SECONDS] [--go RELEASE]

The target (bench/fixtures/pause, built like every Delve target by Go 1.19 with -N -l,
targets.py) has four goroutines counting units of work into main.Done; the counter is
read through /proc/PID/mem, which stops nothing. Windows of calls of ``main.Add(i, 1)``
(results checked), each round on a fresh target:

- no gocall: nothing traces the target for 1 s, before and after every traced window
  (the machine is shared and its load drifts: each traced window is compared with the
  mean of its two neighbours);
- non-stop: gocall's Python API, one ``gocall.attach``; each call stops one thread;
- stop-the-world: the same calls with every thread stopped around each (Delve's way);
- Delve: as long as the non-stop window (Delve is ~50x slower per call; a window of the
  same N would take minutes), ``dlv attach`` (outside the window), then per call what a
  user of a running program does: halt (every thread stops), ``call`` (Delve resumes
  every thread for the call and stops them all again), continue. A call refused where
  the halt left the workers (in the runtime) is retried after another continue/halt.
  Delve sometimes loses a call ("could not recover call injection state", the failure
  mode of golang/go#61732), and its detach after a halt can leave a thread with a pending SIGTRAP
  that kills the program; the window then ends there (compared with the idle window
  before it only) and the failure is reported.

Two modes: back to back (N calls, default 1000: the tracer's own CPU time competes with
the target's on a small machine) and paced (--paced N calls, default 200, --interval
seconds apart, default 0.01: the cost of the stops themselves). ROUNDS rounds (default
3), medians kept. Per window: the target's throughput as a share of the untraced
rate around it ("kept"), calls per second, "lost ms/call" (the work the window fell short of
the untraced rate, in milliseconds at that rate, per call: a call that stops the whole
program costs its full length, one that stops nothing costs nothing), "stopped thread-ms
per call" (the target's threads' time neither running nor waiting to run, from schedstat,
above the idle windows' rate: what the stops cost, whatever the machine's load; on a
loaded machine throughput even rises under tracing, bench/README.md), and the tracer's
CPU time per call (this process for gocall; dlv's own for Delve). Peak RSS (VmHWM) of
gocall (the whole benchmark process) and of dlv. Prints a table, then one JSON line.

``--go 1.27`` measures gocall on an optimized build by that release instead; Delve 1.20
cannot call into it, so its column is skipped. No timing is asserted anywhere.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import delve  # noqa: E402
from targets import BUILD_FLAGS, go119, load, running, self_peak_rss_mb  # noqa: E402

import gocall  # noqa: E402
from gocall.toolchain import known_toolchains  # noqa: E402

FIXTURE = HERE / "fixtures" / "pause"
WINDOWS = ("no gocall", "non-stop", "stop-the-world", "Delve")
IDLE_SECONDS = 1.0
_TICK = os.sysconf("SC_CLK_TCK")
# Delve finds its call's protocol stops again by goroutine, or by thread for the call's new
# goroutine; a stop it cannot match (the failure mode of golang/go#61732, seen here on Go 1.19
# too) ends the call with this error and leaves the target stopped mid-call.
_DELVE_LOST = "could not recover call injection state"


@dataclass(frozen=True)
class Sample:
    rate: float  # the target's units of work per second
    seconds: float
    cpu: float  # the tracer's CPU seconds
    calls: int  # calls made (fewer than asked when Delve lost one)
    stopped: float  # thread-seconds the target's threads neither ran nor waited to run
    base: float = 0.0  # the untraced rate around it: mean of the idle windows just before and after
    base_stopped: float = 0.0  # the same for stopped thread-seconds per second


@dataclass
class Window:
    """One window's samples over the rounds."""

    samples: list[Sample] = field(default_factory=list)
    retries: int = 0  # Delve: calls refused at the halted PC and made again
    failures: list[str] = field(default_factory=list)  # Delve: windows cut short, and why
    note: str = ""  # why the window was not measured
    peak_rss_mb: float = 0.0  # Delve: dlv's VmHWM, the largest over the rounds

    def median(self, of: Callable[[Sample], float]) -> float:
        return statistics.median(of(s) for s in self.samples)

    def row(self) -> dict[str, float]:
        """Medians over the rounds; ``lost_ms_per_call``: milliseconds of the whole program's
        progress each call cost (the work the window fell short of the untraced rate, in time
        at that rate, per call: stopping the whole program for a call costs its length)."""
        out = {"units_per_s": round(self.median(lambda s: s.rate)),
               "kept": round(self.median(lambda s: s.rate / (s.base or s.rate)), 4)}  # fmt: skip
        if any(s.calls for s in self.samples):
            out["calls_per_s"] = round(self.median(lambda s: s.calls / s.seconds), 1)
            out["lost_ms_per_call"] = round(self.median(lambda s: (1 - s.rate / s.base) * s.seconds / s.calls) * 1e3, 3)
            out["stopped_thread_ms_per_call"] = round(
                self.median(lambda s: (s.stopped - s.base_stopped * s.seconds) / s.calls) * 1e3, 3)
            out["tracer_cpu_ms_per_call"] = round(self.median(lambda s: s.cpu / s.calls) * 1e3, 3)
        return out


def cpu_seconds(pid: int) -> float:
    """User + system time of a running process (``utime``, ``stime`` of /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def on_or_waiting_for_cpu(pid: int) -> dict[int, float]:
    """Per thread of ``pid``: seconds it ran plus seconds it waited in a run queue
    (/proc/PID/task/TID/schedstat). The rest of a thread's time it was blocked, sleeping, or
    stopped by a tracer; the machine's other load does not enter it, unlike throughput."""
    times = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            run, wait, _ = (task / "schedstat").read_text().split()
        except (OSError, ValueError):
            continue  # exited meanwhile
        times[int(task.name)] = (int(run) + int(wait)) / 1e9
    return times


def measure(window: Window, pid: int, done: Callable[[], int], action: Callable[[], int], tracer: int | None) -> Sample:
    """Run ``action`` (it returns the calls it made) as one sample of ``window``: the target's
    units per second meanwhile, its threads' stopped time, and the tracer's CPU time
    (``tracer``: dlv's pid; None: this process)."""
    cpu = (lambda: cpu_seconds(tracer)) if tracer else time.process_time
    before, cpu0, sched0, t0 = done(), cpu(), on_or_waiting_for_cpu(pid), time.monotonic()
    calls = action()
    after, cpu1, sched1, t1 = done(), cpu(), on_or_waiting_for_cpu(pid), time.monotonic()
    stopped = sum(t1 - t0 - (sched1[tid] - sched0[tid]) for tid in sched0.keys() & sched1.keys())
    window.samples.append(Sample((after - before) / (t1 - t0), t1 - t0, cpu1 - cpu0, calls, stopped))
    return window.samples[-1]


def gocall_calls(proc: gocall.Process, n: int, interval: float, stop_the_world: bool) -> Callable[[], int]:
    def run() -> int:
        proc.engine.stop_the_world = stop_the_world
        for i in range(n):
            assert proc.eval(f"main.Add({i}, 1)") == i + 1
            if interval:
                time.sleep(interval)
        return n

    return run


def _user_goroutine(state: dict[str, Any]) -> int:
    """A goroutine Delve can call on after a halt: one of the workers caught in main.work on
    a thread, the current thread's first (0: none, Delve's current goroutine)."""
    for th in [state.get("currentThread") or {}, *(state.get("Threads") or [])]:
        if th.get("goroutineID") and (th.get("function") or {}).get("name") == "main.work":
            return int(th["goroutineID"])
    return 0


def delve_calls(dlv: delve.Delve, window: Window, seconds: float, interval: float) -> Callable[[], int]:
    """Halt, call, continue, for ``seconds`` (at least once); a call refused where the halt left
    every worker (in the runtime, or off-CPU) is retried after another continue and halt. Stops
    early, recording why, if Delve loses a call (_DELVE_LOST): the target cannot run on."""

    def run() -> int:
        deadline = time.monotonic() + seconds
        i = 0
        while i == 0 or time.monotonic() < deadline:
            state = dlv.halt()
            for _ in range(100):
                try:
                    got = dlv.call(f"main.Add({i}, 1)", _user_goroutine(state))
                    break
                except delve.DelveError as e:
                    if _DELVE_LOST in str(e):
                        window.failures.append(f"lost call {i + 1}: {e}")
                        return i
                    window.retries += 1
                    dlv.resume()
                    state = dlv.halt()
            else:
                raise delve.DelveError(f"Delve: main.Add({i}, 1) refused 100 times")
            assert got == [str(i + 1)], got
            i += 1
            dlv.resume()
            if interval:
                time.sleep(interval)
        return i

    return run


def delve_window(pid: int, window: Window, done: Callable[[], int], seconds: float, interval: float) -> bool:
    """One Delve sample as long as ``seconds``; False if Delve lost a call (the target then dies)."""
    dlv = delve.Delve(pid)  # attached: the target is stopped until resumed, outside the window
    try:
        dlv.resume()
        delve_calls(dlv, Window(), 0, 0)()  # warm-up, as gocall's: Delve loads what a call needs
        failed = len(window.failures)
        measure(window, pid, done, delve_calls(dlv, window, seconds, interval), dlv.proc.pid)
        lost = len(window.failures) > failed
        if not lost:
            dlv.halt()  # Detach wants it stopped
    finally:
        try:
            dlv.detach()
        except (delve.DelveError, OSError):
            pass  # after a lost call: the round's target is killed anyway
    window.peak_rss_mb = max(window.peak_rss_mb, dlv.peak_rss_mb or 0.0)
    return not lost


def _against(window: Window, before: Sample, after: Sample) -> None:
    """Give ``window``'s last sample the untraced rates of the idle windows around it."""
    window.samples[-1] = replace(window.samples[-1], base=(before.rate + after.rate) / 2,
                                 base_stopped=(before.stopped / before.seconds + after.stopped / after.seconds) / 2)


def run_mode(binary: Path, n: int, interval: float, rounds: int, with_delve: str | None) -> dict[str, Window]:
    """ROUNDS samples of every window, each round on a fresh target; ``with_delve``: why not, or None."""
    windows = {name: Window() for name in WINDOWS}
    if with_delve is not None:
        windows["Delve"].note = with_delve
    for _ in range(rounds):
        with running(binary) as target, gocall.attach(target.pid) as proc:
            pid, addr = target.pid, proc.binary.symbol("main.Done")
            assert addr is not None, "main.Done is not in the symbol table"

            def done() -> int:
                return proc.mem.u64(addr)  # noqa: B023 - used within this round only

            def idle() -> Sample:
                return measure(windows["no gocall"], pid, done, lambda: time.sleep(IDLE_SECONDS) or 0, None)  # noqa: B023

            assert proc.eval("main.Add(1, 2)") == 3  # warm-up: DWARF of package main
            # Each traced window between two idle ones: the machine is shared, its load drifts.
            before = idle()
            for name, stop_the_world in (("non-stop", False), ("stop-the-world", True)):
                measure(windows[name], pid, done, gocall_calls(proc, n, interval, stop_the_world), None)
                after = idle()
                _against(windows[name], before, after)
                before = after
            if with_delve is None:
                w = windows["Delve"]
                after = before  # unless the target survives Delve
                if delve_window(pid, w, done, windows["non-stop"].samples[-1].seconds, interval):
                    try:
                        after = idle()
                    except (gocall.GocallError, OSError):
                        # Delve 1.20 can detach leaving a thread with the pending SIGTRAP of the
                        # INT3 it executed just before the halt (bench/README.md, breakpoint.py).
                        w.failures.append("the program died of SIGTRAP after Delve detached")
                _against(w, before, after)
    return windows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", type=int, nargs="?", default=1000, help="calls per back-to-back window")
    ap.add_argument("rounds", type=int, nargs="?", default=3)
    ap.add_argument("--paced", type=int, default=200, help="calls per paced window (0: no paced mode)")
    ap.add_argument("--interval", type=float, default=0.01, help="seconds between paced calls")
    ap.add_argument("--go", default=None, help="measure gocall alone on an optimized build by this Go release")
    args = ap.parse_args()
    if args.go:
        toolchains = [t for t in known_toolchains() if ".".join(map(str, t.release)) == args.go]
        if not toolchains:
            print(f"pause: no Go {args.go} toolchain")
            return 1
        go, flags = toolchains[0], ()
        why_not_delve: str | None = "Delve 1.20 calls only into Go 1.19 -N -l builds"
    else:
        go, flags = go119(), BUILD_FLAGS
        why_not_delve = delve.unavailable()
    binary = go.build_cached(FIXTURE, flags)
    load_before = load()
    modes = {"back to back": (args.n, 0.0)}
    if args.paced:
        modes[f"{args.interval:g} s apart"] = (args.paced, args.interval)
    results = {mode: run_mode(binary, n, interval, args.rounds, why_not_delve) for mode, (n, interval) in modes.items()}
    gocall_rss = self_peak_rss_mb()  # the whole benchmark process: harness, gocall and Delve's JSON client
    delve_rss = max(w["Delve"].peak_rss_mb for w in results.values()) or None
    load_after = load()

    print(f"pause: {go.version} {' '.join(flags) or 'optimized'}, bench/fixtures/pause (4 counting goroutines), "
          f"median of {args.rounds} rounds, {os.cpu_count()} CPUs, load {load_before} -> {load_after}")  # fmt: skip
    print(f"{'':<16} {'window':<15} {'M units/s':>9} {'kept':>7} {'calls/s':>8} {'lost ms/call':>13} "
          f"{'stopped thread-ms/call':>22} {'tracer CPU ms/call':>19}")  # fmt: skip
    report: dict[str, object] = {}
    ratios: dict[str, float | None] = {}
    for mode, windows in results.items():
        rows = {name: w.row() for name, w in windows.items() if w.samples}
        for name, w in windows.items():
            if name not in rows:
                print(f"{mode:<16} {name:<15} skipped: {w.note}")
                continue
            r = rows[name]
            line = f"{mode:<16} {name:<15} {r['units_per_s'] / 1e6:9.3f} {r['kept']:7.1%}"
            if "calls_per_s" in r:
                line += (f" {r['calls_per_s']:8.0f} {r['lost_ms_per_call']:13.3f}"
                         f" {r['stopped_thread_ms_per_call']:22.3f} {r['tracer_cpu_ms_per_call']:19.3f}")  # fmt: skip
            if w.retries:
                line += f"   ({w.retries} calls refused at the halted PC, retried)"
            print(line)
            for failure in w.failures:
                print(f"{'':<16} {'':<15} Delve: {failure}")
        report[mode] = {"calls": modes[mode][0], "interval_s": modes[mode][1],
                        **{name: {**rows.get(name, {"skipped": w.note}), "retries": w.retries, "failures": w.failures}
                           for name, w in windows.items()}}  # fmt: skip
        key = "back_to_back" if not modes[mode][1] else "paced"
        # Each ratio reads "gocall non-stop is X times better than Delve".
        for name, (a, b, metric) in {"non_stop_kept_over_delve": ("non-stop", "Delve", "kept"),
                                     "non_stop_calls_per_s_over_delve": ("non-stop", "Delve", "calls_per_s"),
                                     "delve_lost_per_call_over_non_stop": ("Delve", "non-stop", "lost_ms_per_call"),
                                     "delve_stopped_per_call_over_non_stop": ("Delve", "non-stop",
                                                                              "stopped_thread_ms_per_call"),
                                     }.items():  # fmt: skip
            have = a in rows and b in rows and rows[b][metric] > 0
            ratios[f"{name}[{key}]"] = round(rows[a][metric] / rows[b][metric], 3) if have else None
    print(f"peak RSS, MB: gocall {gocall_rss:.1f} (whole bench process), "
          f"Delve {'-' if delve_rss is None else f'{delve_rss:.1f}'}")  # fmt: skip
    print(json.dumps({
        "bench": "pause", "go": go.version, "flags": list(flags), "cpus": os.cpu_count(), "rounds": args.rounds,
        "load": [load_before, load_after], "ratios": ratios, "modes": report,
        "peak_rss_mb": {"gocall_process": round(gocall_rss, 1), "delve": delve_rss and round(delve_rss, 1)},
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
