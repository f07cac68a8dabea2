"""The live status line (cli/status.py, issue 20) as a person sees it: ``gocall`` with its
stderr on a terminal (a pty), the terminal's screen replayed by a terminal emulator (pyte).

The status appears while gocall waits, is gone from the screen when it is done, and stdout
(plain or ``--json``) is byte for byte what it is without a terminal. The idle program and the
long callee run on every release (the wait reasons are read from each runtime); the other
waits, whose text does not depend on the release, on the oldest and newest only.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
from typing import NamedTuple

import pytest
from harness import Target

from gocall.toolchain import GoToolchain, known_toolchains

# The dev extra's (pyproject.toml); a worktree installed before it was added skips, saying so.
pyte = pytest.importorskip("pyte", reason="pyte is not installed: pip install -e '.[dev]' again")

GOCALL = [sys.executable, "-m", "gocall.cli.main"]
COLUMNS, ROWS = 250, 24  # wide enough that no status line is cut
# What rich reads to decide on a terminal and its size: the pty's, not the test runner's.
ENV = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "FORCE_COLOR", "NO_COLOR", "TERM")}
ENV["TERM"] = "xterm-256color"


class OnTerminal(NamedTuple):
    returncode: int
    stdout: bytes
    written: str  # everything written to the terminal
    screen: list[str]  # the terminal's non-blank lines at the end


def on_terminal(*args: str, timeout: float = 60, when: str = "", signal_then: int = 0) -> OnTerminal:
    """Run ``gocall ARGS`` with stderr on a terminal of its own, stdout on a pipe; once ``when``
    is written to the terminal, send it ``signal_then``."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
    p = subprocess.Popen([*GOCALL, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave, env=ENV)
    os.close(slave)
    written = b""
    try:
        while True:  # drained as it comes: a full terminal would block gocall's writes
            ready, _, _ = select.select([master], [], [], timeout)
            if not ready:
                raise AssertionError(f"gocall {args} wrote nothing to the terminal for {timeout} s")
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: gocall has exited and closed the terminal
                break
            if not data:
                break
            written += data
            if when and when.encode() in written:
                p.send_signal(signal_then)
                when = ""
        assert p.stdout is not None
        stdout = p.stdout.read()
        p.wait(timeout)
    finally:
        os.close(master)
        if p.poll() is None:
            p.kill()
            p.wait()
    screen = pyte.Screen(COLUMNS, ROWS)
    pyte.ByteStream(screen).feed(written)
    return OnTerminal(p.returncode, stdout, written.decode("utf-8", "replace"),
                      [line.rstrip() for line in screen.display if line.strip()])  # fmt: skip


def off_terminal(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*GOCALL, *args], stdin=subprocess.DEVNULL, capture_output=True, env=ENV, timeout=timeout)


def extreme(toolchain: GoToolchain) -> bool:
    releases = sorted(t.release for t in known_toolchains())
    return toolchain.release in (releases[0], releases[-1])


@pytest.fixture
def idle(build_fixture, start_target) -> Target:  # type: ignore[no-untyped-def]
    """tests/fixtures/idle: every goroutine parked for good."""
    return start_target(build_fixture("idle"))  # type: ignore[no-any-return]


def test_idle_program(idle: Target) -> None:
    """No goroutine runs Go code: the status says so, counts them by what they wait for, and is
    gone when gocall gives up; the --json output is the same as without a terminal."""
    args = ("call", str(idle.pid), "--timeout", "1", "--json", "main.Add(1, 2)")
    seen = on_terminal(*args)
    assert seen.returncode == 1, seen.written
    m = re.search(r"waiting for a goroutine to run Go code \(\d s left\) — (\d+) goroutines, all blocked \((.*?)\) — "
                  r"give the program work, or Ctrl-C", seen.written)  # fmt: skip
    assert m is not None, seen.written
    blocked = dict(reversed(item.split(" ", 1)) for item in m[2].split(", "))
    # Goroutine 1 in a channel receive, one in an Accept, three in a select, one in time.Sleep.
    assert {k: blocked.get(k) for k in ("chan receive", "IO wait", "select", "sleep")} == \
           {"chan receive": "1", "IO wait": "1", "select": "3", "sleep": "1"}, m[0]  # fmt: skip
    assert not any("waiting for" in line for line in seen.screen), seen.screen
    assert any("no goroutine reached Go user code within 1 s" in line for line in seen.screen), seen.screen
    plain = off_terminal(*args)
    assert plain.returncode == 1 and "waiting for" not in plain.stderr.decode()
    assert seen.stdout == plain.stdout and b'"error": "no goroutine reached' in plain.stdout
    assert idle.alive


