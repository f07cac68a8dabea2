#!/usr/bin/env python3
"""``gocall ps`` over many Go processes: how long listing them takes.

Usage: python bench/ps.py [PROCESSES] [RUNS]    (defaults 200, 5)

Starts PROCESSES idle Go programs (a sleeper built by the preferred toolchain, half of
them from a second copy of the binary so that two executables are read) and times, RUNS
times each: the listing alone in this interpreter (``gocall.processes.go_processes``, wall
and CPU: on a loaded machine the wall time is mostly waiting for a core) and
``gocall ps --json`` spawn to exit. The sleepers are killed at the end. The listing covers
every process on the machine, so other users' programs count too; the table says how
many Go processes were listed. No timing is asserted anywhere.
"""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gocall.processes import go_processes
from gocall.toolchain import find_go

SLEEPER = 'package main\n\nimport "time"\n\nfunc main() { for { time.Sleep(time.Hour) } }\n'


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    with tempfile.TemporaryDirectory(prefix="gocall-bench-ps-") as tmp:
        src = Path(tmp, "sleeper")
        src.mkdir()
        (src / "main.go").write_text(SLEEPER)
        (src / "go.mod").write_text("module sleeper\n\ngo 1.19\n")
        first = find_go().build_cached(src)
        second = Path(tmp, "sleeper2")
        shutil.copy(first, second)
        procs = [subprocess.Popen([str(first if i % 2 else second)]) for i in range(count)]
        try:
            time.sleep(0.5)
            inproc, cpu, cli = [], [], []
            listed = 0
            for _ in range(runs):
                t, c = time.perf_counter(), time.process_time()
                listed = len(go_processes().processes)
                inproc.append(time.perf_counter() - t)
                cpu.append(time.process_time() - c)
                t = time.perf_counter()
                subprocess.run([sys.executable, "-m", "gocall.cli.main", "ps", "--json"], check=True,
                               stdout=subprocess.DEVNULL)
                cli.append(time.perf_counter() - t)
        finally:
            for p in procs:
                p.send_signal(signal.SIGKILL)
            for p in procs:
                p.wait()
    print(f"{count} sleepers started, {listed} Go processes listed, load {os.getloadavg()[0]:.1f}")
    print(f"go_processes()      median {1e3 * statistics.median(inproc):7.1f} ms  min {1e3 * min(inproc):7.1f} ms"
          f"  CPU median {1e3 * statistics.median(cpu):7.1f} ms")
    print(f"gocall ps --json    median {1e3 * statistics.median(cli):7.1f} ms  min {1e3 * min(cli):7.1f} ms")


if __name__ == "__main__":
    main()
