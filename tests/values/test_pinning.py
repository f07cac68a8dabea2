"""Objects gocall allocates stay alive exactly as long as the expression needs them
(call/alloc.py): pinned when another call runs before their use, not pinned when they go
straight into the arguments of the expression's next function call."""

from __future__ import annotations

import pytest

import gocall


def _pattern(n: int) -> str:
    return "".join(f"\\x{(i * 7 + n) & 0xFF:02x}" for i in range(n))


def test_string_argument_costs_one_allocation(values_target):  # type: ignore[no-untyped-def]
    """``f("lit")``: the literal's bytes (mallocgc) and the call; no debugPinnerV1, Pin or Unpin.
    Bytes the executable's read-only data holds already (a literal of the program's own) are
    used in place: the call alone."""
    with gocall.attach(values_target.pid) as proc:
        ev = proc.evaluate('main.Echo("gocall-echo-7Qz")')  # bytes found nowhere in the binary
        assert ev.error is None and ev.results[0].value == "gocall-echo-7Qz"
        assert ev.calls == 2
        ev = proc.evaluate('main.Echo("division by zero")')  # main.Div's error text
        assert ev.error is None and ev.results[0].value == "division by zero"
        assert ev.calls == 1
        rodata, data = proc.binary.section_address(".rodata"), proc.binary.section_data(".rodata")
        addr = proc.evaluator.static_bytes(b"division by zero")
        assert rodata is not None and data is not None and addr is not None
        assert rodata <= addr < rodata + len(data) and proc.mem.read(addr, 16) == b"division by zero"
    values_target.assert_healthy()


def test_a_call_with_read_only_literals_is_worked_out_once(values_target):  # type: ignore[no-untyped-def]
    """A call whose string literals point into the executable's ``.rodata`` depends on the binary
    and the text alone: remembered as a plan (Evaluator.call_plans) and replayed, as calls with
    numeric constants are. One whose bytes are allocated is worked out again each time: its
    image points at this evaluation's allocation."""
    with gocall.attach(values_target.pid) as proc:
        plans = proc.evaluator.call_plans
        for expr, want, planned, calls in [
            ('main.Echo("division by zero")', "division by zero", True, 1),
            ('main.Concat("", "division by zero")', "division by zero", True, 1),
            ('main.Echo("gocall-echo-8Qz")', "gocall-echo-8Qz", False, 2),
            ('main.Concat("division by zero", "gq-9")', "division by zerogq-9", False, 2),
        ]:
            for _ in range(3):
                ev = proc.evaluate(expr)
                assert ev.error is None and ev.results[0].value == want, (expr, ev)
                assert ev.calls == calls, (expr, ev.calls)
            assert any(call.text == expr for call in plans) is planned, expr
    values_target.assert_healthy()


def test_string_literals_of_a_call_share_one_allocation(values_target):  # type: ignore[no-untyped-def]
    """``f("a", "b")``: one mallocgc for both literals' bytes, end to end, then the call; the
    same literal twice, or one the executable holds, needs no more."""
    with gocall.attach(values_target.pid) as proc:
        for expr, want, calls in [
            ('main.Concat("gq-1x", "gq-22y")', "gq-1xgq-22y", 2),
            ('main.Concat("gq-1x", "gq-1x")', "gq-1xgq-1x", 2),
            ('main.Concat("division by zero", "gq-22y")', "division by zerogq-22y", 2),
            ('main.Concat("division by zero", "division by zero")', "division by zerodivision by zero", 1),
            ('main.Concat("", "gq-3")', "gq-3", 2),
            ('main.Concat(main.Concat("gq-4a", "gq-4b"), "gq-4c")', "gq-4agq-4bgq-4c", 4),
        ]:
            ev = proc.evaluate(expr)
            assert ev.error is None and ev.results[0].value == want, (expr, ev)
            assert ev.calls == calls, (expr, ev.calls)
        for n in range(1, 60, 7):  # lengths end to end: a wrong offset shows in Check's pattern
            assert proc.eval(f'main.Check2("{_pattern(n)}", {n}, "{_pattern(n + 3)}")') is True
    values_target.assert_healthy()


def test_objects_survive_a_collecting_call_before_their_use(values_target, go_toolchain):  # type: ignore[no-untyped-def]
    """The string is allocated, then main.Keep (which runs runtime.GC) is called, then strings
    of the same size are allocated (and upper-cased), all before main.Check reads the first
    one: unless it was kept alive across those calls its memory is reused, and main.Check
    reports the wrong bytes as corruption. The blob is consumed by main.Keep itself."""
    if go_toolchain.release < (1, 23):
        pytest.skip("no runtime.debugPinnerV1 before Go 1.23: a whole GC cycle during a later call of the "
                    "expression can free an object (the limit call/alloc.py documents)")
    with gocall.attach(values_target.pid) as proc:
        for k in range(1, 41):
            n = 64 + k * 37
            blob = f"&main.Blob{{N: {k}, Ref: &main.Point{{{k}, {-k}}}, Pad: [6]int{{5: {k}}}}}"
            reuse = " + ".join([f'main.Len(main.Upper("{"z" * n}"))'] * 4)
            assert proc.eval(f'main.Check("{_pattern(n)}", main.Keep({blob}, {k}) * 0 + ({reuse}) * 0 + {n})') is True
            # Two literals in one allocation, kept across the same calls (the block is pinned).
            j = k + 40
            blob = f"&main.Blob{{N: {j}, Ref: &main.Point{{{j}, {-j}}}, Pad: [6]int{{5: {j}}}}}"
            assert proc.eval(f'main.Check2("{_pattern(n)}", main.Keep({blob}, {j}) * 0 + ({reuse}) * 0 + 1, '
                             f'"{_pattern(n + 5)}")') is True
    values_target.assert_healthy()
