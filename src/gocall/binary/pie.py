"""Position-independent executables (``-buildmode=pie``): where the image was loaded, and
the pointers the dynamic loader fixes up.

A PIE (``ET_DYN``) is linked at some address (0x400000 for Go's internal linker) and
loaded at another one; the difference, the *load bias*, is added to every address the
file holds. :class:`~gocall.binary.elffile.GoBinary` takes the bias once and hands out
and accepts runtime addresses only, so nothing above the binary layer knows about it.

* The bias is ``AT_ENTRY`` (the entry point the kernel jumped to, in ``/proc/PID/auxv``)
  minus ``e_entry`` (the linked one): the kernel sets the auxiliary vector at ``execve``,
  so it holds from the first instruction, before the dynamic loader has run, and needs
  no search of ``/proc/PID/maps`` (``fs/binfmt_elf.c`` ``create_elf_tables``).
* Pointers in the image's data (``moduledata``, string headers, FUNCDATA bases) are
  ``R_X86_64_RELATIVE`` relocations (``Elf64_Rela``: offset, info, addend; the value is
  bias + addend), applied by the dynamic loader at start-up. Go's internal linker writes
  only these (``cmd/link/internal/amd64/asm.go`` ``adddynrel``/``elfreloc1``); the file
  holds the linked value as well, but an external linker need not, so the addend is what
  counts. :class:`Relocations` applies them to bytes read from the file, which then read
  as the process's memory does once it runs.
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Iterable

from gocall.errors import BinaryError, TargetExited

__all__ = ["Relocations", "load_bias"]

_AUXV = struct.Struct("<QQ")  # Elf64_auxv_t: a_type, a_val
_AT_NULL, _AT_ENTRY = 0, 9
_RELA = struct.Struct("<QQq")  # Elf64_Rela: r_offset, r_info, r_addend
_R_X86_64_RELATIVE = 8
_WORD = struct.Struct("<Q")


def load_bias(pid: int, e_entry: int) -> int:
    """Runtime address minus linked address of the executable of process ``pid``."""
    try:
        with open(f"/proc/{pid}/auxv", "rb") as f:
            auxv = f.read()
    except FileNotFoundError:
        raise TargetExited(f"process {pid} does not exist") from None
    for a_type, a_val in _AUXV.iter_unpack(auxv[: len(auxv) // _AUXV.size * _AUXV.size]):
        if a_type == _AT_ENTRY:
            return int(a_val) - e_entry
        if a_type == _AT_NULL:
            break
    raise BinaryError(f"/proc/{pid}/auxv has no AT_ENTRY, so where the executable was loaded is unknown",
                      hint="gocall needs a process started by execve on Linux")


class Relocations:
    """The ``R_X86_64_RELATIVE`` relocations of one image, sorted by linked address."""

    def __init__(self, tables: Iterable[bytes]) -> None:
        pairs = sorted((offset, addend) for table in tables
                       for offset, info, addend in _RELA.iter_unpack(table[: len(table) // _RELA.size * _RELA.size])
                       if info & 0xFFFFFFFF == _R_X86_64_RELATIVE)
        self._offsets = [offset for offset, _ in pairs]
        self._addends = [addend for _, addend in pairs]

    def __len__(self) -> int:
        return len(self._offsets)

    def apply(self, data: bytes, address: int, bias: int) -> bytes:
        """``data`` (the file's bytes at linked ``address``) with every relocated word set to
        ``bias + addend``, as the dynamic loader leaves it. Words cut by the ends of
        ``data`` are left alone (gocall reads whole pointers)."""
        lo = bisect.bisect_left(self._offsets, address)
        hi = bisect.bisect_left(self._offsets, address + len(data) - _WORD.size + 1)
        if lo >= hi:
            return data
        out = bytearray(data)
        for i in range(lo, hi):
            _WORD.pack_into(out, self._offsets[i] - address, (bias + self._addends[i]) & 0xFFFFFFFFFFFFFFFF)
        return bytes(out)
