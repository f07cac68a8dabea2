"""Every trap of a call arrives on the interrupted thread, on every release (call/lock.py).

Only that thread is traced during a call: a trap on any other thread would kill the
target with SIGTRAP. From Go 1.21 the runtime keeps the call's goroutine on the thread
itself; on 1.19 gocall locks it (lockOSThread's fields) and must undo that exactly, or
the next goroutine to exit on that M would throw "internal lockOSThread error".
"""

from __future__ import annotations

import time

import gocall
from gocall.runtime.goroutines import Status


def _lock_state(proc: gocall.Process, goid: int) -> tuple[int, int, int, int]:
    """(g.lockedm, m.lockedg, m.lockedExt, m.lockedInt) of running goroutine ``goid`` and its M."""
    lay, mem = proc.layout, proc.mem
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        g = proc.engine._goroutine(goid)
        if g.status == Status.RUNNING and g.m:
            return (mem.u64(g.addr + lay.g_lockedm), mem.u64(g.m + lay.m_lockedg),
                    mem.u32(g.m + lay.m_lockedext), mem.u32(g.m + lay.m_lockedint))  # fmt: skip
        time.sleep(0.001)
    raise AssertionError(f"goroutine {goid} did not run")


def test_blocking_callees_come_back_to_the_interrupted_thread(target):  # type: ignore[no-untyped-def]
    with gocall.attach(target.pid) as proc:
        assert proc.eval("main.Add(1, 2)") == 3
        site = proc.engine.last_site
        assert site is not None and site.goroutine is not None
        before = _lock_state(proc, site.goroutine)
        for i in range(40):
            # Sleep parks the callee's goroutine; CallGC blocks in the GC; Boom panics (R12=2).
            assert proc.eval("main.Sleep(1)") == 1
            assert proc.eval(f"main.CallGC({i + 10})") == (i + 10) * (i + 9) // 2
            assert proc.evaluate("main.Boom(1)").panic is not None
            last = proc.engine.last_site
            assert last is not None and last.goroutine is not None
            assert _lock_state(proc, last.goroutine) == before
    target.assert_healthy()


def test_the_calls_goroutine_is_locked_from_its_start(target):  # type: ignore[no-untyped-def]
    """At R12=0, the call's goroutine (started at runtime.debugCallWrap1) already holds the lock
    to the thread: it held it from its first instruction, so a preemption request met in
    debugCallWrap1/2's prologues before R12=0 could not move it to another thread, where that
    INT3 killed the target (~1 in 5,000 calls of bench/soak.py on 1.19 before gocall locked the
    interrupted goroutine ahead of the call, not the call's at R12=0)."""
    found: list[tuple[int, int]] = []

    def hook(name: str) -> None:
        if name == "FRAME_READY":
            lay, mem = proc.layout, proc.mem
            wrap1 = proc.binary.symbol("runtime.debugCallWrap1")
            for g in proc.engine._goroutines():
                if g.status == Status.RUNNING and mem.u64(g.addr + lay.g_startpc) == wrap1:
                    found.append((g.m, mem.u64(g.addr + lay.g_lockedm)))

    with gocall.attach(target.pid) as proc:
        proc.engine.protocol_hook = hook
        for i in range(5):
            assert proc.eval(f"main.Add({i}, 1)") == i + 1
        proc.engine.protocol_hook = None
    assert len(found) == 5 and all(m and lockedm == m for m, lockedm in found), found
    target.assert_healthy()
