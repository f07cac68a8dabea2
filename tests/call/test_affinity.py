"""The call's thread narrowed to gocall's CPU while its traps are polled for (process/affinity.py).

A CPU is made to look free (``cpu_free``: as on a quiet machine, whatever CI's load): each test
checks the narrowing happened where it should, and that every thread of the target has its own
CPU mask afterwards, the threads a narrowed callee created included. Needs two CPUs.
"""

from __future__ import annotations

import os
import threading
import time

import pytest

import gocall
from gocall.process import affinity, ptrace, waiting
from gocall.process.threads import thread_ids
from harness import main_parked

pytestmark = pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one CPU: nothing to narrow a thread to")


def _one_mask(pid: int) -> frozenset[int]:
    """The CPU mask every thread of ``pid`` has (started from here: this process's), asserted."""
    masks = set(_masks(pid).values())
    assert len(masks) == 1, masks
    return masks.pop()


def _masks(pid: int) -> dict[int, frozenset[int]]:
    masks = {}
    for tid in thread_ids(pid):
        try:
            masks[tid] = frozenset(os.sched_getaffinity(tid))
        except ProcessLookupError:
            pass  # an M that exited meanwhile
    return masks


@pytest.fixture
def at_detach(monkeypatch: pytest.MonkeyPatch) -> list[frozenset[int]]:
    """The CPU mask each thread gocall detaches has at its PTRACE_DETACH, in order."""
    seen: list[frozenset[int]] = []
    detach = ptrace.detach

    def detached(tid: int, sig: int = 0) -> None:
        seen.append(frozenset(os.sched_getaffinity(tid)))
        detach(tid, sig)

    monkeypatch.setattr(ptrace, "detach", detached)
    return seen


