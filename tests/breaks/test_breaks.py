"""Stops: launch a program, stop at runtime.Breakpoint(), pkg.Func, file:line and conditional
breakpoints; evaluate in the stopped frame; continue; the program's output and exit status are
its own. Against tests/fixtures/breaks on every Go release."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import gocall
from gocall.errors import SymbolNotFound
from gocall.process import ptrace

FIXTURE = Path(__file__).parents[1] / "fixtures" / "breaks" / "main.go"
DEBUG = ("-gcflags=all=-N -l",)


def marked_line(name: str) -> int:
    """The line marked ``// LINE:name`` in the fixture."""
    for n, text in enumerate(FIXTURE.read_text().splitlines(), 1):
        if f"// LINE:{name}" in text:
            return n
    raise AssertionError(name)


# (expression, expected Python value) at the runtime.Breakpoint() in main.inspect (-N -l build).
LOCALS = [
    ("n", 7), ("n + 1", 8), ("n * total", 91), ("-n", -7), ("s", "hello"), ("len(s)", 5), ("s[1]", ord("e")),
    ("s == \"hello\"", True), ("msg", "hello!"), ("len(msg)", 6), ("xs", [1, 2, 3]), ("len(xs)", 3),
    ("cap(xs)", 3), ("xs[2]", 3), ("xs[0] + xs[1]", 3), ("p.X", 1), ("p.Y", 2), ("p.String()", "(1,2)"),
    ("pp.X", 5), ("(*pp).Y", 6), ("pp.String()", "(5,6)"), ("local.X", 13), ("local.Y", -13),
    ("local.String()", "(13,-13)"), ("sh.Area()", 12), ("sh.(main.Rect).W", 3), ("err.Error()", "boom"),
    ("err != nil", True), ("m[\"a\"]", 1), ("m[\"b\"]", 2), ("m[\"zz\"]", 0), ("len(m)", 2), ("req.ID", 42),
    ("req.Path", "/x"), ("req.Tags[1]", "blue"), ("req.Tag(0)", "red"), ("len(req.Tags)", 2), ("f(1)", 14),
    ("f(n)", 20), ("total", 13), ("flag", True), ("!flag", False), ("ratio", 3.25), ("ratio * 2", 6.5),
    ("Double(total)", 26), ("Double(f(0))", 26), ("IsSeven(n)", True), ("Concat(s, msg)", "hellohello!"),
    ("Label", "start"), ("Total", 0),
]


def test_runtime_breakpoint_locals(build_fixture) -> None:
    binary = build_fixture("breaks", DEBUG)
    with gocall.launch([str(binary), "inspect"]) as proc:
        stop = proc.wait(30)
        assert isinstance(stop, gocall.Stop), stop
        assert stop.function == "main.inspect" and stop.breakpoint is None
        failures = []
        for expr, want in LOCALS:
            ev = stop.evaluate(expr)
            got = ev.error if ev.error else ev.python_value
            if got != want:
                failures.append(f"{expr}: {got!r} != {want!r}")
        assert not failures, "\n".join(failures)
        names = stop.locals()
        assert {"n", "s", "xs", "p", "pp", "sh", "err", "m", "req", "f", "total", "local"} <= set(names)
        assert stop.locals(frame=1)["pp"].value is not None  # main.main's pp, one frame out
        # &local escaping into a callee is refused; --unsafe lets it through.
        refused = stop.evaluate("Keep(&total)")
        assert refused.error is not None and "stack" in refused.error
        assert stop.eval("Keep(&total)", unsafe=True) == 13
        # Assignments: a local, a global, through a pointer; the program sees them.
        assert stop.eval("total = Double(5)") == 10
        assert stop.eval("Label = Concat(s, \"!\")") == "hello!"
        assert stop.eval("pp.X = 100") == 100
        assert stop.eval("pp.Scale(2)") == 212  # (100, 6) scaled
        proc.cont()
        end = proc.wait(30)
        assert isinstance(end, gocall.Exited) and end.code == 0


