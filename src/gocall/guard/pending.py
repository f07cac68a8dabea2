"""Calls left to a guardian (guard/handover.py) and not finished yet, one small JSON file each.

A later gocall cannot seize a thread a guardian traces (EPERM); this is how it knows why, and
says which goroutine still runs which call instead of "another debugger may be attached". The
files live in ``$XDG_RUNTIME_DIR/gocall`` (or ``/tmp/gocall-UID``), named ``PID-TID.json``; the
guardian removes its file when it detaches, and a file whose guardian is gone is stale.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import NamedTuple


class Pending(NamedTuple):
    """One call a guardian holds."""

    pid: int  # the target
    tid: int  # the thread held
    goroutine: int  # the goroutine running the callee
    function: str  # the function called
    guardian: int  # the guardian's pid
    since: float  # time.time() of the hand-over

    @property
    def text(self) -> str:
        return (f"thread {self.tid} runs a call of {self.function} on goroutine {self.goroutine}, left to "
                f"guardian process {self.guardian}, which restores the thread when the call returns")  # fmt: skip


def directory() -> Path:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    return Path(runtime) / "gocall" if runtime else Path(f"/tmp/gocall-{os.getuid()}")


def _path(pid: int, tid: int) -> Path:
    return directory() / f"{pid}-{tid}.json"


def record(p: Pending) -> None:
    d = directory()
    d.mkdir(mode=0o700, exist_ok=True)
    tmp = d / f".{p.pid}-{p.tid}.{os.getpid()}"
    tmp.write_text(json.dumps(p._asdict()))
    tmp.rename(_path(p.pid, p.tid))


def forget(pid: int, tid: int) -> None:
    with contextlib.suppress(FileNotFoundError):
        _path(pid, tid).unlink()


def find(pid: int, tid: int) -> Pending | None:
    """The call a live guardian holds on thread ``tid`` of ``pid``, if any (a stale file is removed)."""
    try:
        p = Pending(**json.loads(_path(pid, tid).read_text()))
    except (OSError, ValueError, TypeError):
        return None
    if not _alive(p.guardian):
        forget(pid, tid)
        return None
    return p


def calls(pid: int) -> list[Pending]:
    """Every call guardians hold in process ``pid`` (for ``goroutines`` and ``doctor``)."""
    try:
        names = os.listdir(directory())
    except OSError:
        return []
    found = (find(pid, int(n[len(f"{pid}-"):-5])) for n in names if n.startswith(f"{pid}-") and n.endswith(".json"))
    return [p for p in found if p is not None]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rpartition(b")")[2].split()[0] not in (b"Z", b"X")
    except (OSError, IndexError):
        return False
