"""The parameters and local variables of a stopped frame, from DWARF.

The concrete ``DW_TAG_subprogram`` whose PC range holds the frame's PC lists them as
``DW_TAG_formal_parameter``/``DW_TAG_variable`` children (through
``DW_AT_abstract_origin`` for a function that was also inlined elsewhere); nested
``DW_TAG_lexical_block`` and ``DW_TAG_inlined_subroutine`` scopes count when they
hold the PC, innermost first, so an inner ``x`` shadows an outer one as in Go.

Where each value is comes from its location (binary/dwarfloc.py) at the frame's PC.
Registers are known for the innermost frame only (the stopped thread's); Go has no
callee-saved registers, so a value an outer frame keeps in a register is gone.

A local whose address escapes is moved to the heap by the compiler, and DWARF describes
the pointer to its heap copy as a variable named ``&a`` (``cmd/compile/internal/dwarfgen``:
a heap-moved variable's ``&``-name). It is the Go variable ``a`` here, read through that
pointer: its value is in target memory, so it is addressable and assignable like a
package variable.

A value is *addressable* only when it is one contiguous run of target memory: an
image assembled from registers has no address in the target, and gocall never
invents one (so ``&x`` and pointer-method calls on it are refused).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

from elftools.dwarf.die import DIE
from elftools.dwarf.dwarf_expr import DWARFExprParser
from elftools.dwarf.locationlists import LocationParser
from elftools.dwarf.ranges import BaseAddressEntry

from ..binary import GoBinary
from ..binary.dwarf import package_of
from ..binary.dwarfloc import DWARF_REGS, DWARF_XMM0, Locations, Piece, Unsupported
from ..binary.gotypes import GoType, Kind
from ..errors import BinaryError, ExprError, GocallError, SymbolNotFound
from ..process.memory import Memory
from ..process.regs import user_regs_struct
from .unwind import Frame

__all__ = ["FrameScope", "Variable", "Scopes"]

_PTR_SIZE = 8
_LOWEST_ADDRESS = 0x1000  # no Go program has memory below (Linux's vm.mmap_min_addr is at least this)
_FXSAVE_XMM = 160  # offset of XMM0 in the FXSAVE image (Intel SDM vol. 1, table 10-2)


@dataclass(frozen=True)
class Variable:
    """A parameter or local of a frame, and where it is at the frame's PC."""

    name: str
    type: GoType
    parameter: bool
    pieces: tuple[Piece, ...] | None  # None: not available at this PC
    why: str = ""  # when not available
    moved: bool = False  # moved to the heap: ``pieces`` locate the pointer to it (DWARF's ``&a``)