def test_long_callee(target: Target) -> None:
    """A callee that sleeps: the status names it, its time, and what Ctrl-C would do; stdout is the
    same with and without a terminal."""
    args = ("call", str(target.pid), "main.Sleep(800)")
    seen = on_terminal(*args)
    assert (seen.returncode, seen.stdout) == (0, b"800\n"), seen.written
    assert re.search(r"main\.Sleep running for 0\.\d s on goroutine \d+ — Ctrl-C: gocall stops once it returns",
                     seen.written), seen.written  # fmt: skip
    assert not any("running for" in line for line in seen.screen), seen.screen
    plain = off_terminal(*args)
    assert (plain.returncode, plain.stdout) == (0, seen.stdout) and b"running for" not in plain.stderr
    target.assert_healthy()


def test_interrupted_callee(target: Target, go_toolchain: GoToolchain) -> None:
    """Ctrl-C while the status is shown (its thread must not take the signal: the thread that
    traces holds it until the target is safe): the status says so, gocall sees the call
    through, restores the thread and exits 130."""
    if not extreme(go_toolchain):
        pytest.skip("release-independent: on the oldest and newest releases only")
    seen = on_terminal("call", str(target.pid), "main.Sleep(1500)", when="main.Sleep running for",
                       signal_then=signal.SIGINT)  # fmt: skip
    assert (seen.returncode, seen.stdout) == (130, b""), seen.written
    assert "interrupted — main.Sleep still running" in seen.written and "Traceback" not in seen.written
    assert not any("running" in line for line in seen.screen), seen.screen
    assert any("interrupted; the call was unwound and the target restored" in line for line in seen.screen), seen.screen
    target.assert_healthy()


def test_quiet(target: Target, go_toolchain: GoToolchain) -> None:
    if not extreme(go_toolchain):
        pytest.skip("release-independent: on the oldest and newest releases only")
    seen = on_terminal("call", str(target.pid), "--quiet", "main.Sleep(500)")
    assert (seen.returncode, seen.stdout) == (0, b"500\n"), seen.written
    assert "running for" not in seen.written
    target.assert_healthy()


@pytest.mark.parametrize("advance", [(), ("--no-advance",)], ids=["advance", "no-advance"])
def test_parked_goroutine(idle: Target, go_toolchain: GoToolchain, advance: tuple[str, ...]) -> None:
    """--goroutine 1: its state and where it is parked (waited for at its return into main.main,
    or, --no-advance, looked at until it runs)."""
    if not extreme(go_toolchain):
        pytest.skip("release-independent: on the oldest and newest releases only")
    seen = on_terminal("call", str(idle.pid), "--timeout", "1", "--goroutine", "1", *advance, "main.Add(1, 2)")
    assert seen.returncode == 1, seen.written
    assert re.search(r"waiting for goroutine 1 to run Go code \(\d s left\) — chan receive in runtime\.chanrecv1 "
                     r"called from main\.main \(main\.go:\d+\) — Ctrl-C to give up", seen.written), seen.written  # fmt: skip
    assert not any("waiting for" in line for line in seen.screen), seen.screen
    assert idle.alive


def test_waiting_for_a_hit(build_fixture, start_target, go_toolchain: GoToolchain) -> None:  # type: ignore[no-untyped-def]
    """--break with a condition never true: hits and condition tests counted as they come."""
    if not extreme(go_toolchain):
        pytest.skip("release-independent: on the oldest and newest releases only")
    loop = start_target(build_fixture("breaks"), ["loop"])
    seen = on_terminal("call", str(loop.pid), "--break", "main.handle if req.ID == 99", "--timeout", "1.5", "req.ID")
    assert seen.returncode == 2, seen.written
    counts = re.findall(r"waiting for a hit \(\d\.\d s of 1\.5 s\) — ([\d,]+) hits?, ([\d,]+) condition tests? — "
                        r"main\.handle \(\S*main\.go:\d+\)", seen.written)  # fmt: skip
    assert counts and all(int(n.replace(",", "")) > 0 for n in counts[-1]), seen.written
    assert not any("waiting for a hit" in line or "still waiting" in line for line in seen.screen), seen.screen
    assert any("no hit within 1.5 s" in line for line in seen.screen), seen.screen
    assert loop.alive
