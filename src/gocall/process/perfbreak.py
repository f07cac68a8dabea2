"""Hardware execution breakpoints armed on a running thread: perf_event_open(2) breakpoint
events with ``sigtrap``.

Why not ptrace's debug registers here: they can only be written on a stopped thread, and a catch
of parked goroutines (call/engine.py) arms every thread of the program, most of them asleep in
the kernel. Stopping one to arm it and letting it run again are two wake-ups of a thread that
then preempts the tracer (PTRACE_INTERRUPT and PTRACE_CONT each measured ~60 µs on 2 vCPUs),
four per thread per catch with the detach. A perf event is installed on a sleeping thread
without waking it. With ``sigtrap`` (Linux 5.13) a thread that reaches the address gets a
synchronous SIGTRAP (si_code TRAP_PERF) before executing it: seized (PTRACE_SEIZE does not stop
a thread either), it stops there just as at a debug register's hit.

Closing the event's fd takes the breakpoint out of a running thread; a gocall killed outright
leaves none behind (the kernel closes its fds), where debug registers outlive their tracer. A
hit's SIGTRAP still queued when its event is closed is taken before the detach, as a debug
register's is (Thread.detach).

Where perf events are refused (perf_event_paranoid 3, a seccomp filter, a kernel before 5.13),
:func:`open_breakpoint` says so once (None from then on) and the catch writes debug registers.

A :class:`PointWatch` is the same event without ``sigtrap``, on a thread that is not traced: it
only tells gocall (a signal to gocall's thread, never to the target's) that the thread got there.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import logging
import os
import signal
import struct
import threading
from collections.abc import Sequence

from ..errors import TargetExited

log = logging.getLogger("gocall.ptrace")

_SYS_PERF_EVENT_OPEN = 298  # x86_64
_PERF_TYPE_BREAKPOINT = 5  # include/uapi/linux/perf_event.h
_HW_BREAKPOINT_X = 4  # include/uapi/linux/hw_breakpoint.h
_PERF_FLAG_FD_CLOEXEC = 8
_ATTR_SIZE = 128  # PERF_ATTR_SIZE_VER7 (sig_data)
# perf_event_attr's flag bits: exclude_kernel, exclude_hv (user code only, what
# perf_event_paranoid 2 allows), remove_on_exec and sigtrap (the kernel wants both together).
_FLAGS = 1 << 5 | 1 << 6 | 1 << 36 | 1 << 37
# type, size, config, sample_period, sample_type, read_format, flags, wakeup_events, bp_type,
# bp_addr, bp_len: an overflow at every hit, each one a SIGTRAP to the thread that hit.
_ATTR = struct.Struct("<IIQQQQQIIQQ")

_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long
_refused: int | None = None  # the errno perf_event_open was refused with: not asked again


def open_breakpoint(tid: int, pc: int) -> int | None:
    """An execution breakpoint at ``pc`` on thread ``tid``, running or not: the event's fd (close
    it to disarm), or None when this kernel or its settings refuse perf breakpoint events."""
    return _open(tid, pc, _FLAGS)


def _open(tid: int, pc: int, flags: int) -> int | None:
    """A breakpoint event at ``pc`` on ``tid`` with attr ``flags``, or None when refused."""
    global _refused
    if _refused is not None:
        return None
    attr = ctypes.create_string_buffer(_ATTR.pack(_PERF_TYPE_BREAKPOINT, _ATTR_SIZE, 0, 1, 0, 0, flags, 1,
                                                  _HW_BREAKPOINT_X, pc, 8), _ATTR_SIZE)  # fmt: skip
    fd = _syscall(_SYS_PERF_EVENT_OPEN, attr, tid, -1, -1, _PERF_FLAG_FD_CLOEXEC)
    if fd >= 0:
        return int(fd)
    err = ctypes.get_errno()
    if err == errno.ESRCH:
        raise TargetExited(f"thread {tid} exited")
    if err == errno.ENOSPC:  # its four debug registers are in use (another debugger's): this one only
        return None
    _refused = err
    log.info("perf breakpoint events refused (%s): the catch of parked goroutines stops each thread to arm it",
             os.strerror(err))
    return None


# A watch's events: no sigtrap (the thread that reaches the point goes on), no remove_on_exec.
_WATCH_FLAGS = 1 << 5 | 1 << 6
_F_SETSIG = 10  # include/uapi/asm-generic/fcntl.h
_F_SETOWN_EX = 15
_F_OWNER_TID = 0
_COUNT = struct.Struct("<Q")


class PointWatch:
    """Breakpoint events on threads that are *not* traced, which only tell: a thread that reaches
    a point runs on as if nothing had happened (no signal to it, nothing for it to be traced
    for), and the event's overflow sends this thread a SIGCHLD (fcntl F_SETSIG, F_SETOWN_EX to
    this thread, O_ASYNC), which the waits of process/waiting.py take already; :meth:`passed`
    then reads whose count moved. What it saves is the ptrace round of each thread: seized, an
    idle thread asleep in the kernel has to be woken twice to be let go (an interrupt and a stop,
    then the detach): ~40 µs a thread of every catch on the bench's 2 vCPUs (bench/README).
    Watched, it is never touched; the price is that a goroutine coming back on it is stopped a
    little after its point, wherever it runs by then, or, parked again first, missed once (the
    catch then seizes and arms that thread, call/engine.py)."""

    def __init__(self) -> None:
        self.fds: dict[int, list[int]] = {}

    def add(self, tid: int, pcs: Sequence[int]) -> bool:
        """Watch ``pcs`` on thread ``tid``; False (nothing kept) when the kernel refuses, or the
        thread is gone."""
        me = threading.get_native_id()
        fds: list[int] = []
        try:
            for pc in pcs:
                fd = _open(tid, pc, _WATCH_FLAGS)
                if fd is None:
                    raise OSError(errno.EPERM, "refused")
                fds.append(fd)
                fcntl.fcntl(fd, _F_SETOWN_EX, struct.pack("ii", _F_OWNER_TID, me))
                fcntl.fcntl(fd, _F_SETSIG, signal.SIGCHLD)
                fcntl.fcntl(fd, fcntl.F_SETFL, os.O_ASYNC)
        except (OSError, TargetExited):
            for fd in fds:
                os.close(fd)
            return False
        self.fds[tid] = fds
        return True

    def passed(self) -> int | None:
        """A watched thread that reached a point since it was watched (its events' counts: a hit
        before O_ASYNC was set counts too), or None. An exited thread's event reads nothing."""
        for tid, fds in self.fds.items():
            for fd in fds:
                count = os.read(fd, 8)
                if len(count) == 8 and _COUNT.unpack(count)[0]:
                    return tid
        return None

    def drop(self, tid: int) -> None:
        """Stop watching ``tid`` (its debug registers free again, for its advance)."""
        for fd in self.fds.pop(tid, ()):
            os.close(fd)

    def close(self) -> None:
        for tid in list(self.fds):
            self.drop(tid)
