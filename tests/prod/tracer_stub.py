"""A stand-in for another debugger: PTRACE_SEIZEs every thread of process ARGV[1] and lets it
run (a seize stops nothing; each signal a held thread gets stops it, and is handed on at once,
as a debugger that is not at a breakpoint does). Like a real debugger it seizes with
PTRACE_O_TRACECLONE, so each thread a held thread starts is held from its birth. Names itself
``holder``, prints ``held`` once a look at /proc/PID/task finds no thread it does not hold (a
thread started by a not-yet-seized thread after the first look is not traced by the kernel:
announcing before would let gocall seize it, as CI once saw), and holds them until killed,
when the kernel detaches them."""

import ctypes
import os
import sys
import time

PTRACE_CONT, PTRACE_SEIZE, PTRACE_O_TRACECLONE, PR_SET_NAME, WALL = 7, 0x4206, 8, 15, 0x40000000

libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
libc.prctl(PR_SET_NAME, b"holder", 0, 0, 0)
pid, tried = int(sys.argv[1]), set()  # the threads seized, or that could not be (gone since)
announced = False
while True:
    new = [tid for tid in map(int, os.listdir(f"/proc/{pid}/task")) if tid not in tried]
    for tid in new:
        libc.ptrace(PTRACE_SEIZE, tid, 0, PTRACE_O_TRACECLONE)  # EPERM for a clone held from birth
        tried.add(tid)
    if new:
        continue  # look again: one of them may have started a thread before it was seized
    if not announced:
        print("held", flush=True)
        announced = True
    deadline = time.monotonic() + 0.01  # then look for threads the program started meanwhile
    while time.monotonic() < deadline:
        try:
            tid, status = os.waitpid(-1, os.WNOHANG | WALL)
        except ChildProcessError:
            sys.exit(0)  # the target is gone
        if tid == 0:
            time.sleep(0.0002)
        elif os.WIFSTOPPED(status):
            libc.ptrace(PTRACE_CONT, tid, 0, 0 if status >> 16 else os.WSTOPSIG(status))
