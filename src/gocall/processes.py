"""Every Go process this user may see, and what gocall can do with each: ``gocall ps``.

Read from /proc alone, nothing traced: the executable through ``/proc/PID/exe`` (so a
process in a container, whose path is not in our mount namespace, is read too), its build
info and ELF symbols only (no DWARF, no pclntab search unless the binary has no symbol
table), each distinct executable once (keyed by device and inode, so a fleet of 200 copies
of one program opens one file). Permission is probed as ``gocall doctor`` does, and a
refusal explained by the same checks (process/permissions.py).
"""

from __future__ import annotations

import functools
import os
import pwd
from typing import NamedTuple

from .binary import GoBinary
from .errors import GocallError
from .process import namespaces
from .process.permissions import refusal, status, tracers

__all__ = ["GoProcess", "Listing", "go_processes"]


class _Binary(NamedTuple):
    go_version: str
    module: str
    debug_call: bool
    dwarf: bool


class GoProcess(NamedTuple):
    """One line of ``gocall ps``."""

    pid: int
    nspid: list[int]  # the PID in each PID namespace from ours inwards
    ppid: int
    user: str
    go_version: str
    module: str
    exe: str  # as the process names it (in its own mount namespace)
    container: str  # from the cgroup path (process/namespaces.py), "" outside any
    capability: str  # "calls", "declared signatures only", "no debugCallV2", "not permitted"
    why: str  # for "not permitted": the failed check (gocall doctor PID has them all, with fixes)

    def to_json(self) -> dict[str, object]:
        return self._asdict()


class Listing(NamedTuple):
    processes: list[GoProcess]
    unreadable: int  # processes whose executable this user may not read (Go or not: unknown)


def go_processes() -> Listing:
    """Every Go process whose executable this user may read, by PID."""
    seen: dict[tuple[int, int], _Binary | None] = {}
    out: list[GoProcess] = []
    unreadable = 0
    me = os.getpid()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        pid = int(name)
        try:
            st = os.stat(f"/proc/{pid}/exe")
        except PermissionError:
            unreadable += 1
            continue
        except OSError:
            continue  # a kernel thread (no executable), or gone
        key = (st.st_dev, st.st_ino)
        if key not in seen:
            seen[key] = _read(pid)
        binary = seen[key]
        if binary is not None and (proc := _describe(pid, binary)) is not None:
            out.append(proc)
    return Listing(sorted(out), unreadable)


def _read(pid: int) -> _Binary | None:
    try:
        with GoBinary.of_process(pid) as b:
            info = b.buildinfo
            module = info.main.path if info is not None and info.main is not None else ""
            return _Binary(b.go_version, module, b.symbol("runtime.debugCallV2") is not None, b.dwarf is not None)
    except (GocallError, OSError):
        return None  # not Go, or gone


def _describe(pid: int, binary: _Binary) -> GoProcess | None:
    st = status(pid)
    if st is None:
        return None
    try:
        exe = namespaces.exe(pid).path
    except OSError:
        return None
    user = _user(int(st.get("Uid", "-1 -1").split()[1]))
    capability, why = _capability(pid, binary)
    return GoProcess(pid, namespaces.nspids(pid, st), int(st.get("PPid", "0")), user, binary.go_version,
                     binary.module, exe, namespaces.container(pid), capability, why)


@functools.cache
def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _capability(pid: int, binary: _Binary) -> tuple[str, str]:
    if not binary.debug_call:
        return "no debugCallV2", "built by Go < 1.17, or not for amd64"
    try:
        os.close(os.open(f"/proc/{pid}/mem", os.O_RDONLY | os.O_CLOEXEC))
        permitted = not tracers(pid)
    except OSError:
        permitted = False
    if not permitted:
        return "not permitted", refusal(pid).detail
    return ("calls", "") if binary.dwarf else ("declared signatures only", "no DWARF: gocall call --declare")
