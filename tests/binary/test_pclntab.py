"""pclntab against `go tool nm` (every function) and `go tool addr2line` (a sample of PCs)."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from gocall.binary import GoBinary
from gocall.binary.pclntab import (
    FuncFlag_ASM,
    FuncFlag_TOPFRAME,
    PCDATA_UnsafePoint,
    UnsafePointSafe,
    pcvalue,
)


@pytest.fixture(scope="module")
def binary(gobin: Path):
    with GoBinary.open(gobin) as b:
        yield b


def _text_symbols(nm) -> dict[int, list[tuple[str, int]]]:
    by_addr: dict[int, list[tuple[str, int]]] = {}
    for addr, size, kind, name in nm:
        if kind in "Tt":
            by_addr.setdefault(addr, []).append((_pclntab_spelling(name), size))
    return by_addr


def _pclntab_spelling(symbol: str) -> str:
    """Go 1.19's linker writes array lengths in generated names as [...] in pclntab only:
    symbol ``type..eq.[5]internal/cpu.option`` is ``type..eq.[...]internal/cpu.option`` there."""
    if symbol.startswith("type..eq."):
        return re.sub(r"\[\d+\]", "[...]", symbol)
    return symbol


def _symbol_spelling(name: str) -> str:
    """Some linkers (seen in 1.23) keep a middle dot in pclntab names that the ELF symbol
    table spells with a plain dot: ``type:.eq.runtime.untracedG·4`` vs ``…untracedG.4``."""
    return name.replace("\u00b7", ".")


def test_every_function_matches_nm(binary: GoBinary, nm) -> None:
    """Each pclntab function is an nm text symbol at the same address, under the same name
    (assembly functions carry an .abi0 suffix in the symbol table only)."""
    by_addr = _text_symbols(nm)
    funcs = list(binary.pclntab)
    assert len(funcs) == len(binary.pclntab) > 1000
    for func in funcs:
        names = {name: size for name, size in by_addr.get(func.entry, ())}
        name = func.name if func.name in names or func.name + ".abi0" in names else _symbol_spelling(func.name)
        assert name in names or name + ".abi0" in names, (func, names)
        size = names.get(name, names.get(name + ".abi0"))
        assert size is not None and size <= func.end - func.entry


def test_every_sized_nm_function_is_in_pclntab(binary: GoBinary, nm) -> None:
    for addr, symbols in _text_symbols(nm).items():
        for name, size in symbols:
            if size == 0:  # runtime.text, runtime.etext: markers, not functions
                continue
            func = binary.pclntab.func_for_pc(addr)
            assert func is not None and func.entry == addr, name
            assert _pclntab_spelling(name) in (func.name, func.name + ".abi0", _symbol_spelling(func.name),
                                               _symbol_spelling(func.name) + ".abi0")


def test_func_by_name_and_for_pc(binary: GoBinary, nm) -> None:
    by_name = {name: addr for addr, _, _, name in nm}
    for name in ("main.main", "main.Add", "main.(*Point).Move", "main.Point.Area", "runtime.debugCallV2"):
        func = binary.pclntab.func_by_name(name)
        assert func is not None and func.entry == by_name[name]
        assert binary.pclntab.func_for_pc(func.entry) == func
        assert binary.pclntab.func_for_pc(func.end - 1) == func
        assert func.end - 1 in func and func.end not in func
    assert binary.pclntab.func_by_name("main.NoSuchFunction") is None
    assert binary.pclntab.func_for_pc(binary.text_start - 1) is None
    assert binary.pclntab.func_for_pc(binary.pclntab.func_at(len(binary.pclntab) - 1).end) is None


def test_file_line_matches_addr2line(toolchain, gobin: Path, binary: GoBinary) -> None:
    funcs = list(binary.pclntab)
    rng = random.Random(1234)
    pcs = [f.entry for f in funcs if f.name.startswith("main.")]
    pcs += [rng.randrange(f.entry, f.end) for f in rng.sample(funcs, 300)]
    out = toolchain.run("tool", "addr2line", gobin, stdin="".join(f"{pc:#x}\n" for pc in pcs)).splitlines()
    assert len(out) == 2 * len(pcs)
    for pc, func_name, file_line in zip(pcs, out[0::2], out[1::2]):
        func = binary.pclntab.func_for_pc(pc)
        assert func is not None
        file, _, line = file_line.rpartition(":")
        if (file, line) == ("", "-1"):  # debug/gosym's "unknown"; the runtime (and we) say ("?", 0)
            file, line = "?", "0"
        assert (func.name, func.file_line(pc)) == (func_name, (file, int(line))), hex(pc)


def test_fixture_function_lines(binary: GoBinary) -> None:
    source = Path(__file__).parent / "fixtures" / "gobin" / "main.go"
    lines = source.read_text().splitlines()
    add = binary.pclntab.func_by_name("main.Add")
    assert add is not None
    file, line = add.file_line(add.entry)
    assert Path(file).name == "main.go" and lines[line - 1].startswith("func Add(")


def test_args_is_the_abi_frame_size(binary: GoBinary) -> None:
    """_func.args = stack args + results + spill slots for register args (facts sheet 1.8)."""
    add = binary.pclntab.func_by_name("main.Add")  # func(a, b int) int: two 8-byte spills
    mixed = binary.pclntab.func_by_name("main.Mixed")  # int8@0, float64@8, string@16, bool@32 → 40
    assert add is not None and add.args == 16
    assert mixed is not None and mixed.args == 40


def test_runtime_flags_and_ids(binary: GoBinary) -> None:
    debug_call = binary.pclntab.func_by_name("runtime.debugCallV2")
    goexit = binary.pclntab.func_by_name("runtime.goexit")
    preempt = binary.pclntab.func_by_name("runtime.asyncPreempt")
    assert debug_call is not None and goexit is not None and preempt is not None
    assert debug_call.flag & FuncFlag_ASM
    assert goexit.flag & FuncFlag_TOPFRAME
    assert preempt.funcID == 3  # FuncID_asyncPreempt, the same in every supported release
    # debugCallV2 has no PCDATA at all: a missing table reads as -1, i.e. safe, as in the runtime.
    assert debug_call.npcdata == 0
    assert debug_call.unsafe_point(debug_call.entry + 20) == UnsafePointSafe


@pytest.mark.parametrize("nn", [32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536])
def test_spdelta_of_debug_call_frames(binary: GoBinary, nn: int) -> None:
    """debugCallNN's frame is NN bytes plus the saved RBP (facts sheet 1.5)."""
    func = binary.pclntab.func_by_name(f"debugCall{nn}")
    assert func is not None
    assert max(func.spdelta(pc) for pc in range(func.entry, func.end)) == nn + 8
    assert func.spdelta(func.entry) == 0