def test_a_kept_run_ends_before_the_stop_is_looked_at(build_fixture) -> None:
    """Between evaluations at a stop the thread runs the call's goroutine in debugCallNN and the
    stopped goroutine waits in debugCallWrap (Stop.kept): locals, frames and the goroutine's id
    are read as the stop had them meanwhile, and whatever else looks at the process (release_kept:
    goroutines, stack, roots, the shell idle at its prompt), an assignment or a continue ends the
    run first, so the stopped goroutine is seen where it stopped and runs on from there."""
    binary = build_fixture("breaks", DEBUG)
    with gocall.launch([str(binary), "inspect"]) as proc:
        stop = proc.wait(30)
        assert isinstance(stop, gocall.Stop), stop
        goid, where = stop.goroutine, stop.location
        assert stop.eval("Double(total)") == 26 and stop.kept is not None
        assert stop.locals()["total"].value == 13 and stop.eval("ratio * 2") == 6.5  # ratio: float
        assert stop.goroutine == goid and stop.location == where and stop.kept is not None
        tid, regs = stop.thread.tid, stop.known.regs.as_dict()
        assert ptrace.getregs(tid).as_dict() != regs  # the call's goroutine, in debugCallNN
        proc.release_kept()
        assert stop.kept is None and ptrace.getregs(tid).as_dict() == regs
        assert stop.eval("Double(total)") == 26 and stop.kept is not None
        assert stop.eval("total = Double(5)") == 10  # an assignment ends the run first
        assert stop.eval("total") == 10
        assert stop.eval("Double(total)") == 20 and stop.kept is not None
        proc.cont()  # ends the run, then resumes the goroutine from its stop
        end = proc.wait(30)
        assert isinstance(end, gocall.Exited) and end.code == 0


def test_evaluations_at_a_stop_leave_the_thread_exactly(build_fixture) -> None:
    """Each evaluation at a stop leaves its debugCallV2 run open for the next one (stops/calls.py
    held: Stop.kept), and ending it (Debugger.settle, before anything else looks at the thread)
    restores the thread bit for bit: the registers and XSAVE image the stop keeps (Stop.known)
    are the ones the thread gets back, after calls of every kind, chained in a kept run or not."""
    binary = build_fixture("breaks", DEBUG)
    with gocall.launch([str(binary), "inspect"]) as proc:
        stop = proc.wait(30)
        assert isinstance(stop, gocall.Stop), stop
        tid = stop.thread.tid
        regs, xstate = ptrace.getregs(tid).as_dict(), ptrace.getxstate(tid)
        cases = [("Double(total)", 26), ("Concat(s, \"-gq7\")", "hello-gq7"), ("f(n)", 20),
                 ("p.String()", "(1,2)"), ("Double(f(0))", 26)]
        for settle_each in (True, False):
            for expr, want in cases:
                assert stop.eval(expr) == want
                assert stop.kept is not None, "the run is kept open for the next evaluation"
                assert stop.known is not None and stop.known.tid == tid
                assert stop.known.regs.as_dict() == regs and stop.known.xstate == xstate
                if settle_each:
                    proc.debugger.settle()
                    assert stop.kept is None
                    assert stop.known.regs.as_dict() == regs == ptrace.getregs(tid).as_dict()
                    assert stop.known.xstate == xstate == ptrace.getxstate(tid)
            proc.debugger.settle()
            assert ptrace.getregs(tid).as_dict() == regs and ptrace.getxstate(tid) == xstate
        assert stop.evaluate("req.Tag(5)").panic is not None  # index out of range, recovered: the run ended
        assert stop.kept is None
        assert ptrace.getregs(tid).as_dict() == regs and ptrace.getxstate(tid) == xstate
        assert stop.eval("Double(total)") == 26
        proc.cont()
        end = proc.wait(30)
        assert isinstance(end, gocall.Exited) and end.code == 0


