"""A one-shot timer that runs a Python function on the main thread: a POSIX timer
(timer_create(2)) sending a real-time signal to the main thread, whose Python handler
calls it.

Why not ``signal.setitimer``: its SIGALRM and the process's one real-time interval
timer are often someone else's (pytest-timeout, a server's watchdog). A POSIX timer is
one of many, and a real-time signal nobody handles is easy to find. Why a signal and
not a thread: the function makes ptrace requests, which only the tracer thread may make.
Python has no binding for timer_create, so it is ctypes, with the kernel's and glibc's
structure layouts (``include/uapi/asm-generic/siginfo.h`` sigevent, ``time.h``).
"""

from __future__ import annotations

import ctypes
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Final

from ..errors import ProcessError
from .signals import is_ours

CLOCK_MONOTONIC: Final = 1
SIGEV_THREAD_ID: Final = 4  # deliver to one thread (sigev_notify_thread_id)

_libc = ctypes.CDLL(None, use_errno=True)
_timer_settime = _libc.timer_settime
_timer_settime.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]


class sigevent(ctypes.Structure):
    _fields_ = [("sigev_value", ctypes.c_void_p), ("sigev_signo", ctypes.c_int), ("sigev_notify", ctypes.c_int),
                ("sigev_notify_thread_id", ctypes.c_int), ("_pad", ctypes.c_int * 11)]  # fmt: skip


class timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", timespec), ("it_value", timespec)]


def free_signal() -> int | None:
    """A real-time signal with no handler in this process (highest first), or None. A front end's
    handler that only ends gocall (process/signals.py ``install``) counts as none: the timer's
    handler replaces it while the timer lives, and ``close`` puts it back."""
    for signum in range(signal.SIGRTMAX, signal.SIGRTMIN - 1, -1):
        handler = signal.getsignal(signum)
        if handler == signal.SIG_DFL or is_ours(handler):
            return signum
    return None


class Alarm:
    """``set(seconds)`` arms it (again), ``set(0)`` disarms; ``close()`` deletes the timer and
    puts the signal's handler back. Create it on the main thread."""

    def __init__(self, signum: int, fire: Callable[[], None]) -> None:
        self.signum = signum
        self._fire = fire
        self._timer = ctypes.c_void_p()
        ev = sigevent(sigev_signo=signum, sigev_notify=SIGEV_THREAD_ID,
                      sigev_notify_thread_id=threading.main_thread().native_id or 0)  # fmt: skip
        self._previous = signal.signal(signum, self._on_signal)
        if _libc.timer_create(CLOCK_MONOTONIC, ctypes.byref(ev), ctypes.byref(self._timer)) == -1:
            signal.signal(signum, self._previous)
            raise ProcessError(f"timer_create failed: errno {ctypes.get_errno()}")
        self._spec = itimerspec()
        self._value = self._spec.it_value
        self._spec_addr = ctypes.addressof(self._spec)

    def set(self, seconds: float) -> None:
        whole = int(seconds)
        self._value.tv_sec, self._value.tv_nsec = whole, int((seconds - whole) * 1e9)
        _timer_settime(self._timer.value, 0, self._spec_addr, None)

    def close(self) -> None:
        _libc.timer_delete(self._timer)
        signal.signal(self.signum, self._previous)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._fire()
