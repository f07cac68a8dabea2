"""Signals that reach the thread gocall holds are the program's, and it gets every one
(issue 4, point 3): SIGUSR1 sent to that very thread at each protocol step, SIGURG from
the runtime's asynchronous preemption, SIGPROF from CPU profiling, counted by the
program itself (tests/fixtures/signals)."""

from __future__ import annotations

import re
import signal
import time

import pytest

import gocall
from gocall.process import ptrace

_SIGNALS = re.compile(r"signals urg=(\d+) usr1=(\d+)")


def counts(target) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """The program's latest (SIGURG, SIGUSR1) counts."""
    for line in reversed(list(target.lines)):
        if m := _SIGNALS.fullmatch(line):
            return int(m[1]), int(m[2])
    return 0, 0


def wait_for(target, what, timeout: float = 10.0) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not what(got := counts(target)):
        if time.monotonic() > deadline:
            raise AssertionError(f"signal counts stuck at urg={got[0]} usr1={got[1]}\n{target.lines[-5:]}")
        time.sleep(0.01)
    return got


@pytest.mark.parametrize("step", ["enter", "FRAME_READY", "RETURNED", "RESTORE"])
def test_signals_reach_the_program_during_calls(start_target, build_fixture, step):  # type: ignore[no-untyped-def]
    target = start_target(build_fixture("signals"))
    urg_before = wait_for(target, lambda c: c[0] > 0)[0]  # preemption works before gocall comes
    sent = 0
    with gocall.attach(target.pid) as proc:

        def hook(name: str) -> None:
            nonlocal sent
            if name == step:
                site = proc.engine.last_site
                assert site is not None
                ptrace.tgkill(target.pid, site.tid, signal.SIGUSR1)  # the thread is stopped by us now
                sent += 1

        proc.engine.protocol_hook = hook
        for i in range(8):
            assert proc.eval(f"main.Add({i}, 1)") == i + 1
            # Standard signals coalesce while pending: one at a time, each counted before the next.
            wait_for(target, lambda c: c[1] == sent)
        assert proc.eval("main.Sleep(100)") == 100  # SIGURG and SIGPROF land on the traced thread too
        wait_for(target, lambda c: c[1] == sent)
    assert sent == 9
    wait_for(target, lambda c: c[0] > urg_before)
    assert counts(target)[1] == sent  # none twice either
    target.assert_healthy()
