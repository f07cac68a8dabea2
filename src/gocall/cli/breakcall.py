"""``gocall call PID --break LOCATION EXPR...``: wait in a running process for a breakpoint
to be hit, evaluate in the hit frame, leave.

What stops when:

1. Attaching traces every thread (an INT3 reached by an untraced thread would kill the
   program); they keep running. The breakpoints go in.
2. While waiting, threads run at full speed except when one hits a breakpoint. A hit stops
   that thread alone while a condition on locals and globals is decided; a false one steps
   it over the breakpoint displaced (the instruction run from a copy) and resumes it, the
   rest of the program never stopped. A condition that calls a function, and an instruction
   that cannot be displaced (a jump, a call), stop every thread for that hit (stop.py).
3. On the reported hit every thread is stopped, every breakpoint removed and every thread
   but the hitting one detached: the rest of the program runs on while the expressions are
   evaluated in the hit frame (calls run on the hitting goroutine, as any gocall call does).
4. The hitting thread is detached last, from where it stopped.

On a timeout, Ctrl-C (or SIGTERM, SIGHUP...: process/signals.py) or an error, the breakpoints are removed and every
thread detached, each from where it was; a thread stopped on one of our INT3s is rewound
onto the original instruction first. The program never sees an INT3 of ours.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

from ..errors import GocallError
from ..process.signals import Signalled, exit_status, name
from ..session import Evaluation, Process, attach
from ..stop import Breakpoint, Exited, Stop
from ..values.gofmt import format_value
from .console import Console

_PROGRESS_EVERY = 5.0  # seconds between "still waiting" notes on stderr


def call_at_break(console: Console, pid: int, breaks: tuple[str, ...], exprs: tuple[str, ...],
                  timeout: float | None, frame: int, unsafe: bool, as_json: bool, quiet: bool = False,
                  prepare: Callable[[Process], None] | None = None) -> int:
    """The whole command; its exit status (0 evaluated, 1 an error, 2 timed out, 128 + n on signal n:
    130 for Ctrl-C). ``prepare`` sets the process up first (--goroot, --source, --declare)."""
    try:
        with console.live_status(quiet) as status, attach(pid, guard=True) as proc:
            proc.observer = status
            if prepare is not None:
                prepare(proc)
            # The live status counts hits and time as they come; without it, a note now and then.
            every = _PROGRESS_EVERY if status is None else None
            bps = [proc.break_at(b) for b in breaks]
            where = ", ".join(str(bp) for bp in bps)
            console.note(f"waiting for {where}" + (f" (up to {timeout:g} s)" if timeout is not None else "")
                         + "; Ctrl-C to give up")
            start = time.monotonic()
            while True:
                elapsed = time.monotonic() - start
                remaining = None if timeout is None else timeout - elapsed
                if remaining is not None and remaining <= 0:
                    console.error(f"no hit within {timeout:g} s (conditions tested {_tests(bps)} times); "
                                  "the breakpoints were removed and the process left running")
                    return 2
                limits = [t for t in (remaining, every) if t is not None]
                event = proc.wait(min(limits) if limits else None)
                if isinstance(event, Exited):
                    console.error(f"process {pid} {event.text} before a breakpoint was hit")
                    return 1
                if isinstance(event, Stop):
                    break
                if proc.interrupted:
                    console.error(f"{_what(proc.interrupted)}; the breakpoints were removed and the process left "
                                  "running")
                    return exit_status(proc.interrupted)
                if status is None:  # else the status line says it, live
                    console.note(f"still waiting ({time.monotonic() - start:.0f} s"
                                 + (f", conditions tested {_tests(bps)} times)" if any(b.condition for b in bps) else ")"))
            stop = event
            proc.release_others(stop)
            evaluations = [stop.evaluate(e, frame, unsafe) for e in exprs]
            _report(console, stop, evaluations, as_json)
            return 1 if any(ev.error for ev in evaluations) else 0
    except Signalled as e:  # between two waits (they hold it and report it as above)
        console.error(f"{_what(e.signum)}; the breakpoints were removed and the process left running")
        return e.exit_status
    except GocallError as e:
        console.error(str(e))
        return 1


def _what(signum: int) -> str:
    return "interrupted" if signum == signal.SIGINT else f"interrupted by {name(signum)}"


def _tests(bps: list[Breakpoint]) -> int:
    return sum(b.tests for b in bps)


def _report(console: Console, stop: Stop, evaluations: list[Evaluation], as_json: bool) -> None:
    if as_json:
        console.json(stop.to_json(evaluations))
        return
    console.note(f"hit: {stop.where}")
    many = len(evaluations) > 1
    for ev in evaluations:
        if ev.error is not None:
            console.error(f"{ev.expr}: {ev.error}")
        elif ev.panic is not None:
            console.message(f"{ev.expr + ' = ' if many else ''}panic: {format_value(ev.panic)} [recovered]")
        else:
            console.message((f"{ev.expr} = " if many else "") + ", ".join(format_value(r) for r in ev.results))
