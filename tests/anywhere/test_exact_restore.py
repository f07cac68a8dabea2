"""Exact restore under load (issue 4, point 4): 500 calls injected into a hot loop that keeps
float64 accumulators in X4-X7 and compare results in RFLAGS across the injection points
(tests/fixtures/xmm); the program checks every result bit for bit."""

from __future__ import annotations

import collections

import gocall


def test_registers_and_flags_survive_500_calls(start_target, build_fixture):  # type: ignore[no-untyped-def]
    target = start_target(build_fixture("xmm"))
    where: collections.Counter[str] = collections.Counter()
    with gocall.attach(target.pid) as proc:
        for i in range(500):
            # The runtime's own epilogue, single-stepped, for one call in ten (RFLAGS put back after it).
            proc.engine.step_epilogue = i % 10 == 9
            if i % 2:
                assert proc.eval(f"main.Scale({i}.5, 2)") == i * 2 + 1 + 1.25
            else:
                assert proc.eval(f"main.Add({i}, 1)") == i + 1
            site = proc.engine.last_site
            assert site is not None
            where[site.function or "?"] += 1
    target.assert_healthy()
    assert where["main.floats"] + where["main.ints"] > 250, where  # injected inside the hot loops
