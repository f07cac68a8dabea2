"""Finding DIEs in ``.debug_info`` by their bytes, without parsing the units around them.

pyelftools parses a DIE in ~16 µs, and Go's DIEs carry no ``DW_AT_sibling``, so reaching
one function of a package means parsing every DIE before it in the package's unit (0.2 s
for ``cmd/go/internal/work``), and listing packages means parsing the top DIE of every
unit (0.1 s for ``cmd/go``'s 339). What the Go linker writes makes both unnecessary
(``cmd/internal/dwarf/dwarf.go``, the ``abbrevs`` table):

* every unit's top DIE (``DW_ABRV_COMPUNIT``) and every function and package variable
  DIE (``DW_ABRV_FUNCTION``, ``DW_ABRV_FUNCTION_ABSTRACT``, ``DW_ABRV_VARIABLE``) starts
  with ``DW_AT_name`` as an inline ``DW_FORM_string``, right after its one-byte
  abbreviation code; names are package-qualified (``main.Add``), so searching the bytes
  for ``main.Add\\0`` finds the DIE wherever it sits, including in another package's unit
  (generic instantiations are compiled into the unit of the package that instantiates
  them, abstract DIEs of inlined functions into the units that inline them);
* an out-of-line instance of an inlined function (``DW_ABRV_FUNCTION_CONCRETE``) starts
  with ``DW_AT_abstract_origin`` (``DW_FORM_ref_addr``, the abstract DIE's offset) then
  ``DW_AT_low_pc`` (its entry, 8 bytes): the 12 bytes of (origin, entry) find it.

Every hit is checked against the abbreviation its code names (tag and leading attribute
forms); :class:`gocall.binary.dwarf.Dwarf` then parses the DIE and checks its name or
entry. Abbreviation codes of these DIEs are small numbers (< 0x20), never characters of
a name, so the tail of a longer name cannot pass for a DIE.
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from gocall.binary.varint import uvarint

__all__ = ["DebugInfoIndex", "Unit"]

_U32 = struct.Struct("<I")
_UNIT_HEADER_V4 = struct.Struct("<IHIB")  # unit_length, version, debug_abbrev_offset, address_size
_UNIT_HEADER_V5 = struct.Struct("<IHBBI")  # unit_length, version, unit_type, address_size, debug_abbrev_offset
_DWARF64 = 0xFFFFFFF0  # unit_length values from here on are escapes (64-bit DWARF): Go never writes them
_NAME = ("DW_AT_name", "DW_FORM_string")
_LOW_PC = ("DW_AT_low_pc", "DW_FORM_addr")
_ORIGIN = ("DW_AT_abstract_origin", "DW_FORM_ref_addr")
# How far back from an entry PC a function DIE's code may be: code + name + NUL.
_MAX_NAME = 4096


# A NamedTuple, not a dataclass: a frozen dataclass costs ~0.5 ms of every cold start to create
# (its methods are compiled from source at import), a NamedTuple ~0.1 ms.
class Unit(NamedTuple):
    """One unit header of ``.debug_info``: where it starts and ends, its abbreviation table
    and its top DIE."""

    offset: int
    end: int
    abbrev_offset: int
    top_die: int


class DebugInfoIndex:
    """Byte-level lookups over the decompressed ``.debug_info`` (see the module docstring).

    ``abbrev_table(offset)`` returns pyelftools' ``AbbrevTable`` at that offset of
    ``.debug_abbrev`` (one table in Go binaries, shared by every unit).
    """

    def __init__(self, data: bytes, abbrev_table: Callable[[int], Any]) -> None:
        self.data = data
        self._abbrev_tables: dict[int, Any] = {}
        self._read_abbrev_table = abbrev_table
        self.units = _read_units(data)
        self._starts = [u.offset for u in self.units]

    def unit_at(self, offset: int) -> Unit | None:
        """The unit whose bytes contain ``offset``."""
        i = bisect.bisect_right(self._starts, offset) - 1
        if i < 0 or offset >= self.units[i].end:
            return None
        return self.units[i]

    def unit_name(self, unit: Unit) -> str | None:
        """``DW_AT_name`` of the unit's top DIE (its package path), or None when the top DIE
        does not start with an inline name (then ask pyelftools)."""
        code, pos = uvarint(self.data, unit.top_die)
        if not self._starts_with(unit, code, _NAME):
            return None
        return self.data[pos : self.data.index(b"\0", pos)].decode("utf-8", "replace")

    def named(self, name: str, tags: frozenset[str]) -> Iterator[int]:
        """Offsets of the DIEs with a tag in ``tags`` whose leading inline name is ``name``."""
        data, needle = self.data, name.encode() + b"\0"
        pos = data.find(needle, 1)
        while pos > 0:
            unit = self.unit_at(pos - 1)
            if unit is not None and pos - 1 > unit.top_die and self._starts_with(unit, data[pos - 1], _NAME, tags=tags):
                yield pos - 1
            pos = data.find(needle, pos + 1)

    def variable_names(self, unit: Unit, package: str) -> list[str]:
        """The names (after ``package.``) of the package variables in ``unit``: variable DIEs
        whose leading inline name starts with ``package.``, found by their bytes without
        parsing the function DIEs between them (0.1 s for ``cmd/go/internal/work``)."""
        data, needle = self.data, package.encode() + b"."
        out = []
        pos = data.find(needle, unit.top_die + 1, unit.end)
        while pos > 0:
            end = data.find(b"\0", pos, unit.end)
            if end < 0:
                break
            if self._starts_with(unit, data[pos - 1], _NAME, tags=_VARIABLE):
                out.append(data[pos + len(needle) : end].decode("utf-8", "replace"))
            pos = data.find(needle, end, unit.end)
        return out

    def concrete(self, abstract: int, entry: int | None) -> Iterator[int]:
        """Offsets of the out-of-line instances of the abstract subprogram at ``abstract``;
        with ``entry``, only those whose ``DW_AT_low_pc`` may be ``entry`` (DWARF 5 writes
        it as an index into ``.debug_addr``, which the caller checks after parsing)."""
        data = self.data
        pos = data.find(_U32.pack(abstract), 1)
        while pos > 0:
            unit = self.unit_at(pos - 1)
            spec = None if unit is None else self._leading(unit, data[pos - 1], 2, _SUBPROGRAM)
            if spec is not None and spec[0] == _ORIGIN and spec[1][0] == "DW_AT_low_pc":
                if entry is None or spec[1] != _LOW_PC or data[pos + 4 : pos + 12] == entry.to_bytes(8, "little"):
                    yield pos - 1
            pos = data.find(_U32.pack(abstract), pos + 1)

    def by_entry(self, entry: int) -> Iterator[int]:
        """Offsets of subprogram DIEs (named or concrete) whose ``DW_AT_low_pc`` is ``entry``:
        what finds a function pclntab and DWARF spell differently (``F[...]`` vs
        ``F[go.shape.int]`` before Go 1.21)."""
        data, needle = self.data, entry.to_bytes(8, "little")
        pos = data.find(needle, 5)
        while pos > 0:
            unit = self.unit_at(pos)
            if unit is not None:
                origin = pos - 5  # code, 4-byte DW_AT_abstract_origin, then the entry
                if origin > unit.top_die and self._starts_with(unit, data[origin], _ORIGIN, _LOW_PC, tags=_SUBPROGRAM):
                    yield origin
                elif data[pos - 1] == 0:  # code, a name of at least one byte, NUL, then the entry
                    code = pos - 2
                    while code > max(unit.top_die, pos - _MAX_NAME) and data[code] >= 0x20:
                        code -= 1
                    if unit.top_die < code < pos - 2 and \
                            self._starts_with(unit, data[code], _NAME, _LOW_PC, tags=_SUBPROGRAM):
                        yield code
            pos = data.find(needle, pos + 1)

    def _starts_with(self, unit: Unit, code: int, *specs: tuple[str, str], tags: frozenset[str] | None = None) -> bool:
        """Whether abbreviation ``code`` of ``unit`` (with a tag in ``tags``) lists ``specs``
        as its first attributes (name and form)."""
        return self._leading(unit, code, len(specs), tags) == specs

    def _leading(self, unit: Unit, code: int, n: int, tags: frozenset[str] | None) -> tuple[tuple[str, str], ...] | None:
        """(name, form) of the first ``n`` attributes of abbreviation ``code`` of ``unit``;
        None if there is no such code, or its tag is not in ``tags``."""
        if not 0 < code < 0x80:
            return None
        table = self._abbrev_tables.get(unit.abbrev_offset)
        if table is None:
            table = self._abbrev_tables[unit.abbrev_offset] = self._read_abbrev_table(unit.abbrev_offset)
        try:
            decl = table.get_abbrev(code)
        except KeyError:
            return None
        if tags is not None and decl["tag"] not in tags:
            return None
        return tuple((a.name, a.form) for a in decl["attr_spec"][:n])


_SUBPROGRAM = frozenset({"DW_TAG_subprogram"})
_VARIABLE = frozenset({"DW_TAG_variable"})


def _read_units(data: bytes) -> list[Unit]:
    """Every unit header, read with struct (DWARF 2-5, 32-bit format: what Go writes)."""
    units: list[Unit] = []
    pos = 0
    while pos + _UNIT_HEADER_V4.size <= len(data):
        length, version = struct.unpack_from("<IH", data, pos)
        if length >= _DWARF64:
            raise ValueError(f"64-bit DWARF unit at {pos:#x}")
        if version >= 5:
            _, _, _, _, abbrev = _UNIT_HEADER_V5.unpack_from(data, pos)
            top = pos + _UNIT_HEADER_V5.size
        else:
            _, _, abbrev, _ = _UNIT_HEADER_V4.unpack_from(data, pos)
            top = pos + _UNIT_HEADER_V4.size
        end = pos + 4 + length
        units.append(Unit(pos, end, abbrev, top))
        pos = end
    return units

