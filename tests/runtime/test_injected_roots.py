"""The seed's situation made visible: a goroutine in the middle of an injected call.

A ``gocall call PID 'main.Block()'`` subprocess interrupts the fixture's spinning goroutine
and keeps the call in flight (Block waits for SIGUSR2). Meanwhile this test reads the target
through /proc/PID/mem only (the thread belongs to the other tracer): the interrupted
goroutine must be parked in "debug call" with debugCallV2's frame and the frame it
interrupted scanned conservatively, and the new goroutine must run Block under
debugCallNN → debugCallWrap2 → debugCallWrap1.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import gocall
from gocall.runtime.roots import CONSERVATIVE, PRECISE


def _wait_for(predicate, timeout: float = 180.0, what: str = "", call=None, seen=()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if call is not None and call.poll() is not None:
            raise AssertionError(f"gocall call ended before {what}: {call.stderr.read()}")
        time.sleep(0.05)
    detail = ""
    if call is not None:  # what the call was doing: a refusal, a goroutine it could not find
        call.send_signal(signal.SIGINT)
        detail = "; gocall call said: " + call.communicate(timeout=60)[1][-2000:]
    raise AssertionError(f"timed out waiting for {what} (goroutines last seen: {list(seen)}){detail}")


def test_roots_during_injected_call_show_both_conservative_frames(runtime_target) -> None:
    call = subprocess.Popen([sys.executable, "-m", "gocall.cli.main", "call", "--timeout", "300", str(runtime_target.pid), "main.Block()"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with gocall.attach(runtime_target.pid) as proc:
            view = proc.runtime
            headers: list[str] = []

            def parked_caller():  # type: ignore[no-untyped-def]
                goroutines = view.goroutines()
                headers[:] = [f"{g.goid}: {g.header}" for g in goroutines]
                return next((g for g in goroutines if g.header == "debug call"), None)

            caller = _wait_for(parked_caller, what="a goroutine parked in 'debug call'", call=call, seen=headers)
            callee = _wait_for(lambda: next((g for g in view.goroutines() if any(
                sf.function == "main.Block" for fr in view.frames(g, stop_running=False) for sf in fr.calls)), None),
                what="the goroutine running main.Block")
            roots = proc.roots(caller.goid)
            stack = [fr.function for fr in proc.stack(callee.goid)]
            spin_item = proc.mem.u64(proc.binary.symbol("main.SpinItem"))
        modes = [(r.frame.function, r.mode) for r in roots]
        names = [name for name, _ in modes]
        v2 = names.index("runtime.debugCallV2")
        # debugCallWrap (parked in mcall) and its ABI wrapper are precise; debugCallV2 and the
        # interrupted user frame are conservative; everything older is precise again.
        assert modes[:v2] == [("runtime.debugCallWrap", PRECISE)] * v2 and v2 >= 1
        assert modes[v2] == ("runtime.debugCallV2", CONSERVATIVE)
        assert modes[v2 + 1] in (("main.work", CONSERVATIVE), ("main.spin", CONSERVATIVE))
        assert all(mode == PRECISE for _, mode in modes[v2 + 2:])
        assert roots[v2 + 1].frame.trap  # resumes at the interrupted instruction, not after a call
        assert names[-1] == "runtime.goexit"
        # SpinItem is held by work's register (saved in debugCallV2's frame) or spin's frame.
        conservative = [s for r in roots[v2 : v2 + 2] for s in r.slots]
        assert any(s.heap is not None and s.heap.base == spin_item for s in conservative), conservative
        assert stack[0] == "main.Block" or "main.Block" in stack
        tail = stack[stack.index("main.Block") + 1 :]
        assert tail[0].startswith("debugCall") and tail[1:] == [
            "runtime.debugCallWrap2", "runtime.debugCallWrap1", "runtime.goexit"]
    finally:
        os.kill(runtime_target.pid, signal.SIGUSR2)
        out, err = call.communicate(timeout=300)
    assert call.returncode == 0, err + runtime_target.target.stderr()[:3000]
    assert out.strip() == "2"
