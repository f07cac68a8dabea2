"""A burst of calls on one thread kept traced between them (``Process.batch()``).

Outside a batch every call seizes a thread, interrupts it, checks it, and detaches
it at the end: PTRACE_SEIZE, INTERRUPT + a wait, GETREGS, the XSAVE read and
PTRACE_DETACH are a third of a warm call's ptrace requests. In a batch the thread
the last call ran on is kept **stopped, for at most ``linger`` seconds** after a call:

* inside the call's debugCallV2 run, left open at the callee's return (R12=1, as an
  expression's chained calls leave it, call/protocol.py): the next call starts in that
  frame, one protocol stop instead of three (no entry, R12=0, R12=16, no register save
  or restore: ~0.08 ms a call where ~0.26 was spent);
* or, in a batch with a guardian (guard/watch.py), which finishes each call's run, where
  it was found: the next call starts there with no request at all before debugCallV2
  (the registers, XSAVE image and safe-point verdict are still those of the stop).

At the linger's end a timer (process/alarm.py) lets it go: its handler finishes the
open run (the thread resumed to R12=16, tens of microseconds away, and restored there,
exactly as found) and detaches it. The next call looks for a thread as outside a batch
(the last one first: CallEngine._look_preferred).

Why not leave it stopped: a stopped thread holds its P, and the next stop-the-world
waits for that P, so every other goroutine of the program would wait for the batch's
next call. The bound is how long the program may be held: ``linger`` (plus how late a
Python signal handler runs: between two bytecodes of the main thread, or when a
blocking call in it is interrupted; the timer's signal is sent to the main thread, so
a blocking call is interrupted). Why not keep it seized and running after the linger
(sessions 8-10 did, to spare the next call a PTRACE_SEIZE): every signal the program
gets meanwhile (the scheduler's SIGURG preemption, at every GC) stops a seized thread
in signal-delivery-stop, holding its P, until its tracer hands it over, and the
tracer learns of it by SIGCHLD, which the kernel sends to the process: another thread
of it (a harness's pipe reader, any user thread) may take it, and Python then runs the
handler only when the main thread next returns to the interpreter. CI saw the program
held 5 s so, the main thread asleep in a lock's wait.

Python runs signal handlers on the main thread only, and ptrace requests must
come from the tracer thread: a batch entered on another thread keeps nothing
(every call seizes and detaches as outside a batch). A batch also keeps nothing
when every real-time signal has a handler already, or for stop-the-world calls
(the other threads are detached after each call).

On leaving the batch, however it is left (exception, Ctrl-C, the target
exiting), the kept thread is detached with any signal it was holding. A target
killed meanwhile is reaped at the linger's end: until its tracer collects the
kept thread's exit, its parent cannot wait for it (kernel/exit.c
delay_group_leader). A signal
whose default action would end this process (SIGTERM, SIGHUP, ... left at
SIG_DFL) is handled for the batch's length: between calls the thread is let go
first, then the default action ends the process as before (an open run whose
tracer is gone kills the program at debugCallV2's next INT3); during a call the
engine holds it (process/waiting.py). ``kill -9`` cannot be handled: outside a
guarded session (``attach(pid, guard=True)``) it leaves an open run behind, as
it does in the middle of any call.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType
from typing import TYPE_CHECKING

from ..errors import GocallError, Interrupted, TargetExited
from ..process.alarm import Alarm, free_signal
from ..process.signals import TERMINATING
from ..process.threads import Thread
from ..process.waiting import holding, signals_held
from .advance import Advanced

if TYPE_CHECKING:
    from .engine import Held

log = logging.getLogger("gocall.call")

_SOON = 0.0005  # s: the timer again, when its signal came inside signals_held's work (_on_alarm)


class Batch:
    """The thread kept between the calls of a batch, and the timer and handlers that bound
    how long the program waits for it. Created by ``CallEngine.batch``."""

    def __init__(self, linger: float) -> None:
        self.linger = linger
        self.thread: Thread | None = None  # kept, stopped
        # The last call's, when its debugCallV2 run was left open (``thread`` is its thread, stopped
        # at the callee's return, R12=1): the next call starts there (see keep_open).
        self._held: Held | None = None
        self._found: Advanced | None = None
        self._xstate: bytes | None = None
        self._busy = False  # a call is using the thread: the handlers leave it alone
        self._stopped_at = 0.0  # when the kept thread was left stopped (time.monotonic)
        self._armed = False  # the timer will fire (it is armed once per ``linger``, not per call)
        self._alarm: Alarm | None = None
        self._ending: frozenset[int] = frozenset()  # signals _on_ending handles (SIG_DFL's were ending this process)
        self._in_handler = False  # _on_alarm runs (Python may run _on_ending inside it)
        self._ended: int | None = None  # a signal _on_ending left for that handler to act on
        self.active = threading.current_thread() is threading.main_thread() and self._install()

    def _install(self) -> bool:
        """The timer and, for each signal whose default action would end this process,
        _on_ending; False (nothing is kept) without a free signal."""
        signum = free_signal()
        if signum is None:
            return False
        self._alarm = Alarm(signum, self._on_alarm)
        # Not the real-time ones: another batch (another process's, in the same block) takes its
        # timer's from those left at SIG_DFL (alarm.free_signal), and nobody sends them unasked.
        ending = TERMINATING - set(range(signal.SIGRTMIN, signal.SIGRTMAX + 1))
        self._ending = frozenset(s for s in ending if signal.getsignal(s) == signal.SIG_DFL)
        for s in self._ending:
            signal.signal(s, self._on_ending)
        return True

    # -- the engine's side ----------------------------------------------------------

    def take(self) -> Held | tuple[Thread, Advanced, bytes | None] | None:
        """The last call's Held when its run is still open (the next call goes on in it); else the
        kept thread, stopped where it was found: (thread, where, XSAVE image); None when there is
        none (the engine looks as outside a batch)."""
        self._busy = True  # the timer, firing during the call, leaves the thread alone
        held, self._held = self._held, None
        thread, self.thread = self.thread, None
        if thread is None or held is not None:
            return held
        assert self._found is not None
        return thread, self._found, self._xstate

    def keep(self, thread: Thread, found: Advanced, xstate: bytes) -> None:
        """After a call that left ``thread`` stopped as ``found`` says (registers restored):
        keep it stopped for ``linger`` seconds."""
        self.thread, self._found, self._xstate = thread, found, xstate
        self._stopped_at = time.monotonic()
        self._busy = False
        if self.linger <= 0 or self._alarm is None:
            self._let_go()
        else:
            self._arm()

    def keep_open(self, held: Held) -> bool:
        """After a call that left its debugCallV2 run open (call/protocol.py chaining: the thread
        stopped at the callee's return, R12=1): keep it so for ``linger`` seconds, and the next
        call starts there, one stop instead of three (no entry, R12=0, R12=16, register save or
        restore). The program sees what it sees during any call: the interrupted goroutine parked
        in debugCallWrap, its P held by the stopped thread, no GC cycle ending meanwhile, for at
        most ``linger``, as with a kept thread stopped where it was found. At the linger's end
        the run is finished and the thread let go (_on_alarm). False (nothing kept) when the
        thread would not wait: the engine finishes the run itself."""
        if self.linger <= 0 or self._alarm is None:
            return False
        self.thread, self._held, self._found, self._xstate = held.thread, held, None, None
        self._stopped_at = time.monotonic()
        self._busy = False
        self._arm()
        return True

    def _arm(self) -> None:
        if not self._armed:
            assert self._alarm is not None
            # Arming a timer costs ~10 us on a VM (the timer device is programmed); in a burst of
            # calls the timer armed by an earlier one is still due, and re-arms itself when it fires.
            self._armed = True
            self._alarm.set(self.linger)

    def drop(self) -> None:
        """A call ended without keeping its thread (it was detached): nothing to watch."""
        self._busy = False

    def release(self) -> None:
        """Detach the kept thread now (the linger's end; another tracer of the process, stop.py's,
        is about to seize every thread); the next call of the batch looks for one again. A target
        gone meanwhile is reaped, and left for the next call to say."""
        busy, self._busy = self._busy, True
        try:
            with signals_held():
                try:
                    self.settle()  # restored first: an untraced thread dies at debugCallV2's next INT3
                except TargetExited:
                    pass  # the detach below reaps the thread
                finally:
                    thread, self.thread = self.thread, None
                    if thread is not None:
                        thread.detach()
        finally:
            self._busy = busy

    def settle(self) -> None:
        """End the open run kept (keep_open), if any: the thread stopped where the first of its
        calls found it, every register as then (as :meth:`keep` leaves it)."""
        held, self._held = self._held, None
        if held is None:
            return
        busy, self._busy = self._busy, True
        try:
            with signals_held():
                held.finish()
            restored = held.restored()
            assert restored is not None  # a chained run restores what it saved
            self._found, self._xstate = Advanced(restored[0], held.found.verdict, 0, 0), restored[1]
        finally:
            self._busy = busy

    def close(self) -> None:
        """Detach the kept thread (with any signal it holds) and put the handlers back."""
        self._busy = True
        try:
            if self._alarm is not None:
                self._alarm.set(0)
            self.release()
        finally:
            if self._alarm is not None:
                self._alarm.close()
                self._alarm = None
                for s in self._ending:
                    if signal.getsignal(s) == self._on_ending:  # (not one the program set since)
                        signal.signal(s, signal.SIG_DFL)

    # -- between calls (signal handlers, on the main thread) --------------------------

    def _let_go(self) -> None:
        """The linger's end (a signal handler, at any bytecode of the main thread): the open run
        finished (the thread resumed to R12=16 and restored there, tens of microseconds) and the
        thread detached. Nothing is raised into the code the handler interrupted but what would
        have been raised there anyway: a Ctrl-C the wait took is sent again, to act as if it
        came now."""
        try:
            self.release()
        except Interrupted as e:
            signal.raise_signal(e.signum)
        except GocallError as e:  # a trap of no run of ours (the program's): let go with it
            log.warning("batch: %s; the thread was let go", e)

    def _on_ending(self, signum: int, frame: FrameType | None) -> None:
        """A signal whose default action ends this process, between calls (during one the
        engine holds it: waiting.signals_held): the kept thread is let go first — a debugCallV2
        run kept open (keep_open), its tracer gone, would run on to the runtime's next INT3 and
        kill the program — then the default action, as if nobody had handled it. Inside
        _on_alarm (Python runs a handler at any bytecode boundary, in another handler's too),
        once that one is done with the thread; inside signals_held's own work (see _on_alarm),
        a moment later, from the timer."""
        if self._in_handler or holding():
            self._ended = signum
            if not self._in_handler:
                self._soon()
            return
        self._end(signum)

    def _end(self, signum: int) -> None:
        try:
            self.release()
        finally:
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)

    def _on_alarm(self) -> None:
        """The timer: the linger's end (_alarm_fired), or a signal _on_ending left to act on. Not
        while signals_held is in force or at work: Python runs a handler at any bytecode, inside
        its lock too (a dry run hung so: the timer fired as a call's hold let its signals go, and
        release's own signals_held waited for that lock for ever); a moment later then, or, with
        a call under way, once keep() arms the timer again."""
        self._armed = False
        if holding():
            if not self._busy or self._ended is not None:
                self._soon()
            return
        self._in_handler = True
        try:
            self._alarm_fired()
        finally:
            self._in_handler = False
            if (signum := self._ended) is not None:
                self._ended = None
                self._end(signum)

    def _soon(self) -> None:
        if self._alarm is not None:
            self._armed = True
            self._alarm.set(_SOON)

    def _alarm_fired(self) -> None:
        if self._busy or self.thread is None or self._alarm is None:
            return  # keep() arms it again when the call ends
        left = self._stopped_at + self.linger - time.monotonic()
        if left > 0:  # left stopped by a later call than the one that armed the timer
            self._armed = True
            self._alarm.set(left)
        else:
            self._let_go()
