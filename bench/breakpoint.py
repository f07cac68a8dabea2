#!/usr/bin/env python3
"""Conditional breakpoints on a hot function: what they cost the program, gocall vs Delve.

Usage: python bench/breakpoint.py [SECONDS] [ROUNDS] [GOROUTINES]   (defaults 3, 2, 3)

The target is tests/fixtures/breaks in ``spin G`` mode: G goroutines call ``main.hot(n)``
in a tight loop and count the calls in ``main.Calls``. Built by Debian's Go 1.19 with ``-N -l`` (targets.py), the only builds
Delve 1.20 handles. Windows of SECONDS each, taken in turn on ONE running process:

- untraced: nothing attached;
- gocall, ``main.hot if n == -1``: the Python API (attach, break_at, wait out the window,
  detach); the condition is never true, so every call of hot is a hit that is tested and
  stepped over;
- gocall, ``main.hot if IsNeg(n)``: the same, the condition calling a function in the
  target at every hit (Delve cannot);
- Delve, ``main.hot`` with Cond ``n == -1``: ``dlv attach --headless``, CreateBreakpoint,
  ``continue`` for the window, ``halt`` from a second connection, ClearBreakpoint, Detach.

Program throughput = calls per second the program made over the window (its counter
``main.Calls``, bumped by 64 every 64 calls, read through /proc/PID/mem); every call of
hot is a hit while the breakpoint is in, so under a breakpoint it is also the hits/s (gocall
also counts its condition tests, ``Breakpoint.tests``: calls beyond them ran past the
breakpoint untested, the "missed" column). CPU seconds of the tracer (gocall:
this process; Delve: dlv's) per window are shown beside. The median over ROUNDS is kept.
Prints a table, then one JSON line. Nothing is asserted about timings.

Each round runs on a fresh program: Delve 1.20's Detach after a halt with a breakpoint on a
hot function may leave a thread with a pending SIGTRAP of its INT3, and the program then dies
of it ("SIGTRAP: trace trap" at the breakpoint's PC); the Delve row notes it when it happens.
(gocall resumes such a thread into its SIGTRAP stop before it detaches: process/tracee.py.)
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import delve  # noqa: E402
from targets import BUILD_FLAGS, die_with_the_benchmark, go119, load  # noqa: E402

import gocall  # noqa: E402
from gocall.binary import GoBinary  # noqa: E402

SPIN = HERE.parent / "tests" / "fixtures" / "breaks"
CONDITIONS = [("gocall, n == -1", "main.hot if n == -1"), ("gocall, IsNeg(n)", "main.hot if IsNeg(n)")]
DELVE_COND = "n == -1"
_CLK_TCK = os.sysconf("SC_CLK_TCK")


class Spinner:
    """The ``spin`` program, and its count of hot's calls (``main.Calls``) read through
    /proc/PID/mem, which stops nothing and works whoever traces the program."""

    def __init__(self, binary: Path, goroutines: int) -> None:
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close(); a crash is reported from it
        self.proc = subprocess.Popen([str(binary), "spin", str(goroutines)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=self.stderr, text=True,
                                     preexec_fn=die_with_the_benchmark)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith(f"ready pid={self.proc.pid}"):
            raise RuntimeError(f"{binary} spin did not start: {line!r}")
        self.proc.stdout.close()  # its later reports are not needed: counted from memory
        with GoBinary.open(binary) as b:
            addr = b.symbol("main.Calls")
        assert addr is not None
        self._addr = addr
        self._mem = open(f"/proc/{self.proc.pid}/mem", "rb", buffering=0)  # noqa: SIM115 - closed in close()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def calls(self) -> int:
        return int.from_bytes(os.pread(self._mem.fileno(), 8, self._addr), "little")

    def died(self) -> str | None:
        """How the program ended, if it did (with the first lines it wrote to stderr)."""
        if self.proc.poll() is None:
            return None
        self.stderr.seek(0)
        return f"the program ended ({self.proc.returncode}): " + " | ".join(self.stderr.read().decode()
                                                                           .splitlines()[:3])

    def close(self) -> None:
        self.stderr.close()
        self._mem.close()
        self.proc.kill()
        self.proc.wait()


class Counter:
    """Calls per second over a window: ``start()`` then ``stop()``."""

    def __init__(self, spin: Spinner) -> None:
        self.spin = spin

    def start(self) -> None:
        self.c0, self.t0 = self.spin.calls(), time.monotonic()

    def stop(self) -> float:
        c1, t1 = self.spin.calls(), time.monotonic()
        self.seconds = t1 - self.t0
        return (c1 - self.c0) / self.seconds


@dataclass
class Row:
    label: str
    rates: list[float] = field(default_factory=list)  # program calls/s per window
    tests: list[float] = field(default_factory=list)  # gocall's condition tests/s per window
    cpu: list[float] = field(default_factory=list)  # tracer CPU seconds per second of window
    note: str = ""

    @property
    def rate(self) -> float:
        return statistics.median(self.rates) if self.rates else float("nan")

    @property
    def cpu_per_hit(self) -> float | None:
        """Tracer CPU seconds per hit (gocall: per condition test; Delve: per call of hot),
        steadier than rates on a loaded machine."""
        if not self.cpu or self.label == "untraced":
            return None
        hits = statistics.median(self.tests) if self.tests else self.rate
        return statistics.median(self.cpu) / hits if hits else None

    @property
    def missed(self) -> float:
        """Share of hot's calls that ran past the breakpoint untested (gocall counts them in
        Breakpoint.missed: hits held during a condition's call and let go, stops/calls.py;
        until 2026-11 the breakpoints were lifted during those calls and ~100% were missed)."""
        return max(0.0, 1 - statistics.median(self.tests) / self.rate)


def window_untraced(spin: Spinner, seconds: float) -> tuple[float, float | None, float]:
    count = Counter(spin)
    count.start()
    time.sleep(seconds)
    return count.stop(), None, 0.0


def window_gocall(spin: Spinner, seconds: float, location: str) -> tuple[float, float | None, float]:
    with gocall.attach(spin.pid) as proc:
        bp = proc.break_at(location)
        count = Counter(spin)
        cpu0 = time.process_time()
        count.start()
        stop = proc.wait(seconds)  # never true: runs the whole window, stepping over every hit
        rate, cpu1 = count.stop(), time.process_time()
        if stop is not None:
            raise RuntimeError(f"{location}: unexpected {stop}")
        if bp.missed:
            print(f"{location}: {bp.missed} hits let go untested (Breakpoint.missed)", file=sys.stderr)
    return rate, bp.tests / count.seconds, (cpu1 - cpu0) / count.seconds


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK  # utime, stime


def window_delve(spin: Spinner, seconds: float) -> tuple[float, float | None, float]:
    dlv = delve.Delve(spin.pid)
    try:
        bp = dlv.rpc("CreateBreakpoint", Breakpoint={"functionName": "main.hot", "Cond": DELVE_COND})["Breakpoint"]
        port = dlv._sock.getpeername()[1]
        halter = delve.Delve.__new__(delve.Delve)  # a second client on the same server, for halt
        import socket

        halter._sock = socket.create_connection(("127.0.0.1", port))
        halter._io = halter._sock.makefile("rwb")
        halter._id = 0
        cont = threading.Thread(target=lambda: dlv.rpc("Command", name="continue"), daemon=True)
        count = Counter(spin)
        cpu0 = _cpu_seconds(dlv.proc.pid)
        count.start()
        cont.start()
        time.sleep(seconds)
        rate, cpu1 = count.stop(), _cpu_seconds(dlv.proc.pid)
        halter.rpc("Command", name="halt")
        cont.join(30)
        halter._io.close()
        halter._sock.close()
        dlv.rpc("ClearBreakpoint", Id=bp["id"])
    finally:
        dlv.detach()
    return rate, None, (cpu1 - cpu0) / count.seconds


def main() -> int:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    goroutines = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    go = go119()
    binary = go.build_cached(SPIN, BUILD_FLAGS)
    why_not_delve = delve.unavailable()
    rows = [Row("untraced"), *(Row(label) for label, _ in CONDITIONS), Row(f"Delve, {DELVE_COND}")]
    load_before = load()
    delve_kills: list[str] = []
    # A fresh program each round: Delve's detach may leave it to die (see the module docstring).
    for _ in range(rounds):
        spin = Spinner(binary, goroutines)
        try:
            time.sleep(0.3)  # the goroutines are up
            windows = [lambda: window_untraced(spin, seconds),
                       *(lambda loc=loc: window_gocall(spin, seconds, loc) for _, loc in CONDITIONS)]  # type: ignore[misc]
            windows.append((lambda: window_delve(spin, seconds)) if why_not_delve is None else None)
            for row, window in zip(rows, windows):
                if window is None:
                    row.note = f"skipped: {why_not_delve}"
                    continue
                try:
                    rate, tests, cpu = window()
                except Exception as e:  # noqa: BLE001 - a tool failing is a row, not the end of the run
                    row.note = f"failed: {type(e).__name__}: {e}" + (f"; {spin.died()}" if spin.died() else "")
                    break
                row.rates.append(rate)
                row.cpu.append(cpu)
                if tests is not None:
                    row.tests.append(tests)
                time.sleep(0.3)  # let a detached program settle
                if spin.died():
                    if row is rows[-1]:
                        delve_kills.append(spin.died() or "")
                    else:
                        row.note = f"after this window, {spin.died()}"
                    break
        finally:
            spin.close()
    if delve_kills:
        rows[-1].note = f"Delve's detach left the program to die in {len(delve_kills)} of {rounds} rounds: " \
                        f"{delve_kills[0]}"
    load_after = load()

    base = rows[0].rate
    print(f"breakpoint: {go.version} -N -l, tests/fixtures/breaks spin {goroutines} (main.hot in a tight loop), "
          f"{rounds} x {seconds:g} s windows, load {load_before} -> {load_after}")
    print(f"{'':<22} {'calls/s':>12} {'of untraced':>12} {'cond tests/s':>13} {'missed':>7} {'tracer CPU':>11} "
          f"{'CPU/hit':>9}")
    for row in rows:
        if not row.rates:
            print(f"{row.label:<22} {row.note}")
            continue
        tests = f"{statistics.median(row.tests):13,.0f}" if row.tests else f"{'':>13}"
        missed = f"{row.missed:7.1%}" if row.tests else f"{'':>7}"
        cpu = f"{statistics.median(row.cpu):10.2f}s" if row.cpu else ""
        per_hit = f"{row.cpu_per_hit * 1e6:7.0f}us" if row.cpu_per_hit is not None else f"{'':>9}"
        print(f"{row.label:<22} {row.rate:12,.0f} {row.rate / base:12.2e} {tests} {missed} {cpu} {per_hit}"
              + (f"  {row.note}" if row.note else ""))
    # Hits/s: gocall's condition tests; Delve's are every call the program made (none missed).
    # Only the same condition compares: Delve cannot call a function in one.
    dlv_rate = rows[-1].rate if rows[-1].rates else None
    same = rows[1]
    ratios = {same.label: round(statistics.median(same.tests) / dlv_rate, 2)} if dlv_rate and same.tests else {}
    if ratios:
        print(f"hits/s with {DELVE_COND!r}, gocall / Delve: {ratios[same.label]}x")
    print(json.dumps({
        "bench": "breakpoint", "go": go.version, "seconds": seconds, "rounds": rounds, "goroutines": goroutines,
        "calls_per_s": {row.label: round(row.rate) if row.rates else None for row in rows},
        "windows": {row.label: len(row.rates) for row in rows},
        "cond_tests_per_s": {row.label: round(statistics.median(row.tests)) for row in rows if row.tests},
        "missed": {row.label: round(row.missed, 4) for row in rows if row.tests},
        "tracer_cpu_per_s": {row.label: round(statistics.median(row.cpu), 3) for row in rows if row.cpu},
        "tracer_cpu_us_per_hit": {row.label: round(row.cpu_per_hit * 1e6, 1) for row in rows
                                  if row.cpu_per_hit is not None},
        "ratio_vs_delve": ratios, "notes": {row.label: row.note for row in rows if row.note},
        "load": [load_before, load_after],
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
