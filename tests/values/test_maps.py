"""Map literals built in the target (runtime/maps.py): makemap, then the mapassign the
compiler would call for the key type, or the generic one. The fixture's own lookups
(main.Lookup*) must find every key, which shows the keys were hashed as the program hashes
them; the maps are also decoded back from outside (bucket maps up to 1.23, Swiss tables
from 1.24)."""

from __future__ import annotations

import pytest

import gocall


@pytest.fixture(scope="module")
def proc(values_target):  # type: ignore[no-untyped-def]
    with gocall.attach(values_target.pid) as p:
        yield p


BIG = "map[string]int{" + ", ".join(f'"k{i}": {i * i}' for i in range(100)) + "}"

# (expression, Python value): string, int, uint16, struct, pointer keys; elements inline,
# indirect (over 128 bytes), interfaces; empty maps; maps that grow past one group/bucket.
CASES = [
    ('main.IdMap(map[string]int{"a": 1, "b": 2})', {"a": 1, "b": 2}),
    ("main.IdMap(map[string]int{})", {}),
    ('main.Lookup(map[string]int{"a": 1, "b": 2}, "b")', 2),
    ('main.CountKeys(map[string]int{"a": 1, "b": 2, "c": 3})', 3),
    (f'main.Lookup({BIG}, "k77")', 77 * 77),
    (f"main.CountKeys({BIG})", 100),
    ("main.LookupIP(map[int]main.Point{1: {1, 1}, 2: {2, 4}, -7: {X: 5}}, -7).X", 5),
    ("len(main.IdMapIP(map[int]main.Point{1: {1, 1}, 2: {2, 4}}))", 2),
    ('main.LookupPK(map[main.Point]string{{1, 2}: "a", {3, 4}: "b"}, main.Point{3, 4})', "b"),
    ("main.LookupHuge(map[int32]main.Huge{5: {A: [20]int{19: 99}}, 6: {}}, 5)", 99),
    ("main.LookupU16(map[uint16]bool{1: true, 65535: true}, 65535)", True),
    ("main.LookupPtr(map[*main.Point]int{main.VPtr: 7}, main.VPtr)", 7),
    ('main.LookupAny(map[string]interface{}{"x": 1.5, "y": "s"}, "y")', "s"),
]


@pytest.mark.parametrize(("expr", "value"), CASES, ids=[c[0][:60] for c in CASES])
def test_map_literal(proc, values_target, expr, value):  # type: ignore[no-untyped-def]
    assert proc.eval(expr) == value


def test_map_literal_decoded_back(proc, values_target):  # type: ignore[no-untyped-def]
    got = proc.eval(f"main.IdMap({BIG})")
    assert got == {f"k{i}": i * i for i in range(100)}
    ip = proc.eval("main.IdMapIP(map[int]main.Point{1: {1, 1}, 2: {2, 4}})")
    assert {k: (v.X, v.Y) for k, v in ip.items()} == {1: (1, 1), 2: (2, 4)}
    values_target.assert_healthy()


@pytest.mark.parametrize(("expr", "message"), [
    ('main.IdMap(map[string]int{"a": 1, "a": 2})', 'duplicate key "a" in map literal'),
    ("main.IdMap(map[string]int{1})", "missing key in map literal"),
    ('main.IdMap(map[string]int{"a": "b"})', 'cannot use "b" (untyped string constant) as int value in map literal'),
])
def test_bad_map_literal(proc, values_target, expr, message):  # type: ignore[no-untyped-def]
    ev = proc.evaluate(expr)
    assert ev.error is not None and message in ev.error, ev.error
    if "key" in message:  # found before anything is allocated
        assert ev.calls == 0
    values_target.assert_healthy()
