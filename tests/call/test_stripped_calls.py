"""Calls into binaries built with ``-ldflags='-s -w'`` (no symbol table, no DWARF), the
signatures declared by the user, on every release of the matrix."""

from __future__ import annotations

import math

import pytest

import gocall
from gocall import SymbolNotFound
from gocall.errors import ArgumentError

DECLARED = [
    "func main.Add(a, b int) int",
    "main.Scale(x float64, neg bool) float64",
    "func main.Greet(n int) string",
    "func main.Multi(n int) (int, bool, float64, string)",
    "func main.Mixed(a int8, b float64, c uint16, d bool, e float32, f int) (int, float64, bool)",
]


@pytest.fixture
def stripped(build_fixture, start_target):  # type: ignore[no-untyped-def]
    return start_target(build_fixture("calls", ["-ldflags=-s -w"]))


def test_declared_signatures_make_stripped_binaries_callable(stripped) -> None:  # type: ignore[no-untyped-def]
    with gocall.attach(stripped.pid) as proc:
        assert proc.binary.dwarf is None and proc.binary.symbols == {}
        for sig in DECLARED:
            proc.declare(sig)
        assert proc.eval("main.Add(1, 2)") == 3
        assert math.isclose(proc.eval("main.Scale(2.5, true)"), -2.5)
        assert proc.eval("main.Greet(7)") == "hello #7"
        assert proc.eval("main.Multi(3)") == (6, False, 3.5, "n=3")
        assert proc.eval("main.Mixed(-3, 1.5, 1000, false, 0.25, 7)") == (-3 + 2000 + 21, 2.0, True)
    stripped.assert_healthy()


def test_undeclared_function_says_how_to_declare(build_fixture, start_target) -> None:  # type: ignore[no-untyped-def]
    """-trimpath: the program's source is not found (issue 16's --source is not given)."""
    stripped = start_target(build_fixture("shipped", ["-trimpath", "-ldflags=-s -w"]))  # the build other tests use
    with gocall.attach(stripped.pid) as proc, pytest.raises(SymbolNotFound, match="--declare 'func main.Add"):
        proc.eval("main.Add(1, 2)")
    stripped.assert_healthy()


def test_wrong_declaration_is_caught_by_the_frame_size(stripped) -> None:  # type: ignore[no-untyped-def]
    """_func.args is the truth the declaration is checked against before anything is injected;
    the error blames the declaration, with both sizes (issue 13.4), never gocall."""
    with gocall.attach(stripped.pid) as proc:
        proc.declare("func main.Add(a, b, c int) int")
        with pytest.raises(ArgumentError, match=r"the declaration of main.Add disagrees with the binary's argument "
                           r"frame \(declared 24 bytes, binary 16\)") as e:
            proc.eval("main.Add(1, 2, 3)")
        assert "misread" not in str(e.value) and "check the number" in (e.value.hint or "")
    stripped.assert_healthy()


@pytest.fixture
def shipped(build_fixture, start_target):  # type: ignore[no-untyped-def]
    return start_target(build_fixture("shipped", ["-ldflags=-s -w"]))


def test_string_and_slice_literals_need_no_runtime_declarations(shipped) -> None:  # type: ignore[no-untyped-def]
    """Issue 13.4: the runtime functions gocall injects itself to build arguments (mallocgc, the
    Pinner on Go >= 1.23) take their signatures from runtime/injected.py, DWARF or not."""
    with gocall.attach(shipped.pid) as proc:
        assert proc.binary.dwarf is None
        proc.declare("func main.Join(a, b string) string")
        proc.declare("func main.Sum(xs []int) int")
        assert proc.eval('main.Join("x", "y")') == "x+y"
        assert proc.eval('main.Join("a" + "b", main.Join("c", ""))') == "ab+c+"
        assert proc.eval("main.Sum([]int{1, 2, 3, 40})") == 46
        assert proc.eval("main.Sum([]int{})") == 0
    shipped.assert_healthy()


def test_missing_signature_hint_names_the_function_itself(build_fixture, start_target) -> None:  # type: ignore[no-untyped-def]
    """The hint for a function without a signature (-trimpath: its source is not found)
    shows how to declare *that* function."""
    shipped = start_target(build_fixture("shipped", ["-trimpath", "-ldflags=-s -w"]))
    with gocall.attach(shipped.pid) as proc:
        ev = proc.evaluate('main.Join("x", "y")')
        assert ev.error is not None and ev.exception is not None
        hint = ev.exception.hint or ""
        assert "func main.Join(" in hint and "main.Add" not in hint and "mallocgc" not in ev.error + hint
    shipped.assert_healthy()