def test_spdelta_of_debug_call_v2(binary: GoBinary) -> None:
    func = binary.pclntab.func_by_name("runtime.debugCallV2")
    assert func is not None
    assert max(func.spdelta(pc) for pc in range(func.entry, func.end)) == 160  # facts sheet 1.4


def test_unsafe_points_take_runtime_values(binary: GoBinary) -> None:
    """Across all of main.main, PCDATA_UnsafePoint only takes the runtime's defined values."""
    main = binary.pclntab.func_by_name("main.main")
    assert main is not None
    values = {main.pcdata(PCDATA_UnsafePoint, pc) for pc in range(main.entry, main.end)}
    assert UnsafePointSafe in values
    assert values <= {-1, -2, -3, -4, -5}


def test_pcdata_missing_index_is_minus_one(binary: GoBinary) -> None:
    main = binary.pclntab.func_by_name("main.main")
    assert main is not None
    assert main.pcdata(main.npcdata + 3, main.entry) == -1
    assert main.funcdata(main.nfuncdata + 1) is None


# Recorded pc-value tables: (value delta, pc delta) pairs, zig-zag values, value starting at -1.
@pytest.mark.parametrize(
    ("table", "pc", "expected"),
    [
        (bytes([0x02, 0x05, 0x04, 0x03, 0x00]), 0, 0),  # +1 over [0,5)
        (bytes([0x02, 0x05, 0x04, 0x03, 0x00]), 4, 0),
        (bytes([0x02, 0x05, 0x04, 0x03, 0x00]), 5, 2),  # +2 over [5,8)
        (bytes([0x02, 0x05, 0x04, 0x03, 0x00]), 8, -1),  # past the end
        (bytes([0x01, 0x02, 0x00]), 1, -2),  # zig-zag 1 = -1
        (bytes([0xA0, 0x01, 0x81, 0x01, 0x00]), 128, 79),  # multi-byte varints: +80 over [0,129)
    ],
)
def test_pcvalue_decoder(table: bytes, pc: int, expected: int) -> None:
    data = b"\xff" + table  # offset 0 means "no table", so start one byte in
    assert pcvalue(data, 1, 0, pc) == expected


def test_pcvalue_offset_zero_is_no_table() -> None:
    assert pcvalue(b"\x02\x05\x00", 0, 0, 0) == -1


def test_func_by_name_without_the_name_index(gobin: Path, binary: GoBinary) -> None:
    """func_by_name() on a fresh table (name offsets, no decoded names) finds the same first
    function as the full name index, for every name; missing names and tails of names are None."""
    with GoBinary.open(gobin) as fresh:
        tab = fresh.pclntab
        for name, i in binary.pclntab._names.items():
            f = tab.func_by_name(name)
            assert f is not None and f.entry == binary.pclntab.func_at(i).entry, name
        assert tab.func_by_name("main.NoSuchFunction") is None and tab.func_by_name("ain.main") is None
        assert "_names" not in tab.__dict__
