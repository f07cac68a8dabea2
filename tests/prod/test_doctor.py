"""``gocall doctor`` and the one-line diagnosis of a refused attach (process/permissions.py).

The permission tests need root (to run a target as root and gocall as another user, or to
hold a target with a stand-in debugger); each leaves the target running unharmed.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from prodcli import NOBODY, hold, run

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="runs the target as root and gocall as uid 65534")


def checks(out: str) -> dict[str, dict[str, object]]:
    return {c["name"]: c for c in json.loads(out)["checks"]}


def test_doctor_passes_every_check(shared_target, go_toolchain):  # type: ignore[no-untyped-def]
    r = run("doctor", str(shared_target.pid), "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads(r.stdout)
    assert report["ok"] is True and report["nspid"] == [shared_target.pid]
    c = checks(r.stdout)
    assert {"process", "pid namespace", "mount namespace", "executable", "go", "release", "debugCallV2",
            "signatures", "debugPinnerV1", "seccomp", "capability", "user", "yama", "tracer", "attach"} <= set(c)
    assert c["go"]["detail"] == f"{go_toolchain.version}, module calls"
    assert c["debugPinnerV1"]["detail"].startswith("runtime.debugPinnerV1" if go_toolchain.release >= (1, 23) else "no ")
    assert c["pid namespace"]["detail"] == "same PID namespace as gocall"
    text = run("doctor", str(shared_target.pid))
    assert text.returncode == 0 and text.stdout.splitlines()[-1] == f"gocall can call into process {shared_target.pid}"


def test_doctor_stripped_binary_signatures(build_fixture, start_target):  # type: ignore[no-untyped-def]
    """No DWARF: signatures from Go source (issue 16) where it is found; -trimpath without
    --source: the program's are missing, and the fix says how to give them."""
    t = start_target(build_fixture("calls", ["-ldflags=-s -w"]))
    r = run("doctor", str(t.pid), "--json")
    assert r.returncode == 0, r.stdout
    sig = checks(r.stdout)["signatures"]
    assert sig["ok"] is None and "Go source: GOROOT" in str(sig["detail"]) and not sig["fix"]
    t = start_target(build_fixture("calls", ["-trimpath", "-ldflags=-s -w"]))
    r = run("doctor", str(t.pid), "--json")
    sig = checks(r.stdout)["signatures"]
    assert "no source of package main" in str(sig["detail"]) and "--source" in str(sig["fix"])
    assert "--declare" in str(sig["fix"])


def test_missing_process():  # type: ignore[no-untyped-def]
    r = run("doctor", "999999999")
    assert r.returncode == 1 and "process 999999999 does not exist" in r.stdout
    r = run("call", "999999999", "main.Add(1, 2)")
    assert r.returncode == 1 and "gocall doctor 999999999" in r.stderr and "Traceback" not in r.stderr


@needs_root
@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) is not installed")
def test_other_user_gets_the_eperm_diagnosis(target):  # type: ignore[no-untyped-def]
    """uid 65534 attaching to a root process: every command says why in one line, and how to fix it."""
    pid = str(target.pid)
    line = (f"gocall: cannot attach to process {pid}: process {pid} ({Path(target.binary).name[:15]}) runs as uid 0, "
            f"gocall as uid 65534 (run gocall as root; every check: gocall doctor {pid})")
    for args in (["call", pid, "main.Add(1, 2)"], ["goroutines", pid], ["stack", pid, "1"], ["info", pid]):
        r = run(*args, prefix=NOBODY)
        assert (r.returncode, r.stderr.strip()) == (1, line), args
    r = run("doctor", pid, "--json", prefix=NOBODY)
    c = checks(r.stdout)
    assert r.returncode == 1 and c["user"]["ok"] is False and c["attach"]["ok"] is False
    assert c["capability"]["detail"] == "no CAP_SYS_PTRACE in gocall's effective set"
    target.assert_healthy()


@needs_root
def test_already_traced_names_the_tracer(target):  # type: ignore[no-untyped-def]
    holder = hold(target.pid)
    try:
        r = run("call", str(target.pid), "main.Add(1, 2)")
        assert r.returncode == 1 and "Traceback" not in r.stderr
        assert f"cannot attach to process {target.pid}: already traced by PID {holder.pid} (holder)" in r.stderr
        assert f"gocall doctor {target.pid}" in r.stderr
        tracer = checks(run("doctor", str(target.pid), "--json").stdout)["tracer"]
        assert tracer["ok"] is False and str(tracer["detail"]).startswith(f"already traced by PID {holder.pid} (holder)")
        target.assert_healthy()  # seized by the holder, never stopped; gocall changed nothing
    finally:
        holder.kill()
        holder.wait()
    r = run("call", str(target.pid), "main.Add(1, 2)")
    assert (r.returncode, r.stdout) == (0, "3\n")
    target.assert_healthy()
