"""DWARF signatures and types against the fixture's source and the compiler's own unsafe.Offsetof."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from gocall.binary import GoBinary, Kind
from gocall.binary.dwarf import Dwarf, package_of
from gocall.errors import SymbolNotFound


@pytest.fixture(scope="module")
def binary(gobin: Path):
    with GoBinary.open(gobin) as b:
        yield b


@pytest.fixture(scope="module")
def dwarf(binary: GoBinary) -> Dwarf:
    assert binary.dwarf is not None
    return binary.dwarf


def _shape(params) -> list[tuple[str, str, Kind, int]]:
    return [(p.name, p.type.name, p.type.kind, p.type.size) for p in params]


@pytest.mark.parametrize(
    ("name", "params", "results"),
    [
        ("main.Mixed",
         [("a", "int8", Kind.INT8, 1), ("b", "float64", Kind.FLOAT64, 8), ("c", "string", Kind.STRING, 16),
          ("d", "bool", Kind.BOOL, 1)],
         [("~r0", "int", Kind.INT, 8), ("~r1", "string", Kind.STRING, 16)]),
        ("main.Add", [("a", "int", Kind.INT, 8), ("b", "int", Kind.INT, 8)], [("~r0", "int", Kind.INT, 8)]),
        ("main.Named", [("x", "int", Kind.INT, 8)],
         [("sum", "int", Kind.INT, 8), ("err", "error", Kind.INTERFACE, 16)]),
        ("main.(*Point).Move", [("p", "*main.Point", Kind.POINTER, 8), ("dx", "int", Kind.INT, 8)], []),
        ("main.Point.Area", [("p", "main.Point", Kind.STRUCT, 32)], [("~r0", "float64", Kind.FLOAT64, 8)]),
        ("main.Walk", [("n", "*main.Node", Kind.POINTER, 8)], [("total", "int", Kind.INT, 8)]),
        ("strings.ToUpper", [("s", "string", Kind.STRING, 16)], [("~r0", "string", Kind.STRING, 16)]),
    ],
)
def test_function_signature(dwarf: Dwarf, name: str, params, results) -> None:
    sig = dwarf.function_signature(name)
    assert sig is not None and sig.name == name
    assert _shape(sig.params) == params
    assert _shape(sig.results) == results
    assert not any(p.is_result for p in sig.params) and all(r.is_result for r in sig.results)


def test_unknown_function_is_none(dwarf: Dwarf) -> None:
    assert dwarf.function_signature("main.NoSuchFunction") is None
    assert dwarf.function_signature("no/such/package.F") is None
    assert dwarf.function_signature("nodot") is None


def test_struct_matches_compiler_layout(gobin: Path, dwarf: Dwarf) -> None:
    """Offsets, size and alignment of main.Big as the compiler reports them (unsafe.Offsetof)."""
    truth = json.loads(subprocess.run([gobin, "layout"], capture_output=True, text=True, check=True).stdout)
    sig = dwarf.function_signature("main.Everything")
    assert sig is not None
    big = sig.params[0].type
    assert (big.name, big.kind, big.size, big.align) == ("main.Big", Kind.STRUCT, truth["size"], truth["align"])
    assert {f.name: f.offset for f in big.fields} == truth["offsets"]
    inner = big.fields[0]
    assert inner.embedded and (inner.type.size, inner.type.align) == (truth["inner_size"], truth["inner_align"])
    assert sig.results[0].type is big  # one GoType per DIE


@pytest.mark.parametrize(
    ("field", "kind", "size", "detail"),
    [
        ("P", Kind.POINTER, 8, lambda t: t.elem.name == "main.Point" and [f.offset for f in t.elem.fields] == [0, 8, 16]),
        ("S", Kind.SLICE, 24, lambda t: t.elem.kind == Kind.INT and [f.name for f in t.fields] == ["array", "len", "cap"]),
        ("Arr", Kind.ARRAY, 6, lambda t: t.length == 3 and t.elem.kind == Kind.UINT16),
        ("M", Kind.MAP, 8, lambda t: t.key.kind == Kind.STRING and t.elem.kind == Kind.INT),
        ("C", Kind.CHAN, 8, lambda t: t.elem.kind == Kind.INT),
        ("F", Kind.FUNC, 8, lambda t: t.name == "func(int) int"),
        ("I", Kind.INTERFACE, 16, lambda t: [f.name for f in t.fields] == ["_type", "data"]),
        ("Sh", Kind.INTERFACE, 16, lambda t: t.name == "main.Shape" and [f.name for f in t.fields] == ["tab", "data"]),
        ("U", Kind.UINTPTR, 8, None),
        ("C64", Kind.COMPLEX64, 8, lambda t: t.align == 4),
        ("C128", Kind.COMPLEX128, 16, None),
        ("UP", Kind.UNSAFE_POINTER, 8, None),
        ("T", Kind.FLOAT64, 8, lambda t: t.name == "main.Celsius" and t.is_float),
        ("B", Kind.BOOL, 1, None),
        ("U8", Kind.UINT8, 1, lambda t: t.is_integer and not t.is_signed),
        ("U16", Kind.UINT16, 2, None),
        ("U32", Kind.UINT32, 4, None),
        ("U64", Kind.UINT64, 8, None),
        ("I16", Kind.INT16, 2, lambda t: t.is_signed),
        ("I32", Kind.INT32, 4, None),
        ("I64", Kind.INT64, 8, None),
        ("F32", Kind.FLOAT32, 4, None),
        ("U0", Kind.UINT, 8, None),
    ],
)
def test_field_kinds(dwarf: Dwarf, field: str, kind: Kind, size: int, detail) -> None:
    sig = dwarf.function_signature("main.Everything")
    assert sig is not None
    t = next(f.type for f in sig.params[0].type.fields if f.name == field)
    assert (t.kind, t.size) == (kind, size)
    assert detail is None or detail(t)


def test_recursive_type_is_a_cycle(dwarf: Dwarf) -> None:
    sig = dwarf.function_signature("main.Walk")
    assert sig is not None
    ptr = sig.params[0].type
    node = ptr.elem
    assert node is not None and [f.name for f in node.fields] == ["Val", "Next"]
    assert node.fields[1].type is ptr
    assert "main.Node" in repr(node) and hash(node) == hash(node) and node == node


# runtime.g / runtime.m offsets from the facts sheet (research/go-runtime-facts.md 4.2, 4.3).
RUNTIME_LAYOUTS = {
    (1, 19): {"g": {"stack.lo": 0x0, "stack.hi": 0x8, "m": 0x30, "sched.sp": 0x38, "atomicstatus": 0x90,
                    "goid": 0x98, "": 392},
              "m": {"g0": 0x0, "procid": 0x48, "curg": 0xC0, "": 1008}},
    (1, 27): {"g": {"stack.lo": 0x0, "stack.hi": 0x8, "m": 0x30, "sched.sp": 0x38, "atomicstatus": 0x90,
                    "goid": 0x98, "": 456},
              "m": {"g0": 0x0, "procid": 0x40, "curg": 0xB8, "": 1832}},
}


@pytest.mark.parametrize("struct", ["g", "m"])
def test_runtime_struct_layout_matches_facts(toolchain, dwarf: Dwarf, struct: str) -> None:
    expected = RUNTIME_LAYOUTS.get(toolchain.release)
    if expected is None:
        pytest.skip(f"no recorded runtime layouts for {toolchain.version}")
    layout = dwarf.struct_layout(f"runtime.{struct}")
    want = dict(expected[struct])
    assert layout.size == want.pop("")
    assert {k: layout[k] for k in want} == want


def test_struct_layout_unknown_raises(dwarf: Dwarf) -> None:
    with pytest.raises(SymbolNotFound):
        dwarf.struct_layout("runtime.noSuchStruct")
    assert dwarf.struct_die("runtime.noSuchStruct") is None
    # "runtime.g" is also the tail of longer names ("*runtime.g", "[]*runtime.g"): only the struct counts.
    assert dwarf.struct_die("runtime.g") is not None


def test_struct_type_by_name(dwarf: Dwarf) -> None:
    gobuf = dwarf.struct_type("runtime.gobuf")
    assert gobuf is not None and gobuf.kind == Kind.STRUCT
    assert [f.name for f in gobuf.fields][:2] == ["sp", "pc"]


@pytest.mark.parametrize(
    ("name", "package"),
    [
        ("main.main", "main"),
        ("main.(*T).M", "main"),
        ("strings.ToUpper", "strings"),
        ("example.com/m/pkg.(*T).M", "example.com/m/pkg"),
        ("example.com/m/pkg.F[go.shape.*example.com/x.T]", "example.com/m/pkg"),
        ("internal/runtime/atomic.(*Uint32).Load", "internal/runtime/atomic"),
        ("nodot", None),
    ],
)
def test_package_of(name: str, package: str | None) -> None:
    assert package_of(name) == package


def test_packages_are_the_units_in_link_order(dwarf: Dwarf) -> None:
    """The unit list read from the headers is what pyelftools' walk of every unit says."""
    walked: list[str] = []
    for cu in dwarf.info.iter_CUs():
        name = cu.get_top_DIE().attributes["DW_AT_name"].value.decode()
        if name not in walked:
            walked.append(name)
    assert dwarf.packages == walked


