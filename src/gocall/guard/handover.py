"""Leaving a call whose callee does not return to a guardian process, and returning at once.

Why gocall cannot simply go: the thread runs the callee traced by gocall. Detached, it runs
untraced, and when the callee returns, debugCallNN's INT3 raises a SIGTRAP that the Go runtime
turns into a fatal error. Someone must be the thread's tracer until the protocol is over (the
callee returns, debugCallV2 reaches R12=16, the registers are put back exactly), however long
that takes. That is the guardian: a small process, forked from gocall so that it inherits the
run's state (saved registers, XSAVE image, the frame, the lock of call/lock.py), in a session of
its own (a terminal hangup or a process-group kill does not reach it), which exits once done.

How the thread changes tracer without ever running untraced. A tracee has one tracer, and
PTRACE_DETACH lets it run at once; the new tracer can only seize it afterwards. In between the
callee may return (a deadlock released, a sleep ending) and the thread hit the INT3 untraced.
Options weighed:

* the guardian as the tracer of every call from the start: every protocol step would be a
  message to another process, on the warm path. Rejected (issue 18: no cost on the warm path).
* PTRACE_DETACH with SIGSTOP as its signal: the signal is only delivered from a
  signal-delivery-stop; from the PTRACE_INTERRUPT stop gocall holds, it is ignored (ptrace(2)).
* what is done: a *group-stop* survives the change of tracer (ptrace(2): a tracer's death or
  detach restarts the tracees, "unless they were in group-stop"). gocall interrupts the thread
  (PTRACE_INTERRUPT, a ptrace-stop, no user instruction runs), queues a SIGSTOP to it
  (tgkill: pending, not delivered while traced), and detaches it. Leaving the ptrace-stop, the
  thread is in get_signal, untraced, with SIGSTOP pending: it takes it before returning to user
  mode and the whole process enters a group-stop, this thread without having run one
  instruction. The guardian then PTRACE_SEIZEs it (seizing a stopped task re-traps it into
  PTRACE_EVENT_STOP, kernel/ptrace.c ptrace_attach), sends SIGCONT to the process, and resumes
  the thread itself. The price: the rest of the program is stopped for the hand-over, about a
  millisecond (a fork was made before, the guardian is already waiting), and its parent may see
  a stop and a continue (WUNTRACED/WCONTINUED).

If the callee returns before the interrupt takes effect, gocall sees the trap instead and the
call ends normally. If the guardian cannot seize the thread (it says so on the pipe), gocall
seizes it again, sends SIGCONT and goes on waiting.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import time
from typing import TYPE_CHECKING, NoReturn

from ..errors import Abandoned, PtraceError, TargetExited
from ..process import ptrace
from ..process.memory import Memory
from ..process.threads import Thread
from ..process.waiting import interrupts, waitpid
from . import pending
from .alone import live_alone

if TYPE_CHECKING:
    from ..call.protocol import Injector, Run
    from ..process.regs import user_regs_struct

log = logging.getLogger("gocall.call")

_ACK_TIMEOUT = 5.0  # seconds for the guardian to say it holds the thread (it is forked and waiting)
_STOP_TIMEOUT = 5.0


def leave(injector: Injector, run: Run, goroutine: int, function: str,
          signum: int | None) -> user_regs_struct | Abandoned | None:  # fmt: skip
    """Hand the call running on ``injector.thread`` to a guardian (see the module docstring).

    Returns the Abandoned error for the caller to raise (the thread is no longer gocall's);
    the registers of the callee's trap when it returned before the thread could be stopped
    (the call then ends as usual); None when no guardian took it (the thread is traced and
    running again, the caller goes on waiting)."""
    thread = injector.thread
    tid, pid = thread.tid, thread.pid
    to_guardian, from_guardian = os.pipe(), os.pipe()
    guardian = _fork(injector, run, to_guardian, from_guardian)
    answer = ""
    try:
        trap = _stop(thread)
        if trap is not None:
            os.write(to_guardian[1], b"no\n")
            return trap
        # Recorded before the hand-over: a gocall looking meanwhile finds the thread taken.
        pending.record(pending.Pending(pid, tid, goroutine, function, guardian, time.time()))
        ptrace.tgkill(pid, tid, signal.SIGSTOP)  # pending: a traced thread in a ptrace-stop takes no signal
        ptrace.detach(tid, 0)  # out of the stop, it takes the SIGSTOP first: the group-stops
        thread.traced = thread.stopped = False
        os.write(to_guardian[1], b"go\n")
        answer = _receive(from_guardian[0], _ACK_TIMEOUT)
    finally:
        for fd in (*to_guardian, *from_guardian):
            os.close(fd)
    if answer == "held":
        return Abandoned(f"left the call of {function} running on goroutine {goroutine}: guardian process "
                         f"{guardian} holds thread {tid} and restores it when the call returns", signum)
    pending.forget(pid, tid)
    # The thread is in the group-stop (or entering it) and has not run: take it back, then end the stop.
    log.warning("the guardian could not take the call over (%s); waiting for the call to return",
                answer or "no answer")
    thread.seize()
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGCONT)
    thread.stopped = False
    return None


def _stop(thread: Thread) -> user_regs_struct | None:
    """PTRACE_INTERRUPT the thread running the callee: None once stopped there; the registers
    of the callee's trap if it returned first (the trap's stop cleared the interrupt)."""
    tid = thread.tid
    ptrace.interrupt(tid)
    while True:
        status = waitpid(tid, _STOP_TIMEOUT)
        if status is None:
            raise TargetExited(f"thread {tid} did not stop within {_STOP_TIMEOUT:g} s")
        if os.WIFEXITED(status) or os.WIFSIGNALED(status):
            thread.traced = False
            raise TargetExited(f"thread {tid} of process {thread.pid} exited while the call ran")
        event, sig = status >> 16, os.WSTOPSIG(status)
        if event == ptrace.PTRACE_EVENT_STOP:
            thread.stopped = True
            return None
        if event == ptrace.PTRACE_EVENT_CLONE:  # a thread the callee started (Thread._watch_clones): let go
            thread.on_status(status)
            ptrace.interrupt(tid)  # the clone's stop cleared the interrupt (Thread.halt)
            continue
        if not event and sig == signal.SIGTRAP:
            thread.stopped = True
            return ptrace.getregs(tid)
        ptrace.cont(tid, 0 if event else sig)  # a signal of the program's: delivered, as always


def _receive(fd: int, timeout: float | None) -> str:
    ready, _, _ = select.select([fd], [], [], timeout)
    return os.read(fd, 64).decode().strip() if ready else ""


def _fork(injector: Injector, run: Run, to_guardian: tuple[int, int], from_guardian: tuple[int, int]) -> int:
    """Start the guardian (forked twice: init, not gocall, reaps it); its pid."""
    child = os.fork()
    if child == 0:
        try:
            os.setsid()  # a session of its own: no terminal hangup or process-group signal reaches it
            guardian = os.fork()
            if guardian == 0:
                _guard(injector, run, to_guardian[0], from_guardian[1])
            os.write(from_guardian[1], f"{guardian}\n".encode())
        finally:
            os._exit(0)
    os.waitpid(child, 0)
    return int(_receive(from_guardian[0], _ACK_TIMEOUT) or 0)


def _guard(injector: Injector, run: Run, commands: int, answers: int) -> NoReturn:
    """The guardian: wait for gocall's word, take the thread over, see the call through, leave."""
    thread = injector.thread
    pid, tid = thread.pid, thread.tid
    try:
        live_alone(commands, answers)  # gocall's held signals are blocked here too: dropped when collected
        interrupts.signal, interrupts.count = None, 0
        if _receive(commands, None) != "go":
            os._exit(0)
        try:
            ptrace.seize(tid)
        except PtraceError as e:
            os.write(answers, f"cannot seize thread {tid}: {e}\n".encode())
            os._exit(1)
        status = waitpid(tid, _STOP_TIMEOUT)  # its group-stop, as a PTRACE_EVENT_STOP
        os.kill(pid, signal.SIGCONT)  # the rest of the program runs on
        os.write(answers, b"held\n" if status is not None else b"no stop\n")
        ours = Thread(pid, tid)
        ours.traced = ours.stopped = True
        injector.mem = Memory(pid)
        injector.see_through(run, ours)
        ours.detach()
    except BaseException:  # nothing to tell anyone: gocall is gone; the kernel detaches the thread
        pass
    finally:
        pending.forget(pid, tid)
        os._exit(0)
