"""The target's registers after a call are exactly the registers before it.

``test_call_injection_flag_corruption`` tells the story of Delve's bug: the
runtime's epilogue after the R12=16 trap ends in ``ADDQ $152, SP``, which
changes RFLAGS after the debugger restored them. Both of gocall's restore
paths (performing the epilogue itself, or single-stepping the runtime's and
restoring RFLAGS afterwards) must give back every register bit for bit.
"""

from __future__ import annotations

import pytest

import gocall
from gocall.call.protocol import Injector, Returned
from gocall.expr.parse import parse
from gocall.process import ptrace


# guarded: the session keeps an INT3 on the tail's first instruction (guard/watch.py Watch.tail),
# which both paths must see past: the emulation knows the tail with it, the steps begin after it.
@pytest.mark.parametrize("guard", [False, True], ids=["unguarded", "guarded"])
@pytest.mark.parametrize("step_epilogue", [False, True], ids=["emulated-epilogue", "stepped-epilogue"])
def test_call_injection_flag_corruption(target, step_epilogue, guard):  # type: ignore[no-untyped-def]
    with gocall.attach(target.pid, guard=guard) as proc:
        setup, _ = proc.evaluator.prepare(parse("main.Add(40, 2)"))  # type: ignore[arg-type]
        with proc.engine.hold() as held:
            assert not guard or proc.engine.watch is not None and proc.engine.watch.tail is not None
            thread = held.thread
            tid = thread.tid
            regs_before, xstate_before = ptrace.getregs(tid), ptrace.getxstate(tid)
            injector = Injector(thread, proc.mem, proc.engine.entry)
            injector.step_epilogue = step_epilogue
            outcome = injector.inject(setup)
            # The emulation must recognise every release's epilogue (go1.19's differs), or it silently steps.
            epilogues = proc.engine.entry.epilogues
            assert step_epilogue or (epilogues and all(epilogues.values()))
            regs_after, xstate_after = ptrace.getregs(tid), ptrace.getxstate(tid)
    assert isinstance(outcome, Returned) and outcome.int_regs[0] == 42
    assert regs_after.as_dict() == regs_before.as_dict()
    assert xstate_after == xstate_before
    target.assert_healthy()


def test_other_threads_run_during_a_call(target):  # type: ignore[no-untyped-def]
    """While the injected call sleeps, the reporter goroutine keeps printing. The callee writes a
    line as it starts and as it ends, into the pipe the reports go to: the reports between them
    were written during the call. (Counting the lines read when the call returned missed those
    the test's reader thread had not read yet: 1 run in 3 failed at load 12.)"""
    with gocall.attach(target.pid) as proc:
        assert proc.eval("main.Nap(600)") == 600
    begins, ends = target.wait_line("nap 600 begins"), target.wait_line("nap 600 ends")
    during = sum(1 for line in target.lines[begins:ends] if line.startswith("health "))
    assert during >= 3, f"only {during} reports while the call ran 600 ms"
    target.assert_healthy()
