"""``gocall goroutines`` / ``stack`` / ``roots``: plain tables off a terminal, stable --json."""

from __future__ import annotations

import json
import subprocess
import sys


def _gocall(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "gocall.cli.main", *args], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_goroutines_stack_roots_commands(runtime_target) -> None:
    pid = str(runtime_target.pid)
    listing = json.loads(_gocall("goroutines", "--json", pid))
    by_fn = {g["location"]["function"]: g for g in listing if g["location"]}
    assert by_fn["main.selecting"]["state"] == "select" and by_fn["main.selecting"]["thread"] is None
    assert set(listing[0]) == {"goid", "status", "state", "m", "thread", "system", "location", "created_by",
                               "user", "current", "go", "start", "labels", "pending"}
    text = _gocall("goroutines", pid)
    assert text.splitlines()[0].split() == ["GOID", "STATE", "THREAD", "LOCATION"] and "\x1b[" not in text

    rooted = by_fn["main.rooted"]["goid"]
    (stack,) = json.loads(_gocall("stack", "--json", pid, str(rooted)))
    assert [f["function"] for f in stack["frames"]][-2:] == ["main.rooted", "runtime.goexit"]
    assert f"goroutine {rooted} [chan receive]:" in _gocall("stack", pid, str(rooted))

    (roots,) = json.loads(_gocall("roots", "--json", pid, str(rooted)))
    frame = next(f for f in roots["frames"] if f["function"] == "main.rooted")
    assert frame["mode"] == "precise" and any(s["heap"] for s in frame["slots"]) and frame["stack_objects"]
    assert "main.rooted" in _gocall("roots", pid, str(rooted))
