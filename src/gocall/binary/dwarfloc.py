"""DWARF location descriptions as the Go compiler writes them (DWARF 4 ``.debug_loc``,
DWARF 5 ``.debug_loclists``), evaluated to where each piece of a value is.

What ``cmd/compile/internal/ssagen`` and ``cmd/internal/dwarf`` emit on amd64:

* ``DW_AT_frame_base`` is ``DW_OP_call_frame_cfa``: the caller's SP, the unwinder's ``fp``;
* a location is one operation for the whole value, or a list of
  ``<op> DW_OP_piece(n)`` for values decomposed into registers and stack slots
  (strings, slices, interfaces, small structs); a piece with no operation is a
  part the compiler did not keep (optimized away);
* operations: ``DW_OP_fbreg(off)`` (memory at CFA + off), ``DW_OP_call_frame_cfa``
  (memory at the CFA), ``DW_OP_regN``/``DW_OP_regx`` (a register), ``DW_OP_addr``;
* parameters and locals that move between registers and memory get a location
  list of ``[begin, end)`` PC ranges; a PC outside every range means "not available
  here" (not yet assigned, or dead).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from elftools.dwarf.die import DIE
from elftools.dwarf.dwarf_expr import DWARFExprParser
from elftools.dwarf.locationlists import BaseAddressEntry, LocationEntry, LocationExpr, LocationParser

# DWARF register numbers, System V amd64 psABI figure 3.36.
DWARF_REGS = ("rax", "rdx", "rcx", "rbx", "rsi", "rdi", "rbp", "rsp",
              "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip")  # fmt: skip
DWARF_XMM0 = 17  # xmm0..xmm15 are 17..32


@dataclass(frozen=True)
class Piece:
    """Where ``size`` bytes of a value are: a CFA-relative or absolute address, a register, or nowhere."""

    size: int | None  # None: the whole value (a location with no DW_OP_piece)
    cfa_offset: int | None = None  # memory at CFA + cfa_offset
    address: int | None = None  # memory at an absolute address (DW_OP_addr)
    register: int | None = None  # a DWARF register number

    @property
    def missing(self) -> bool:
        return self.cfa_offset is None and self.address is None and self.register is None


class Unsupported(Exception):
    """A location operation gocall does not evaluate (the compiler does not emit it today)."""


def pieces(expr: Sequence[int], parser: DWARFExprParser) -> tuple[Piece, ...]:
    """The pieces of one location expression."""
    out: list[Piece] = []
    current: dict[str, int] = {}
    for op in parser.parse_expr(list(expr)):
        name = op.op_name
        if name == "DW_OP_piece":
            out.append(Piece(op.args[0], **current))
            current = {}
        elif name == "DW_OP_fbreg":
            current = {"cfa_offset": op.args[0]}
        elif name == "DW_OP_call_frame_cfa":
            current = {"cfa_offset": 0}
        elif name == "DW_OP_addr":
            current = {"address": op.args[0]}
        elif name.startswith("DW_OP_reg") and name != "DW_OP_regx":
            current = {"register": int(name.removeprefix("DW_OP_reg"))}
        elif name == "DW_OP_regx":
            current = {"register": op.args[0]}
        elif name == "DW_OP_plus_uconst" and "cfa_offset" in current:
            current["cfa_offset"] += op.args[0]
        else:
            raise Unsupported(name)
    if current or not out:
        out.append(Piece(None, **current))
    return tuple(out)


class Locations:
    """Location attributes of one binary's DWARF, resolved for a PC."""

    def __init__(self, parser: LocationParser, expr_parser: DWARFExprParser) -> None:
        self._parser = parser
        self._expr = expr_parser

    def at(self, die: DIE, pc: int, cu_base: int) -> tuple[Piece, ...] | None:
        """The pieces of ``die``'s ``DW_AT_location`` valid at ``pc``; None when it has no
        location there (optimized away, or not live at this PC)."""
        attr = die.attributes.get("DW_AT_location")
        if attr is None:
            return None
        if attr.form.startswith("DW_FORM_block") or attr.form == "DW_FORM_exprloc":
            # Go writes single expressions as DW_FORM_block1 in DWARF 4 and 5 too, which
            # pyelftools only takes for a location before DWARF 4.
            return pieces(attr.value, self._expr) if attr.value else None
        version = die.cu["version"]
        if not LocationParser.attribute_has_location(attr, version):
            return None
        loc = self._parser.parse_from_attribute(attr, version, die)
        if isinstance(loc, LocationExpr):
            return pieces(loc.loc_expr, self._expr)
        base = cu_base
        for entry in loc:
            if isinstance(entry, BaseAddressEntry):
                base = entry.base_address
            elif isinstance(entry, LocationEntry):
                lo, hi = (entry.begin_offset, entry.end_offset) if entry.is_absolute else \
                    (base + entry.begin_offset, base + entry.end_offset)
                if lo <= pc < hi:
                    return pieces(entry.loc_expr, self._expr)
        return None
