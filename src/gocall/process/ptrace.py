"""Raw ptrace(2) bindings through ctypes.

Why by hand: the maintained Python ptrace libraries either stop at PEEK/POKE
and GETREGS (no PTRACE_GETREGSET / NT_X86_XSTATE, no PTRACE_SEIZE or
PTRACE_INTERRUPT, which non-stop attaching needs) or wrap every stop in
objects and event queues that cost tens of microseconds per stop. A call
injection is four stop/resume round trips; the floor is ~10 µs each
(shared/research/perf-floors.md), so the binding is a thin ctypes layer with
the kernel's own names (``include/uapi/linux/ptrace.h``,
``arch/x86/include/asm/user_64.h``, ``include/uapi/linux/elf.h``).
"""

from __future__ import annotations

import ctypes
import errno
import logging
from typing import Final

from ..errors import PtraceError, ThreadGone
from .regs import user_regs_struct

log = logging.getLogger("gocall.ptrace")

# include/uapi/linux/ptrace.h
PTRACE_PEEKDATA: Final = 2
PTRACE_PEEKUSER: Final = 3
PTRACE_POKEUSER: Final = 6
PTRACE_CONT: Final = 7
PTRACE_SINGLESTEP: Final = 9
PTRACE_GETREGS: Final = 12
PTRACE_SETREGS: Final = 13
PTRACE_GETFPREGS: Final = 14
PTRACE_SETFPREGS: Final = 15
PTRACE_ATTACH: Final = 16
PTRACE_DETACH: Final = 17
PTRACE_SETOPTIONS: Final = 0x4200
PTRACE_GETEVENTMSG: Final = 0x4201
PTRACE_GETSIGINFO: Final = 0x4202
PTRACE_GETREGSET: Final = 0x4204
PTRACE_SETREGSET: Final = 0x4205
PTRACE_SEIZE: Final = 0x4206
PTRACE_INTERRUPT: Final = 0x4207
PTRACE_PEEKSIGINFO: Final = 0x4209
PTRACE_GETSIGMASK: Final = 0x420A

PTRACE_O_TRACECLONE: Final = 0x8
PTRACE_O_EXITKILL: Final = 0x100000
PTRACE_EVENT_CLONE: Final = 3
PTRACE_EVENT_STOP: Final = 128

# include/uapi/linux/elf.h
NT_PRSTATUS: Final = 1
NT_PRFPREG: Final = 2
NT_X86_XSTATE: Final = 0x202

# offsetof(struct user, u_debugreg), arch/x86/include/asm/user_64.h: DR0..DR7, 8 bytes each.
U_DEBUGREG: Final = 848

# wait(2) flag: wait for clone children (non-leader threads) too.
WALL: Final = 0x40000000

# The interpreter's own libc (dlopen(NULL)): ctypes.util.find_library runs ldconfig and
# imports subprocess, ~10 ms of every cold start.
_libc = ctypes.CDLL(None, use_errno=True)
_ptrace = _libc.ptrace
_ptrace.restype = ctypes.c_long
_ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]

_NAMES = {v: k for k, v in globals().items() if k.startswith("PTRACE_") and isinstance(v, int)}


class iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


def ptrace(request: int, tid: int, addr: int | None = 0, data: int | ctypes.c_void_p | None = 0) -> int:
    """ptrace(2); raises PtraceError with the errno on failure. (errno need not be cleared first:
    glibc's wrapper clears it itself after a successful PEEK, the only request whose data may be -1.)"""
    r = _ptrace(request, tid, addr, data)
    if r == -1:
        err = ctypes.get_errno()
        if err == errno.ESRCH:
            raise ThreadGone(_NAMES.get(request, str(request)), tid, err)
        if err:
            raise PtraceError(_NAMES.get(request, str(request)), tid, err)
    return int(r)


def seize(tid: int, options: int = 0) -> None:
    # SEIZE (not ATTACH) so attaching sends no SIGSTOP that the Go runtime could
    # observe; the thread is stopped explicitly with interrupt().
    ptrace(PTRACE_SEIZE, tid, 0, options)


def setoptions(tid: int, options: int) -> None:
    ptrace(PTRACE_SETOPTIONS, tid, 0, options)


def interrupt(tid: int) -> None:
    ptrace(PTRACE_INTERRUPT, tid, 0, 0)


def cont(tid: int, sig: int = 0) -> None:
    ptrace(PTRACE_CONT, tid, 0, sig)


def singlestep(tid: int, sig: int = 0) -> None:
    ptrace(PTRACE_SINGLESTEP, tid, 0, sig)


def detach(tid: int, sig: int = 0) -> None:
    ptrace(PTRACE_DETACH, tid, 0, sig)


def getregs(tid: int) -> user_regs_struct:
    regs = user_regs_struct()
    ptrace(PTRACE_GETREGS, tid, 0, ctypes.addressof(regs))
    return regs


def setregs(tid: int, regs: user_regs_struct) -> None:
    ptrace(PTRACE_SETREGS, tid, 0, ctypes.addressof(regs))


