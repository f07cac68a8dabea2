"""runtime/injected.py, the signatures of the runtime functions gocall calls itself, checked
against DWARF of the same release: the same argument frame, every parameter and result in
the same registers or stack slot, of the same size and register class. On every release of
the matrix (a few ms each: one DWARF lookup per function)."""

from __future__ import annotations

from gocall.binary import GoBinary
from gocall.binary.gotypes import Kind, Signature
from gocall.call import abi
from gocall.expr.signature import parse_signature
from gocall.runtime import injected

# Runtime pointers are spelt unsafe.Pointer in the table.
_POINTERS = {Kind.POINTER, Kind.UNSAFE_POINTER}


def _shape(sig: Signature) -> list[tuple[object, ...]]:
    frame = abi.assign(sig.params, sig.results)
    return [(s.param.is_result, s.param.type.size, s.param.type.kind in _POINTERS or s.param.type.kind,
             s.pieces, s.stack_offset) for s in (*frame.params, *frame.results)] + [("frame", frame.size)]


def test_every_row_agrees_with_dwarf(build_fixture) -> None:  # type: ignore[no-untyped-def]
    # The values fixture links every function gocall injects: allocations, pins (>= 1.23),
    # interface conversions and map literals of each key kind.
    with GoBinary.open(build_fixture("values")) as binary:
        version = binary.go_version_tuple
        checked = []
        for name in injected.SIGNATURES:
            declared = injected.for_go(name, version)
            f = binary.pclntab.func_by_name(name)
            if declared is None:
                assert f is None, f"{name} is in the {binary.go_version} binary but has no row for it"
                continue
            if f is None:
                continue
            dwarf = binary.function_signature(name)
            assert dwarf is not None, name
            ours = parse_signature(declared)
            assert ours.name == name
            assert _shape(ours) == _shape(dwarf), f"{name} in {binary.go_version}: {declared} vs DWARF {dwarf}"
            assert abi.assign(ours.params, ours.results).size == f.args
            checked.append(name)
        assert "runtime.mallocgc" in checked and "runtime.getitab" in checked and "runtime.mapassign_faststr" in checked
        assert ("runtime.(*Pinner).Pin" in checked) == (version >= (1, 23))
