"""The ptrace floor, measured in the same run as gocall and Delve (floor.c, built with gcc)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

from gocall.toolchain import default_cache_dir

from targets import Stats

SOURCE = Path(__file__).resolve().parent / "floor.c"

# A call is 4 stops: the PTRACE_INTERRUPT that finds the goroutine, then debugCallV2's
# traps with R12 = 0 (frame ready), 1 (returned) and 16 (restore).
STOPS_PER_CALL = 4
# A call in proc.batch() on a thread still stopped from the last one: only debugCallV2's 3 traps.
BATCH_STOPS = 3


def unavailable() -> str | None:
    return None if shutil.which("gcc") else "gcc is not on PATH (apt-get install -y gcc)"


def measure(calls: int, mode: str = "trap", stops: int = STOPS_PER_CALL) -> Stats:
    """Time ``calls`` blocks of ``stops`` round trips; ``mode`` is "trap" (PTRACE_CONT to an
    INT3, same CPU: the lowest cost) or "seize" (gocall's pattern on a spinning thread:
    SEIZE, INTERRUPT/wait/CONT, DETACH; cross-CPU). See floor.c."""
    key = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]
    exe = default_cache_dir() / f"ptrace-floor-{key}"
    if not exe.is_file():
        exe.parent.mkdir(parents=True, exist_ok=True)
        tmp = exe.with_suffix(".tmp")
        subprocess.run(["gcc", "-O2", "-o", str(tmp), str(SOURCE)], check=True)
        tmp.replace(exe)
    out = subprocess.run([str(exe), mode, str(calls), str(stops)], check=True, capture_output=True, text=True).stdout
    return Stats.of([int(line) / 1e9 for line in out.split()])
