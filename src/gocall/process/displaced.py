"""Displaced stepping: running the instruction under one of our INT3s somewhere else.

To step a thread over a breakpoint in place, the original byte must be put back for one
single step, and any other thread passing the address meanwhile would miss the hit; so
every other thread has to be stopped first (all-stop: N interrupts and N resumes per
hit). GDB and Delve avoid that by *displaced stepping*: the instruction is copied once to
a scratch slot, and a thread that must step over the breakpoint single-steps the copy
there, then jumps back to the instruction after the original. The INT3 never leaves the
text, the other threads never stop.

The slots are in the INT3 padding the Go linker puts between functions (CodePad 0xCC on
amd64): text no code jumps to, within +-2 GB of the original, so a RIP-relative operand
is fixed by adjusting its displacement. Each slot holds the copy followed by an INT3.
Instructions whose effect depends on where they are (jumps, calls, returns, syscalls,
INT3s) are not displaced; the caller steps them in place, all-stop.

A thread is never left at a slot, and the Go runtime never sees a slot's PC: a signal that
arrives before the copy runs waits until the thread is back in the function, and a fault
the copy raises (a nil check) is delivered at the original instruction's address, where
the runtime expects it.
"""

from __future__ import annotations

import os
import signal
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..binary.pclntab import Pclntab
from ..errors import ProcessError, TargetExited
from . import ptrace
from .memory import Memory
from .regs import user_regs_struct
from .waiting import waitpid

_PAD = 0xCC
_MAX_INSN = 15
_FAULTS = {signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL}
_TAIL = 64  # bytes of a function's end looked at for padding
_GAPS = 16  # padding runs collected (a few slots each)
_STEP_MAX = 8  # single steps tried while signals keep arriving before the copy runs


class SteppedIntoExit(TargetExited):
    """The thread ended (the process is exiting) during a displaced step; ``status`` is its wait status."""

    def __init__(self, status: int) -> None:
        super().__init__("the thread exited during a displaced step")
        self.status = status


@dataclass(frozen=True)
class Slot:
    """The copy of the instruction at ``original`` (``length`` bytes) placed at ``addr``."""

    original: int
    addr: int
    length: int
    saved: bytes  # the padding the copy and its INT3 replaced