@pytest.fixture
def quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every resume finds a CPU free: the narrowing is taken at each step it may be; and a trap is
    polled for up to 50 ms, so that on a loaded machine (CI's) the thread is still narrowed when
    it comes (a callee that runs longer, main.Sleep, still gets its mask back)."""
    monkeypatch.setattr(waiting._Runnable, "cpu_free", lambda self, extra=0: True)
    monkeypatch.setattr(waiting, "_POLL", 0.05)


def test_a_call_runs_narrowed_and_every_thread_keeps_its_mask(target, quiet):  # type: ignore[no-untyped-def]
    """At the callee's start (R12=0) and return (R12=1) the call's thread has one CPU, gocall's;
    before and after the call, API or batched, every thread has the mask it started with."""
    mask = _one_mask(target.pid)
    seen: list[dict[int, frozenset[int]]] = []
    with gocall.attach(target.pid) as proc:
        proc.engine.protocol_hook = lambda step: seen.append(_masks(target.pid)) if step in ("FRAME_READY",
                                                                                               "RETURNED") else None
        for i in range(5):
            assert proc.eval(f"main.Add({i}, 1)") == i + 1
            assert _one_mask(target.pid) == mask
        with proc.batch():
            assert [proc.eval(f"main.Add({i}, 2)") for i in range(5)] == [i + 2 for i in range(5)]
        proc.engine.protocol_hook = None
    assert _one_mask(target.pid) == mask
    assert len(seen) >= 10
    narrowed = [[tid for tid, m in masks.items() if m != mask] for masks in seen]
    assert all(len(n) <= 1 for n in narrowed), seen  # the call's thread, and only it
    # Not when a trap came after the poll gave up (a first call's page faults, a loaded machine).
    assert sum(len(n) for n in narrowed) >= len(seen) // 2, seen
    for n, masks in zip(narrowed, seen, strict=True):
        assert not n or (len(masks[n[0]]) == 1 and masks[n[0]] < mask)
    target.assert_healthy()


def test_threads_a_narrowed_callee_starts_get_their_creators_own_mask(target, quiet):  # type: ignore[no-untyped-def]
    """main.Spawn starts goroutines that each lock an OS thread: the runtime clones new Ms from
    the call's thread while it runs the callee on gocall's CPU. Each is stopped at its creation
    and let go with the mask it would have inherited, not gocall's one CPU."""
    before = _masks(target.pid)
    mask = _one_mask(target.pid)
    with gocall.attach(target.pid) as proc:
        for _ in range(4):
            assert proc.eval("main.Spawn(3)") == 3
            assert proc.eval("main.Add(1, 2)") == 3
    after = _masks(target.pid)
    assert len(after) > len(before)  # the callee did start threads
    assert set(after.values()) == {mask}, after
    target.assert_healthy()


def test_a_narrowed_thread_has_its_own_mask_at_its_detach(target, quiet, at_detach):  # type: ignore[no-untyped-def]
    """Given back before the detach, never after: let go untraced, a thread that starts another
    (a pending preemption SIGURG makes it schedule at once) would hand it a narrowed mask that
    nothing gives back (tried, bench/README issue 14 session 12)."""
    mask = _one_mask(target.pid)
    with gocall.attach(target.pid) as proc:
        for i in range(5):
            assert proc.eval(f"main.Add({i}, 1)") == i + 1
    assert at_detach and set(at_detach) == {mask}, at_detach
    assert _one_mask(target.pid) == mask
    target.assert_healthy()


def test_a_woken_threads_last_step_runs_on_its_other_cpus(build_fixture, start_target, quiet,  # type: ignore[no-untyped-def]
                                                          at_detach):
    """A thread caught at its return from a park (a sleepy program's) runs on as soon as it is let
    go: its last step (R12=1 to R12=16) runs on its CPUs but gocall's, so that the detach wakes it
    there, not on gocall's CPU before gocall returns; at the detach it has its own mask back."""
    sleeper = start_target(build_fixture("breaks"), ["loop", "5"])
    mask = _one_mask(sleeper.pid)
    at_restore: list[dict[int, frozenset[int]]] = []
    woken = 0
    with gocall.attach(sleeper.pid, timeout=5) as proc:
        main_parked(proc)
        for i in range(30):
            at_restore.clear()
            proc.engine.protocol_hook = lambda step: at_restore.append(
                {**_masks(sleeper.pid), 0: frozenset({affinity.current_cpu()})}) if step == "RESTORE" else None
            assert proc.eval(f"main.Double({i})") == 2 * i
            site = proc.engine.last_site
            if site is not None and site.hops >= 1 and at_restore:  # caught at a return into user code
                gocalls = at_restore[0].pop(0)  # the CPU gocall ran on then
                away = [m for m in at_restore[0].values() if m != mask]
                if away:
                    woken += 1
                    assert away == [mask - gocalls], at_restore  # its CPUs but gocall's
    assert woken, "no call caught a woken thread narrowed"
    assert set(at_detach) <= {mask}, at_detach  # its own mask at every detach
    assert _one_mask(sleeper.pid) == mask


def test_a_mask_of_one_cpu_is_left_alone(target, quiet):  # type: ignore[no-untyped-def]
    """A thread restricted to one CPU already (a user's taskset) keeps it: gocall never widens
    a mask, and has nothing to narrow."""
    cpu = min(os.sched_getaffinity(0))
    for tid in thread_ids(target.pid):
        os.sched_setaffinity(tid, {cpu})
    with gocall.attach(target.pid) as proc:
        for i in range(5):
            assert proc.eval(f'main.Greet({i})') == f"hello #{i}"
    assert set(_masks(target.pid).values()) == {frozenset({cpu})}
    target.assert_healthy()


def test_a_long_callee_runs_with_its_threads_own_mask(target, quiet):  # type: ignore[no-untyped-def]
    """A callee that runs longer than the poll (main.Sleep) gets its thread's own mask back:
    sampled from another thread from 100 to 250 ms after the callee started (the poll gives up at
    50 ms here), in a 300 ms call, no thread is narrowed."""
    mask = _one_mask(target.pid)
    samples: list[dict[int, frozenset[int]]] = []
    started, done = threading.Event(), threading.Event()

    def sample() -> None:
        if not started.wait(30):
            return
        time.sleep(0.1)
        end = time.monotonic() + 0.15
        while time.monotonic() < end and not done.is_set():
            samples.append(_masks(target.pid))
            time.sleep(0.01)

    with gocall.attach(target.pid) as proc:
        assert proc.eval("main.Add(1, 2)") == 3  # the session's first call, its set-up, before the timing
        proc.engine.protocol_hook = lambda step: started.set() if step == "FRAME_READY" else None
        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            assert proc.eval("main.Sleep(300)") == 300
        finally:
            done.set()
            started.set()
            sampler.join()
    assert samples
    for masks in samples:
        assert set(masks.values()) == {mask}, masks
    assert _one_mask(target.pid) == mask
    target.assert_healthy()
