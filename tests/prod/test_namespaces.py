"""A target in other PID and mount namespaces (a container seen from the host), and gocall in a
mount namespace of its own sharing the target's PID namespace (a sibling container).

The target runs under ``unshare --pid --mount --fork`` from a private directory bind-mounted
in its mount namespace only, and the file is then deleted: its path exists nowhere, and its
PID is 1 inside. Needs root and util-linux; skipped, saying why, where unshare is refused.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from harness import Target
from prodcli import run

from gocall.process.namespaces import host_tid


def _unshare_refused() -> str | None:
    if shutil.which("unshare") is None or shutil.which("nsenter") is None:
        return "unshare/nsenter (util-linux) are not installed"
    r = subprocess.run(["unshare", "--pid", "--mount", "--fork", "true"], capture_output=True, text=True)
    return None if r.returncode == 0 else f"unshare --pid --mount is refused here: {r.stderr.strip()}"


pytestmark = pytest.mark.skipif(_unshare_refused() is not None, reason=str(_unshare_refused()))


class Contained(NamedTuple):
    target: Target  # its pid is unshare's; its lines and health are the Go program's
    pid: int  # the Go program as the host sees it (1 in its own PID namespace)
    path: str  # where it runs from, in its mount namespace only


@pytest.fixture
def contained(calls_binary: Path) -> Iterator[Contained]:
    with tempfile.TemporaryDirectory(prefix="gocall-ns-") as tmp:
        private, app = Path(tmp, "private"), Path(tmp, "app")
        private.mkdir()
        app.mkdir()
        shutil.copy(calls_binary, private / "calls")
        stderr = tempfile.NamedTemporaryFile(prefix="contained-", suffix=".stderr")  # noqa: SIM115 - closed by kill()
        proc = subprocess.Popen(
            ["unshare", "--pid", "--mount", "--kill-child", "sh", "-c",
             f"mount --bind {private} {app} && exec {app}/calls"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr, text=True, bufsize=1)
        target = Target(calls_binary, proc, stderr)  # noqa: F841 - killed (with its child) below
        try:
            target.wait_health(1, timeout=20)
            assert "ready pid=1" in target.lines
            with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
                (pid,) = map(int, f.read().split())
            (private / "calls").unlink()  # the running file is deleted; its path was never ours
            yield Contained(target, pid, f"{app}/calls")
        finally:
            target.kill()


def test_call_by_host_pid_into_other_namespaces(contained: Contained) -> None:
    pid = str(contained.pid)
    r = run("call", pid, "--json", "main.Add(1, 2)")
    assert r.returncode == 0, r.stderr
    (item,) = json.loads(r.stdout)
    assert item["results"] == [{"type": "int", "value": 3}]
    # --goroutine N on the running worker: the runtime knows its thread by its number inside
    # (m.procid), gocall must seize it by ours.
    gs = json.loads(run("goroutines", pid, "--json").stdout)
    worker = next(g["goid"] for g in gs if g["created_by"] and g["created_by"]["function"] == "main.main")
    r = run("call", pid, "--goroutine", str(worker), "main.Greet(7)")
    assert (r.returncode, r.stdout) == (0, '"hello #7"\n'), r.stderr
    contained.target.assert_healthy()


def test_doctor_and_ps_report_the_namespaces(contained: Contained) -> None:
    r = run("doctor", str(contained.pid), "--json")
    report = json.loads(r.stdout)
    assert r.returncode == 0 and report["nspid"] == [contained.pid, 1], r.stdout
    checks = {c["name"]: c["detail"] for c in report["checks"]}
    assert checks["pid namespace"].startswith(f"another PID namespace: PID {contained.pid} here is 1 in its own")
    assert checks["mount namespace"].startswith("another mount namespace")
    assert checks["executable"].startswith(f"{contained.path} (") and "deleted since it started" in checks["executable"]
    procs = {p["pid"]: p for p in map(json.loads, run("ps", "--json").stdout.splitlines())}
    assert procs[contained.pid]["nspid"] == [contained.pid, 1] and procs[contained.pid]["exe"] == contained.path
    assert procs[contained.pid]["capability"] == "calls"
    text = run("ps").stdout
    assert any(line.startswith(f"{contained.pid}(1) ") for line in text.splitlines()), text


def test_call_from_a_sibling_mount_namespace(contained: Contained) -> None:
    """gocall in the target's PID namespace (nsenter --pid) but a mount namespace of its own with
    that namespace's /proc: it sees the target as PID 1, and no file at the target's path."""
    sibling = ("nsenter", f"--target={contained.pid}", "--pid", "--", "unshare", "--mount", "--fork", "--mount-proc")
    r = run("call", "1", "main.Add(2, 3)", prefix=sibling)
    assert (r.returncode, r.stdout) == (0, "5\n"), r.stderr
    r = run("doctor", "1", "--json", prefix=sibling)
    report = json.loads(r.stdout)
    assert r.returncode == 0 and report["nspid"] == [1], r.stdout
    checks = {c["name"]: c["detail"] for c in report["checks"]}
    assert "deleted since it started" in checks["executable"]
    assert checks["mount namespace"].startswith("another mount namespace")
    contained.target.assert_healthy()



def test_threads_numbered_inside_are_found_here(contained: Contained) -> None:
    """m.procid (what --goroutine and the goroutine listing seize by) is gettid() inside the
    target's namespace; host_tid gives the thread ptrace knows here."""
    tasks = sorted(int(t) for t in os.listdir(f"/proc/{contained.pid}/task"))
    inside = {}
    for task in tasks:
        with open(f"/proc/{contained.pid}/task/{task}/status") as f:
            inside[task] = int(next(line for line in f if line.startswith("NSpid:")).split()[-1])
    assert inside[contained.pid] == 1 and all(inside[t] != t for t in tasks)
    assert {host_tid(contained.pid, n) for n in inside.values()} == set(tasks)
    assert host_tid(contained.pid, 999_999) is None
    assert host_tid(os.getpid(), 12345) == 12345  # our own namespace: the same number
