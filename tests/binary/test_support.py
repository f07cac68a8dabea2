"""What gocall accepts and refuses, on real builds of every release: non-Go files, PIE,
cgo, -race, stripped. Refusals must name the reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from gocall.binary import GoBinary
from gocall.binary.support import assess, check_callable
from gocall.errors import NotGoBinary
from gocall.toolchain import GoToolchain


@pytest.mark.parametrize("path", ["/bin/true", "/etc/passwd"])
def test_non_go_files_are_refused_with_the_reason(path: str) -> None:
    with pytest.raises(NotGoBinary, match="not a Go executable|not an ELF file"):
        GoBinary.open(path)


def test_default_build_is_callable(gobin: Path) -> None:
    with GoBinary.open(gobin) as binary:
        support = check_callable(binary)
    assert support.dwarf and support.symtab and support.debug_call
    assert not (support.pie or support.cgo or support.race)
    assert support.refusal is None and "calls" in support.features


def test_debug_pinner_from_go_1_23(toolchain: GoToolchain, gobin: Path) -> None:
    with GoBinary.open(gobin) as binary:
        assert assess(binary).debug_pinner == (toolchain.release >= (1, 23))


def test_stripped_build_is_callable_with_declarations(gobin_stripped: Path) -> None:
    with GoBinary.open(gobin_stripped) as binary:
        support = check_callable(binary)
    assert not support.dwarf and not support.symtab
    assert "signatures from Go source or declarations (no DWARF)" in support.features


def test_pie_is_detected_and_callable(build_binary) -> None:  # type: ignore[no-untyped-def]
    with GoBinary.open(build_binary("gobin", "-buildmode=pie")) as binary:
        support = check_callable(binary)
        assert support.pie and "position-independent (PIE)" in support.features
        assert binary.bias == 0  # a file alone: addresses as linked
        add = binary.pclntab.func_by_name("main.Add")
        assert add is not None and binary.symbol("main.Add") == add.entry


def test_cgo_is_detected_and_callable(build_binary) -> None:  # type: ignore[no-untyped-def]
    with GoBinary.open(build_binary("cgo", env={"CGO_ENABLED": "1"})) as binary:
        support = check_callable(binary)
    assert support.cgo and not support.race


def test_race_is_detected_and_callable(build_binary) -> None:  # type: ignore[no-untyped-def]
    with GoBinary.open(build_binary("gobin", "-race", env={"CGO_ENABLED": "1"})) as binary:
        support = check_callable(binary)
    assert support.race
