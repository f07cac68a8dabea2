"""A call worked out before (expr/eval.py ``call_plans``) has the last call's thread interrupted
before the call is set up (call/engine.py ``CallEngine.early``): the stop comes while gocall
works, and the call takes it; one not taken is waited for and the thread let go as it was.
"""

from __future__ import annotations

import time

import pytest

import gocall
from gocall.call.engine import CallEngine
from harness import tracer_pids


def test_a_repeated_call_takes_the_early_stop(target, monkeypatch):  # type: ignore[no-untyped-def]
    """The first evaluation works the call out (no plan: no early interrupt); the repeats find the
    busy worker's thread interrupted already, and every one returns the right value."""
    looks: list[bool] = []
    look = CallEngine._look

    def counted(self, tid, early=None):  # type: ignore[no-untyped-def]
        looks.append(early is not None)
        return look(self, tid, early)

    monkeypatch.setattr(CallEngine, "_look", counted)
    with gocall.attach(target.pid) as proc:
        assert proc.eval("main.Add(1, 2)") == 3
        assert not any(looks)
        first = len(looks)
        for i in range(30):
            assert proc.eval("main.Add(1, 2)") == 3
            assert proc.eval(f"main.Add({i}, 1)") == i + 1  # a new plan each time: no early interrupt
    assert any(looks[first:])  # the worker spins: its thread is running at most calls' start
    assert set(tracer_pids(target.pid).values()) == {0}
    target.assert_healthy()


def test_an_early_interrupt_not_taken_lets_the_thread_go(target):  # type: ignore[no-untyped-def]
    """Interrupted, then not called on (as if working the call out had failed): the thread is
    stopped, then detached, and runs on; the next call finds it as usual."""
    with gocall.attach(target.pid) as proc:
        assert proc.eval("main.Add(1, 2)") == 3
        deadline = time.monotonic() + 10
        while True:
            with proc.engine.early():
                interrupted = proc.engine._early is not None
                tid = proc.engine._early.tid if proc.engine._early is not None else None
            if interrupted or time.monotonic() > deadline:
                break
            time.sleep(0.01)  # the worker's thread was not running just then (descheduled)
        if not interrupted:
            pytest.fail("the worker's thread was never found running")
        assert proc.engine._early is None
        assert tracer_pids(target.pid).get(tid) == 0
        assert proc.eval("main.Add(2, 3)") == 5
    assert set(tracer_pids(target.pid).values()) == {0}
    target.assert_healthy()
