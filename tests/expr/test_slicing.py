"""Slice expressions (expr/slicing.py) on strings, slices and arrays, from package variables
and from call results, as Go syntax; out-of-range bounds in the runtime's words, refused
before any call."""

from __future__ import annotations

import pytest

import gocall
from gocall.values.gofmt import format_value


@pytest.fixture(scope="module")
def proc(values_target):  # type: ignore[no-untyped-def]
    with gocall.attach(values_target.pid) as p:
        yield p


CASES = [
    ("main.VInts[1:]", "[]int{2, 3}"),
    ("main.VInts[:2]", "[]int{1, 2}"),
    ("main.VInts[:]", "[]int{1, 2, 3}"),
    ("main.VInts[3:]", "[]int{}"),
    ("main.VInts[1:2:3]", "[]int{2}"),
    ("cap(main.VInts[1:2])", "2"),
    ("cap(main.VInts[1:2:2])", "1"),
    ("main.VEmpty[:]", "[]int(nil)"),
    ("main.VBytes[1:]", "[]uint8{98, 99}"),
    ("main.VStrs[1:][1]", '"zzz"'),
    ("main.VLong[498:]", "[]int{498, 499}"),
    ("main.VArr[1:]", "[]int{8, 9}"),
    ("(&main.VArr)[:2]", "[]int{7, 8}"),
    ("main.VStr[7:]", '"世界"'),
    ("main.VStr[:5]", '"hello"'),
    ("len(main.VStr[7:])", "6"),
    ('"hello"[1:3]', '"el"'),
    ('main.Echo("hello"[1:])', '"ello"'),
    ("main.MkSlice(10)[2:5]", "[]int{20, 30, 40}"),
    ("main.MkSlice(10)[8:][1]", "90"),
    ('main.Echo("abcdef")[2:4]', '"cd"'),
    ("main.SumSlice(main.MkSlice(10)[2:5])", "90"),
    ("main.Echo(main.VStr[0:5])", '"hello"'),
    ("main.Total(main.VInts[1:]...)", "5"),
    ("main.Chars(\"abc\")[1:]", '[]string{"b", "c"}'),
]


@pytest.mark.parametrize(("expr", "go"), CASES, ids=[c[0] for c in CASES])
def test_slice_expression(proc, expr, go):  # type: ignore[no-untyped-def]
    ev = proc.evaluate(expr)
    assert ev.error is None and ev.panic is None, ev.error
    assert "; ".join(format_value(r) for r in ev.results) == go


ERRORS = [
    ("main.VInts[:4]", "slice bounds out of range [:4] with capacity 3"),
    ("main.VInts[2:1]", "slice bounds out of range [2:1]"),
    ("main.VInts[::4]", "not a valid Go expression"),  # Go's grammar wants the middle index
    ("main.VInts[0:1:4]", "slice bounds out of range [::4] with capacity 3"),
    ("main.VInts[0:3:2]", "slice bounds out of range [:3:2]"),
    ("main.VArr[:4]", "slice bounds out of range [:4] with length 3"),
    ("main.VStr[:20]", "slice bounds out of range [:20] with length 13"),
    ("main.VStr[1:2:3]", "3-index slice of string"),
    ("main.VInt[1:]", "cannot slice main.VInt (value of type int)"),
    ("main.VInts[-1:]", "index -1 must not be negative"),
]


@pytest.mark.parametrize(("expr", "message"), ERRORS, ids=[e[0] for e in ERRORS])
def test_bad_slice_expression(proc, values_target, expr, message):  # type: ignore[no-untyped-def]
    ev = proc.evaluate(expr)
    assert ev.error is not None and message in ev.error, ev.error
    assert ev.calls == 0


def test_unaddressable_array_is_refused(proc, values_target):  # type: ignore[no-untyped-def]
    ev = proc.evaluate("main.IdArr([3]int{1, 2, 3})[1:]")
    assert ev.error is not None and "(slice of unaddressable value)" in ev.error
    values_target.assert_healthy()
