"""Issue 18: no signal that reaches gocall may kill the target.

Before, a SIGHUP (terminal closed), SIGUSR1 or SIGALRM to ``gocall call`` during a call ended
gocall at once, and the untraced thread died of the next INT3 of debugCallV2. Now every signal
whose default action ends gocall is handled like SIGINT: the call is finished or unwound, the
thread restored and detached, and gocall exits with 128 + n.

The full cross product (every signal at every protocol step, and every signal through the CLI)
runs on the oldest and newest Go releases installed; the releases between get a sample (three
signals), which is what differs between them (the protocol code) being exercised all the same.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

import gocall
from gocall.errors import Interrupted
from gocall.process.signals import TERMINATING, Signalled, install, name
from gocall.toolchain import GoToolchain, known_toolchains
from harness import Target, tracer_pids


GOCALL = [sys.executable, "-m", "gocall.cli.main"]
_RELEASES = sorted({t.release for t in known_toolchains()})
_EDGES = {_RELEASES[0], _RELEASES[-1]} if _RELEASES else set()
_SAMPLE = {signal.SIGHUP, signal.SIGUSR1, signal.SIGRTMIN + 3}  # the releases between the edges
_STEPS = ["enter", "FRAME_READY", "callee", "RETURNED", "RESTORE"]
_SIGNALS = sorted(TERMINATING - set(range(signal.SIGRTMIN + 4, signal.SIGRTMAX)))  # RT: the first few and the last


def _only_sampled(toolchain: GoToolchain, sig: int) -> None:
    if toolchain.release not in _EDGES and sig not in _SAMPLE:
        pytest.skip("the full signal list runs on the oldest and newest Go releases; a sample on the others")


def assert_unharmed(target: Target) -> None:
    """Alive and healthy (the worker's register-held pointers intact), no thread traced."""
    target.assert_healthy()
    assert set(tracer_pids(target.pid).values()) == {0}


@pytest.fixture
def handlers() -> Iterator[None]:
    """The CLI's handlers in this process (the test sends itself SIGHUP, SIGPIPE...)."""
    with install():
        yield


# SIGALRM is pytest-timeout's in this process: collected during a call, its handler runs there
# (process/waiting.py, a handler of someone else's) and fails the test. The CLI test covers it.
@pytest.mark.parametrize("sig", [s for s in _SIGNALS if s != signal.SIGALRM], ids=name)
def test_signal_at_each_protocol_step(target, go_toolchain, handlers, sig):  # type: ignore[no-untyped-def]
    """A real signal to this (the tracer's) thread at each step: finished or unwound, restored,
    detached, then reported with its number (Interrupted from the engine, or Signalled when it is
    still pending as the call ends, e.g. sent at RESTORE, after the last wait). One target for
    the five steps (each checked unharmed), for time: a target starts in ~0.5 s."""
    _only_sampled(go_toolchain, sig)
    main = threading.main_thread().ident
    assert main is not None
    for step in _STEPS:

        def hook(now: str) -> None:
            if now == step:
                signal.pthread_kill(main, sig)
            elif step == "callee" and now == "FRAME_READY":
                threading.Timer(0.1, signal.pthread_kill, (main, sig)).start()

        with gocall.attach(target.pid) as proc:
            proc.engine.protocol_hook = hook
            with pytest.raises((Interrupted, Signalled)) as caught:
                proc.eval("main.Sleep(300)" if step == "callee" else "main.Add(1, 2)")
            assert getattr(caught.value, "signum") == sig, step
            proc.engine.protocol_hook = None
            assert proc.eval("main.Add(2, 3)") == 5
        assert_unharmed(target)


def start_call_in_flight(pid: int, expr: str) -> subprocess.Popen[str]:
    """``gocall call`` in its own session (a signal meant for it reaches nothing else), returned
    once its callee runs (its ``--log call`` line says so)."""
    p = subprocess.Popen([*GOCALL, "--log", "call", "call", str(pid), expr], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    assert p.stderr is not None
    for line in p.stderr:
        if "starting the callee" in line:
            return p
    raise AssertionError(f"gocall ended before starting the callee: {p.wait()}")


@pytest.mark.parametrize("sig", _SIGNALS, ids=name)
def test_cli_signal_during_the_callee(target, go_toolchain, sig):  # type: ignore[no-untyped-def]
    """The issue's table: ``gocall call PID 'main.Sleep(1000)'`` and a signal 0.1 s into the call.
    Before: SIGHUP, SIGUSR1, SIGALRM, SIGQUIT, SIGRTMIN+n... ended gocall and the target died of
    SIGTRAP; SIGPIPE and SIGXFSZ (ignored by Python) let the call end with 0."""
    _only_sampled(go_toolchain, sig)
    p = start_call_in_flight(target.pid, "main.Sleep(1000)")
    time.sleep(0.1)
    # Popen.send_signal sends nothing to a process it saw end: on a loaded machine this test once
    # slept past the call, and gocall's 0 looked like a lost signal.
    assert p.poll() is None, "gocall ended before the signal could be sent (a loaded machine?)"
    p.send_signal(sig)
    start = time.monotonic()
    out, err = p.communicate(timeout=30)
    assert p.returncode == 128 + sig, err
    assert "restored" in err and "Traceback" not in err, err
    assert out == ""  # the call was seen through, its result not printed
    assert time.monotonic() - start < 5
    assert_unharmed(target)


def test_cli_signal_outside_a_call_while_breakpoints_are_in(build_fixture, start_target):  # type: ignore[no-untyped-def]
    """SIGHUP while ``gocall call --break`` waits between two waits' holds: the breakpoints are
    removed (the program would die of the first INT3 hit without a tracer) and gocall exits 129."""
    loop = start_target(build_fixture("breaks"), ["loop"])
    p = subprocess.Popen([*GOCALL, "call", str(loop.pid), "--break", "main.handle if req.ID == -1", "req.ID"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    assert p.stderr is not None
    assert "waiting for main.handle" in p.stderr.readline()
    time.sleep(0.5)
    p.send_signal(signal.SIGHUP)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 129, err
    assert "SIGHUP" in err and "breakpoints were removed" in err
    time.sleep(0.3)  # the loop keeps calling main.handle: an INT3 left behind would kill it by now
    assert loop.alive and set(tracer_pids(loop.pid).values()) == {0}


def test_api_without_handlers_keeps_the_default(target):  # type: ignore[no-untyped-def]
    """Without install(), a process-directed SIGUSR1 during a call is still held and collected
    (the library blocks it in the calling thread); gocall raises Interrupted with its number."""
    main = threading.main_thread().ident
    assert main is not None
    with gocall.attach(target.pid) as proc:
        proc.engine.protocol_hook = lambda now: now == "FRAME_READY" and signal.pthread_kill(main, signal.SIGUSR1)
        with pytest.raises(Interrupted) as caught:
            proc.eval("main.Sleep(100)")
        assert caught.value.signum == signal.SIGUSR1
    assert_unharmed(target)
    assert os.getpid()  # this process survived its SIGUSR1


def test_an_interrupted_wait_takes_no_signal() -> None:
    """A wait interrupted (EINTR) after its timeout passed takes nothing: CPython's
    signal.sigtimedwait returns a siginfo the kernel never filled there, which once read as a
    SIGHUP nobody sent and unwound a call (bench/soak.py). Here the interruption is a handled
    signal whose handler outlasts the wait's timeout."""
    from gocall.process.signals import SigSet, sigtimedwait

    ran: list[int] = []

    def slow(signum: int, frame: object) -> None:
        ran.append(signum)
        time.sleep(0.05)  # past the wait's deadline when CPython retries

    previous = signal.signal(signal.SIGUSR2, slow)
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
    try:
        main = threading.get_ident()
        timer = threading.Timer(0.01, signal.pthread_kill, (main, signal.SIGUSR2))
        timer.start()
        got = sigtimedwait(SigSet({signal.SIGCHLD}), 0.03)
        timer.join()
        time.sleep(0)  # the handler runs at a bytecode boundary of this thread
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
        signal.signal(signal.SIGUSR2, previous)
    assert got is None and ran == [signal.SIGUSR2]
