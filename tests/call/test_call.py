"""Calls into a live process built by a real Go toolchain, checked against the Go source.

Each test leaves the target running; ``assert_healthy`` proves the worker
goroutine (with its pointer-rich heap and register-held pointer) kept going
unharmed after the injections.
"""

from __future__ import annotations

import math

import pytest

import gocall
from gocall import ArgumentError, CallRefused, GoPanic, SymbolNotFound

# (expression, expected Python value): the fixture's functions are in tests/fixtures/calls/main.go.
CASES = [
    ("main.Add(1, 2)", 3),
    ("main.Add(-5, 3)", -2),
    ("main.I8(-128)", 127),  # x - 1 wraps
    ("main.I16(-32768)", 32767),
    ("main.I32(7)", 6),
    ("main.I64(-9223372036854775808)", 9223372036854775807),
    ("main.U8(255)", 0),
    ("main.U16(65535)", 0),
    ("main.U32(41)", 42),
    ("main.U64(18446744073709551615)", 0),
    ("main.Uptr(0x1000)", 0x1001),
    ("main.Not(true)", False),
    ("main.Not(false)", True),
    ("main.F32(1.25)", 2.5),
    ("main.F64(-0.75)", -1.5),
    ("main.Scale(2.5, true)", -2.5),
    ("main.Scale(2.5, false)", 5.0),
    ("main.Sum12(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)", sum(i * i for i in range(1, 13))),
    ("main.SumF17(" + ", ".join(str(i + 0.5) for i in range(1, 18)) + ")", sum((i + 0.5) * i for i in range(1, 18))),
    ("main.Mixed(-3, 1.5, 1000, false, 0.25, 7)", (-3 + 2000 + 21, 2.0, True)),
    ("main.Greet(7)", "hello #7"),
    ("main.Multi(3)", (6, False, 3.5, "n=3")),
    ("main.CallGC(2000)", 2000 * 1999 // 2),
    ("main.Recurse(1000)", 1000 * 1001 // 2),
    ("Add(20, 22)", 42),  # unqualified names are looked up in package main
]


@pytest.fixture(scope="module")
def proc(shared_target):  # type: ignore[no-untyped-def]
    with gocall.attach(shared_target.pid) as p:
        yield p


@pytest.mark.parametrize(("expr", "expected"), CASES, ids=[c[0][:40] for c in CASES])
def test_call_returns_go_result(proc, shared_target, expr, expected):  # type: ignore[no-untyped-def]
    got = proc.eval(expr)
    if isinstance(expected, float):
        assert math.isclose(got, expected)
    else:
        assert got == expected
    shared_target.assert_healthy()


def test_call_api_takes_python_values(proc):  # type: ignore[no-untyped-def]
    assert proc.call("main.Add", 1, 2) == 3
    assert proc.call("main.Scale", 1.5, True) == -1.5
    assert proc.call("main.Greet", 12) == "hello #12"


def test_panic_is_a_result_and_the_target_survives(proc, shared_target):  # type: ignore[no-untyped-def]
    with pytest.raises(GoPanic) as info:
        proc.eval("main.Boom(3)")
    assert info.value.value == "boom 3"
    assert info.value.type_name == "string"
    ev = proc.evaluate("main.Boom(4)")
    assert ev.panic is not None and ev.panic.value == "boom 4" and ev.error is None
    assert proc.eval("main.Add(1, 1)") == 2  # the runtime recovered: calls still work
    shared_target.assert_healthy()


def test_runtime_refusal_is_reported_and_harmless(proc, shared_target):  # type: ignore[no-untyped-def]
    with pytest.raises(CallRefused) as info:
        proc.eval("main.TooBig()")
    assert info.value.reason == "call frame too large"
    assert not info.value.transient
    assert proc.eval("main.Add(2, 2)") == 4
    shared_target.assert_healthy()


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("main.I8(300)", "cannot use 300 (untyped int constant) as int8 value in argument to main.I8 (overflows)"),
        ("main.Add(1.5, 2)", "cannot use 1.5 (untyped float constant) as int value in argument to main.Add (truncated)"),
        ("main.U8(-1)", "cannot use -1 (untyped int constant) as uint8 value in argument to main.U8 (overflows)"),
        ("main.Not(1)", "cannot use 1 (untyped int constant) as bool value in argument to main.Not"),
        ("main.Add(1)", "not enough arguments in call to main.Add"),
        ("main.Add(1, 2, 3)", "too many arguments in call to main.Add"),
        ("main.NoSuchFunc(1)", "function main.NoSuchFunc is not in the binary"),
        ("main.Add(1,", "not a valid Go expression"),
    ],
)
def test_bad_input_is_refused_before_touching_the_target(proc, shared_target, expr, message):  # type: ignore[no-untyped-def]
    ev = proc.evaluate(expr)
    assert ev.error is not None and message in ev.error
    assert ev.goroutine is None  # no thread was stopped
    shared_target.assert_healthy()


def test_errors_raise_typed_exceptions(proc):  # type: ignore[no-untyped-def]
    with pytest.raises(ArgumentError):
        proc.call("main.I8", 300)
    with pytest.raises(SymbolNotFound):
        proc.call("main.Nope")


def test_many_calls_keep_target_healthy(target):  # type: ignore[no-untyped-def]
    with gocall.attach(target.pid) as p:
        for i in range(200):
            assert p.call("main.Add", i, 1) == i + 1
    target.assert_healthy()
    assert target.alive
