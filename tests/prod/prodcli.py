"""Running ``gocall`` as a user would, possibly as another user; the stand-in tracer."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

GOCALL = [sys.executable, "-m", "gocall.cli.main"]
STUB = Path(__file__).with_name("tracer_stub.py")
NOBODY = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")
SRC = str(Path(__file__).parents[2] / "src")


def run(*args: str, prefix: tuple[str, ...] = (), timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``gocall ARGS...`` (after ``prefix``: setpriv, unshare, nsenter...), its output as text."""
    return subprocess.run([*prefix, *GOCALL, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": SRC})


def hold(pid: int) -> subprocess.Popen[str]:
    """Start the stand-in debugger (tracer_stub.py) on ``pid``; returns once it holds every thread."""
    holder = subprocess.Popen([sys.executable, str(STUB), str(pid)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    return holder