class DisplacedSteps:
    """Slots for the breakpoints of one process (made on first use, kept until :meth:`remove_all`)."""

    def __init__(self, mem: Memory, tab: Pclntab) -> None:
        self.mem = mem
        self.tab = tab
        self._slots: dict[int, Slot | None] = {}  # breakpoint address -> its slot (None: step in place)
        self._gaps: list[tuple[int, int]] | None = None  # (start, end) of padding runs not yet used

    def slot(self, addr: int, original: Callable[[], bytes]) -> Slot | None:
        """The slot for the breakpoint at ``addr`` (``original()``: the bytes there without our
        INT3s, read when the slot is made), or None when its instruction must be stepped in place."""
        if addr not in self._slots:
            self._slots[addr] = self._make(addr, original())
        return self._slots[addr]

    def remove_all(self) -> None:
        """Put the padding back (nothing executes it, but the text is left as found)."""
        for s in self._slots.values():
            if s is not None:
                try:
                    self.mem.write(s.addr, s.saved)
                except (OSError, ProcessError, TargetExited):
                    pass  # the process is gone
        self._slots.clear()

    def step(self, tid: int, s: Slot, regs: user_regs_struct) -> list[int]:
        """Execute the displaced copy on the stopped thread ``tid`` (``regs``: its registers, RIP
        at ``s.original``) and leave it stopped after the original instruction, or at it with a
        fault to deliver. The signals to deliver when it resumes, in order."""
        regs = regs.copy()
        regs.rip = s.addr
        ptrace.setregs(tid, regs)
        pending: list[int] = []
        for _ in range(_STEP_MAX):
            ptrace.singlestep(tid, 0)
            status = waitpid(tid)
            assert status is not None
            if os.WIFEXITED(status) or os.WIFSIGNALED(status):
                raise SteppedIntoExit(status)
            sig = os.WSTOPSIG(status)
            regs = ptrace.getregs(tid)
            if regs.rip == s.addr + s.length and sig == signal.SIGTRAP and not status >> 16:
                regs.rip = s.original + s.length
                ptrace.setregs(tid, regs)
                return pending
            if regs.rip != s.addr:
                break
            if status >> 16:
                continue  # an event stop before the copy ran: step again
            if sig in _FAULTS and ptrace.getsiginfo_code(tid) > 0:
                # The copy faulted (a nil check): the program's handler must see the original PC.
                regs.rip = s.original
                ptrace.setregs(tid, regs)
                return [sig, *pending]
            pending.append(sig)  # arrived before the copy ran: delivered once back in the function
        # Not where a displaced step ends: put the thread back at the breakpoint, unharmed.
        regs.rip = s.original
        ptrace.setregs(tid, regs)
        raise ProcessError(f"displaced step of {s.original:#x} ended at {regs.rip:#x}")

    # -- making slots -------------------------------------------------------------------

    def _make(self, addr: int, original: bytes) -> Slot | None:
        copy = _relocatable(addr, original)
        if copy is None:
            return None
        code, disp_offset, disp_size = copy
        at = self._take(len(code) + 1)
        if at is None:
            return None
        if disp_offset:  # RIP-relative: the same target from the slot
            (disp,) = struct.unpack_from("<i", code, disp_offset)
            moved = disp + addr - at
            if not -(1 << 31) <= moved < 1 << 31:
                return None
            code = code[:disp_offset] + struct.pack("<i", moved) + code[disp_offset + disp_size:]
        saved = self.mem.read(at, len(code) + 1)
        if saved != bytes([_PAD]) * len(saved):
            return None  # not padding after all: leave it alone
        self.mem.write(at, code + bytes([_PAD]))
        return Slot(addr, at, len(code), saved)

    def _take(self, size: int) -> int | None:
        """``size`` bytes of padding no slot uses yet."""
        if self._gaps is None:
            self._gaps = self._padding()
        for i, (start, end) in enumerate(self._gaps):
            if end - start >= size:
                self._gaps[i] = (start + size, end)
                return start
        return None

    def _padding(self) -> list[tuple[int, int]]:
        """Runs of padding at the ends of functions (up to the next one's entry), one byte
        kept either side: a function may end with a real INT3 (the run's first byte)."""
        gaps: list[tuple[int, int]] = []
        for f in self.tab:
            if f.end - f.entry < _TAIL:
                continue
            tail = self.mem.read(f.end - _TAIL, _TAIL)
            run = len(tail) - len(tail.rstrip(bytes([_PAD])))
            if run >= _MAX_INSN + 3:
                gaps.append((f.end - run + 1, f.end - 1))
                if len(gaps) >= _GAPS:
                    break
        return gaps


def _relocatable(addr: int, original: bytes) -> tuple[bytes, int, int] | None:
    """The instruction at ``addr`` as (bytes, offset of a RIP-relative disp32 or 0, its size),
    or None when it cannot run elsewhere."""
    try:
        import capstone  # type: ignore[import-untyped]  # only when a breakpoint is stepped over: its import costs a cold CLI start
    except ImportError:
        return None  # stepped in place, all-stop

    global _cs
    if _cs is None:
        _cs = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
        _cs.detail = True
    insn = next(_cs.disasm(original, addr, 1), None)
    if insn is None:
        return None
    if any(g in _POSITIONAL for g in insn.groups) or insn.bytes[0] == _PAD:
        return None
    code = bytes(insn.bytes)
    rip_relative = any(op.type == capstone.x86.X86_OP_MEM and op.mem.base == capstone.x86.X86_REG_RIP
                       for op in insn.operands)
    if rip_relative:
        if insn.disp_size != 4 or not insn.disp_offset:
            return None
        return code, insn.disp_offset, 4
    return code, 0, 0


_cs: Any = None
# capstone's CS_GRP_JUMP, CALL, RET, INT, IRET, BRANCH_RELATIVE: instructions that go somewhere
# relative to where they are, or into the kernel.
_POSITIONAL = frozenset({1, 2, 3, 4, 5, 7})
