"""No call where the runtime itself would not interrupt the thread (runtime/safepoint.py).

runtime.debugCallCheck looks at the PC's function only, and the runtime calls other packages'
code at moments it must not be preempted: gcStart stops the world, then runs sync.poolCleanup
(runtime.clearpools). A call injected there ran while the world was stopped, and the first
time the callee blocked the scheduler threw "releasep: invalid p state" (bench/soak.py found it
non-stop, 4 times in ~60,000 calls on 1.19 and 1.27). A stop there (a breakpoint on
sync.poolCleanup, reached within the calls fixture's first GCs) makes the moment exact: before
the check, ``main.CallGC(3)`` evaluated there killed the target on every release.
"""

from __future__ import annotations

import pytest

import gocall


def test_no_call_while_the_world_is_stopped(target) -> None:  # type: ignore[no-untyped-def]
    with gocall.attach(target.pid) as proc:
        proc.break_at("sync.poolCleanup")
        stop = proc.wait(60)
        assert isinstance(stop, gocall.Stop) and stop.function == "sync.poolCleanup"
        for expr in ("main.CallGC(3)", "main.Add(1, 2)"):
            with pytest.raises(gocall.GocallError, match=r"is in sync\.poolCleanup while the world is stopped"):
                stop.eval(expr)
    target.assert_healthy()  # the GC and the program went on
    with gocall.attach(target.pid) as proc:
        assert proc.eval("main.CallGC(3)") == 3 and proc.eval("main.Add(1, 2)") == 3
    target.assert_healthy()
