"""The test harness itself: the calls target starts, reports, and dies when told."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from harness import Target, TargetFailed

from gocall.toolchain import GoToolchain

CALL_TARGETS = [
    *("Add", "Scale", "I8", "I16", "I32", "I64", "U8", "U16", "U32", "U64", "Uptr", "Not", "F32", "F64"),
    *("Sum12", "SumF17", "Mixed", "Greet", "Multi", "CallGC", "Recurse", "Boom", "TooBig", "Checks", "Bad"),
]


def test_target_starts_and_stays_healthy(target: Target) -> None:
    assert target.lines[0] == f"ready pid={target.pid}"
    checks, bad = target.wait_health(1)
    target.assert_healthy()
    later, bad = target.health()
    assert later > checks
    assert bad == 0
    assert target.corruption() == []


def test_kill_ends_the_process(target: Target) -> None:
    target.kill()
    assert not target.alive
    assert target.proc.returncode == -signal.SIGKILL
    with pytest.raises(TargetFailed, match="exited"):
        target.assert_healthy(timeout=1)
    target.kill()  # idempotent


def test_stopped_target_is_unhealthy(target: Target) -> None:
    """assert_healthy must notice a target that stopped making progress (e.g. left ptrace-stopped)."""
    os.kill(target.pid, signal.SIGSTOP)
    try:
        with pytest.raises(TargetFailed, match="stuck"):
            target.assert_healthy(timeout=0.5)
    finally:
        os.kill(target.pid, signal.SIGCONT)
    target.assert_healthy()


def test_start_failure_shows_stderr(start_target: Callable[..., Target], tmp_path: Path) -> None:
    script = tmp_path / "fails"
    script.write_text("#!/bin/sh\necho 'something broke' >&2\nexit 3\n")
    script.chmod(0o755)
    with pytest.raises(TargetFailed, match="something broke"):
        start_target(script)


_shared_pids: dict[str, set[int]] = {}  # per toolchain of the matrix: each has its own target


@pytest.mark.parametrize("round", [1, 2])
def test_shared_target_is_reused(shared_target: Target, go_toolchain: GoToolchain, round: int) -> None:
    pids = _shared_pids.setdefault(go_toolchain.version, set())
    pids.add(shared_target.pid)
    assert len(pids) == 1
    shared_target.assert_healthy()


def test_every_call_target_is_linked(calls_binary: Path, go_toolchain: GoToolchain) -> None:
    """The linker drops unreachable functions; main's keep list must hold every call target."""
    nm = subprocess.run(
        [str(go_toolchain.go), "tool", "nm", str(calls_binary)],
        env=go_toolchain.env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    linked = {line.split()[-1] for line in nm.splitlines() if " T main." in line}
    assert {f"main.{name}" for name in CALL_TARGETS} <= linked
