"""Signatures read from Go source (gocall/gosource/) against DWARF of the same program built
without ``-s -w``: for every exported function and method of a few standard-library packages
linked into the stripped build, the argument frame is the one the binary records, and where
DWARF's agrees with the binary too, every parameter and result has the same size, kind and
place (registers or stack slot), and structs passed by value the same field offsets.

Heavy part (every standard-library package the fixture links, runtime and reflect included:
100-250 functions, ~6 s on a loaded 2-core machine) on the oldest and newest release of the
matrix only; the others check strings, strconv and time (a few seconds each).
"""

from __future__ import annotations

import pytest

from gocall.binary import GoBinary
from gocall.binary.gotypes import GoType, Kind, Signature
from gocall.call import abi
from gocall.errors import SymbolNotFound
from gocall.gosource.source import GoSource, split_name
from gocall.toolchain import known_toolchains

LIGHT = ("strings", "strconv", "time")
_POINTERS = {Kind.POINTER, Kind.UNSAFE_POINTER}


def _edge_releases() -> set[tuple[int, int]]:
    releases = sorted({t.release for t in known_toolchains()})
    return {releases[0], releases[-1]} if releases else set()


def _layout(t: GoType) -> object:
    if t.kind == Kind.STRUCT:
        return [(f.name, f.offset, f.type.size) for f in t.fields]
    return None


def _shape(sig: Signature) -> list[object]:
    frame = abi.assign(sig.params, sig.results)
    return [(s.param.is_result, s.param.type.size, s.param.type.kind in _POINTERS or s.param.type.kind,
             _layout(s.param.type), s.pieces, s.stack_offset) for s in (*frame.params, *frame.results)]


def test_source_signatures_agree_with_dwarf(build_fixture, go_toolchain) -> None:  # type: ignore[no-untyped-def]
    heavy = go_toolchain.release in _edge_releases()
    with GoBinary.open(build_fixture("shipped", ["-ldflags=-s -w"])) as stripped, \
            GoBinary.open(build_fixture("shipped")) as full:
        assert stripped.dwarf is None and full.dwarf is not None
        source = GoSource(stripped)
        assert source.goroot is not None and source.goroot.version == stripped.go_version
        checked, dwarf_agrees = 0, 0
        for f in stripped.pclntab:
            parts = split_name(f.name)
            if parts is None or not parts[2][:1].isupper() or not (parts[0] in LIGHT or heavy and source.is_std(parts[0])):
                continue
            if parts[1] is not None and not parts[1][:1].isupper():
                continue
            if f.flag & 4:  # abi.FuncFlagAsm: refused (test_assembly_functions_are_refused)
                continue
            ours = source.signature(f.name)
            assert ours is not None, f"{f.name}: {source.missing(f.name)}"
            assert abi.assign(ours.params, ours.results).size == f.args, f"{f.name}: {ours}"
            checked += 1
            theirs = full.function_signature(f.name)
            g = full.pclntab.func_by_name(f.name)
            # DWARF leaves out the receiver of some compiler-made wrappers ((*T).M of a value method, 1.19).
            if theirs is not None and g is not None and abi.assign(theirs.params, theirs.results).size == g.args:
                assert _shape(ours) == _shape(theirs), f"{f.name}: source {ours}\nDWARF {theirs}"
                dwarf_agrees += 1
        assert checked >= (100 if heavy else 15) and dwarf_agrees >= checked * 0.8, (checked, dwarf_agrees)


def test_assembly_functions_are_refused(build_fixture) -> None:  # type: ignore[no-untyped-def]
    """A function written in assembly (ABI0, arguments on the stack) is said to be, not called
    with the register ABI its Go declaration would suggest."""
    with GoBinary.open(build_fixture("shipped", ["-ldflags=-s -w"])) as stripped:
        with pytest.raises(SymbolNotFound, match=r"internal/bytealg.IndexByteString is implemented in assembly"):
            GoSource(stripped).signature("internal/bytealg.IndexByteString")
