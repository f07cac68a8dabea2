"""Starting a program traced from its first instruction.

Why not PTRACE_TRACEME: a tracee attached that way cannot be PTRACE_INTERRUPTed,
and gocall stops threads with PTRACE_INTERRUPT everywhere (process/threads.py).
So the child stops itself with SIGSTOP before ``execve``, the parent seizes it
(PTRACE_SEIZE with TRACECLONE: every thread the Go runtime starts is traced
from birth; TRACEEXEC: the exec is reported as an event instead of a SIGTRAP;
EXITKILL: the program does not outlive gocall), sends SIGCONT, and waits for
the exec event. At that stop the new image is mapped and not one instruction
of it has run, which is when breakpoints go in.

The child keeps gocall's stdin, stdout and stderr, and gets the signal state a
shell would give it: nothing blocked (gocall blocks SIGCHLD/SIGINT/SIGTERM
while it traces) and SIGPIPE back at its default (Python ignores it).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Sequence

from ..errors import ProcessError, TargetExited
from . import ptrace
from .ptrace import WALL

PTRACE_O_TRACEEXEC = 0x10
OPTIONS = ptrace.PTRACE_O_TRACECLONE | PTRACE_O_TRACEEXEC | ptrace.PTRACE_O_EXITKILL  # a launched program's threads'
PTRACE_EVENT_EXEC = 4
_EXEC_TIMEOUT = 10.0  # seconds for execve to be reported


def spawn_traced(argv: Sequence[str], env: dict[str, str] | None = None) -> int:
    """Start ``argv`` seized, stopped at its exec event; its pid (= its main thread's tid)."""
    if not argv:
        raise ProcessError("no program to run", hint="give the program after --: gocall run -- ./prog args")
    pid = os.fork()
    if pid == 0:  # the child: only async-signal-safe work until execve
        try:
            signal.pthread_sigmask(signal.SIG_SETMASK, [])
            signal.signal(signal.SIGPIPE, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGSTOP)
            if env is None:
                os.execvp(argv[0], list(argv))
            os.execvpe(argv[0], list(argv), env)
        except OSError as e:
            os.write(2, f"gocall: cannot run {argv[0]}: {e.strerror}\n".encode())
        finally:
            os._exit(127)
    _, status = os.waitpid(pid, os.WUNTRACED)
    if not os.WIFSTOPPED(status):
        raise TargetExited(f"{argv[0]} ended before it could be traced")
    ptrace.seize(pid, OPTIONS)
    os.kill(pid, signal.SIGCONT)
    _wait_exec(pid, argv[0])
    return pid


def _wait_exec(pid: int, program: str) -> None:
    """Let the child run up to its exec event; SIGSTOP/SIGCONT noise before it is swallowed."""
    deadline = time.monotonic() + _EXEC_TIMEOUT
    while time.monotonic() < deadline:
        got, status = os.waitpid(pid, os.WNOHANG | WALL)
        if got == 0:
            time.sleep(0.0005)
            continue
        if os.WIFEXITED(status) or os.WIFSIGNALED(status):
            code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status)
            raise ProcessError(f"cannot run {program}" + (" (not found or not executable)" if code == 127 else
                                                          f" (it ended with status {code} before exec)"))
        if status >> 16 == PTRACE_EVENT_EXEC:
            return
        sig = os.WSTOPSIG(status)
        # Our own SIGSTOP (group-stop) and SIGCONT: not for the program, which has not started.
        ptrace.cont(pid, 0 if status >> 16 or sig in (signal.SIGSTOP, signal.SIGCONT) else sig)
    os.kill(pid, signal.SIGKILL)
    raise ProcessError(f"{program} did not start within {_EXEC_TIMEOUT:g} s")
