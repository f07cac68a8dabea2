"""What a cold ``gocall call`` loads: modules it does not need stay unimported (each costs
start-up time, bench/cold_attach.py), and the parser's fast path for ``pkg.F(literals)``
gives exactly the tree tree-sitter gives."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gocall.expr.parse import _parse_tree, _simple_call

# Loaded on first use only: tree-sitter (expressions beyond pkg.F(literals)), rich (a terminal),
# breakpoints and stops, the other commands, ctypes.util's ldconfig run.
_NOT_AT_START = ("tree_sitter", "tree_sitter_go", "rich", "gocall.stop", "gocall.process.tracee", "gocall.cli.info",
                 "gocall.cli.run", "gocall.cli.goroutines", "ctypes.util", "subprocess")


def test_cli_start_imports_only_what_call_needs() -> None:
    code = ("import sys, gocall.cli.main\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {_NOT_AT_START!r} or m in {_NOT_AT_START!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_lazy_names_still_importable() -> None:
    code = "import gocall; from gocall import Stop, Breakpoint, Exited; print(Stop.__name__, gocall.Breakpoint.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["Stop", "Breakpoint"]


@pytest.mark.parametrize("text", [
    "main.Add(1, 2)", 'main.Greet("world")', "main.Scale(2.5, true)", "main.F()", "main.F(-1, -0, -2.5, 0.0, false)",
    "main.F(1,)", 'main.F("a, b", "")', "x.M(1)", "main.F( 1 , 2 )", 'strings.ToUpper("héllo")', "main.F(1\n, 2)",
    "main.F(123456789012345678901234567890)",
])
def test_fast_path_is_the_tree_sitter_tree(text: str) -> None:
    assert _simple_call(text) is not None
    assert _simple_call(text) == _parse_tree(text)


@pytest.mark.parametrize("text", [
    "main.F(1,,2)", "main.F(,)", "main.F(01)", "main.F(1 2)", 'main.F("a\\n")', "main.F(0x10)", "map.F(1)",
    "main.F(1)(2)", "main.pt.Sum()", " main.F(1)", "main.F(1e3)", "main.F(.5)", "main.F(- 1)", "Add(1)", "main.F('a')",
])
def test_fast_path_leaves_the_rest_to_tree_sitter(text: str) -> None:
    assert _simple_call(text) is None
