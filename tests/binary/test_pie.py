"""A PIE opened with a load bias hands out and accepts runtime addresses only (binary/pie.py,
binary/elffile.py), checked on the file alone against the same file opened as linked, for
every release of the matrix (the live process: tests/call/test_pie.py)."""

from __future__ import annotations

import struct

from gocall.binary import GoBinary

BIAS = 0x55_5555_4000  # page-aligned, as the kernel loads a PIE


def test_every_address_is_moved_by_the_bias(build_binary) -> None:  # type: ignore[no-untyped-def]
    path = build_binary("gobin", "-buildmode=pie")
    with GoBinary.open(path) as linked, GoBinary.open(path, BIAS) as moved:
        assert moved.text_start == linked.text_start + BIAS
        add, add_linked = moved.pclntab.func_by_name("main.Add"), linked.pclntab.func_by_name("main.Add")
        assert add is not None and add_linked is not None
        assert add.entry == add_linked.entry + BIAS == moved.symbol("main.Add")
        assert moved.pclntab.func_for_pc(add.entry + 1) == add
        assert moved.function_signature("main.Add") == linked.function_signature("main.Add")  # DWARF found by entry
        assert moved.dwarf is not None and linked.dwarf is not None
        found, found_linked = moved.dwarf.variable("runtime.buildVersion"), linked.dwarf.variable("runtime.buildVersion")
        assert found is not None and found_linked is not None
        assert found[0] == found_linked[0] + BIAS == moved.symbol("runtime.buildVersion")
        # Pointers read from the image are relocated: buildVersion's string data pointer, then its bytes.
        ptr, length = struct.unpack("<QQ", moved.read(found[0], 16))
        (ptr_linked,) = struct.unpack("<Q", linked.read(found_linked[0], 8))
        assert ptr == ptr_linked + BIAS
        assert moved.read(ptr, length).decode() == moved.go_version
        md = moved.symbol("runtime.firstmoduledata")
        assert md is not None
        (pc_header,) = struct.unpack("<Q", moved.read(md, 8))  # moduledata.pcHeader
        assert pc_header in {moved.section_address(".gopclntab"), moved.section_address(".data.rel.ro.gopclntab")}