def test_function_line_and_second_hit(build_fixture) -> None:
    binary = build_fixture("breaks")  # optimized: req is in a register at main.handle's entry
    with gocall.launch([str(binary), "hot", "5"]) as proc:
        bp = proc.break_at("main.handle")
        stop = proc.wait(30)
        assert isinstance(stop, gocall.Stop) and stop.breakpoint is bp and stop.function == "main.handle"
        assert stop.eval("req.ID") == 0 and stop.eval("req.Path") == "/hot"
        stop = proc.wait(30)  # continue to the second hit
        assert isinstance(stop, gocall.Stop) and stop.eval("req.ID") == 1 and bp.hits == 2
        proc.debugger.clear(bp)
        line = proc.break_at(f"main.go:{marked_line('handle')}")
        stop = proc.wait(30)
        # The same call when the function's body starts on an earlier line (its prologue), else the next.
        assert isinstance(stop, gocall.Stop) and stop.breakpoint is line and stop.eval("req.ID") in (1, 2)
        with pytest.raises(SymbolNotFound, match="no code at main.go:1"):
            proc.break_at("main.go:1")
        with pytest.raises(SymbolNotFound, match="no function main.nope"):
            proc.break_at("main.nope")


def test_condition_calls_a_function(build_fixture) -> None:
    binary = build_fixture("breaks")
    with gocall.launch([str(binary), "hot", "20"]) as proc:
        bp = proc.break_at("main.handle if IsSeven(req.ID)")
        stop = proc.wait(60)
        assert isinstance(stop, gocall.Stop) and stop.condition_error is None
        assert stop.eval("req.ID") == 7
        assert (bp.tests, bp.hits) == (8, 1)  # every hit before was tested and stepped over
        end = proc.wait(60)
        assert isinstance(end, gocall.Exited) and end.code == 0


def test_exit_while_threads_are_cloned_is_seen(build_fixture) -> None:
    """A thread cloned as the program calls exit_group is traced by us, but its creator's clone
    event is never reported: unless it is found and reaped, the process's end never comes."""
    binary = str(build_fixture("breaks", DEBUG))
    for _ in range(40):
        with gocall.launch([binary, "churnexit"]) as proc:
            end = proc.wait(30)
            assert isinstance(end, gocall.Exited) and end.code == 5, end


def test_cli_run_keeps_output_and_exit_status(build_fixture) -> None:
    binary = str(build_fixture("breaks"))
    plain = subprocess.run([binary, "exit", "5", "x"], input="line\n", capture_output=True, text=True, timeout=60)
    traced = subprocess.run([sys.executable, "-m", "gocall.cli.main", "run", "--", binary, "exit", "5", "x"],
                            input="line\n", capture_output=True, text=True, timeout=60)
    assert (traced.returncode, traced.stdout) == (plain.returncode, plain.stdout) == (5, "args 5,x stdin line\n")
    assert "to stderr" in traced.stderr
    hit = subprocess.run([sys.executable, "-m", "gocall.cli.main", "run", "--break", "main.handle if req.ID == 3",
                          "--eval", "req.ID", "--eval", "Double(req.ID)", "--", binary, "hot", "10"],
                         capture_output=True, text=True, timeout=60)
    assert hit.returncode == 0, hit.stderr
    assert "req.ID = 3" in hit.stderr and "Double(req.ID) = 6" in hit.stderr and "total" in hit.stdout
    bad = subprocess.run([sys.executable, "-m", "gocall.cli.main", "run", "--break", "main.nope", "--", binary],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "no function main.nope" in bad.stderr


WARMED = """
import sys, gocall
with gocall.launch([sys.argv[1], "inspect"]) as proc:
    proc.warm()
    stop = proc.wait(30)
    before = set(sys.modules)
    print(stop.eval("Double(total)"), stop.eval("n"), sorted(set(sys.modules) - before))
"""


def test_warm_leaves_a_stop_nothing_to_load(build_fixture) -> None:
    """Process.warm (the shell calls it once its prompt is up): the first evaluation at a stop
    then imports nothing (before it, the DWARF reader, the runtime view and tree-sitter's
    grammar were loaded by that evaluation: 180-290 ms of a person's first call at a stop, on
    an 8 MB binary). A fresh interpreter, so no other test has loaded them."""
    binary = build_fixture("breaks", DEBUG)
    out = subprocess.run([sys.executable, "-c", WARMED, str(binary)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == "26 7 []", out.stdout
