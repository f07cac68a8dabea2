"""Where each argument and result of a Go call lives: ABIInternal on amd64.

Implements the assignment algorithm of ``cmd/compile/abi-internal.md``
("Function call argument and result passing") over :class:`GoType`: every
value goes wholly into registers or wholly onto the stack; a value containing
an array of length > 1, or not fitting in the registers left, goes on the stack
and the register counters roll back.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..binary.gotypes import GoType, Kind, Param

PTR_SIZE = 8
NUM_INT_REGS = 9  # RAX RBX RCX RDI RSI R8 R9 R10 R11
NUM_FLOAT_REGS = 15  # X0-X14


@dataclass(frozen=True)
class RegPiece:
    """One base value of a register-assigned value: ``size`` bytes at ``offset`` of the
    value's memory image live in integer register ``reg`` (``is_float`` False) or in
    the low bytes of X``reg``."""

    is_float: bool
    reg: int
    offset: int
    size: int


@dataclass(frozen=True)
class Slot:
    """Where one parameter or result lives: ``pieces`` when in registers, else at
    ``stack_offset`` from the bottom of the argument frame."""

    param: Param
    pieces: tuple[RegPiece, ...] | None
    stack_offset: int | None

    @property
    def in_registers(self) -> bool:
        return self.pieces is not None


@dataclass(frozen=True)
class Frame:
    """The assignment of a whole call; ``size`` is the argument frame size
    (equal to ``_func.args`` in the pclntab)."""

    params: tuple[Slot, ...]
    results: tuple[Slot, ...]
    size: int


def _align(n: int, a: int) -> int:
    return (n + a - 1) // a * a if a > 1 else n


class _Assigner:
    def __init__(self) -> None:
        self.i = 0
        self.fp = 0
        self.stack = 0

    def assign(self, p: Param) -> Slot:
        t = p.type
        saved = (self.i, self.fp)
        if t.size > 0:
            pieces: list[RegPiece] = []
            if self._regassign(t, 0, pieces):
                return Slot(p, tuple(pieces), None)
        self.i, self.fp = saved
        self.stack = _align(self.stack, t.align or 1)
        slot = Slot(p, None, self.stack)
        self.stack += t.size
        return slot

    def _regassign(self, t: GoType, off: int, out: list[RegPiece]) -> bool:
        k = t.kind
        if k in (Kind.FLOAT32, Kind.FLOAT64):
            return self._float(off, t.size, out)
        if k in (Kind.COMPLEX64, Kind.COMPLEX128):
            half = t.size // 2
            return self._float(off, half, out) and self._float(off + half, half, out)
        if k == Kind.STRING or k == Kind.INTERFACE:
            return self._int(off, 8, out) and self._int(off + 8, 8, out)
        if k == Kind.SLICE:
            return all(self._int(off + 8 * j, 8, out) for j in range(3))
        if k == Kind.STRUCT:
            return all(self._regassign(f.type, off + f.offset, out) for f in t.fields)
        if k == Kind.ARRAY:
            if t.length == 0:
                return True
            if t.length == 1 and t.elem is not None:
                return self._regassign(t.elem, off, out)
            return False
        # bool, integers, pointers, maps, chans, funcs, unsafe.Pointer
        return self._int(off, t.size, out)

    def _int(self, off: int, size: int, out: list[RegPiece]) -> bool:
        if self.i >= NUM_INT_REGS:
            return False
        out.append(RegPiece(False, self.i, off, size))
        self.i += 1
        return True

    def _float(self, off: int, size: int, out: list[RegPiece]) -> bool:
        if self.fp >= NUM_FLOAT_REGS:
            return False
        out.append(RegPiece(True, self.fp, off, size))
        self.fp += 1
        return True


def assign(params: tuple[Param, ...], results: tuple[Param, ...]) -> Frame:
    """Assign a call's receiver+arguments (``params``) and results per ABIInternal."""
    a = _Assigner()
    pslots = tuple(a.assign(p) for p in params)
    a.stack = _align(a.stack, PTR_SIZE)
    a.i = a.fp = 0
    rslots = tuple(a.assign(r) for r in results)
    a.stack = _align(a.stack, PTR_SIZE)
    for s in pslots:  # spill space for register-assigned arguments
        if s.in_registers:
            a.stack = _align(a.stack, s.param.type.align or 1) + s.param.type.size
    a.stack = _align(a.stack, PTR_SIZE)
    return Frame(pslots, rslots, a.stack)


def place(frame: Frame, images: list[bytes]) -> tuple[dict[int, int], dict[int, bytes], bytes]:
    """Where each argument's memory image goes: integer registers, X registers, and the
    stack part of the frame (``images`` in the order of ``frame.params``)."""
    int_regs: dict[int, int] = {}
    float_regs: dict[int, bytes] = {}
    stack = bytearray(frame.size)
    for slot, image in zip(frame.params, images, strict=True):
        if slot.pieces is None:
            assert slot.stack_offset is not None
            stack[slot.stack_offset : slot.stack_offset + len(image)] = image
            continue
        for p in slot.pieces:
            part = image[p.offset : p.offset + p.size]
            if p.is_float:
                float_regs[p.reg] = part
            else:
                int_regs[p.reg] = int.from_bytes(part, "little")
    return int_regs, float_regs, bytes(stack)
