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


def test_undeclared_function_says_how_to_declare(stripped) -> None:  # type: ignore[no-untyped-def]
    with gocall.attach(stripped.pid) as proc, pytest.raises(SymbolNotFound, match="--declare"):
        proc.eval("main.Add(1, 2)")
    stripped.assert_healthy()


def test_wrong_declaration_is_caught_by_the_frame_size(stripped) -> None:  # type: ignore[no-untyped-def]
    """_func.args is the truth the declaration is checked against before anything is injected."""
    with gocall.attach(stripped.pid) as proc:
        proc.declare("func main.Add(a int) int")
        with pytest.raises(ArgumentError, match="frame"):
            proc.eval("main.Add(1)")
    stripped.assert_healthy()
