"""One command into many processes: ``gocall call --pid A --pid B ...`` / ``--exe NAME``,
and ``gocall.call_many``. Not parametrized by release: one test takes three releases at once
(the oldest, a middle and the newest of those GOCALL_TEST_GO selects, or copies when fewer)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from harness import FIXTURES, Target
from prodcli import GOCALL, SRC, run

import gocall
from gocall.process.permissions import tracers


@pytest.fixture(scope="module")
def releases() -> list[Path]:
    """The calls fixture built by three toolchains of different releases (fewer when not installed)."""
    from gocall.toolchain import known_toolchains

    wanted = os.environ.get("GOCALL_TEST_GO", "all").strip()  # as tests/conftest.py reads it
    by_release = {t.release: t for t in reversed(known_toolchains())}
    if wanted not in ("", "all", "default"):
        releases = {tuple(int(n) for n in w.strip().removeprefix("go").split(".")[:2]) for w in wanted.split(",")}
        by_release = {r: t for r, t in by_release.items() if r in releases}
    chosen = [by_release[r] for r in sorted(by_release)]
    if not chosen:
        pytest.skip("no Go toolchain installed")
    picks = [chosen[0], chosen[len(chosen) // 2], chosen[-1]]
    return [t.build_cached(FIXTURES / "calls") for t in picks]


def _in_flight(pid: int, timeout: float = 60) -> None:
    """Wait until a thread of ``pid`` is traced: a call is being made in it."""
    deadline = time.monotonic() + timeout
    while not tracers(pid):
        assert time.monotonic() < deadline, f"no call reached process {pid}"
        time.sleep(0.005)


def test_three_releases_one_killed_midway(releases: list[Path]) -> None:
    with Target.start(releases[0]) as a, Target.start(releases[1]) as b, Target.start(releases[2]) as c:
        cmd = [*GOCALL, "call", "--json", "--parallel", "3", "--pid", str(a.pid), "--pid", str(b.pid),
               "--pid", str(c.pid), "main.Add(1, 2)", "main.Sleep(1500)"]
        fleet = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env={**os.environ, "PYTHONPATH": SRC})
        _in_flight(c.pid)
        c.kill()
        out, err = fleet.communicate(timeout=120)
        lines = {o["pid"]: o for o in map(json.loads, out.splitlines())}
        assert fleet.returncode == 1 and set(lines) == {a.pid, b.pid, c.pid}, err
        for t in (a, b):
            assert lines[t.pid]["ok"] is True and lines[t.pid]["error"] is None
            assert [e["results"] for e in lines[t.pid]["evaluations"]] == [[{"type": "int", "value": 3}],
                                                                           [{"type": "int", "value": 1500}]]
            t.assert_healthy()
        assert lines[c.pid]["ok"] is False and "killed" in lines[c.pid]["error"]
        # Text: one block per process, headed by its PID.
        r = run("call", "--pid", str(a.pid), "--pid", str(b.pid), "main.Greet(4)")
        assert r.returncode == 0, r.stderr
        blocks = r.stdout.split("== process ")[1:]
        assert sorted(int(b.split()[0]) for b in blocks) == sorted([a.pid, b.pid])
        assert all(b.splitlines()[1] == '"hello #4"' for b in blocks)


def test_exe_name_dry_run_and_api(releases: list[Path], tmp_path: Path) -> None:
    name = f"fleet-{uuid.uuid4().hex[:8]}"  # no one else's process has this name
    shutil.copy(releases[-1], tmp_path / name)
    with Target.start(tmp_path / name) as a, Target.start(tmp_path / name) as b:
        r = run("call", "--exe", name, "--dry-run", "--json")
        assert r.returncode == 0 and sorted(json.loads(line)["pid"] for line in r.stdout.splitlines()) == sorted(
            [a.pid, b.pid])
        r = run("call", "--exe", name, "--json", "main.Add(20, 22)")
        assert r.returncode == 0 and [json.loads(line)["evaluations"][0]["results"][0]["value"]
                                      for line in r.stdout.splitlines()] == [42, 42]
        outcomes = list(gocall.call_many([a.pid, b.pid], ["main.Add(1, 1)"], parallel=2))
        assert sorted(o.pid for o in outcomes) == sorted([a.pid, b.pid])
        assert all(o.ok and o.evaluations[0]["results"] == [{"type": "int", "value": 2}] for o in outcomes)
        assert run("call", "--exe", f"{name}-none", "main.Add(1, 1)").returncode == 1
        a.assert_healthy()
        b.assert_healthy()


def test_ctrl_c_starts_no_new_one_and_lets_the_running_one_finish(releases: list[Path]) -> None:
    with Target.start(releases[0]) as a, Target.start(releases[-1]) as b:
        fleet = subprocess.Popen([*GOCALL, "call", "--json", "--parallel", "1", "--pid", str(a.pid), "--pid",
                                  str(b.pid), "main.Sleep(1000)"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, env={**os.environ, "PYTHONPATH": SRC})
        _in_flight(a.pid)
        fleet.send_signal(signal.SIGINT)
        out, err = fleet.communicate(timeout=120)
        assert fleet.returncode == 130, err
        (line,) = map(json.loads, out.splitlines())  # b was never started
        assert line["pid"] == a.pid and not tracers(a.pid) and not tracers(b.pid)
        a.assert_healthy()
        b.assert_healthy()


def test_timeout_interrupts_a_slow_process(releases: list[Path]) -> None:
    """--timeout T each: a process still busy after it (T, plus 5 s for its gocall to start) is
    interrupted as on Ctrl-C: its call in flight finished or unwound, its target restored."""
    with Target.start(releases[-1]) as slow:
        r = run("call", "--json", "--timeout", "1", "--pid", str(slow.pid), "main.Sleep(9000)", timeout=120)
        (line,) = map(json.loads, r.stdout.splitlines())
        assert r.returncode == 1 and line["status"] == 130 and line["error"].startswith("timed out after 1 s"), r.stdout
        assert not tracers(slow.pid)
        slow.assert_healthy()
