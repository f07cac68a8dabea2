"""The escape check (expr/escape.py): a pointer into the calling goroutine's stack is refused,
naming the argument, wherever it would be passed or stored; ``unsafe`` (``--unsafe``) lets it
through. The values fixture's spin goroutine publishes the address of a Point{11, 31} on its
own stack in main.VStackAddr, and its goroutine id in main.VSpinGoid: the calls are injected
into spin, so the pointer is into the calling goroutine's stack."""

from __future__ import annotations

import subprocess
import sys

import pytest

import gocall
from gocall.expr.escape import Escape

STACK_PT = "(*main.Point)(unsafe.Pointer(main.VStackAddr))"


@pytest.fixture(scope="module")
def proc(values_target):  # type: ignore[no-untyped-def]
    with gocall.attach(values_target.pid) as p:
        p.engine.goroutine = p.eval("main.VSpinGoid")  # not main, which wakes every 50 ms to report
        yield p


# (expression, what the message says is used where)
REFUSED = [
    (f"main.PtSum({STACK_PT})", f"cannot use {STACK_PT} as argument 1 in call to main.PtSum"),
    (f"main.IdAny({STACK_PT})", f"cannot use {STACK_PT} as argument 1 in call to main.IdAny: {STACK_PT}.(data)"),
    (f"main.Keep(&main.Blob{{N: 1, Ref: {STACK_PT}}}, 1)", "as a value stored in the heap: "
     f"&main.Blob{{N: 1, Ref: {STACK_PT}}}.Ref points into goroutine"),
    (f"main.PtSum([]*main.Point{{{STACK_PT}}}[0])", "as a value stored in the heap"),
]


@pytest.mark.parametrize(("expr", "message"), REFUSED, ids=[r[0] for r in REFUSED])
def test_stack_pointer_is_refused(proc, values_target, expr, message):  # type: ignore[no-untyped-def]
    ev = proc.evaluate(expr)
    assert ev.error is not None and message in ev.error and "stack" in ev.error, ev.error
    assert isinstance(ev.exception, Escape) and "--unsafe" in ev.error
    values_target.assert_healthy()


def test_unsafe_passes_it(proc, values_target):  # type: ignore[no-untyped-def]
    assert proc.eval(f"main.PtSum({STACK_PT})", unsafe=True) == 42
    assert proc.eval(f"{STACK_PT}.Sum()") == 42  # receivers are not checked (expr/escape.py)
    values_target.assert_healthy()


def test_heap_pointers_pass(proc):  # type: ignore[no-untyped-def]
    assert proc.eval("main.PtSum(main.VPtr)") == 7
    assert proc.eval("main.PtSum(&main.Point{1, 2})") == 3


def test_cli_unsafe_flag(proc, values_target):  # type: ignore[no-untyped-def]
    cmd = [sys.executable, "-m", "gocall.cli.main", "call", str(values_target.pid),
           "--goroutine", str(proc.engine.goroutine)]
    refused = subprocess.run([*cmd, f"main.PtSum({STACK_PT})"], capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1 and "as argument 1 in call to main.PtSum" in refused.stderr
    ok = subprocess.run([*cmd, "--unsafe", f"main.PtSum({STACK_PT})"], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and ok.stdout.strip() == "42", ok.stderr
    values_target.assert_healthy()
