"""Where and how a call is made: find a thread stopped at a place the runtime
will accept, run the protocol there, release the thread.

The thread search is the debugger-side half of debugCallCheck: each thread of
the process is seized in turn, interrupted, and checked (runtime/safepoint.py);
the first that runs a user goroutine at a safe point is used. The others are
detached at once, so they never stop for more than a few microseconds.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

from ..binary import GoBinary
from ..errors import CallRefused, Interrupted, NoGoroutine, SymbolNotFound, TargetExited
from ..process.memory import Memory
from ..process.threads import Thread, thread_ids
from ..process.waiting import interrupts, signals_held
from ..runtime import safepoint
from ..runtime.layouts import Layout
from .protocol import CallSetup, Entry, Injector, Outcome

log = logging.getLogger("gocall.call")

_DEBUG_CALL_FUNCS = ("runtime.debugCallV2", "runtime.debugCallPanicked") + tuple(
    f"debugCall{1 << n}" for n in range(5, 17)
)


@dataclass(frozen=True)
class Site:
    """Where a call was injected."""

    tid: int
    goroutine: int | None
    function: str | None


class CallEngine:
    """Makes calls into one process, one stopped thread at a time."""

    def __init__(self, pid: int, binary: GoBinary, mem: Memory, layout: Layout, timeout: float) -> None:
        self.pid = pid
        self.binary = binary
        self.mem = mem
        self.layout = layout
        self.timeout = timeout
        self.entry = protocol_entry(binary)
        self.step_epilogue = False  # tests: restore through the runtime's own epilogue
        self._preferred_tid: int | None = None

    def call(self, setup: CallSetup) -> tuple[Outcome, Site]:
        """Inject one call; transient refusals are retried at another stop until the timeout."""
        deadline = time.monotonic() + self.timeout
        while True:
            with self.hold(deadline) as held:
                try:
                    return held.call(setup), held.site
                except CallRefused as e:
                    if not e.transient or time.monotonic() > deadline:
                        raise
                    log.debug("refused at %s (%s); trying again", held.site.function, e.reason)

    @contextlib.contextmanager
    def hold(self, deadline: float | None = None) -> Iterator[Held]:
        """One thread stopped at an injection site for several calls (an expression's
        nested calls); released, registers as found, when the block ends."""
        with signals_held(), self.site(deadline or time.monotonic() + self.timeout) as (thread, verdict):
            yield Held(self, thread, verdict)

    @contextlib.contextmanager
    def site(self, deadline: float) -> Iterator[tuple[Thread, safepoint.Verdict]]:
        """A thread stopped where a call may be injected; detached again afterwards.

        Must run inside :func:`~gocall.process.waiting.signals_held`.
        """
        seen: dict[int, str] = {}
        attempts = 0
        while True:
            for tid in self._candidate_tids():
                if interrupts.signal is not None:
                    raise Interrupted("interrupted while looking for a goroutine; nothing was changed")
                thread = Thread(self.pid, tid)
                try:
                    thread.seize()
                except TargetExited:
                    continue  # the thread ended between listing and seizing
                try:
                    regs = thread.stop()
                    verdict = safepoint.check(regs, self.mem, self.layout, self.binary.pclntab)
                    attempts += 1
                    if verdict.ok:
                        self._preferred_tid = tid
                        yield thread, verdict
                        return
                    seen[tid] = verdict.reason or ""
                finally:
                    thread.detach()
            if time.monotonic() > deadline:
                detail = "; ".join(f"thread {t}: {r}" for t, r in sorted(seen.items()))
                raise NoGoroutine(
                    f"no goroutine was running Go user code at a safe point in {self.timeout:g} s "
                    f"({attempts} looks; last seen: {detail})",
                    hint="the program may be idle (all goroutines blocked); raise --timeout or call while it works",
                )
            time.sleep(0.0005)

    def _candidate_tids(self) -> list[int]:
        tids = thread_ids(self.pid)
        if self._preferred_tid in tids:
            tids.remove(self._preferred_tid)
            tids.insert(0, self._preferred_tid)
        return tids


class Held:
    """A thread held at an injection site; each :meth:`call` leaves it exactly as found."""

    def __init__(self, engine: CallEngine, thread: Thread, verdict: safepoint.Verdict) -> None:
        self.thread = thread
        self.site = Site(thread.tid, verdict.g.goid if verdict.g else None, verdict.function)
        self.g = verdict.g  # its stack bounds: expr/ refuses pointers into it (escape check)
        self._injector = Injector(thread, engine.mem, engine.entry)
        self._injector.step_epilogue = engine.step_epilogue

    def call(self, setup: CallSetup) -> Outcome:
        return self._injector.inject(setup)


def protocol_entry(binary: GoBinary) -> Entry:
    """debugCallV2's address and the ranges of every function that may trap for us."""
    tab = binary.pclntab
    v2 = tab.func_by_name("runtime.debugCallV2")
    if v2 is None:
        raise SymbolNotFound("runtime.debugCallV2 is not in the binary", hint="gocall needs a Go >= 1.17 amd64 binary")
    ranges = [(f.entry, f.end) for f in map(tab.func_by_name, _DEBUG_CALL_FUNCS) if f is not None]
    return Entry(v2.entry, tuple(ranges))
