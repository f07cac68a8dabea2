"""The ``runtime`` fixture program (tests/fixtures/runtime), started with GOTRACEBACK=system.

``runtime_target`` is a fresh process whose goroutines are parked in known states; it writes
``runtime.Stack(all)`` to ``dump_path`` on SIGUSR1 and releases an in-flight ``main.Block``
call on SIGUSR2. Tests run once per Go release of the matrix (tests/conftest.py).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

# harness.py (tests/) and gotraceback.py (here) are imported as top-level modules.
for _dir in (os.path.dirname(os.path.dirname(__file__)), os.path.dirname(__file__)):
    if _dir not in sys.path:
        sys.path.insert(0, _dir)

from harness import Target


@dataclass
class RuntimeTarget:
    target: Target
    dump_path: Path

    @property
    def pid(self) -> int:
        return self.target.pid

    def wait_line(self, text: str, count: int = 1, timeout: float = 30.0) -> None:
        """Wait until stdout has shown ``text`` ``count`` times."""
        deadline = time.monotonic() + timeout
        while sum(line == text for line in self.target.lines) < count:
            if time.monotonic() > deadline or not self.target.alive:
                raise AssertionError(f"no {text!r} line from the fixture: {self.target.lines[-5:]}\n"
                                     f"{self.target.stderr()[-2000:]}")
            time.sleep(0.01)

    def runtime_stack(self) -> str:
        """Make the program dump runtime.Stack(buf, true) and return the text."""
        done = sum(line == "dumped" for line in self.target.lines)
        os.kill(self.pid, signal.SIGUSR1)
        self.wait_line("dumped", done + 1)
        return self.dump_path.read_text()

    def sigquit_traceback(self, timeout: float = 30.0) -> str:
        """Kill the program with SIGQUIT and return its GOTRACEBACK=system crash dump."""
        os.kill(self.pid, signal.SIGQUIT)
        self.target.proc.wait(timeout)
        self.target.kill()
        return self.target.stderr()


def _start(build_fixture, start_target, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
           flags: tuple[str, ...] = ()) -> RuntimeTarget:
    monkeypatch.setenv("GOTRACEBACK", "system")  # SIGQUIT dumps then show every frame with fp/sp/pc
    binary = build_fixture("runtime", flags)
    dump = tmp_path / "stack.txt"
    return RuntimeTarget(start_target(binary, [str(dump)]), dump)


@pytest.fixture
def runtime_target(build_fixture, start_target, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RuntimeTarget:
    return _start(build_fixture, start_target, tmp_path, monkeypatch)


@pytest.fixture(params=[(), ("-ldflags=-s -w",)], ids=["symbols", "stripped"])
def runtime_target_any(request: pytest.FixtureRequest, build_fixture, start_target, tmp_path: Path,
                       monkeypatch: pytest.MonkeyPatch) -> RuntimeTarget:
    """``runtime_target`` built as usual, then without symbol table and DWARF (``-s -w``): goroutines
    and stacks must read the same from both."""
    return _start(build_fixture, start_target, tmp_path, monkeypatch, request.param)