def test_every_out_of_line_function_is_found(binary: GoBinary, dwarf: Dwarf) -> None:
    """Each function pyelftools' full walk finds out of line (DW_AT_low_pc = its entry in
    pclntab) is found by the byte-level lookup, by name and entry, with that DIE or a
    declaration listing its parameters (assembly functions)."""
    entries = {f.entry: f.name for f in binary.pclntab}
    walked = 0
    for cu in dwarf.info.iter_CUs():
        for die in cu.get_top_DIE().iter_children():
            low = die.attributes.get("DW_AT_low_pc")
            if die.tag != "DW_TAG_subprogram" or low is None or low.value not in entries:
                continue
            walked += 1
            found = dwarf.function_die(entries[low.value], low.value)
            assert found is not None, entries[low.value]
            assert found.offset == die.offset or dwarf.function_signature(entries[low.value], low.value).params
    assert walked > 1000


@pytest.fixture(scope="module")
def generic(build_binary) -> GoBinary:
    with GoBinary.open(build_binary("generic")) as b:
        yield b


def test_generic_instantiations(generic: GoBinary) -> None:
    """Generic functions are compiled into the unit of the package that instantiates them
    (pair.Make into main's), and Go 1.19/1.20 name all instantiations of Sum ``main.Sum[...]``
    in pclntab while DWARF names each by its shape: every one is found by its entry."""
    funcs = [f for f in generic.pclntab if f.name.startswith(("main.Sum[", "example.com/generic/pair."))]
    assert len(funcs) == 4, [f.name for f in funcs]
    sigs = {}
    for f in funcs:
        assert generic.dwarf is not None
        die = generic.dwarf.function_die(f.name, f.entry)
        assert die is not None and die.attributes["DW_AT_low_pc"].value == f.entry, f.name
        sig = generic.dwarf.function_signature(f.name, f.entry)
        assert sig is not None
        sigs[f.entry] = [p.name for p in sig.params + sig.results]
    sums = [sigs[f.entry] for f in funcs if f.name.startswith("main.Sum[")]
    assert len(sums) == 2 and all("xs" in names and "~r0" in names for names in sums)
    make = next(sigs[f.entry] for f in funcs if ".Make[" in f.name)
    assert {"k", "v", "~r0"} <= set(make)
