"""A stand-in for another debugger: PTRACE_SEIZEs every thread of process ARGV[1] and lets it
run (a seize stops nothing; each signal a held thread gets stops it, and is handed on at once,
as a debugger that is not at a breakpoint does). Names itself ``holder``, prints ``held`` once
the threads it saw are seized, and holds them until killed, when the kernel detaches them."""

import ctypes
import os
import sys
import time

PTRACE_CONT, PTRACE_SEIZE, PR_SET_NAME, WALL = 7, 0x4206, 15, 0x40000000

libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
libc.prctl(PR_SET_NAME, b"holder", 0, 0, 0)
pid, held = int(sys.argv[1]), set()
announced = False
while True:
    for tid in map(int, os.listdir(f"/proc/{pid}/task")):
        if tid not in held and libc.ptrace(PTRACE_SEIZE, tid, 0, 0) == 0:
            held.add(tid)
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