class Scopes:
    """Subprogram DIEs of one binary by PC (built per package on first use)."""

    def __init__(self, binary: GoBinary) -> None:
        if binary.dwarf is None:
            raise SymbolNotFound("the binary has no DWARF, so frames have no variables",
                                 hint="build without -ldflags=-w to see parameters and locals")
        self.binary = binary
        self.dwarf = binary.dwarf
        self._index: dict[str, list[tuple[int, int, DIE]]] = {}
        self._variables: dict[tuple[str, int], list[Variable]] = {}  # a breakpoint's PC is seen again and again

    @cached_property
    def locations(self) -> Locations:
        info = self.dwarf.info
        return Locations(LocationParser(info.location_lists()), DWARFExprParser(info.structs))

    def subprogram(self, function: str, pc: int) -> DIE | None:
        """The concrete subprogram DIE of ``function`` (its package's units) that holds ``pc``."""
        package = package_of(function)
        if package is None:
            return None
        if package not in self._index:
            entries = []
            for cu in self.dwarf.package_units(package):
                for die in cu.get_top_DIE().iter_children():
                    if die.tag == "DW_TAG_subprogram" and "DW_AT_low_pc" in die.attributes:
                        lo, hi = _pc_range(die)
                        entries.append((lo, hi, die))
            self._index[package] = entries
        return next((die for lo, hi, die in self._index[package] if lo <= pc < hi), None)

    def variables(self, frame: Frame) -> list[Variable]:
        """The frame's variables visible at its PC, innermost scope first, parameters in order."""
        pc = frame.pc if frame.trap or frame.pc == frame.func.entry else frame.pc - 1
        pc -= self.binary.bias  # DWARF's PCs are as linked; a loaded PIE's are moved (binary/pie.py)
        key = (frame.function, pc)
        cached = self._variables.get(key)
        if cached is not None:
            return cached
        out: list[Variable] = []
        try:
            die = self.subprogram(frame.function, pc)
            if die is not None:
                base = die.cu.get_top_DIE().attributes.get("DW_AT_low_pc")
                self._collect(die, pc, base.value if base is not None else 0, out)
        except GocallError:
            raise
        except Exception as e:  # noqa: BLE001 (pyelftools' DWARFError, KeyError...: no tracebacks)
            raise BinaryError(f"cannot read the variables of {frame.function} at {pc:#x} from the DWARF of "
                              f"{self.binary.path}: {type(e).__name__}: {e}",
                              hint="its debug information has a form gocall does not read; please report this") from e
        self._variables[key] = out
        return out

    def _collect(self, scope: DIE, pc: int, cu_base: int, out: list[Variable]) -> None:
        here: list[Variable] = []
        children = list(scope.iter_children())
        # The compiler cuts the code of a call inlined in a block out of the block's ranges and
        # lists the inlined call beside the block, not in it (seen on Go 1.19-1.27: a stop at an
        # inlined runtime.Breakpoint() in `{ a := ...; runtime.Breakpoint() }`). A PC in such an
        # inlined call, inside the block's span, is in the block: its variables shadow as in Go.
        inlined = any(c.tag == "DW_TAG_inlined_subroutine" and any(lo <= pc < hi for lo, hi in _ranges(c))
                      for c in children)
        for child in children:
            tag = child.tag
            if tag in ("DW_TAG_formal_parameter", "DW_TAG_variable"):
                var = self._variable(child, pc, cu_base)
                if var is not None:
                    here.append(var)
            elif tag in ("DW_TAG_lexical_block", "DW_TAG_inlined_subroutine"):
                ranges = _ranges(child)
                if any(lo <= pc < hi for lo, hi in ranges) or (
                        inlined and tag == "DW_TAG_lexical_block" and ranges
                        and min(lo for lo, _ in ranges) <= pc < max(hi for _, hi in ranges)):
                    self._collect(child, pc, cu_base, out)  # inner scopes first: they shadow
        out.extend(here)

    def _variable(self, die: DIE, pc: int, cu_base: int) -> Variable | None:
        named = die.get_DIE_from_attribute("DW_AT_abstract_origin") if "DW_AT_abstract_origin" in die.attributes \
            else die
        name_attr = named.attributes.get("DW_AT_name")
        if name_attr is None:
            return None
        name = name_attr.value.decode("utf-8", "replace")
        moved = name.startswith("&")
        name = name.removeprefix("&")
        # Results (~r0) and the compiler's decomposed parts ("s.ptr") are not Go names.
        if name.startswith("~") or "." in name or bool(named.attributes.get("DW_AT_variable_parameter", None)
                                                        and named.attributes["DW_AT_variable_parameter"].value):
            return None
        # Go refers to types with DW_FORM_ref_addr (they live in one unit of their own).
        t = self.dwarf.type_of(named.attributes["DW_AT_type"].value)
        if moved:
            if t.kind != Kind.POINTER or t.elem is None:
                return None  # not the compiler's heap pointer: no Go name gocall could look up
            t = t.elem
        parameter = die.tag == "DW_TAG_formal_parameter"
        try:
            pieces = self.locations.at(die, pc, cu_base)
        except Unsupported as e:
            return Variable(name, t, parameter, None, f"its location uses {e}, which gocall does not evaluate",
                            moved)
        if pieces is None:
            return Variable(name, t, parameter, None, "not available at this point (optimized away or not yet set)",
                            moved)
        if any(p.missing for p in pieces):
            return Variable(name, t, parameter, None, "partly optimized away at this point", moved)
        if any(p.size is None and p.register is not None and _register_size(p.register) < (8 if moved else t.size)
               for p in pieces):  # fmt: skip
            # The optimizer's location of a whole interface or string as one register (seen for an
            # interface whose itab is a constant: only its data word is in the register). Reading
            # the register as the whole value would decode garbage, or fault on a "pointer" 0x28.
            return Variable(name, t, parameter, None, "partly optimized away at this point (its location is one "
                            f"register, too small for a {t.size}-byte value)", moved)
        return Variable(name, t, parameter, pieces, moved=moved)


