"""Executables a gocall server keeps read for the commands it forks (cli/server.py).

Each ``gocall call`` the server runs is a forked child that opens its target's executable,
reads its pclntab and loads the index cache's state (binary/cache.py): ~2 ms of CPU and ~430
page faults of a ~10 ms child on the small benchmark target, the same every time. The server
reads it once after a command (:func:`keep`), and the next commands' children find it here,
already read (GoBinary.of_process): a copy-on-write snapshot each, whatever they add to it
their own. Nothing but the server fills this; every other process reads its own binaries.

Kept by the file's identity (device, inode, size, mtime): a rebuilt or replaced executable is
another file. Position-dependent executables only (Go's default on linux/amd64): a PIE's
addresses move with each process's load address, which its GoBinary has folded in.
"""

from __future__ import annotations

import copy
import os
from typing import TYPE_CHECKING

from .elf import ET_DYN

if TYPE_CHECKING:
    from .elffile import GoBinary

_MOST = 4  # executables kept (the oldest closed first): each holds its pclntab and a mapping
_kept: dict[tuple[int, int, int, int], GoBinary] = {}


def identity(pid: int) -> tuple[int, int, int, int]:
    st = os.stat(f"/proc/{pid}/exe")  # the file itself, even deleted or outside our mount namespace
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def find(pid: int) -> GoBinary | None:
    """The kept executable of process ``pid``, as a GoBinary of its own; None if not kept."""
    if not _kept:
        return None
    try:
        kept = _kept.get(identity(pid))
    except OSError:
        return None
    if kept is None:
        return None
    binary = copy.copy(kept)  # the kept one's state shared; its name for this process
    binary.path = f"/proc/{pid}/exe"
    return binary


def keep(binary: GoBinary, pid: int) -> bool:
    """Keep ``binary``, the executable of ``pid`` that the caller has read; False (and nothing
    kept) for a PIE or one already kept."""
    try:
        key = identity(pid)
    except OSError:
        return False
    if binary.header.e_type == ET_DYN or key in _kept:
        return False
    while len(_kept) >= _MOST:
        _kept.pop(next(iter(_kept))).close()
    _kept[key] = binary
    return True


def kept(pid: int) -> bool:
    """Whether the executable of ``pid`` is kept."""
    try:
        return identity(pid) in _kept
    except OSError:
        return False
