"""A burst of calls on one thread kept traced between them (``Process.batch()``).

Outside a batch every call seizes a thread, interrupts it, checks it, and detaches
it at the end: PTRACE_SEIZE, INTERRUPT + a wait, GETREGS, the XSAVE read and
PTRACE_DETACH are a third of a warm call's ptrace requests. In a batch the thread
the last call ran on is kept:

* **stopped, for at most ``linger`` seconds** after a call, inside the call's
  debugCallV2 run, left open at the callee's return (R12=1, as an expression's
  chained calls leave it, call/protocol.py): the next call starts in that frame,
  one protocol stop instead of three (no entry, R12=0, R12=16, no register save or
  restore: ~0.08 ms a call where ~0.26 was spent). At the linger's end the timer's
  handler resumes the run toward R12=16 and the SIGCHLD handler restores the
  thread at that trap, exactly as found; neither waits. A batch with a guardian
  (guard/watch.py) finishes each call's run: the thread is then kept stopped
  where it was found, and the next call starts there with no request at all
  before debugCallV2 (the registers, XSAVE image and safe-point verdict are
  still those of the stop);
* **then running, still seized**: a timer (process/alarm.py) resumes it, and
  every signal the program gets meanwhile is handed over at once by a SIGCHLD
  handler. The next call interrupts it and checks it again, as a first look
  would, without seizing.

Why not simply leave it stopped, or running unwatched: a stopped thread holds
its P, and a seized thread that gets a signal (the scheduler's SIGURG
preemption, at every GC) sits in signal-delivery-stop, holding its P too, until
its tracer sees it; the next stop-the-world waits for that P, so every other
goroutine of the program would wait for the batch's next call. The bound is
how long the program may be held: ``linger`` (plus how late a Python signal
handler runs: between two bytecodes of the main thread, or when a blocking
call in it is interrupted).

Python runs signal handlers on the main thread only, and ptrace requests must
come from the tracer thread: a batch entered on another thread keeps nothing
(every call seizes and detaches as outside a batch). A batch also keeps nothing
when every real-time signal has a handler already, or for stop-the-world calls
(the other threads are detached after each call).

On leaving the batch, however it is left (exception, Ctrl-C, the target
exiting), the kept thread is detached with any signal it was holding. A signal
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
import os
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

from ..errors import GocallError, TargetExited
from ..process import ptrace
from ..process.alarm import Alarm, free_signal
from ..process.memory import Memory
from ..process.signals import TERMINATING
from ..process.threads import Thread
from ..process.waiting import signals_held
from ..runtime import safepoint
from ..runtime.layouts import Layout
from ..binary.pclntab import Pclntab
from .advance import Advanced

if TYPE_CHECKING:
    from .engine import Held

log = logging.getLogger("gocall.call")

_Handler = Any  # what signal.getsignal returns: a callable, SIG_DFL, SIG_IGN or None


class Batch:
    """The thread kept between the calls of a batch, and the timer and handlers that bound
    how long the program waits for it. Created by ``CallEngine.batch``."""

    def __init__(self, pid: int, mem: Memory, layout: Layout, pclntab: Pclntab, linger: float) -> None:
        self.pid = pid
        self._mem, self._layout, self._pclntab = mem, layout, pclntab
        self.linger = linger
        self.thread: Thread | None = None  # kept: stopped (``_found`` valid) or running
        # The last call's, when its debugCallV2 run was left open (``thread`` is its thread, stopped
        # at the callee's return, R12=1): the next call starts there (see keep_open).
        self._held: Held | None = None
        self._found: Advanced | None = None
        self._xstate: bytes | None = None
        self._busy = False  # a call is using the thread: the handlers leave it alone
        self._stopped_at = 0.0  # when the kept thread was left stopped (time.monotonic)
        self._armed = False  # the timer will fire (it is armed once per ``linger``, not per call)
        self._alarm: Alarm | None = None
        self._previous_sigchld: _Handler = None
        self._ending: frozenset[int] = frozenset()  # signals _on_ending handles (SIG_DFL's were ending this process)
        self._in_handler = False  # _on_child or _on_alarm runs (Python may run _on_ending inside it)
        self._ended: int | None = None  # a signal _on_ending left for that handler to act on
        self.active = threading.current_thread() is threading.main_thread() and self._install()

    def _install(self) -> bool:
        """The timer, the SIGCHLD handler and, for each signal whose default action would end
        this process, _on_ending; False (nothing is kept) without a free signal."""
        signum = free_signal()
        if signum is None:
            return False
        self._alarm = Alarm(signum, self._on_alarm)
        self._previous_sigchld = signal.signal(signal.SIGCHLD, self._on_child)
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
        kept thread, stopped at a place a call may be injected: (thread, where, XSAVE image when
        still known); None when there is none or it is no longer at such a place (it is detached
        then, and the engine looks as outside a batch)."""
        self._busy = True
        held, self._held = self._held, None
        thread, self.thread = self.thread, None
        if thread is None:
            return None
        if held is not None:
            if not held.injector.finishing:
                return held
            try:  # the linger's end resumed it toward R12=16: restored here
                held.finish()
            except TargetExited:
                thread.reap(0)
                return None
            except BaseException:
                thread.detach()
                raise
            restored = held.restored()
            if restored is None:
                thread.detach()
                return None
            return thread, Advanced(restored[0], held.found.verdict, 0, 0), restored[1]
        if thread.stopped:  # the timer stays armed; firing during the call, it finds ``_busy``
            assert self._found is not None
            return thread, self._found, self._xstate
        try:
            regs = thread.stop()
            verdict = safepoint.check(regs, self._mem, self._layout, self._pclntab)
        except TargetExited:
            thread.reap(0)
            return None
        except BaseException:
            thread.detach()
            raise
        if not verdict.ok:
            thread.detach()
            return None
        return thread, Advanced(regs, verdict, 0, 0), None

    def keep(self, thread: Thread, found: Advanced, xstate: bytes) -> None:
        """After a call that left ``thread`` stopped as ``found`` says (registers restored):
        keep it stopped for ``linger`` seconds."""
        self.thread, self._found, self._xstate = thread, found, xstate
        self._stopped_at = time.monotonic()
        self._busy = False
        if self.linger <= 0 or self._alarm is None:
            self._resume()
        else:
            self._arm()

    def keep_open(self, held: Held) -> bool:
        """After a call that left its debugCallV2 run open (call/protocol.py chaining: the thread
        stopped at the callee's return, R12=1): keep it so for ``linger`` seconds, and the next
        call starts there, one stop instead of three (no entry, R12=0, R12=16, register save or
        restore). The program sees what it sees during any call: the interrupted goroutine parked
        in debugCallWrap, its P held by the stopped thread, no GC cycle ending meanwhile, for at
        most ``linger``, as with a kept thread stopped where it was found. At the linger's end
        the run is resumed toward R12=16 (a signal handler, which must not wait: _on_alarm) and
        restored at that trap (_on_child, or the next call, release or close). False (nothing
        kept) when the thread would not wait: the engine finishes the run itself."""
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
        """Detach the kept thread now (another tracer of the process, stop.py's, is about to
        seize every thread); the next call of the batch looks for one again."""
        busy, self._busy = self._busy, True
        try:
            with signals_held():
                try:
                    self.settle()  # restored first: an untraced thread dies at debugCallV2's next INT3
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
                previous = self._previous_sigchld
                signal.signal(signal.SIGCHLD, signal.SIG_DFL if previous is None else previous)
                for s in self._ending:
                    if signal.getsignal(s) == self._on_ending:  # (not one the program set since)
                        signal.signal(s, signal.SIG_DFL)

    # -- between calls (signal handlers, on the main thread) --------------------------

    def _resume(self) -> None:
        thread = self.thread
        if thread is None or not thread.stopped:
            return
        self._found = self._xstate = None
        try:
            if self._held is not None:
                self._held.injector.let_finish()  # on to R12=16, restored at its trap (_on_child)
            else:
                thread.resume()
        except TargetExited:
            self.thread = self._held = None
            thread.reap(0)

    def _on_ending(self, signum: int, frame: FrameType | None) -> None:
        """A signal whose default action ends this process, between calls (during one the
        engine holds it: waiting.signals_held): the kept thread is let go first — a debugCallV2
        run kept open (keep_open), its tracer gone, would run on to the runtime's next INT3 and
        kill the program — then the default action, as if nobody had handled it. Inside
        _on_child or _on_alarm (Python runs a handler at any bytecode boundary, in another
        handler's too), once that one is done with the thread."""
        if self._in_handler:
            self._ended = signum
            return
        self._end(signum)

    def _end(self, signum: int) -> None:
        try:
            self.release()
        finally:
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)

    def _on_alarm(self) -> None:
        self._as_handler(self._alarm_fired)

    def _as_handler(self, body: Callable[[], None]) -> None:
        """``body``, a handler's work on the thread: a signal _on_ending gets meanwhile is acted
        on once it is done."""
        self._in_handler = True
        try:
            body()
        finally:
            self._in_handler = False
            if (signum := self._ended) is not None:
                self._ended = None
                self._end(signum)

    def _alarm_fired(self) -> None:
        self._armed = False
        thread = self.thread
        if self._busy or thread is None or not thread.stopped or self._alarm is None:
            return  # keep() arms it again when the call ends
        left = self._stopped_at + self.linger - time.monotonic()
        if left > 0:  # left stopped by a later call than the one that armed the timer
            self._armed = True
            self._alarm.set(left)
        else:
            self._resume()

    def _on_child(self, signum: int, frame: FrameType | None) -> None:
        """Hand every signal the running kept thread stopped for over to it at once (a
        signal-delivery-stop would hold its P until the next call), and collect its exit,
        stopped or running: until its tracer does, a killed process cannot be waited for
        (kernel/exit.c delay_group_leader)."""
        previous = self._previous_sigchld
        if callable(previous):
            previous(signum, frame)
        self._as_handler(self._collect)

    def _collect(self) -> None:
        thread = self.thread
        if self._busy or thread is None:
            return
        while True:
            try:
                tid, status = os.waitpid(thread.tid, os.WNOHANG | ptrace.WALL)
            except ChildProcessError:
                self.thread = None  # reaped by someone else: the target is gone
                return
            if tid == 0:
                return
            if os.WIFEXITED(status) or os.WIFSIGNALED(status):
                thread.traced = thread.stopped = False
                self.thread = self._held = None
                return
            held = self._held
            if held is not None and status >> 16 == 0 and os.WSTOPSIG(status) == signal.SIGTRAP:
                # A trap of the open run _resume let finish: R12=16, where it is restored and runs on.
                thread.stopped = True
                try:
                    if held.injector.finish_at(ptrace.getregs(thread.tid)):
                        self._held = None
                        thread.resume()
                except TargetExited:
                    thread.reap(0)
                    self.thread = self._held = None
                    return
                except GocallError as e:  # a trap of no run of ours: the program's; let go with it
                    log.warning("batch: thread %d: %s; detached", thread.tid, e)
                    self.thread = self._held = None
                    thread.detach()
                    return
                continue
            # A stop is reported only after a resume, so the thread runs whatever ``stopped`` says:
            # this handler may run between Thread.resume's PTRACE_CONT and its update of the flag
            # (Python runs it at any bytecode boundary of the main thread once another thread of
            # ours took the SIGCHLD). Dropping the stop then left the thread in a signal-delivery
            # stop nobody would report again: the next PTRACE_INTERRUPT never brought a stop
            # ("did not stop within 5 s", state t; issue 19).
            thread.stopped = False
            event = status >> 16
            sig = 0 if event == ptrace.PTRACE_EVENT_STOP else os.WSTOPSIG(status)
            log.debug("batch: thread %d stopped for signal %d between calls; delivered", thread.tid, sig)
            try:
                ptrace.cont(thread.tid, sig)
            except TargetExited:
                thread.reap(0)
                self.thread = None
                return