class FrameScope:
    """The variables of one stopped frame and their values (``regs``: the innermost frame's registers)."""

    def __init__(self, scopes: Scopes, mem: Memory, frame: Frame, regs: user_regs_struct | None,
                 fpregs: bytes | Callable[[], bytes] | None) -> None:
        self.mem = mem
        self.frame = frame
        self.regs = regs
        self._fpregs = fpregs  # bytes, or how to read them when an X register is first needed
        self.variables = scopes.variables(frame)

    @property
    def fpregs(self) -> bytes | None:
        if callable(self._fpregs):
            self._fpregs = self._fpregs()
        return self._fpregs

    def find(self, name: str) -> Variable | None:
        return next((v for v in self.variables if v.name == name), None)

    def read(self, var: Variable) -> tuple[bytes, int | None]:
        """``var``'s memory image and its address in the target (None: not addressable)."""
        if var.pieces is None:
            raise ExprError(f"{var.name} is {var.why}")
        if var.moved:
            image, _ = self._image(var.name, var.pieces, _PTR_SIZE)
            (heap,) = struct.unpack("<Q", image[:_PTR_SIZE].ljust(_PTR_SIZE, b"\0"))
            if heap < _LOWEST_ADDRESS:  # nil before the allocation; tiny: a location misread, not memory
                raise ExprError(f"{var.name} is not allocated yet at this point (its heap pointer is {heap:#x})")
            return self.mem.read(heap, var.type.size), heap
        return self._image(var.name, var.pieces, var.type.size)

    def _image(self, name: str, pieces: tuple[Piece, ...], whole: int) -> tuple[bytes, int | None]:
        """The memory image of a value of ``whole`` bytes in ``pieces``, and its address if
        it is one contiguous run of memory."""
        image = b""
        addrs: list[int | None] = []
        for p in pieces:
            size = whole if p.size is None else p.size
            if p.register is not None:
                image += self._register(name, p.register, size)
                addrs.append(None)
            else:
                addr = self.frame.fp + p.cfa_offset if p.cfa_offset is not None else p.address
                assert addr is not None
                image += self.mem.read(addr, size)
                addrs.append(addr)
        addr = addrs[0] if addrs and None not in addrs else None
        at = addr
        for p, a in zip(pieces, addrs, strict=True):  # one contiguous run of memory, or no address
            if at is None or a != at:
                addr = None
                break
            at += whole if p.size is None else p.size
        return image[:whole].ljust(whole, b"\0"), addr

    def register_slots(self, var: Variable) -> list[tuple[int, int, int]] | None:
        """(DWARF register, offset in the value, size) of each piece, when the whole value is
        in registers of the innermost frame (assignments write them)."""
        if var.pieces is None or self.regs is None or var.moved:
            return None
        out, off = [], 0
        for p in var.pieces:
            size = var.type.size if p.size is None else p.size
            if p.register is None or p.register >= len(DWARF_REGS):
                return None
            out.append((p.register, off, size))
            off += size
        return out

    def _register(self, name: str, reg: int, size: int) -> bytes:
        if self.regs is None:
            raise ExprError(f"{name} is in a register of an outer frame, which Go does not keep",
                            hint="look at it in the innermost frame (--frame 0), or where it is stored")
        if reg < len(DWARF_REGS):
            return struct.pack("<Q", getattr(self.regs, DWARF_REGS[reg]) & (1 << 64) - 1)[:size]
        if DWARF_XMM0 <= reg < DWARF_XMM0 + 16 and self.fpregs is not None:
            off = _FXSAVE_XMM + 16 * (reg - DWARF_XMM0)
            return self.fpregs[off : off + size]
        raise ExprError(f"{name} is in DWARF register {reg}, which gocall does not read")


def _register_size(reg: int) -> int:
    """Bytes a DWARF register holds: 16 for xmm0..xmm15, 8 for the others."""
    return 16 if DWARF_XMM0 <= reg < DWARF_XMM0 + 16 else 8


def _pc_range(die: DIE) -> tuple[int, int]:
    lo = die.attributes["DW_AT_low_pc"].value
    high = die.attributes.get("DW_AT_high_pc")
    if high is None:
        return lo, lo
    return lo, high.value if high.form == "DW_FORM_addr" else lo + high.value


def _ranges(die: DIE) -> list[tuple[int, int]]:
    """The PC ranges of a scope DIE (DW_AT_low_pc/high_pc, or DW_AT_ranges)."""
    if "DW_AT_low_pc" in die.attributes:
        return [_pc_range(die)]
    ranges = die.attributes.get("DW_AT_ranges")
    if ranges is None:
        return []
    info = die.dwarfinfo
    rl = info.range_lists()
    if rl is None:
        return []
    base_attr = die.cu.get_top_DIE().attributes.get("DW_AT_low_pc")
    base = base_attr.value if base_attr is not None else 0
    out = []
    for entry in rl.get_range_list_at_offset(ranges.value, cu=die.cu):  # type: ignore[arg-type]  # Go writes no type units
        if isinstance(entry, BaseAddressEntry):
            base = entry.base_address
            continue
        out.append((entry.begin_offset, entry.end_offset) if getattr(entry, "is_absolute", False) else
                   (base + entry.begin_offset, base + entry.end_offset))
    return out
