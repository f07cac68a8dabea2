"""Attach and stop: ``gocall call PID --break LOCATION EXPR...`` and ``gocall.attach(pid).break_at``
on a running program (tests/fixtures/breaks in ``loop`` mode: four goroutines handling requests
with IDs 0..19 over and over). On every way out (hit, timeout, Ctrl-C, the target exiting) the
program is left running untraced, with its text exactly as in the file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import gocall
from gocall.binary import GoBinary
from harness import Target, tracer_pids

from .test_breaks import marked_line

GOCALL = [sys.executable, "-m", "gocall.cli.main"]


@pytest.fixture
def loop(build_fixture, start_target) -> Target:
    return start_target(build_fixture("breaks"), ["loop"])


def tracers(pid: int) -> set[int]:
    """The TracerPid of every thread of ``pid``."""
    return set(tracer_pids(pid).values())


def assert_unharmed(target: Target, pcs: list[int], counter: str = "Total") -> None:
    """No thread traced, the text as in the file (breakpoints and displaced-step slots gone),
    the program still working (``counter`` still moving)."""
    deadline = time.monotonic() + 5
    while tracers(target.pid) != {0} and time.monotonic() < deadline:
        time.sleep(0.01)  # a detach is seen in /proc a moment later
    assert tracers(target.pid) == {0}
    assert target.proc.poll() is None, "the target died"
    with GoBinary.open(target.binary) as binary, open(f"/proc/{target.pid}/mem", "rb") as mem:
        for pc in pcs:
            mem.seek(pc)
            assert mem.read(16) == binary.read(pc, 16), f"text at {pc:#x} differs from the file"
        text = binary.section_data(".text")
        start = binary.section_address(".text")
        assert text is not None and start is not None
        mem.seek(start)
        assert mem.read(len(text)) == text, "the text differs from the file"
    with gocall.attach(target.pid) as proc:
        before = proc.eval(counter)
        deadline = time.monotonic() + 10
        while proc.eval(counter) == before:
            assert time.monotonic() < deadline, "the program stopped handling requests"
            time.sleep(0.01)


def sites(binary: Path, location: str) -> list[int]:
    """The addresses a breakpoint at ``location`` uses (read in a process of our own)."""
    with gocall.launch([str(binary), "exit", "0"]) as proc:
        return proc.break_at(location).pcs


def test_api_hit_on_function_locals_and_calls(loop: Target) -> None:
    with gocall.attach(loop.pid) as proc:
        bp = proc.break_at("main.handle")
        stop = proc.wait(30)
        assert isinstance(stop, gocall.Stop) and stop.breakpoint is bp and stop.function == "main.handle"
        proc.debugger.release_others(stop)  # the rest of the program runs while we evaluate
        pcs = bp.pcs
        assert not list(proc.debugger.tracee.breaks)
        req_id = stop.eval("req.ID")
        assert 0 <= req_id < 20
        assert stop.eval("req.Path") == f"/loop/{req_id}"
        assert stop.eval("req.Tag(0)").startswith("w")  # a method call on a local
        assert stop.eval("Double(req.ID) + 1") == 2 * req_id + 1
        assert "req" in stop.locals()
        assert stop.frames[1].calls[-1].function.startswith("main.loop")
        with pytest.raises(gocall.GocallError, match="no new breakpoints"):
            proc.break_at("main.add")
    assert_unharmed(loop, pcs)


def test_cli_file_line_with_condition_calling_a_function(loop: Target) -> None:
    location = f"main.go:{marked_line('handle')}"
    done = subprocess.run([*GOCALL, "call", str(loop.pid), "--break", f"{location} if IsSeven(req.ID)", "--json",
                           "req.ID", "Double(req.ID)", "req.Path"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["breakpoint"] == location and "main.handle" in out["location"] and out["condition_error"] is None
    assert [ev["results"][0]["value"] for ev in out["evaluations"]] == [7, 14, "/loop/7"]
    assert_unharmed(loop, sites(loop.binary, location))


def test_cli_outer_frame(loop: Target) -> None:
    done = subprocess.run([*GOCALL, "call", str(loop.pid), "--break", "main.handle", "--frame", "1", "w"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) in range(4)  # the worker number, a parameter of main.loop's closure
    assert "hit: goroutine" in done.stderr


def test_cli_timeout(loop: Target) -> None:
    done = subprocess.run([*GOCALL, "call", str(loop.pid), "--break", "main.handle if req.ID == 99", "--timeout", "1",
                           "req.ID"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "no hit within 1 s" in done.stderr and "left running" in done.stderr
    tested = int(done.stderr.split("conditions tested ")[1].split()[0])
    assert tested > 0  # the breakpoint was hit and its condition found false, again and again
    assert_unharmed(loop, sites(loop.binary, "main.handle"))


def test_cli_interrupted_while_waiting(loop: Target) -> None:
    gocall_proc = subprocess.Popen([*GOCALL, "call", str(loop.pid), "--break", "main.handle if req.ID == 99", "req.ID"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert gocall_proc.stderr is not None
    line = gocall_proc.stderr.readline()
    assert "waiting for main.handle" in line, line
    time.sleep(0.5)  # hits tested meanwhile
    gocall_proc.send_signal(signal.SIGINT)
    _, err = gocall_proc.communicate(timeout=60)
    assert gocall_proc.returncode == 130, err
    assert "interrupted" in err
    assert_unharmed(loop, sites(loop.binary, "main.handle"))


def test_cli_target_exits_while_waiting(loop: Target) -> None:
    gocall_proc = subprocess.Popen([*GOCALL, "call", str(loop.pid), "--break", "main.handle if req.ID == 99", "req.ID"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert gocall_proc.stderr is not None
    assert "waiting for main.handle" in gocall_proc.stderr.readline()
    time.sleep(0.3)
    os.kill(loop.pid, signal.SIGUSR1)  # the program exits with status 3 (passed on through ptrace)
    _, err = gocall_proc.communicate(timeout=60)
    assert gocall_proc.returncode == 1, err
    assert f"process {loop.pid} exited with status 3 before a breakpoint was hit" in err
    assert loop.proc.wait(10) == 3


def test_cli_interrupted_among_false_condition_hits(build_fixture, start_target) -> None:
    """Ctrl-C while three goroutines hit the breakpoint as fast as gocall steps them over."""
    spin = start_target(build_fixture("breaks"), ["spin", "3"])
    gocall_proc = subprocess.Popen([*GOCALL, "call", str(spin.pid), "--break", "main.hot if n == -1", "n"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert gocall_proc.stderr is not None
    assert "waiting for main.hot" in gocall_proc.stderr.readline()
    time.sleep(1)
    gocall_proc.send_signal(signal.SIGINT)
    _, err = gocall_proc.communicate(timeout=60)
    assert gocall_proc.returncode == 130, err
    assert_unharmed(spin, sites(spin.binary, "main.hot"), counter="Calls")


def test_attach_while_threads_are_cloned(build_fixture, start_target) -> None:
    """A thread cloned between listing the threads and seizing its creator is traced by us
    already (PTRACE_O_TRACECLONE): its own SEIZE fails with EPERM, and it must be taken as ours,
    not left traced and stopped."""
    target = start_target(build_fixture("breaks"), ["churn"])
    for _ in range(30):
        with gocall.attach(target.pid) as proc:
            proc.debugger  # traces every thread
    assert_unharmed(target, [], counter="Churned")
