"""The signals that would end gocall, and how a front end ends on one without hurting the target.

A tracer that dies while a call is in flight kills its target: the kernel detaches the
thread, and the next INT3 of debugCallV2 (the callee's return, or the very next instruction
when the thread was stopped between protocol steps) is a SIGTRAP to an untraced Go program,
which the runtime turns into a fatal error. So no signal whose default action terminates
may end gocall while a thread is traced:

* while a call runs (process/waiting.py ``signals_held``), every signal of
  :data:`TERMINATING` is blocked and collected at the wait points; the call engine
  finishes or unwinds the call, restores the thread, detaches, then raises
  ``Interrupted`` (its ``signum`` says which signal);
* outside calls, a front end that owns the process's signal handling (the CLI, the shell)
  calls :func:`install`: each of these signals raises :class:`Signalled` in the main
  thread, which unwinds through the ``with`` blocks that remove breakpoints and detach,
  and the front end exits with :func:`exit_status` (128 + n, as the shell reports a death
  by signal). The library alone installs nothing: an API user's process keeps its own
  dispositions outside calls.

A signal someone ignores (``nohup``) stays ignored; one with a handler of its own (a
test harness's SIGALRM, the batch timer's real-time signal, call/batch.py) runs that
handler at the wait point it is collected at, as it would have run there unblocked.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import importlib
import os
import signal
from collections.abc import Callable, Iterable, Iterator
from types import FrameType
from typing import Any, Final

# The C module under ``signal``: its pthread_sigmask returns plain ints where signal's converts
# every number of the old mask to an enum member (more than the system call costs, per call),
# and its getsignal does not look the handler up among enum members. No stubs: typed here.
_c = importlib.import_module("_signal")
pthread_sigmask: Callable[[int, Iterable[int]], set[int]] = _c.pthread_sigmask
getsignal: Callable[[int], Any] = _c.getsignal
_setsignal: Callable[[int, Any], Any] = _c.signal

# Every signal whose default action ends the process and that a person or the system may send
# (signal(7)); SIGKILL and SIGSTOP cannot be caught (issue 18's guardian is for SIGKILL), and
# SIGSEGV and friends are gocall's own faults. SIGPIPE and SIGXFSZ are ignored by Python at
# start-up (_PYTHON_IGNORED); a front end that installs handlers takes them back (gocall's stdout
# closed mid-call is an end too).
TERMINATING: Final = frozenset({
    signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2,
    signal.SIGALRM, signal.SIGVTALRM, signal.SIGPROF, signal.SIGXCPU, signal.SIGXFSZ, signal.SIGPIPE,
    *range(signal.SIGRTMIN, signal.SIGRTMAX + 1),
})  # fmt: skip
_PYTHON_IGNORED: Final = frozenset({signal.SIGPIPE, signal.SIGXFSZ})  # Python/pylifecycle.c


# sigtimedwait(2) through libc, not signal.sigtimedwait: CPython's retries an interrupted wait (EINTR)
# and, when its timeout has passed meanwhile, returns a siginfo built from a struct the kernel never
# filled (Modules/signalmodule.c breaks out of its loop and converts it anyway). A process-directed
# SIGCHLD that wakes the waiting thread but that another thread takes first is such an EINTR; the
# garbage once read si_signo=1, a SIGHUP that nobody sent, and a call was unwound for it
# (bench/soak.py, 2 in ~20,000 calls once waits napped before looking). Here EINTR is "nothing taken".
_libc = ctypes.CDLL(None, use_errno=True)
_libc.sigtimedwait.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)


class _timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class SigSet:
    """A sigset_t (glibc's 1024 bits) of ``signals``, built once for the waits that reuse it."""

    def __init__(self, signals: Iterable[int]) -> None:
        self.signals = frozenset(signals)
        self._bits = (ctypes.c_uint64 * 16)()
        for sig in self.signals:
            self._bits[(sig - 1) // 64] |= 1 << (sig - 1) % 64
        self.address = ctypes.addressof(self._bits)


def sigtimedwait(sigset: SigSet, timeout: float) -> int | None:
    """Take one signal of ``sigset`` (blocked in this thread), waiting up to ``timeout``
    seconds: its number, or None when none came (the timeout, or an interrupted wait)."""
    ts = _timespec(int(timeout), int(timeout % 1 * 1e9))
    signum = _libc.sigtimedwait(sigset.address, None, ctypes.addressof(ts))
    if signum > 0:
        return int(signum)
    err = ctypes.get_errno()
    if err in (errno.EAGAIN, errno.EINTR):
        return None
    raise OSError(err, os.strerror(err))


class Signalled(BaseException):
    """A terminating signal reached gocall outside a call (see :func:`install`): whatever was
    traced is let go as the exception unwinds; ``exit_status`` is the front end's exit status.
    A BaseException, like KeyboardInterrupt: ``except GocallError`` and ``except Exception``
    must not swallow it."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(name(signum))

    @property
    def exit_status(self) -> int:
        return exit_status(self.signum)


def name(signum: int) -> str:
    """``SIGHUP``, ``SIGRTMIN+3``..."""
    if signal.SIGRTMIN < signum <= signal.SIGRTMAX:
        return f"SIGRTMIN+{signum - signal.SIGRTMIN}"
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def exit_status(signum: int) -> int:
    """What a shell reports for a process ended by ``signum``."""
    return 128 + signum


def _raise(signum: int, frame: FrameType | None) -> None:
    if not _held(signum):
        raise Signalled(signum)


def _keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    if not _held(signum):
        raise KeyboardInterrupt


def _held(signum: int) -> bool:
    """Whether a call holds signals: then the signal is noted for the engine instead of raising.

    The mask that holds them is the calling thread's: a signal sent to the process may be taken by
    another thread of gocall's (a front end's helper thread, a test harness's reader), and Python
    runs the handler in the main thread at its next bytecode, in the middle of the protocol."""
    from .waiting import defer  # waiting.py imports this module

    return defer(signum)


def is_ours(handler: object) -> bool:
    """Whether ``handler`` (as ``signal.getsignal`` returns it) is :func:`install`'s."""
    return handler is _raise or handler is _keyboard_interrupt


def ends_gocall(signum: int) -> bool:
    """Whether ``signum`` with its disposition now would end gocall (or, for SIGINT, raise
    KeyboardInterrupt): the default action, Python's SIGINT handler, or :func:`install`'s."""
    handler = getsignal(signum)
    return handler == signal.SIG_DFL or handler is signal.default_int_handler or is_ours(handler)


@contextlib.contextmanager
def install(interrupt: bool = True) -> Iterator[None]:
    """Raise :class:`Signalled` for every signal of :data:`TERMINATING` that would end gocall
    (default action), and SIGPIPE and SIGXFSZ; ``interrupt=False`` keeps SIGINT a KeyboardInterrupt (an
    interactive shell's Ctrl-C at the prompt). While a call holds signals, either handler only
    notes the signal for the call engine (see :func:`_held`). Main thread only. The previous
    handlers are put back when the block ends."""
    previous: dict[int, object] = {}
    try:
        for signum in sorted(TERMINATING):
            handler = getsignal(signum)
            if signum == signal.SIGINT:
                take = handler is signal.default_int_handler
            else:
                take = handler == signal.SIG_DFL or (signum in _PYTHON_IGNORED and handler == signal.SIG_IGN)
            if take:
                ours = _keyboard_interrupt if signum == signal.SIGINT and not interrupt else _raise
                previous[signum] = _setsignal(signum, ours)
        yield
    finally:
        for signum, handler in previous.items():
            _setsignal(signum, handler)


@contextlib.contextmanager
def sigint_raises_outside_calls() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt for the block, but while a call holds signals it is only
    noted for the call engine (:func:`_held`), as :func:`install`'s handlers do: for a front end
    whose own threads may take a SIGINT sent to the process (the shell's, prompt_toolkit's
    helper threads), Python running the handler in the main thread in the middle of the engine's
    work. Main thread only; the previous handler is put back when the block ends.

    The handler must be one of ours (:func:`is_ours`): a wait that collects a signal whose handler
    is someone else's calls that handler (waiting.InterruptState.note), and a front end's own
    handler deferring through waiting.defer would be called back from there, deferring again:
    a RecursionError at the first Ctrl-C during a call."""
    previous = _setsignal(signal.SIGINT, _keyboard_interrupt)
    try:
        yield
    finally:
        _setsignal(signal.SIGINT, previous)