def getfpregs(tid: int) -> bytearray:
    """The 512-byte FXSAVE image (x87, MXCSR, XMM0-15)."""
    buf = (ctypes.c_char * 512)()
    ptrace(PTRACE_GETFPREGS, tid, 0, ctypes.addressof(buf))
    return bytearray(buf.raw)


def setfpregs(tid: int, image: bytes | bytearray) -> None:
    # The kernel marks the FP/SSE components present in XSTATE_BV itself here,
    # which is why argument XMMs are written through SETFPREGS and not XSTATE.
    buf = (ctypes.c_char * 512).from_buffer_copy(bytes(image))
    ptrace(PTRACE_SETFPREGS, tid, 0, ctypes.addressof(buf))


_XSTATE_MAX = 16384  # larger than any XSAVE area (AVX-512 + AMX tiles need ~11 KiB)


# One buffer for every GETREGSET and SETREGSET: the kernel writes iov_len bytes, which are copied
# out at once; an image to set is copied in.
_xstate_buf = (ctypes.c_char * _XSTATE_MAX)()
_xstate_iov = iovec(ctypes.addressof(_xstate_buf), _XSTATE_MAX)


def getxstate(tid: int) -> bytes:
    """The whole XSAVE area (SSE, AVX, AVX-512 ... as the CPU has them)."""
    _xstate_iov.iov_len = _XSTATE_MAX
    ptrace(PTRACE_GETREGSET, tid, NT_X86_XSTATE, ctypes.addressof(_xstate_iov))
    return ctypes.string_at(_xstate_buf, _xstate_iov.iov_len)


def setxstate(tid: int, image: bytes) -> None:
    ctypes.memmove(_xstate_buf, image, len(image))
    _xstate_iov.iov_len = len(image)
    ptrace(PTRACE_SETREGSET, tid, NT_X86_XSTATE, ctypes.addressof(_xstate_iov))


def tgkill(pid: int, tid: int, sig: int) -> None:
    """Send ``sig`` to one thread (tgkill(2); os.kill would pick any thread of the group)."""
    if _libc.tgkill(pid, tid, sig) == -1:
        raise PtraceError("tgkill", tid, ctypes.get_errno())


def in_group(pid: int, tid: int) -> bool:
    """Whether thread ``tid`` is one of process ``pid``'s now (tgkill(2) with signal 0: the
    check alone, nothing is sent; one system call where its /proc stat costs a page of text)."""
    return bool(_libc.tgkill(pid, tid, 0) == 0)


def geteventmsg(tid: int) -> int:
    msg = ctypes.c_ulong()
    ptrace(PTRACE_GETEVENTMSG, tid, 0, ctypes.addressof(msg))
    return msg.value


def set_debugreg(tid: int, n: int, value: int) -> None:
    """Write DR``n`` of a stopped thread; the kernel validates DR7 against DR0-DR3."""
    ptrace(PTRACE_POKEUSER, tid, U_DEBUGREG + 8 * n, value)


# si_code of SIGTRAP (include/uapi/asm-generic/siginfo.h): our single steps and hardware breakpoints.
TRAP_TRACE: Final = 2
TRAP_HWBKPT: Final = 4
TRAP_PERF: Final = 6  # a perf breakpoint event's, process/perfbreak.py


def getsiginfo_code(tid: int) -> int:
    """``si_code`` of the signal that stopped the thread (siginfo_t: signo, errno, code, ...)."""
    buf = (ctypes.c_int * 32)()  # sizeof(siginfo_t) is 128 bytes
    ptrace(PTRACE_GETSIGINFO, tid, 0, ctypes.addressof(buf))
    return int(buf[2])


class ptrace_peeksiginfo_args(ctypes.Structure):
    _fields_ = [("off", ctypes.c_uint64), ("flags", ctypes.c_uint32), ("nr", ctypes.c_int32)]


_SIGINFO_INTS = 32  # sizeof(siginfo_t) is 128 bytes; si_signo first


def queued_signals(tid: int) -> list[int]:
    """The signal numbers queued for the stopped thread ``tid`` itself (its private queue, not
    the process's shared one, as /proc's SigPnd), oldest first: one request per 16 queued
    signals where SigPnd costs an open, a read and a parse."""
    most = 16
    found: list[int] = []
    buf = (ctypes.c_int * (_SIGINFO_INTS * most))()
    while True:
        args = ptrace_peeksiginfo_args(len(found), 0, most)  # flags 0: the thread's own queue
        n = ptrace(PTRACE_PEEKSIGINFO, tid, ctypes.addressof(args), ctypes.addressof(buf))
        found += (int(buf[i * _SIGINFO_INTS]) for i in range(n))
        if n < most:
            return found


def blocked_signals(tid: int) -> int:
    """The stopped thread's blocked-signal mask (bit ``sig - 1`` for each signal)."""
    mask = ctypes.c_uint64()
    ptrace(PTRACE_GETSIGMASK, tid, 8, ctypes.addressof(mask))  # addr: sizeof(sigset_t) as the kernel has it
    return mask.value
