"""Issue 18: a callee that does not return can be left safely (guard/handover.py).

``main.Hang()`` (tests/fixtures/hang) blocks until the program gets SIGUSR2. A second Ctrl-C,
``--timeout`` with ``--abandon``, or ``gocall.attach(..., abandon=True)`` hand the call to a
guardian process and return at once; the guardian holds the thread (a later gocall leaves it
alone), and when the test releases the callee it restores the thread, detaches and exits.
While the call is held the goroutine it interrupted waits for it (debugCallV2 resumes it only
after the call), so health is checked once the call is over (the interrupted goroutine may be
the worker or the reporter); the rest of the program runs all along (another call is made). Lean: one call per test and release.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

import gocall
from gocall.errors import Abandoned
from gocall.guard import pending
from gocall.cli.handoff import SWITCH
from harness import Target, tracer_pids

GOCALL = [sys.executable, "-m", "gocall.cli.main"]
ALONE = {**os.environ, SWITCH: "0"}  # this process traces, not a child of the per-user server (cli/handoff.py)


@pytest.fixture
def hang(build_fixture, start_target) -> Target:  # type: ignore[no-untyped-def]
    return start_target(build_fixture("hang"))  # type: ignore[no-any-return]


def gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                if f.read().rpartition(b")")[2].split()[0] in (b"Z", b"X"):
                    return True
        except OSError:
            return True
        time.sleep(0.05)
    return False


def assert_held_then_released(target: Target, guardian: int) -> None:
    """The guardian holds one thread; the program runs on; another call works meanwhile; once
    the callee is released, the guardian restores the thread, detaches and exits."""
    held = {tid: tracer for tid, tracer in tracer_pids(target.pid).items() if tracer}
    assert list(held.values()) == [guardian], held
    (tid,) = held
    found = pending.find(target.pid, tid)
    assert found is not None and found.guardian == guardian and found.function == "main.Hang"
    r = subprocess.run([*GOCALL, "call", str(target.pid), "main.Add(1, 2)"], capture_output=True, text=True,
                       timeout=60)  # fmt: skip
    assert (r.returncode, r.stdout) == (0, "3\n"), r.stderr  # on another thread: the program runs on
    said = f"thread {tid} runs a call of main.Hang on goroutine {found.goroutine}, left to guardian process {guardian}"
    for command in ("doctor", "goroutines"):  # both say which call holds the thread
        r = subprocess.run([*GOCALL, command, str(target.pid)], capture_output=True, text=True, timeout=60)
        assert said in r.stdout, r.stdout + r.stderr
    r = subprocess.run([*GOCALL, "goroutines", "--json", str(target.pid)], capture_output=True, text=True, timeout=60)
    callee = [g for g in json.loads(r.stdout) if g["goid"] == found.goroutine]  # listed, not hidden as the runtime's
    assert [g["pending"] for g in callee] == [{"thread": tid, "function": "main.Hang", "guardian": guardian,
                                               "since": found.since}], r.stdout + r.stderr  # fmt: skip
    assert callee[0]["user"]["function"] == "main.Hang"
    os.kill(target.pid, signal.SIGUSR2)  # Hang returns
    assert gone(guardian, 10), "the guardian did not finish the call"
    assert set(tracer_pids(target.pid).values()) == {0}
    assert pending.calls(target.pid) == []
    target.assert_healthy()  # the interrupted worker resumed, its registers and stack intact
    assert "released 1" in target.lines


def test_second_ctrl_c_leaves_the_call_to_a_guardian(hang):  # type: ignore[no-untyped-def]
    p = subprocess.Popen([*GOCALL, "--log", "call", "call", str(hang.pid), "main.Hang()"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    assert p.stderr is not None
    for line in p.stderr:
        if "starting the callee" in line:
            break
    time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    time.sleep(0.5)
    assert p.poll() is None  # the first Ctrl-C waits for the callee (it must return before the restore)
    start = time.monotonic()
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert time.monotonic() - start < 1.0, err
    assert p.returncode == 130, err
    assert "Ctrl-C again" in err
    m = re.search(r"left the call of main\.Hang running on goroutine (\d+): guardian process (\d+) holds thread "
                  r"(\d+)", err)  # fmt: skip
    assert m is not None, err
    assert out == ""
    assert_held_then_released(hang, int(m[2]))


def test_timeout_with_abandon(hang):  # type: ignore[no-untyped-def]
    start = time.monotonic()
    r = subprocess.run([*GOCALL, "call", str(hang.pid), "--timeout", "1", "--abandon", "main.Hang()"],
                       capture_output=True, text=True, timeout=60, start_new_session=True)  # fmt: skip
    assert r.returncode == 1, r.stderr
    assert time.monotonic() - start < 10
    m = re.search(r"guardian process (\d+)", r.stderr)
    assert m is not None, r.stderr
    assert_held_then_released(hang, int(m[1]))


def test_api_abandon(hang):  # type: ignore[no-untyped-def]
    with gocall.attach(hang.pid, timeout=0.5, abandon=True) as proc:
        with pytest.raises(Abandoned, match=r"main\.Hang running on goroutine \d+: guardian process") as caught:
            proc.eval("main.Hang()")
        assert caught.value.signum is None
    guardian = int(re.search(r"guardian process (\d+)", str(caught.value))[1])  # type: ignore[index]
    assert_held_then_released(hang, guardian)


def test_sigkill_during_a_hung_callee(hang):  # type: ignore[no-untyped-def]
    """gocall killed outright while the callee hangs: the guardian of guard/watch.py holds the
    thread from then on, as a handover guardian would (tests/guard/test_killed.py: the rest)."""
    p = subprocess.Popen([*GOCALL, "--log", "call", "call", str(hang.pid), "main.Hang()"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True, env=ALONE)  # fmt: skip
    assert p.stderr is not None
    for line in p.stderr:
        if "starting the callee" in line:
            break
    time.sleep(0.2)
    p.kill()
    p.communicate(timeout=30)
    deadline = time.monotonic() + 10
    while not (calls := pending.calls(hang.pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(calls) == 1, tracer_pids(hang.pid)
    assert_held_then_released(hang, calls[0].guardian)


def test_a_callee_that_returns_is_not_abandoned(hang):  # type: ignore[no-untyped-def]
    """--abandon only acts on a callee still running at the timeout."""
    with gocall.attach(hang.pid, timeout=2, abandon=True) as proc:
        assert proc.eval("main.Sleep(100)") == 100
    assert set(tracer_pids(hang.pid).values()) == {0}
    hang.assert_healthy()
