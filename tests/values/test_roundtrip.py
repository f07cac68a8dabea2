"""Issue 3 acceptance: values round-trip through identity-like Go functions unchanged
(hypothesis), and 1,000 calls with strings and &T{} of 1..4096 bytes allocated in the
target, each result checked and the target's heap verified by the fixture itself
(main.Check, main.Keep and main.KeepBytes count any wrong size or overlap as corruption)."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gocall
from gocall.toolchain import known_toolchains
from gocall.values.gofmt import quote


@pytest.fixture(scope="module")
def proc(values_target):  # type: ignore[no-untyped-def]
    with gocall.attach(values_target.pid) as p:
        yield p


_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
ints = st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1)
texts = st.text(max_size=200)


@_SETTINGS
@given(x=ints)
def test_int64_roundtrip(proc, x):  # type: ignore[no-untyped-def]
    assert proc.eval(f"main.IdI64({x})") == x


@_SETTINGS
@given(x=st.floats(allow_nan=False, allow_infinity=False))
def test_float64_roundtrip(proc, x):  # type: ignore[no-untyped-def]
    got = proc.eval(f"main.IdF64({x!r})")
    assert got == x and math.copysign(1, got) == math.copysign(1, x)


@_SETTINGS
@given(s=texts)
def test_string_roundtrip(proc, s):  # type: ignore[no-untyped-def]
    assert proc.eval(f"main.Echo({quote(s)})") == s


@_SETTINGS
@given(a=st.integers(-128, 127), f=st.floats(width=32, allow_nan=False, allow_infinity=False), s=texts,
       b=st.booleans())
def test_struct_roundtrip(proc, a, f, s, b):  # type: ignore[no-untyped-def]
    lit = f"main.Mixed{{A: {a}, F: {f!r}, S: {quote(s)}, B: {'true' if b else 'false'}}}"
    got = proc.eval(f"main.IdMix({lit})")
    assert (got.A, got.F, got.S, got.B) == (a, f, s, b)


def _pattern(n: int) -> str:
    return "".join(f"\\x{(i * 7 + n) & 0xFF:02x}" for i in range(n))


def test_1000_allocations_of_1_to_4096_bytes(proc, values_target):  # type: ignore[no-untyped-def]
    rng = random.Random(3)
    for i in range(1000):
        n = rng.randint(1, 4096)
        if i % 2:
            assert proc.eval(f'main.Check("{_pattern(n)}", {n})') is True
        else:
            blob = f"&main.Blob{{N: {n}, Ref: &main.Point{{{n}, {-n}}}, Pad: [6]int{{5: {n}}}}}"
            assert proc.eval(f"main.Keep({blob}, {n})") > 0
    values_target.assert_healthy()


def _bytes_literal(n: int) -> str:
    """``&[n]byte{...}`` with bytes 0, n/2 and n-1 set as main.KeepBytes expects, the rest zero."""
    keys = sorted({0, n // 2, n - 1})
    return f"&[{n}]byte{{{', '.join(f'{i}: {(i * 7 + n) & 0xFF | 1}' for i in keys)}}}"


def test_new_arrays_of_1_to_4096_bytes(proc, values_target, go_toolchain):  # type: ignore[no-untyped-def]
    """``&[N]byte{...}`` for N in 1..4096: an object of exactly N bytes each time (the type is
    not in the binary: gocall makes it, and allocates it without a descriptor as it has no
    pointers). 1,000 calls on the newest release, 100 on the others (the time it takes)."""
    newest = max(t.release for t in known_toolchains())
    count = 1000 if go_toolchain.release == newest else 100
    rng = random.Random(4096)
    sizes = [1, 2, 3, 4096, *(rng.randint(1, 4096) for _ in range(count - 4))]
    for n in sizes:
        kept = proc.eval(f"main.KeepBytes(unsafe.Pointer({_bytes_literal(n)}), {n})")
        assert kept > 0, n
    values_target.assert_healthy()
