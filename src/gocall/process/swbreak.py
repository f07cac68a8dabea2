"""Software breakpoints: one INT3 byte in the program's text per address.

Each breakpoint keeps the byte it replaced (python-ptrace's rule) and is written
through /proc/PID/mem, which may write read-only text (process/memory.py). An INT3
is seen by every thread that gets there, so the owner must have every thread
traced while one is in place (process/tracee.py) and must remove them all before
it lets go of a thread (:meth:`SoftwareBreakpoints.remove_all`).

INT3 is a trap, not a fault: the thread stops with RIP one byte *after* the
breakpoint, and ``si_code`` SI_KERNEL. :meth:`classify` tells our breakpoints
from the program's own INT3s (``runtime.Breakpoint()``), including breakpoints
removed after a thread trapped on them but before gocall saw the trap.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator

from ..errors import ProcessError
from .memory import Memory

INT3 = b"\xcc"


class Trap(enum.Enum):
    """What the INT3 before a trapped thread's RIP was."""

    OURS = "ours"  # a breakpoint in place: rewind RIP to it
    RETIRED = "retired"  # one of ours, removed since: rewind RIP and go on as if nothing happened
    FOREIGN = "foreign"  # the program's own INT3 (runtime.Breakpoint): RIP is already past it


class SoftwareBreakpoints:
    """The INT3s gocall has written into one process."""

    def __init__(self, mem: Memory) -> None:
        self.mem = mem
        self._saved: dict[int, bytes] = {}  # address -> the original byte
        self._ever: set[int] = set()
        # Told each new address and its byte before the INT3 goes in: the guardian of
        # guard/watch.py, which puts the bytes back if gocall is killed with them in.
        self.record: Callable[[int, bytes], None] | None = None

    def __contains__(self, addr: int) -> bool:
        return addr in self._saved

    def __iter__(self) -> Iterator[int]:
        return iter(self._saved)

    def insert(self, addr: int) -> None:
        if addr in self._saved:
            return
        original = self.mem.read(addr, 1)
        if original == INT3:
            raise ProcessError(f"there is an INT3 at {addr:#x} already", hint="another debugger may be attached")
        if addr not in self._ever and self.record is not None:
            self.record(addr, original)
        self._saved[addr] = original
        self._ever.add(addr)
        self.mem.write(addr, INT3)

    def remove(self, addr: int) -> None:
        original = self._saved.pop(addr, None)
        if original is not None:
            self.mem.write(addr, original)

    def remove_all(self) -> None:
        for addr in list(self._saved):
            self.remove(addr)

    def lift(self, addr: int) -> None:
        """The original byte back at ``addr`` alone (to step over it); :meth:`lower` puts the INT3 back."""
        if addr in self._saved:
            self.mem.write(addr, self._saved[addr])

    def lower(self, addr: int) -> None:
        if addr in self._saved:
            self.mem.write(addr, INT3)

    def original(self, addr: int, size: int) -> bytes:
        """``size`` bytes of text at ``addr`` as the program has them, without our INT3s."""
        data = bytearray(self.mem.read(addr, size))
        for a, byte in self._saved.items():
            if addr <= a < addr + size:
                data[a - addr] = byte[0]
        return bytes(data)

    def classify(self, rip: int) -> Trap:
        """Whose INT3 a thread that trapped with ``rip`` executed."""
        addr = rip - 1
        if addr in self._saved:
            return Trap.OURS
        if addr in self._ever and self.mem.read(addr, 1) != INT3:
            return Trap.RETIRED
        return Trap.FOREIGN
