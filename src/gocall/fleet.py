"""The same expressions in many processes at once: ``gocall call --pid P --pid Q EXPR...``.

Each process is handled by a ``gocall call PID --json`` of its own, a child process: a
tracer is a thread, and ptrace stops, signal masks and the interrupt handling of
process/waiting.py belong to one tracer at a time, so one child per target keeps every
call as safe as a single ``gocall call``, and lets ``parallel`` of them run on as many
cores. A child that fails (the target killed, a refused attach, an expression that does
not evaluate) fails only its own outcome.

Stopping: :meth:`Fleet.interrupt` (the CLI's Ctrl-C) starts no new child and sends SIGINT
to those running; each unwinds its call as a single ``gocall call`` does on Ctrl-C (the
target restored, then detached) and reports being interrupted. A child that outlives its
``timeout`` is interrupted the same way. Children run in sessions of their own, so a
terminal's Ctrl-C reaches the parent alone, which passes it on once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple

from .process.namespaces import nspids

__all__ = ["Fleet", "Outcome", "call_many", "exe_path", "processes_named"]

_POLL = 0.02  # seconds between looks at the running children


class Outcome(NamedTuple):
    """What one process answered (or why it could not)."""

    pid: int
    nspid: list[int]  # the PID in each PID namespace from ours inwards
    exe: str
    status: int  # the child's exit status: 0 every expression evaluated, 1 failed, 130 interrupted
    evaluations: list[dict[str, object]]  # `gocall call --json`'s items (expr, results, panic, error...)
    error: str | None  # the one-line reason when status != 0
    output: str  # text mode: what `gocall call` printed, stdout then stderr

    @property
    def ok(self) -> bool:
        return self.status == 0

    def to_json(self) -> dict[str, object]:
        return {"pid": self.pid, "nspid": self.nspid, "exe": self.exe, "ok": self.ok, "status": self.status,
                "error": self.error, "evaluations": self.evaluations}


def processes_named(name: str) -> list[int]:
    """Every process whose executable's base name is ``name`` (read through /proc/PID/exe)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                path = os.readlink(f"/proc/{entry}/exe").removesuffix(" (deleted)")
            except OSError:
                continue
            if os.path.basename(path) == name:
                out.append(int(entry))
    return sorted(out)


def exe_path(pid: int) -> str:
    """The executable of ``pid`` as the process names it; "" when gone or not readable."""
    try:
        return os.readlink(f"/proc/{pid}/exe").removesuffix(" (deleted)")
    except OSError:
        return ""


class _Running(NamedTuple):
    pid: int
    child: subprocess.Popen[str]
    deadline: float


class Fleet:
    """Runs ``gocall call`` in each of ``pids``, at most ``parallel`` at once."""

    def __init__(self, pids: Sequence[int], exprs: Sequence[str], parallel: int = 4, timeout: float = 10.0,
                 options: Sequence[str] = (), as_json: bool = True) -> None:
        self.pids = list(dict.fromkeys(pids))
        self.exprs = list(exprs)
        self.parallel = max(1, parallel)
        self.timeout = timeout
        self.options = list(options)  # passed on to each `gocall call` (--declare, --goroutine...)
        self.as_json = as_json
        self.interrupted = False
        self._running: list[_Running] = []

    def interrupt(self) -> None:
        """Start no new process; interrupt the running ones (each restores its target and leaves)."""
        if not self.interrupted:
            self.interrupted = True
            for r in self._running:
                r.child.send_signal(signal.SIGINT)

    def run(self) -> Iterator[Outcome]:
        """Each process's outcome, as it ends."""
        waiting = list(self.pids)
        try:
            while waiting or self._running:
                while waiting and len(self._running) < self.parallel and not self.interrupted:
                    self._start(waiting.pop(0))
                if self.interrupted:
                    waiting.clear()
                yield from self._reap()
                time.sleep(_POLL)
        finally:
            for r in self._running:  # the caller stopped iterating: interrupt, then wait for each
                r.child.send_signal(signal.SIGINT)
            for r in self._running:
                r.child.communicate()

    def _start(self, pid: int) -> None:
        argv = [sys.executable, "-m", "gocall.cli.main", "call", str(pid), "--timeout", str(self.timeout),
                *(["--json"] if self.as_json else []), *self.options, "--", *self.exprs]
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, start_new_session=True)
        # The child's own --timeout bounds its wait for a goroutine; this one, its whole run
        # (start-up included), after which it is interrupted like on Ctrl-C.
        self._running.append(_Running(pid, child, time.monotonic() + self.timeout + 5.0))

    def _reap(self) -> Iterator[Outcome]:
        now = time.monotonic()
        for r in list(self._running):
            if r.child.poll() is None:
                if now > r.deadline and not self.interrupted:
                    r.child.send_signal(signal.SIGINT)
                    self._running[self._running.index(r)] = r._replace(deadline=float("inf"))
                continue
            self._running.remove(r)
            out, err = r.child.communicate()
            yield self._outcome(r, out, err)

    def _outcome(self, r: _Running, out: str, err: str) -> Outcome:
        status = r.child.returncode
        evaluations: list[dict[str, object]] = []
        if self.as_json and out.strip():
            try:
                evaluations = json.loads(out)
            except ValueError:
                pass
        lines = [line.removeprefix("gocall: ") for line in err.splitlines() if line.startswith("gocall: ")]
        error = None if status == 0 else (lines[-1] if lines else err.strip().splitlines()[-1] if err.strip()
                                          else f"gocall call exited with status {status}")
        if r.deadline == float("inf") and status != 0:
            error = f"timed out after {self.timeout:g} s; {error}"
        return Outcome(r.pid, nspids(r.pid), exe_path(r.pid), status, evaluations, error, out + err)


def call_many(pids: Iterable[int], exprs: Sequence[str], parallel: int = 4, timeout: float = 10.0,
              options: Sequence[str] = ()) -> Iterator[Outcome]:
    """Evaluate ``exprs`` in every process of ``pids``, ``parallel`` at a time; yields each
    process's :class:`Outcome` as it ends (a failure is an outcome, never raised)::

        for o in gocall.call_many([pid1, pid2], ["main.Stats()"]):
            print(o.pid, o.evaluations[0]["results"] if o.ok else o.error)

    ``options`` are more ``gocall call`` options (``["--declare", "func main.F() int"]``)."""
    return Fleet(list(pids), exprs, parallel, timeout, options).run()
