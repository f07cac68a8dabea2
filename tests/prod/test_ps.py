"""``gocall ps``: Go processes listed with what gocall can do with each, others left out."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from prodcli import hold, run


def listed() -> dict[int, dict[str, object]]:
    r = run("ps", "--json")
    assert r.returncode == 0, r.stderr
    return {p["pid"]: p for p in map(json.loads, r.stdout.splitlines())}


def test_ps_lists_go_processes_and_what_gocall_can_do(build_fixture, start_target, go_toolchain):  # type: ignore[no-untyped-def]
    full = start_target()
    stripped = start_target(build_fixture("calls", ["-ldflags=-s -w"]))
    other = subprocess.Popen(["sleep", "60"])  # not Go: left out
    held = start_target()
    holder = hold(held.pid)
    try:
        procs = listed()
    finally:
        holder.kill()
        holder.wait()
        other.kill()
        other.wait()
    assert other.pid not in procs
    me = os.getpid()
    for t, capability in ((full, "calls"), (stripped, "declared signatures only"), (held, "not permitted")):
        p = procs[t.pid]
        assert (p["go_version"], p["module"], p["capability"]) == (go_toolchain.version, "calls", capability)
        assert (p["ppid"], p["user"], p["nspid"], p["exe"]) == (me, "root" if os.geteuid() == 0 else p["user"],
                                                                 [t.pid], str(Path(t.binary)))
    assert str(procs[held.pid]["why"]).startswith(f"already traced by PID {holder.pid} (holder)")
    text = run("ps").stdout.splitlines()
    assert text[0].split()[:7] == ["PID", "PPID", "USER", "GO", "MODULE", "CONTAINER", "GOCALL"]
    assert any(line.split()[:2] == [str(full.pid), str(me)] for line in text)
    full.assert_healthy()
    held.assert_healthy()
