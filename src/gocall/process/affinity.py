"""A resumed thread kept on gocall's own CPU while its next stop is polled for.

Why: a thread in a ptrace stop leaves its CPU idle, and on a VM whose idle vCPUs halt (a
Firecracker guest, haltpoll off) every resume then wakes that vCPU through the hypervisor, which
the resuming tracer pays inside PTRACE_CONT (15-20 µs on the bench's VM), three times a call; the
scheduler puts a woken thread back on its previous CPU while that one is idle, so it never comes
over by itself. Narrowed to the tracer's CPU before the resume, the thread is woken where gocall
runs, and the poll of process/waiting.py, which yields the CPU at every look, lets it run to its
trap there: debugCallV2's traps come 10-20 µs after a resume (bench/README, issue 14 session 12).

A thread created by the narrowed one inherits its mask, and any step may create one: a callee
(a goroutine readied, an M started), and the runtime's own way into debugCallV2 too (its newproc1
may allocate a g, the allocation start a GC, and the GC start its workers and Ms: seen at a
program's first call, the kill tests' new M on one CPU). So a thread runs narrowed only with
PTRACE_O_TRACECLONE on: a thread it creates stops before its first instruction and is let go
with the mask it would have inherited (process/threads.py ``Thread._watch_clones``); a thread
whose options are not gocall's alone (a group's, a launched program's) is not narrowed.

A thread caught at its return from a park (a sleepy program's) runs on as soon as it is let go;
woken on gocall's CPU by the detach, it took that CPU before gocall returned (0.1 ms). Its run's
last step runs on its other CPUs instead, its own mask back while it is stopped there, so that the
detach wakes it on that idle CPU (process/threads.py ``Thread.woken``).

Never wider, never for long: the thread is narrowed only to a CPU its own mask has (a cpuset, a
taskset of the user's is kept), only while no task waits for a CPU (else it could wait for
gocall's), and its mask goes back before anything longer than a poll (the poll gives up: a long
callee), before a plain resume and before the detach. gocall killed meanwhile: the guardian puts
the mask back first thing (guard/watch.py ``Watch.pinned``). Not covered: a thread the narrowed
one starts between gocall's death and that (a kill within a step's poll, ~60 µs, and a new M
within the guardian's ~1 ms wake-up), or whose creation gocall had seen and not let go yet,
keeps gocall's CPU as its mask.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Collection

# os has sched_setaffinity but no sched_getcpu(3) (glibc reads it from the rseq area or the vDSO).
_sched_getcpu = ctypes.CDLL(None, use_errno=True).sched_getcpu
_sched_getcpu.argtypes = ()


def current_cpu() -> int:
    """The CPU gocall runs on (now)."""
    return int(_sched_getcpu())


def narrowable(tid: int) -> tuple[int, frozenset[int]] | None:
    """The CPU gocall runs on and ``tid``'s own mask, when that mask has this CPU and another (a
    thread of one CPU already is left alone); None also when its mask cannot be read (gone)."""
    cpu = current_cpu()
    try:
        mask = frozenset(os.sched_getaffinity(tid))
    except OSError:
        return None
    return (cpu, mask) if cpu in mask and len(mask) > 1 else None


def narrow(tid: int, cpus: Collection[int]) -> bool:
    """Narrow stopped ``tid`` to ``cpus``, a part of its own mask (:func:`narrowable`); False if
    not allowed (EPERM: another user's thread and no CAP_SYS_NICE) or gone."""
    try:
        os.sched_setaffinity(tid, cpus)
    except OSError:
        return False
    return True


def unpin(tid: int, mask: frozenset[int]) -> None:
    """Give ``tid`` its mask back (a thread gone has none to give)."""
    try:
        os.sched_setaffinity(tid, mask)
    except OSError:  # ESRCH; EINVAL: none of its CPUs is online or in its cpuset any more (the kernel keeps the old)
        pass
