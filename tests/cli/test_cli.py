"""``gocall`` as a user runs it: output, JSON, exit status, interruption."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

GOCALL = [sys.executable, "-m", "gocall.cli.main"]


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*GOCALL, *args], capture_output=True, text=True, timeout=timeout)


def test_call_prints_go_syntax(shared_target):  # type: ignore[no-untyped-def]
    r = run("call", str(shared_target.pid), "main.Add(1, 2)")
    assert (r.returncode, r.stdout) == (0, "3\n")
    assert all(line.startswith("called in goroutine ") for line in r.stderr.splitlines())  # after an advance
    r = run("call", str(shared_target.pid), "main.Greet(5)", "main.Multi(2)")
    assert r.returncode == 0
    assert r.stdout.splitlines() == ['main.Greet(5) = "hello #5"', 'main.Multi(2) = 4, true, 2.5, "n=2"']


def test_call_json(shared_target):  # type: ignore[no-untyped-def]
    r = run("call", str(shared_target.pid), "--json", "main.Add(1, 2)", "main.Scale(2.5, true)", "main.Boom(1)")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert [{k: v for k, v in item.items() if k not in ("goroutine", "location")} for item in out] == [
        {"expr": "main.Add(1, 2)", "results": [{"type": "int", "value": 3}], "panic": None, "error": None},
        {"expr": "main.Scale(2.5, true)", "results": [{"type": "float64", "value": -2.5}], "panic": None, "error": None},
        {"expr": "main.Boom(1)", "results": [], "panic": {"type": "string", "value": "boom 1"}, "error": None},
    ]
    for item in out:  # where each call was made: a running goroutine, in user code (not the runtime's):
        # usually the worker in package main, sometimes the health reporter inside fmt/strconv
        assert isinstance(item["goroutine"], int) and not item["location"]["function"].startswith("runtime.")
        assert item["location"]["file"].endswith(".go") and item["location"]["line"] > 0


def test_panic_is_a_result_exit_0(shared_target):  # type: ignore[no-untyped-def]
    r = run("call", str(shared_target.pid), "main.Boom(2)")
    assert r.returncode == 0
    assert r.stdout == 'panic: "boom 2" [recovered]\n'


def test_unevaluable_expression_exits_1_with_message(shared_target):  # type: ignore[no-untyped-def]
    r = run("call", str(shared_target.pid), "main.I8(300)")
    assert r.returncode == 1
    assert "overflows" in r.stderr and "Traceback" not in r.stderr
    r = run("call", str(shared_target.pid), "--json", "main.Add(1, 2)", "main.Nope()")
    assert r.returncode == 1
    out = json.loads(r.stdout)
    assert out[0]["results"] == [{"type": "int", "value": 3}]
    assert "main.Nope is not in the binary" in out[1]["error"]
    shared_target.assert_healthy()


def test_missing_process_exits_1():  # type: ignore[no-untyped-def]
    r = run("call", "999999999", "main.Add(1, 2)")
    assert r.returncode == 1
    assert "does not exist" in r.stderr and "Traceback" not in r.stderr


def test_usage_error_exits_2():  # type: ignore[no-untyped-def]
    assert run("call").returncode == 2
    assert run("call", "notapid", "main.Add(1, 2)").returncode == 2


def test_help_teaches(shared_target):  # type: ignore[no-untyped-def]
    r = run("call", "--help")
    assert r.returncode == 0 and "main.Add(1, 2)" in r.stdout and "--json" in r.stdout


def start_call_in_flight(pid: int, expr: str) -> subprocess.Popen[str]:
    """Run ``gocall call`` and return once its callee runs (its ``--log call`` line says so)."""
    p = subprocess.Popen([*GOCALL, "--log", "call", "call", str(pid), expr], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert p.stderr is not None
    for line in p.stderr:
        if "starting the callee" in line:
            return p
    raise AssertionError(f"gocall ended before starting the callee: {p.wait()}")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_during_the_callee_unwinds_and_restores(target, sig):  # type: ignore[no-untyped-def]
    """Ctrl-C while the callee runs: gocall sees the call through, restores, exits 130 (143 for
    SIGTERM: 128 + n; every terminating signal in tests/guard/test_terminating.py)."""
    p = start_call_in_flight(target.pid, "main.Sleep(1500)")
    time.sleep(0.2)  # inside the 1.5 s call
    p.send_signal(sig)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 128 + sig, err
    assert "interrupted" in err and "restored" in err
    assert out == ""
    target.assert_healthy()


def test_target_exiting_mid_call_is_reported(target):  # type: ignore[no-untyped-def]
    p = start_call_in_flight(target.pid, "main.Sleep(3000)")
    target.proc.kill()
    out, err = p.communicate(timeout=30)
    assert p.returncode == 1
    assert "killed" in err or "exited" in err or "gone" in err


def test_call_says_where_after_an_advance(start_target, build_fixture):  # type: ignore[no-untyped-def]
    """The worker is in a //go:nosplit function (no safe point): gocall steps, then runs it to its
    return into main.mixLoop, calls there, and notes where on stderr; --json carries it too."""
    target = start_target(build_fixture("anywhere"), ["nosplit"])
    r = run("call", str(target.pid), "main.Add(1, 2)")
    assert (r.returncode, r.stdout) == (0, "3\n"), r.stderr
    # main.mixLoop after steps and a return; on a loaded machine the reporter may get to main.report first.
    assert re.fullmatch(r"called in goroutine \d+ at main\.(mixLoop|report) \(main\.go:\d+\), advanced "
                        r"(\d+ steps and )?1 return\n", r.stderr), r.stderr  # fmt: skip
    r = run("call", str(target.pid), "--json", "main.Add(1, 2)")
    assert r.returncode == 0, r.stderr
    [item] = json.loads(r.stdout)
    assert item["results"] == [{"type": "int", "value": 3}] and item["location"]["function"].startswith("main.")
    # As above, but the second call may find the reporter at a safe point already (no return run).
    assert item["location"]["returns"] in (0, 1) and r.stderr == ""
    target.assert_healthy()


def test_output_closed_by_its_reader_ends_quietly() -> None:
    """`gocall call --help | true`: the reader is gone before gocall writes; gocall ends by
    SIGPIPE's status (141) without a word on stderr, as cat or git do."""
    read, write = os.pipe()
    os.close(read)
    try:
        r = subprocess.run([sys.executable, "-m", "gocall.cli.main", "call", "--help"], stdout=write,
                           stderr=subprocess.PIPE, text=True, timeout=60, env={**os.environ, "GOCALL_SERVER": "0"})
    finally:
        os.close(write)
    assert (r.returncode, r.stderr) == (128 + signal.SIGPIPE, "")
