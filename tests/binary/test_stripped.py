"""Stripped binaries (``-ldflags='-s -w'``): what gocall recovers without symbols.

The finders run on the unstripped build too, where the symbol table is the oracle; in
the stripped build (whose data moves by a few bytes) their results must be consistent
with the rest of the file. Every release of the matrix.
"""

from __future__ import annotations

import struct
from pathlib import Path

from gocall.binary import GoBinary
from gocall.binary.stripped import find_allgs, find_firstmoduledata, find_test_sigtrap

_MODULEDATA_TEXT = 0xB0  # moduledata.text, every release 1.19-1.27 (facts sheet 3.8)


def _pclntab_address(binary: GoBinary) -> int:
    for name in (".gopclntab", ".data.rel.ro.gopclntab"):
        address = binary.section_address(name)
        if address is not None:
            return address
    raise AssertionError("no pclntab section")


def test_finders_agree_with_the_symbol_table(gobin: Path) -> None:
    with GoBinary.open(gobin) as full:
        assert find_firstmoduledata(full, _pclntab_address(full)) == full.symbol("runtime.firstmoduledata")
        assert find_allgs(full, full.pclntab) == full.symbol("runtime.allgs") is not None
        assert find_test_sigtrap(full, full.pclntab) == full.symbol("runtime.testSigtrap") is not None


def test_runtime_variables_found_without_symbols(gobin_stripped: Path) -> None:
    with GoBinary.open(gobin_stripped) as stripped:
        assert stripped.symbols == {}
        md = stripped.symbol("runtime.firstmoduledata")
        assert md is not None
        pc_header, = struct.unpack("<Q", stripped.read(md, 8))
        text, = struct.unpack("<Q", stripped.read(md + _MODULEDATA_TEXT, 8))
        assert (pc_header, text) == (_pclntab_address(stripped), stripped.text_start)
        allgs = stripped.symbol("runtime.allgs")
        bss = stripped.section(".bss")
        assert allgs is not None and bss is not None
        assert bss["sh_addr"] <= allgs < bss["sh_addr"] + bss["sh_size"]  # a pointerful zero-initialised var
        hook = stripped.symbol("runtime.testSigtrap")  # guard/net.py's hook, a func value, nil: in .bss too
        assert hook is not None and bss["sh_addr"] <= hook < bss["sh_addr"] + bss["sh_size"] and hook % 8 == 0
        add = stripped.pclntab.func_by_name("main.Add")
        assert add is not None and stripped.symbol("main.Add") == add.entry  # functions: from pclntab
        assert stripped.symbol("runtime.noSuchVariable") is None


def test_stripped_binary_keeps_pclntab_and_buildinfo(gobin: Path, gobin_stripped: Path) -> None:
    with GoBinary.open(gobin) as full, GoBinary.open(gobin_stripped) as stripped:
        assert stripped.dwarf is None
        assert stripped.go_version == full.go_version
        assert [f.name for f in stripped.pclntab] == [f.name for f in full.pclntab]


def test_runtime_type_found_by_name_agrees_with_dwarf(toolchain, gobin: Path) -> None:  # type: ignore[no-untyped-def]
    from gocall.binary.gotypes import Kind
    from gocall.runtime import layouts

    md_types = layouts.for_go(toolchain.release + (0,)).md_types
    with GoBinary.open(gobin) as full:
        assert full.dwarf is not None
        checked = 0
        for name, kind in (("int", Kind.INT), ("string", Kind.STRING), ("float64", Kind.FLOAT64),
                           ("main.Point", Kind.STRUCT), ("*main.Point", Kind.POINTER)):
            t = full.dwarf.type_named(name)
            want = full.dwarf.runtime_type(t) if t is not None else None
            if want is not None:
                assert full.runtime_type(name, kind, md_types) == want, name
                checked += 1
        assert checked >= 2


def test_runtime_type_found_in_stripped_binary(toolchain, gobin_stripped: Path) -> None:  # type: ignore[no-untyped-def]
    from gocall.binary.gotypes import Kind
    from gocall.runtime import layouts

    md_types = layouts.for_go(toolchain.release + (0,)).md_types
    with GoBinary.open(gobin_stripped) as stripped:
        off = stripped.runtime_type("unsafe.Pointer", Kind.UNSAFE_POINTER, md_types)
        md = stripped.symbol("runtime.firstmoduledata")
        assert off is not None and md is not None
        (types,) = struct.unpack("<Q", stripped.read(md + md_types, 8))
        size, _, _, _, _, _, kind = struct.unpack("<QQIBBBB", stripped.read(types + off, 24))
        assert (size, kind & 31) == (8, Kind.UNSAFE_POINTER)
        assert stripped.runtime_type("no.SuchType", Kind.STRUCT, md_types) is None
