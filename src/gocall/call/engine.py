"""Where and how a call is made: find a thread stopped at a place the runtime
will accept, run the protocol there, release the thread.

Finding the place, cheapest first (each bounded by the engine's timeout):

1. every thread is seized in turn, interrupted and checked (runtime/safepoint.py,
   the debugger-side half of debugCallCheck); the first that runs a user
   goroutine at a safe point is used, the others are detached at once;
2. a thread whose goroutine is running but in the runtime or at an unsafe
   point is advanced to the nearest safe point (call/advance.py);
3. when no goroutine runs user code (an idle program), the goroutines' next
   returns into user code get hardware breakpoints on every thread (idle
   threads asleep in futex(2) are only watched: one that gets there is stopped
   where it runs on), and the first goroutine to get there is used; if none
   does, the error names what each one is blocked in.

``goroutine`` asks for one goroutine instead: followed on its thread when it
runs, caught at its next return into user code when it is parked or runnable
(the route the debugCallV2 comment in runtime/asm_amd64.s gives for _Grunnable).

Non-stop by default: only the thread that runs the call is ever stopped.
In a batch (``batch()``, call/batch.py) the last call's thread is kept traced
and the next call starts there when it still may.
``stop_the_world`` stops every thread whenever that one is stopped (Delve).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..binary import GoBinary
from ..errors import (CallRefused, GocallError, Interrupted, NoGoroutine, PtraceError, SymbolNotFound,
                      TargetExited)
from ..process import ptrace
from ..process.memory import Memory
from ..process.namespaces import host_tid
from ..process.permissions import tracers
from ..process.regs import user_regs_struct
from ..process.threads import TaskStates, Thread, thread_ids
from ..process.waiting import interrupts, signals_held
from ..runtime import safepoint, sched
from ..runtime.goroutines import G, Status
from ..runtime.layouts import Layout, wrap_locks_thread
from . import waits
from .advance import Advanced, advance, where_next
from .protocol import EPILOGUE_RELOADS, TAIL_SIZE, CallSetup, Entry, Injector, Outcome, Run, known_tail

if TYPE_CHECKING:
    from ..guard.watch import Guardian, Watch
    from ..process.group import ThreadGroup
    from ..process.perfbreak import PointWatch
    from .batch import Batch

log = logging.getLogger("gocall.call")

_DEBUG_CALL_FUNCS = ("runtime.debugCallV2", "runtime.debugCallPanicked") + tuple(
    f"debugCall{1 << n}" for n in range(5, 17)
)
_ADVANCE_SLICE = 0.05  # seconds one thread may take to reach a safe point before others are tried
_CATCH_SLICE = 0.5  # seconds of waiting for parked goroutines between two looks at running ones
# ... when a goroutine the catch could not arm for was running (see _catch_parked): it parks soon,
# or is found running user code by the next look.
_RUNNING_SLICE = 0.01


class _Moving:
    """A goroutine seen between parked and running (CallEngine._resume_point): no point yet."""


_MOVING = _Moving()
_MAX_POINTS = 4096  # parked goroutines' resume points remembered (_resume_point)


@dataclass(frozen=True)
class Site:
    """Where a call was injected."""

    tid: int
    goroutine: int | None
    function: str | None
    file: str = "?"
    line: int = 0
    steps: int = 0  # single steps taken to get to a safe point
    hops: int = 0  # returns from the runtime waited for (hardware breakpoints)
    pc: int = 0  # the interrupted PC the call was injected at

    @property
    def moved(self) -> bool:
        """The goroutine was run on to get here (it was not at a safe point when found)."""
        return bool(self.steps or self.hops)

    @property
    def where(self) -> str:
        """``goroutine 7 at main.work (main.go:42)`` plus how it got there: ``, advanced 3 steps
        and 1 return`` (single steps, and runs to a return address into user code)."""
        text = f"goroutine {self.goroutine} at {self.function} ({os.path.basename(self.file)}:{self.line})"
        moves = [f"{n} {what}{'s' if n != 1 else ''}" for n, what in ((self.steps, "step"), (self.hops, "return"))
                 if n]  # fmt: skip
        return text + (", advanced " + " and ".join(moves) if moves else "")

    def to_json(self) -> dict[str, object]:
        """The ``location`` of ``gocall call --json``."""
        return {"function": self.function, "file": self.file, "line": self.line, "thread": self.tid,
                "steps": self.steps, "returns": self.hops}  # fmt: skip


class CallEngine:
    """Makes calls into one process, one stopped thread at a time."""

    def __init__(self, pid: int, binary: GoBinary, mem: Memory, layout: Layout, timeout: float) -> None:
        self.pid = pid
        self.binary = binary
        self.mem = mem
        self.layout = layout
        self.timeout = timeout
        self.entry = protocol_entry(binary)
        self.advance = True  # False: keep the runtime's refusal instead of moving on to a safe point
        self.goroutine: int | None = None  # inject into this goroutine only
        self.stop_the_world = False  # stop every thread while the calling one is stopped
        self.step_epilogue = False  # tests: restore through the runtime's own epilogue
        self.abandon = False  # a callee still running after ``timeout``: left to a guardian (guard/handover.py)
        # A guardian process started with the first call sees a callee in flight through if gocall is
        # killed outright (guard/watch.py).
        self.guard = False
        self.watch: Watch | None = None
        self.protocol_hook: Callable[[str], None] | None = None  # tests: called at each protocol step
        self.observer: waits.Observer | None = None  # told what the engine waits for (call/waits.py)
        self.last_site: Site | None = None
        self._preferred_tid: int | None = None
        self._early: Thread | None = None  # the preferred thread, interrupted ahead of hold() (see early)
        self._states = TaskStates(pid)  # every thread's stat file, kept open (_candidate_tids, _look_preferred)
        self._sysmon_tid: int | None = None  # sysmon's thread once found (0: cannot be, see _sysmon)
        self._batch: Batch | None = None  # call/batch.py: the thread kept between calls
        self._lines: dict[int, tuple[str, int]] = {}  # interrupted PC -> source file and line
        # (g, goid, PC, SP) -> the resume point, and whether it can be reached: see _resume_point
        self._points: dict[tuple[int, int, int, int], tuple[sched.ResumePoint | None, bool]] = {}
        self._last_points: tuple[int | None, list[int]] | None = None  # the last catch's goroutine and points
        self._wait: waits.AnyGoroutine | waits.OneGoroutine | None = None  # the observer's, while finding
        self._reasons: list[str] | None = None  # runtime.waitReasonStrings, for the observer
        self._passed: list[int] | None = None  # threads others hold, once a seize was refused (_passes_over)
        self.running_skipped = 0  # goroutines the last resume_points left out as running
        # Set while stop.py's tracee traces every thread (breakpoints in): seizing a thread for a
        # call would fail half-way and kill the program, so the tracee lends one of its own
        # (stops/calls.py ``lent``): ``lender(deadline)`` holds it for the block.
        self.lender: Callable[[float], contextlib.AbstractContextManager[Held]] | None = None

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
    def batch(self, linger: float = 0.001) -> Iterator[Batch]:
        """Keep the last call's thread traced until the block ends (call/batch.py); nested
        blocks share the outer one."""
        if self._batch is not None:
            yield self._batch
            return
        from .batch import Batch  # only batches need it (and process/alarm.py's timer)

        batch = Batch(linger)
        self._batch = batch if batch.active else None
        try:
            yield batch
        finally:
            self._batch = None
            batch.close()

    def release_kept(self) -> None:
        """Detach the thread a batch keeps between calls, if any (call/batch.py)."""
        if self._batch is not None:
            self._batch.release()

    @contextlib.contextmanager
    def hold(self, deadline: float | None = None) -> Iterator[Held]:
        """One thread stopped at an injection site for several calls (an expression's
        nested calls); released, registers as found, when the block ends."""
        if self.lender is not None:
            with signals_held(), self.lender(deadline or time.monotonic() + self.timeout) as lent:
                self.last_site = lent.site
                yield lent
            return
        with signals_held():
            if self.guard:
                self.start_watch()
            deadline = deadline or time.monotonic() + self.timeout
            batch = self._batch if self._batch is not None and not self.stop_the_world else None
            kept = batch.take() if batch is not None else None
            xstate = None
            held: Held | None = None
            if isinstance(kept, Held) and not self._wanted(kept.found):
                try:
                    kept.finish()
                finally:
                    kept.thread.detach()
                kept = None
            if isinstance(kept, Held):  # its run open: the calls go on in it
                held, thread, found = kept, kept.thread, kept.found
            elif kept is not None and self._wanted(kept[1]):
                thread, found, xstate = kept
            else:
                if kept is not None:
                    kept[0].detach()
                thread, found = self._find(deadline)
            others = None
            done = kept_open = False
            try:
                if self.stop_the_world:
                    from ..process.group import ThreadGroup  # stop-the-world calls only

                    others = ThreadGroup(self.pid, exclude=[thread.tid, *self._guarded()])
                    others.seize_all()
                    others.stop_all()
                if held is None:
                    held = Held(self, thread, found, others, chain=True, xstate=xstate)
                self.last_site = held.site
                yield held
                done = True
            finally:
                finished = False
                try:
                    if held is not None:
                        # Batched, the run stays open for the next call (one stop per call instead
                        # of three), as long as the batch keeps the thread stopped: call/batch.py.
                        # Not with a guardian (guard/watch.py follows one call's run at a time).
                        kept_open = (done and batch is not None and others is None and self.watch is None
                                     and held.open is not None and interrupts.signal is None
                                     and batch.keep_open(held))  # fmt: skip
                        if not kept_open:
                            held.finish()
                            finished = done
                finally:
                    ours = held.thread if held is not None else thread
                    if kept_open:
                        pass
                    elif others is None:
                        restored = held.restored() if held is not None and finished else None
                        if batch is not None and restored is not None:
                            batch.keep(ours, Advanced(restored[0], found.verdict, 0, 0), restored[1])
                        else:
                            if batch is not None:
                                batch.drop()
                            ours.detach()
                    else:
                        # One way out for every thread, so that a dying process is reaped in the order
                        # the kernel needs (ThreadGroup.detach_all).
                        others.threads[ours.tid] = ours
                        others.detach_all()

    def _find(self, deadline: float) -> tuple[Thread, Advanced]:
        """A thread stopped where a call may be made, on ``goroutine`` if one is asked for; what
        is awaited meanwhile is told to the observer, if any."""
        goid, observer = self.goroutine, self.observer
        self._passed = None
        if observer is None:
            return self._find_goroutine(deadline) if goid is not None else self._find_any(deadline)
        self._wait = waits.OneGoroutine(goid, deadline) if goid is not None else waits.AnyGoroutine(deadline)
        observer.waiting(self._wait)
        try:
            return self._find_goroutine(deadline) if goid is not None else self._find_any(deadline)
        finally:
            observer.done(self._wait)
            self._wait = None

    def leave(self, injector: Injector, run: Run, fn: int) -> user_regs_struct | GocallError | None:
        """A callee that does not return, given to a guardian (see guard/handover.py ``leave``)."""
        from ..guard.handover import leave

        goroutine = self.mem.u64(run.g + self.layout.g_goid)
        f = self.binary.pclntab.func_for_pc(fn)
        signum = interrupts.signal if interrupts.count > 1 else None
        return leave(injector, run, goroutine, f.name if f is not None else f"{fn:#x}", signum)

    def start_watch(self) -> Watch:
        """The guardian of guard/watch.py, started once; forked before any thread is seized (the
        program is not held while it starts)."""
        if self.watch is None:
            from ..guard.watch import Watch

            with signals_held():
                self.watch = Watch(self.guardian())
        return self.watch

    def guardian(self) -> Guardian:
        """What a guardian needs to finish a call of this process's (guard/watch.py): an injector
        to finish it with, and where a thread waits at a protocol stop."""
        from ..guard.net import find as find_net
        from ..guard.watch import SPIN, Guardian
        from ..runtime.layouts import procyield_name

        template = Injector(Thread(self.pid, 0), self.mem, self.entry)
        template.step_epilogue = self.step_epilogue
        if not wrap_locks_thread(self.binary.go_version_tuple):
            template.lock_layout = self.layout
        tab = self.binary.pclntab
        loop = tab.func_by_name(procyield_name(self.binary.go_version_tuple))
        at = self.mem.read(loop.entry, 16).find(SPIN) if loop is not None else -1  # after MOVL cycles+0(FP), AX
        spin = loop.entry + at if loop is not None and at >= 0 else None
        if spin is None:
            log.info("runtime.procyield's loop not found: a kill of gocall at a protocol stop is not covered")

        def name(pc: int) -> str:
            f = tab.func_for_pc(pc)
            return f.name if f is not None else f"{pc:#x}"

        # The runtime's tail after debugCallV2's R12=16 INT3 (the code call/protocol.py performs
        # itself), where the session keeps an INT3 while its net is in (guard/watch.py Watch.tail);
        # it may be in already (another session's, or a dead one's this guardian is to take out).
        v2 = tab.func_by_name("runtime.debugCallV2")
        code = self.mem.read(v2.entry, v2.end - v2.entry) if v2 is not None else b""
        at = code.find(EPILOGUE_RELOADS[1:]) - 1
        known = at > 0 and code[at - 1] == 0xCC and known_tail(code[at : at + TAIL_SIZE])
        tail = v2.entry + at if v2 is not None and known else None
        return Guardian(template, self.layout, spin, name, find_net(self.binary, self.mem), tail)

    def close(self) -> None:
        """The session is over: its guardian (guard/watch.py), if one was started, exits."""
        if self.watch is not None:
            self.watch.close()
            self.watch = None
        self._states.close()

    def _guarded(self) -> list[int]:
        """Threads guardians hold (calls left running, guard/pending.py): not ours to seize."""
        from ..guard import pending

        return [p.tid for p in pending.calls(self.pid)]

    def _theirs(self) -> list[int]:
        """Threads another tracer holds, passed over while some thread is free: another gocall's
        batch keeps one between its calls (for its linger), a tool may trace one, and seizing that
        one failed the call ("already traced by"). With every thread held (a debugger attached)
        none is passed over: the seize gives the one-tracer refusal, which names who holds them."""
        me = os.getpid()
        held = [tid for tid, tracer in tracers(self.pid).items() if tracer != me]
        return held if held and len(held) < len(thread_ids(self.pid)) else []

    def _passes_over(self, tid: int) -> bool:
        """Whether thread ``tid``, whose seize was refused, is one to pass over (a guardian's or
        another tracer's, see _guarded and _theirs). Asked only after a refusal, and remembered
        for the rest of the find: reading every thread's TracerPid and the guardians' files before
        each look cost a mostly sleeping program's call ~0.5 ms of its ~2.5 (bench/README)."""
        if self._passed is None or tid not in self._passed:
            self._passed = [*self._guarded(), *self._theirs()]
        return tid in self._passed

    def _wanted(self, found: Advanced) -> bool:
        """Whether a thread a batch kept runs the goroutine asked for (any, or ``goroutine``)."""
        g = found.verdict.g
        return self.goroutine is None or (g is not None and g.goid == self.goroutine)

    # -- any goroutine ------------------------------------------------------------

    def _find_any(self, deadline: float) -> tuple[Thread, Advanced]:
        if (found := self._look_preferred()) is not None:
            return found
        if self.advance and self._last_points is not None and self._last_points[0] is None:
            # The last call caught a parked goroutine: a mostly sleeping program. Its points armed
            # first, the threads looked at only if the walk saw a goroutine running (_take_running):
            # looking first (~45 µs, twice that on a CPU that just woke) left the program that much
            # longer to wake up and run past its points unseen, a whole wake-up interval lost.
            caught = self._catch_parked(None, min(deadline, time.monotonic() + _CATCH_SLICE), look=True)
            if caught is not None:
                return caught
        seen: dict[int, str] = {}
        attempts = 0
        while True:
            movable: list[int] = []
            for tid in self._candidate_tids():
                got = self._look(tid)
                if got is None:
                    continue
                thread, regs, verdict = got
                attempts += 1
                if verdict.ok:
                    self._preferred_tid = tid
                    return thread, Advanced(regs, verdict, 0, 0)
                seen[tid] = verdict.reason or ""
                if self.advance and where_next(regs, self.mem, self.layout, self.binary.pclntab) is not None:
                    movable.append(tid)
                thread.detach()
            for tid in movable if self.advance else ():
                found = self._advance_thread(tid, min(deadline, time.monotonic() + _ADVANCE_SLICE), None)
                if found is not None:
                    return found
            if self.advance and not movable:
                caught = self._catch_parked(None, min(deadline, time.monotonic() + _CATCH_SLICE))
                if caught is not None:
                    return caught
            if time.monotonic() > deadline:
                raise self._nothing_found(seen, attempts)
            time.sleep(0.0005)

    @contextlib.contextmanager
    def early(self) -> Iterator[None]:
        """Interrupt the preferred thread now, for a call the block is sure to make: its stop
        (~30 µs away, the thread on another CPU) comes while the block works out the call, and
        :meth:`hold` takes it (:meth:`_look_preferred`). Not taken by the block's end, the
        thread is stopped and let go as it was. Only where hold() would seize it itself: no
        batch, lender, goroutine asked for, stop-the-world, or guardian still to fork."""
        if (self._preferred_tid is None or self._early is not None or self.lender is not None
                or self._batch is not None or self.goroutine is not None or self.stop_the_world
                or (self.guard and self.watch is None)):  # fmt: skip
            yield
            return
        with signals_held():
            tid = self._preferred_tid
            if self._states.state(tid) == b"R" and interrupts.signal is None:
                thread = Thread(self.pid, tid)
                try:
                    thread.seize()
                    ptrace.interrupt(thread.tid)
                    self._early = thread
                except (PtraceError, TargetExited):  # gone, another tracer's: hold() finds a thread as usual
                    if thread.traced:
                        thread.detach()
            try:
                yield
            finally:
                untaken, self._early = self._early, None
                if untaken is not None:  # not taken: stopped (the interrupt's) and let go
                    try:
                        untaken.halt(interrupted=True)
                    finally:
                        untaken.detach()

    def _look_preferred(self) -> tuple[Thread, Advanced] | None:
        """The thread that ran the last call's goroutine, when it still runs one at a safe point:
        a busy program's goroutine is usually still there, and /proc/PID/task need not be listed."""
        tid = self._preferred_tid
        if tid is None:
            return None
        # A remembered thread id may since have exited and been reused by another process: it must
        # still be in ours before it is seized (its stat file, kept open, fails once that thread is
        # gone), and after (seized, it cannot exit unnoticed): tgkill's check of its process. One
        # asleep in the kernel runs no user code: not seized (waking it costs a mostly sleeping
        # program's call ~0.2-0.8 ms).
        early = self._early
        if early is not None and early.tid == tid:
            self._early = None
        else:
            early = None
        state = self._states.state(tid)  # its stat file kept open: one pread
        if state is None:
            return None
        if early is None and state != b"R":
            return None
        got = self._look(tid, early)
        if got is None:
            return None
        thread, regs, verdict = got
        if verdict.ok and ptrace.in_group(self.pid, tid):
            return thread, Advanced(regs, verdict, 0, 0)
        thread.detach()
        return None

    def _look(self, tid: int, early: Thread | None = None
              ) -> tuple[Thread, user_regs_struct, safepoint.Verdict] | None:
        """Seize and stop thread ``tid`` and check it; None if it exited meanwhile. ``early``:
        seized and interrupted already (:meth:`early`), its stop to be waited for."""
        if early is not None:
            thread = early
        else:
            if interrupts.signal is not None:
                raise Interrupted("interrupted while looking for a goroutine; nothing was changed")
            thread = Thread(self.pid, tid)
            try:
                thread.seize()
            except TargetExited:
                return None  # the thread ended between listing and seizing
            except PtraceError:  # AttachDenied too
                if not self._passes_over(tid):
                    raise
                return None  # a guardian's (a call left running) or another tracer's (another gocall's batch)
        try:
            if early is None:
                regs = thread.stop()
            else:
                thread.halt(interrupted=True)  # the interrupt early() sent
                if interrupts.signal is not None:
                    raise Interrupted("interrupted while looking for a goroutine; nothing was changed")
                regs = ptrace.getregs(tid)
            return thread, regs, safepoint.check(regs, self.mem, self.layout, self.binary.pclntab)
        except BaseException:
            thread.detach()
            raise

    def _advance_thread(self, tid: int, deadline: float, goid: int | None) -> tuple[Thread, Advanced] | None:
        got = self._look(tid)
        if got is None:
            return None
        thread, regs, _ = got
        try:
            found = advance(thread, regs, self.mem, self.layout, self.binary.pclntab, deadline, goid)
        except BaseException:
            thread.detach()
            raise
        if found is None:
            thread.detach()
            return None
        self._preferred_tid = tid
        return thread, found

    def _nothing_found(self, seen: dict[int, str], attempts: int) -> NoGoroutine:
        blocked = self.blocked()
        if blocked and not any(b.endswith(": running") for b in blocked):
            return NoGoroutine(
                f"no goroutine reached Go user code within {self.timeout:g} s; " + "; ".join(blocked),
                hint="every goroutine is blocked: make the program do some work, or raise --timeout",
            )
        detail = "; ".join(f"thread {t}: {r}" for t, r in sorted(seen.items()))
        return NoGoroutine(
            f"no goroutine was running Go user code at a safe point in {self.timeout:g} s "
            f"({attempts} looks; last seen: {detail})",
            hint="the program may be idle (all goroutines blocked); raise --timeout or call while it works",
        )

    # -- one goroutine ------------------------------------------------------------

    def _find_goroutine(self, deadline: float) -> tuple[Thread, Advanced]:
        goid = self.goroutine
        assert goid is not None
        refused: str | None = None  # without advancing: why the last look at it was not good enough
        told = 0.0  # without advancing: when the observer's wait was last told where it is parked
        while True:
            g = self._goroutine(goid)
            if isinstance(self._wait, waits.OneGoroutine) and g.status == Status.RUNNING:
                self._wait.state = "running; moving it on to a safe point" if self.advance else "running"
            # m.procid is the thread as the target's PID namespace numbers it (a container's, seen from the host).
            if g.status == Status.RUNNING and g.m and (tid := host_tid(self.pid, self.mem.u64(
                    g.m + self.layout.m_procid))) is not None:
                if self.advance:  # no other goroutine to try meanwhile: as long as it takes
                    found = self._advance_thread(tid, deadline, goid)
                    if found is not None:
                        return found
                elif (got := self._look(tid)) is not None:
                    thread, regs, verdict = got
                    if verdict.ok and verdict.g is not None and verdict.g.goid == goid:
                        return thread, Advanced(regs, verdict, 0, 0)
                    refused = verdict.reason if verdict.g is not None and verdict.g.goid == goid else refused
                    thread.detach()
            elif self.advance:
                caught = self._catch_parked(goid, min(deadline, time.monotonic() + _CATCH_SLICE))
                if caught is not None:
                    return caught
            elif self._wait is not None and time.monotonic() > told + _CATCH_SLICE:  # where it is parked
                told = time.monotonic()
                self._tell_parked(self._wait, [g], [(g, sched.parked_resume_point(self.mem, self.layout,
                                                                                   self.binary.pclntab, g))])
            if time.monotonic() > deadline:
                state = f"running, {refused}" if refused else self._describe(self._goroutine(goid))
                raise NoGoroutine(
                    f"goroutine {goid} was not at a place where a call may be injected within {self.timeout:g} s"
                    f" ({state})",
                    hint="let gocall move it on to a safe point (drop --no-advance), raise --timeout, or pick "
                    "another goroutine" if not self.advance else "raise --timeout, or pick another goroutine",
                )
            time.sleep(0.0005)

    def _goroutine(self, goid: int) -> G:
        for g in self._goroutines():
            if g.goid == goid:
                return g
        raise NoGoroutine(f"there is no goroutine {goid} in process {self.pid}",
                          hint="goroutines now: " + ", ".join(str(g.goid) for g in self._goroutines()))  # fmt: skip

    def _goroutines(self) -> list[G]:
        allgs = self.binary.symbol("runtime.allgs")
        if allgs is None:
            raise SymbolNotFound("runtime.allgs is not in the symbol table (stripped binary)",
                                 hint="goroutines can only be listed in binaries built without -ldflags=-s")  # fmt: skip
        return sched.all_goroutines(self.mem, self.layout, allgs)

    # -- parked goroutines ----------------------------------------------------------

    def _catch_parked(self, goid: int | None, deadline: float, look: bool = False) -> tuple[Thread, Advanced] | None:
        """Hardware breakpoints on every thread where parked goroutines (or ``goid``) next
        return into user code (watches on idle ones); the first to arrive, advanced to a safe point.
        ``look``: no thread was looked at before (_find_any): once armed, if the walk saw a
        goroutine running, a running thread is taken, moved on to a safe point (_take_running)."""
        # The last catch's points, if it was for the same goroutines, are armed before the
        # goroutines are walked for this one's: one that wakes up during the walk (~0.1 ms) is
        # caught at its point, where walking first left it that long to run past it unseen.
        known = self._last_points[1] if self._last_points is not None and self._last_points[0] == goid else None
        pcs = known or self.resume_points(goid, self._wait)
        if not pcs:
            return None
        from ..process import breakpoints  # waiting for parked goroutines only
        from ..process.group import ThreadGroup
        from ..process.perfbreak import PointWatch

        group = ThreadGroup(self.pid, exclude=[*(self._passed or ()), self._sysmon()])
        # Idle Ms sleep in futex(2) until another thread wakes them: a parked goroutine comes back
        # on one of them far less often than on the M a timer or the network poller wakes (the
        # bench's sleepy target: 2 hits in 288 on its 3 such threads, 262 on its one in epoll_wait).
        # They are watched, not seized (perfbreak.PointWatch): never woken to be let go.
        watch = PointWatch()
        watched = [tid for tid in self._states.tids() if tid not in group.exclude and self._states.in_futex(tid)]
        group.exclude.update(watched)
        try:
            self._seize(group)
            group.arm_running(pcs)
            self._watch(watch, group, watched, pcs)
            if known:
                pcs = self.resume_points(goid, self._wait, known)
                if not pcs:
                    self._last_points = None
                    return None
                if not set(pcs) <= set(known):  # a point of the walk's is not armed (those armed for nobody stay)
                    group.rearm_running(pcs)
                    moved = list(watch.fds)
                    watch.close()
                    self._watch(watch, group, moved, pcs)
            self._last_points = goid, pcs
            if look and self.running_skipped and (taken := self._take_running(group, pcs, deadline)) is not None:
                return taken
            if self.running_skipped:
                # A goroutine running (in the runtime: no look found it in user code) has no resume
                # point armed. Left at _CATCH_SLICE, a sleepy program's only worker, caught between
                # its wake-up and its return into user code, was missed for the whole slice: ~0.5%
                # of calls waited 0.5-1 s for a goroutine that wakes every 1.1 ms (bench/README).
                deadline = min(deadline, time.monotonic() + _RUNNING_SLICE)
            while time.monotonic() < deadline and interrupts.signal is None:
                group.woken = watch.passed if watch.fds else None
                got = group.wait_trap(deadline - time.monotonic())
                if got is None and (tid := watch.passed()) is not None:
                    # A watched thread passed a point, and runs on: stopped where it is now, and
                    # moved on to a safe point, as a thread found running is (_find_any).
                    watch.drop(tid)
                    caught = self._advance_thread(tid, min(deadline, time.monotonic() + _ADVANCE_SLICE), goid)
                    if caught is not None:
                        group.keep = [tid]
                        return caught
                    # Back asleep (or running another goroutine) before it was stopped: seized and
                    # armed from now on, so that its next return is caught where it happens.
                    group.exclude.discard(tid)
                    self._seize(group)
                    group.arm_running(pcs)
                    continue
                if got is None:
                    # Nothing came back to user code: the points may be stale (a goroutine that
                    # parked at the same PC and SP from another caller); walked again next time.
                    self._points.clear()
                    self._last_points = None
                    break
                thread, trap = got
                thread.close_events()
                if not thread.events_only:
                    breakpoints.set_breakpoints(thread, [])
                found = advance(thread, trap.regs, self.mem, self.layout, self.binary.pclntab,
                                min(deadline, time.monotonic() + _ADVANCE_SLICE), goid)  # fmt: skip
                if found is not None:
                    group.hand_over(thread)
                    thread.woken = True
                    return thread, Advanced(found.regs, found.verdict, found.steps, found.hops + 1)
                # Another goroutine, or ours lost again: step off the breakpoint, re-arm, go on.
                thread.run_until_trap(step=True)
                breakpoints.set_breakpoints(thread, pcs)
                thread.resume()
            return None
        finally:
            watch.close()
            group.detach_all()

    def _take_running(self, group: ThreadGroup, pcs: list[int], deadline: float) -> tuple[Thread, Advanced] | None:
        """A thread of the catch's group the kernel has running, stopped and moved on to a safe
        point in user code as a look would (_find_any's loop: a goroutine waking up is still in
        the runtime, a spinning one may be in code without safe points), and taken out of the
        group; one that cannot be is armed again (at ``pcs``) and let go on."""
        from ..process import breakpoints  # waiting for parked goroutines only

        for thread in list(group.threads.values()):
            # Running or runnable, or in a stop not collected yet (a signal's: SIGURG preempts a
            # spinning goroutine every 10 ms); asleep in the kernel, it runs no goroutine now.
            if thread.stopped or self._states.state(thread.tid) not in (b"R", b"t"):
                continue
            regs = thread.stop()
            verdict = safepoint.check(regs, self.mem, self.layout, self.binary.pclntab)
            if not verdict.ok and where_next(regs, self.mem, self.layout, self.binary.pclntab) is None:
                thread.resume()  # no goroutine of its own on its way to user code (a system thread)
                continue
            thread.disarm()
            found = Advanced(regs, verdict, 0, 0) if verdict.ok else advance(
                thread, regs, self.mem, self.layout, self.binary.pclntab, min(deadline, time.monotonic() + _ADVANCE_SLICE))
            if found is None:
                breakpoints.set_breakpoints(thread, pcs)  # as the catch's trap path re-arms one
                thread.resume()
                continue
            group.hand_over(thread)
            self._preferred_tid = thread.tid
            return thread, found
        return None

    def _seize(self, group: ThreadGroup) -> None:
        """Seize the group's threads not seized yet, passing over those others hold."""
        try:
            group.seize_all()
        except PtraceError as e:  # AttachDenied too: a thread a guardian or another tracer holds
            if not self._passes_over(e.tid):
                raise
            group.exclude.update(self._passed or ())
            group.seize_all()

    def _watch(self, watch: PointWatch, group: ThreadGroup, tids: list[int], pcs: list[int]) -> None:
        """Watch ``pcs`` on ``tids``; those the kernel refuses it for are seized and armed."""
        refused = [tid for tid in tids if not watch.add(tid, pcs)]
        if refused:
            group.exclude.difference_update(refused)
            self._seize(group)
            group.arm_running(pcs)

    def resume_points(self, goid: int | None, wait: waits.AnyGoroutine | waits.OneGoroutine | None,
                      last: Sequence[int] = ()) -> list[int]:  # fmt: skip
        """Where parked goroutines (or ``goid``, if parked) next return into user code, as many
        as there are debug registers (process/breakpoints.py); what they wait for is told to
        ``wait``. The catch's breakpoints: this engine's (:meth:`_catch_parked`), or those of
        the tracer that owns every thread while breakpoints are in (stops/calls.py ``lent``).

        ``last``: the last catch's points, kept when a goroutine is seen running (between its
        wake-up and its return into user code, or parking): it is as likely back at its last
        point as anywhere, and a sleepy program's worker just let go by a call parks there."""
        from ..process.breakpoints import SLOTS  # waiting for parked goroutines only

        pcs: list[int] = []
        never: list[int] = []  # points of goroutines parked for ever (sched.PARKED_FOR_EVER)
        gs = self._goroutines()
        parked: list[tuple[G, sched.ResumePoint | None]] = []
        self.running_skipped = 0
        for g in gs:
            if goid is not None and g.goid != goid:
                continue
            if g.status == Status.RUNNING:
                self.running_skipped += 1
                continue
            got = self._resume_point(g)
            if isinstance(got, _Moving):  # waking up or parking as it was read: as if running
                self.running_skipped += 1
                continue
            point, reachable = got
            parked.append((g, point))
            if point is not None:
                (pcs if reachable else never).append(point.pc)
        if wait is not None:
            self._tell_parked(wait, gs, parked)
        if self.running_skipped:
            pcs += last
        # A point nobody reaches costs a catch a perf event (or a debug register) per thread, and
        # a sleepy program's main goroutine often waits in ``select {}``. Armed only when nothing
        # else is: the catch then waits its slice quietly, as it always did, not a poll loop.
        return list(dict.fromkeys(pcs or never))[:SLOTS]

    def _resume_point(self, g: G) -> tuple[sched.ResumePoint | None, bool] | _Moving:
        """Where parked ``g`` next returns into user code, walked once per place it parks at: a
        mostly sleeping program's goroutines park at the same few places, call after call (the
        walk is most of a catch's Python). A goroutine that parked at the same PC and SP again
        from another caller gets a stale point: a breakpoint nobody reaches, never a wrong call
        (whoever is caught is advanced to a safe point of its own).

        The walk reads the stack of a goroutine that may wake up and run meanwhile: its result is
        remembered only if the goroutine is still parked where it was after the walk (g.sched is
        cleared when it runs, rewritten when it parks). A point walked over a stack that changed
        under it, remembered, was the catch's for every later call: a sleepy program's worker got
        no breakpoint and each catch waited its whole slice (0.5 s, ~0.5% of calls, bench/README).

        With the point: whether it can be reached at all (not for a goroutine parked for ever,
        sched.PARKED_FOR_EVER; one that parks so never leaves that frame)."""
        pc, sp = g.sched_pc, g.sched_sp  # read with its status
        if sp == 0:  # g.sched is cleared while it runs (gogo): its status was read a moment before
            return _MOVING
        key = (g.addr, g.goid, pc, sp)
        if key in self._points:
            return self._points[key]
        if len(self._points) >= _MAX_POINTS:
            self._points.clear()
        point = sched.resume_point(self.mem, self.binary.pclntab, pc, sp, (g.stack_lo, g.stack_hi))
        if sched.sched(self.mem, self.layout, g) != (pc, sp):
            return _MOVING
        got = self._points[key] = point, point is not None and self._wait_reason(g) not in sched.PARKED_FOR_EVER
        return got

    def _tell_parked(self, wait: waits.AnyGoroutine | waits.OneGoroutine, gs: list[G],
                     parked: list[tuple[G, sched.ResumePoint | None]]) -> None:  # fmt: skip
        """What the parked goroutines wait for, to the observer's wait."""
        if isinstance(wait, waits.AnyGoroutine):
            wait.seen = waits.blocked(parked, sum(g.status == Status.RUNNING for g in gs), self._wait_reason)
        elif parked:
            wait.state = waits.state(parked[0][0], parked[0][1], self._wait_reason(parked[0][0]))

    def _wait_reason(self, g: G) -> str:
        """The runtime's words for what ``g`` waits for (``IO wait``, ``select``), else its status."""
        if self._reasons is None:
            from ..runtime.view import wait_reason_strings  # only observed waits need them

            try:
                self._reasons = wait_reason_strings(self.binary)
            except SymbolNotFound:
                self._reasons = []
        reason = self.mem.read(g.addr + self.layout.g_waitreason, 1)[0]
        if g.status == Status.WAITING and 0 < reason < len(self._reasons):
            return self._reasons[reason]
        return g.status_name

    def blocked(self) -> list[str]:
        """What each user goroutine is blocked in, for the all-blocked message."""
        try:
            gs = self._goroutines()
        except SymbolNotFound:
            return []
        out = []
        for g in gs:
            text = self._describe(g)
            if "system goroutine" not in text:
                out.append(f"goroutine {g.goid}: {text}")
        return out

    def _describe(self, g: G) -> str:
        if g.status == Status.RUNNING:
            return "running"
        point = sched.parked_resume_point(self.mem, self.layout, self.binary.pclntab, g)
        if point is None:
            return f"{g.status_name}, system goroutine (never returns to user code)"
        return f"{g.status_name} in {point.callee} called from {point.function} ({point.file}:{point.line})"

    def source_line(self, pc: int) -> tuple[str, int]:
        """File and line of ``pc`` (cached: a busy goroutine is found at the same few PCs)."""
        found = self._lines.get(pc)
        if found is None:
            f = self.binary.pclntab.func_for_pc(pc)
            found = self._lines[pc] = f.file_line(pc) if f is not None else ("?", 0)
        return found

    def _sysmon(self) -> int:
        """sysmon's thread (runtime/sched.py sysmon_procid): it runs no goroutine, so neither a look
        for a running one nor a catch of parked ones seizes it (a catch woke it twice to let it go,
        ~40 µs of a sleepy program's 4-thread catch); 0 when not known (yet)."""
        if self._sysmon_tid is None:
            allm, fn = self.binary.symbol("runtime.allm"), self.binary.pclntab.func_by_name("runtime.sysmon")
            if allm is None or fn is None:
                self._sysmon_tid = 0  # stripped of its symbol table: never known
            elif (procid := sched.sysmon_procid(self.mem, self.layout, allm, fn.entry)) is not None:
                self._sysmon_tid = host_tid(self.pid, procid) or 0
        return self._sysmon_tid or 0

    def _candidate_tids(self) -> list[int]:
        """The threads that may be running Go code: those the kernel has running or runnable
        (state R). One asleep in the kernel (a futex, a timer, epoll, a blocking syscall) is not
        seized: its goroutine, if any, is caught when it returns into user code (_catch_parked)."""
        passed = [*(self._passed or ()), self._sysmon()]  # known once a seize was refused (_passes_over)
        listed = thread_ids(self.pid)
        self._states.keep_only(listed)
        tids = [tid for tid in listed if tid not in passed and self._states.state(tid) == b"R"]
        if self._preferred_tid in tids:
            tids.remove(self._preferred_tid)
            tids.insert(0, self._preferred_tid)
        return tids


class Held:
    """A thread held at an injection site; each :meth:`call` leaves it exactly as found, or
    with ``chain`` once :meth:`finish` is called: consecutive calls then share one debugCallV2
    run (call/protocol.py), as an expression's allocations, pins and calls do.

    ``others``: the rest of the threads, traced to stop with ours (stop-the-world).
    """

    def __init__(self, engine: CallEngine, thread: Thread, found: Advanced, others: ThreadGroup | None,
                 chain: bool = False, xstate: bytes | None = None) -> None:  # fmt: skip
        v = found.verdict
        self.found = found  # where the thread was found (a batch keeps it, call/batch.py)
        file, line = engine.source_line(found.regs.rip)
        self.site = Site(thread.tid, v.g.goid if v.g else None, v.function, file, line, found.steps, found.hops,
                         found.regs.rip)  # fmt: skip
        self.g = v.g  # its stack bounds: expr/ refuses pointers into it (escape check)
        self._injector = Injector(thread, engine.mem, engine.entry)
        self._injector.step_epilogue = engine.step_epilogue
        self._injector.others = others
        self._injector.stop_others = engine.stop_the_world
        self._injector.hook = engine.protocol_hook
        self._injector.callee_timeout = engine.timeout
        self._injector.leave = engine.leave
        self._injector.watch = engine.watch
        if engine.watch is not None:
            thread.on_pin = engine.watch.pinned  # a narrowing of its CPU mask, for the guardian to undo
        self._injector.abandon = engine.abandon
        self._injector.known = (thread.tid, found.regs, xstate)  # the registers its stop read
        self._injector.chain = chain
        self._observer = engine.observer
        self._name = engine.binary.pclntab.func_for_pc
        if not wrap_locks_thread(engine.binary.go_version_tuple):
            self._injector.lock_layout = engine.layout  # call/lock.py

    @property
    def thread(self) -> Thread:
        """The thread the goroutine is on now."""
        return self._injector.thread

    def call(self, setup: CallSetup) -> Outcome:
        observer = self._observer
        if observer is None:
            return self._injector.inject(setup)
        f = self._name(setup.fn)
        wait = waits.Callee(f.name if f is not None else f"{setup.fn:#x}", self.site.goroutine)
        observer.waiting(wait)
        try:
            return self._injector.inject(setup)
        finally:
            observer.done(wait)

    def finish(self) -> None:
        """Back to where the thread was found (the end of a chained run)."""
        self._injector.finish()

    def restored(self) -> tuple[user_regs_struct, bytes] | None:
        """After :meth:`finish`: the registers and XSAVE image the thread was left with, when
        a call restored them (a batch keeps the thread stopped with them, call/batch.py)."""
        known = self._injector.known
        if known is None or known[0] != self.thread.tid or known[2] is None:
            return None
        return known[1], known[2]

    def would_chain(self, frame_size: int) -> bool:
        """Whether a call with this argument frame would run in the debugCallV2 run now open."""
        return self._injector.would_chain(frame_size)

    @property
    def open(self) -> Run | None:
        """The debugCallV2 run chained calls left open (what :meth:`finish` restores), or None."""
        return self._injector.open

    @property
    def injector(self) -> Injector:
        """What runs the calls (a batch ends an open run through it: call/batch.py)."""
        return self._injector


def protocol_entry(binary: GoBinary) -> Entry:
    """debugCallV2's address and the ranges of every function that may trap for us."""
    tab = binary.pclntab
    v2 = tab.func_by_name("runtime.debugCallV2")
    if v2 is None:
        raise SymbolNotFound("runtime.debugCallV2 is not in the binary", hint="gocall needs a Go >= 1.17 amd64 binary")
    ranges = [(f.entry, f.end) for f in map(tab.func_by_name, _DEBUG_CALL_FUNCS) if f is not None]
    return Entry(v2.entry, tuple(ranges))
