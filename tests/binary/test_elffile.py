"""GoBinary against the go command's own view of the same file (`go version`, `go tool nm`)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gocall.binary import GoBinary
from gocall.errors import BinaryError, NotGoBinary


def test_go_version_matches_go_version_command(toolchain, gobin: Path) -> None:
    expected = toolchain.run("version", gobin).split(": ", 1)[1].strip()
    with GoBinary.open(gobin) as binary:
        assert binary.go_version == expected == toolchain.version
        major, minor, patch = binary.go_version_tuple
        assert re.fullmatch(rf"go{major}\.{minor}(\.{patch})?", binary.go_version)


def test_buildinfo_matches_go_version_m(toolchain, gobin: Path) -> None:
    lines = [line.strip().split("\t") for line in toolchain.run("version", "-m", gobin).splitlines()[1:]]
    with GoBinary.open(gobin) as binary:
        info = binary.buildinfo
        assert info is not None
        assert ["path", info.path] in lines
        assert info.main is not None and ["mod", info.main.path, info.main.version] == next(
            line[:3] for line in lines if line[0] == "mod")
        expected = dict(line[1].split("=", 1) for line in lines if line[0] == "build")
        assert info.settings == expected


def test_every_symbol_matches_nm(gobin: Path, nm) -> None:
    with GoBinary.open(gobin) as binary:
        symbols = binary.symbols
        for addr, size, kind, name in nm:
            if kind == "_":  # the STT_FILE symbol "go.go": not an address
                continue
            assert symbols.get(name) == addr, name
            assert binary.symbol_size(name) == size, name


def test_symbol_finds_abi0_assembly_by_bare_name(gobin: Path, nm) -> None:
    by_name = {name: addr for addr, _, _, name in nm}
    with GoBinary.open(gobin) as binary:
        assert "runtime.asyncPreempt" not in binary.symbols
        assert binary.symbol("runtime.asyncPreempt") == by_name["runtime.asyncPreempt.abi0"]
        assert binary.symbol("runtime.debugCallV2") == by_name["runtime.debugCallV2"]
        assert binary.symbol("no.such.symbol") is None


def test_text_start_is_runtime_text(gobin: Path, nm) -> None:
    by_name = {name: addr for addr, _, _, name in nm}
    with GoBinary.open(gobin) as binary:
        assert binary.text_start == by_name["runtime.text"]


def test_stripped_binary_still_finds_text_start(toolchain, gobin_stripped: Path, nm) -> None:
    """-s -w drops .symtab and DWARF; text start then comes from pcHeader (≤1.25) or .go.module (1.26+)."""
    by_name = {name: addr for addr, _, _, name in nm}
    with GoBinary.open(gobin_stripped) as binary:
        assert binary.symbols == {}
        assert binary.dwarf is None
        assert binary.text_start == by_name["runtime.text"]
        assert binary.go_version == toolchain.version
        main = binary.pclntab.func_by_name("main.main")
        assert main is not None and main.entry == by_name["main.main"]


def test_no_dwarf_gives_none(gobin_nodwarf: Path) -> None:
    with GoBinary.open(gobin_nodwarf) as binary:
        assert binary.dwarf is None
        assert binary.symbol("main.main") is not None


def test_read_returns_file_image(gobin: Path, nm) -> None:
    """runtime.buildVersion is a Go string header; following it must give the version."""
    by_name = {name: addr for addr, _, _, name in nm}
    with GoBinary.open(gobin) as binary:
        header = binary.read(by_name["runtime.buildVersion"], 16)
        ptr, length = int.from_bytes(header[:8], "little"), int.from_bytes(header[8:], "little")
        assert binary.read(ptr, length).decode() == binary.go_version


@pytest.mark.parametrize("content", [b"", b"#!/bin/sh\necho hi\n", b"\x7fELF" + b"\0" * 12])
def test_non_elf_raises_not_go_binary(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "file"
    path.write_bytes(content)
    with pytest.raises(NotGoBinary):
        GoBinary.open(path)


def test_c_executable_raises_not_go_binary() -> None:
    path = Path("/bin/true")
    if not path.read_bytes().startswith(b"\x7fELF"):
        pytest.skip("/bin/true is not an ELF file here")
    with pytest.raises(NotGoBinary, match="not a Go executable"):
        GoBinary.open(path)


def test_not_go_binary_is_a_binary_error() -> None:
    assert issubclass(NotGoBinary, BinaryError)


def test_context_manager_closes(gobin: Path) -> None:
    with GoBinary.open(gobin) as binary:
        func = binary.pclntab.func_by_name("main.Add")
    assert binary._map.closed
    assert func is not None and func.name == "main.Add"  # results outlive the mapping


def test_symbol_lookup_without_the_table(gobin: Path, build_binary) -> None:
    """symbol() finds each name from .strtab/.symtab bytes without decoding the whole table,
    and agrees with the table for every symbol (also on a cgo binary, linked by the system
    linker)."""
    for path in (gobin, build_binary("cgo", env={"CGO_ENABLED": "1"})):
        with GoBinary.open(path) as full, GoBinary.open(path) as lazy:
            table = full._symtab
            assert len(table) > 1000
            for name, (value, size) in table.items():
                assert lazy.symbol(name) == value and lazy.symbol_size(name) == size, name
            assert lazy.symbol("no.such.symbol") is None
            assert "_symtab" not in lazy.__dict__
