"""The poll for a resumed thread's trap (process/waiting.py ``_poll``): taken only while every
task that wants a CPU has one, and a signal that comes while it polls is acted on as at a nap.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading

import pytest

import gocall
from gocall.errors import Interrupted
from gocall.process import waiting
from gocall.process.signals import install
from harness import tracer_pids


def test_no_poll_while_a_task_waits_for_a_cpu() -> None:
    """Restricted to one CPU with a spinner beside it, the tracer finds no CPU free (it would
    take the spinner's, as it would take a busy program's): its waits nap, as before the poll."""
    code = textwrap.dedent("""
        import os, subprocess, sys
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        from gocall.process import waiting
        runnable = waiting._Runnable()
        assert runnable.cpus == 1, runnable.cpus
        spinner = subprocess.Popen([sys.executable, "-c", "while 1: pass"])  # runnable from its fork on
        try:
            free = runnable.cpu_free()
        finally:
            spinner.kill()
            spinner.wait()
        print(free)
    """)
    got = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip() == "False"


def test_signal_during_a_polled_wait_unwinds_the_call(target, monkeypatch):  # type: ignore[no-untyped-def]
    """Every wait polled (a CPU free, as on a quiet machine) and SIGUSR1 sent before the first: the
    poll that finds the trap collects it, and the engine unwinds the call (Interrupted). Left
    pending, it would be delivered only as the call's signal mask is restored, after a call
    that went through (Signalled from the handlers installed here)."""
    monkeypatch.setattr(waiting._Runnable, "cpu_free", lambda self, extra=0: True)
    main = threading.main_thread().ident
    assert main is not None
    with install(), gocall.attach(target.pid) as proc:
        assert proc.eval("main.Add(1, 2)") == 3
        proc.engine.protocol_hook = lambda now: now == "enter" and signal.pthread_kill(main, signal.SIGUSR1)
        with pytest.raises(Interrupted) as caught:
            proc.eval("main.Add(1, 2)")
        assert caught.value.signum == signal.SIGUSR1
        proc.engine.protocol_hook = None
        assert proc.eval("main.Add(2, 3)") == 5
    target.assert_healthy()
    assert set(tracer_pids(target.pid).values()) == {0}
