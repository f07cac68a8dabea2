"""Drive the shell as a terminal would: prompt_toolkit's pipe input for the keys, a plain
text output into a file for the screen (what patch_stdout prints above the prompt lands
there too); commands print to stdout (capfd)."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from prompt_toolkit.application import create_app_session
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output.plain_text import PlainTextOutput

import gocall
from gocall.shell import run

Keys = list[tuple[float, "str | Callable[[], None]"]]  # (seconds to wait first, keys or something to do then)
SIGINT = "<SIGINT>"
_GRACE = 30.0  # seconds a session gets after its last key to end by itself
SIGINT_IN_CALL = "<SIGINT once a thread is traced>"
UNTIL_STOPPED = "<no key until the program is stopped>"
UNTIL_BREAKPOINT = "<no key until a breakpoint is set>"


class Shown(str):
    """No key until the screen shows a match of this regular expression (a completion menu
    drawn): keys sent on a timer alone can reach a busy line editor together, a Tab and the
    Ctrl-C after it read in one go, and the menu between them is never drawn."""


@pytest.fixture
def history_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "state" / "history"
    monkeypatch.setenv("GOCALL_HISTORY", str(path))
    return path


@pytest.fixture
def drive(tmp_path: Path, history_file: Path) -> Callable[[gocall.Process, Keys], str]:
    """``drive(proc, [(delay, keys), ...])``: an interactive shell on ``proc`` fed those keys;
    the screen's text (prompts, completions, what was printed above the prompt)."""

    def go(proc: gocall.Process, keys: Keys) -> str:
        screen = tmp_path / "screen.txt"
        ended = threading.Event()
        with create_pipe_input() as pipe, open(screen, "w") as f:
            def feed() -> None:
                for delay, text in keys:
                    time.sleep(delay)
                    if isinstance(text, Shown):
                        deadline = time.monotonic() + 30
                        f.flush()
                        while not re.search(text, screen.read_text()) and time.monotonic() < deadline:
                            time.sleep(0.01)
                    elif callable(text):
                        text()  # a look at the target while the shell waits for keys
                    elif text == UNTIL_STOPPED:
                        deadline = time.monotonic() + 30
                        while proc.stopped is None and time.monotonic() < deadline:
                            time.sleep(0.01)  # idle at the prompt until the hit is announced
                    elif text == UNTIL_BREAKPOINT:
                        deadline = time.monotonic() + 30
                        while not proc.breakpoints and time.monotonic() < deadline:
                            time.sleep(0.01)  # the shell has run the break line and is back at the prompt
                    elif text == SIGINT_IN_CALL:
                        deadline = time.monotonic() + 20
                        while tracers(proc.pid) == {0} and time.monotonic() < deadline:
                            time.sleep(0.005)  # until the call's thread is seized
                        time.sleep(0.2)
                        os.kill(os.getpid(), signal.SIGINT)
                    elif text == SIGINT:
                        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while a line runs: the terminal sends SIGINT
                    else:
                        pipe.send_text(text)
                if not ended.wait(_GRACE):
                    pipe.close()  # a session still waiting for keys ends (EOF) instead of hanging the run

            feeder = threading.Thread(target=feed, daemon=True)
            feeder.start()
            try:
                with create_app_session(input=pipe, output=PlainTextOutput(f)):
                    status = run(proc, interactive=True, vi=False)
            finally:
                ended.set()
            feeder.join(10)
        assert status == 0
        return screen.read_text()

    return go


def tracers(pid: int) -> set[int]:
    out = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out.add(int((task / "status").read_text().split("TracerPid:")[1].split()[0]))
        except FileNotFoundError:
            pass
    return out


def traced_by_us(pid: int) -> dict[int, str]:
    """The target's threads this process traces, and each one's state letter (``t``: stopped)."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            status = dict(line.split(":", 1) for line in (task / "status").read_text().splitlines())
        except FileNotFoundError:
            continue
        if int(status["TracerPid"]) == os.getpid():
            out[int(task.name)] = status["State"].split()[0]
    return out


def untraced(pid: int) -> bool:
    deadline = time.monotonic() + 5
    while tracers(pid) != {0} and time.monotonic() < deadline:
        time.sleep(0.01)
    return tracers(pid) == {0}


def text_as_in_file(pid: int, binary: Path) -> bool:
    """No INT3 of ours left: the process's .text is the file's."""
    from gocall.binary import GoBinary

    with GoBinary.open(binary) as b, open(f"/proc/{pid}/mem", "rb") as mem:
        text, start = b.section_data(".text"), b.section_address(".text")
        assert text is not None and start is not None
        mem.seek(start)
        return mem.read(len(text)) == text


@pytest.fixture
def loop(build_fixture, start_target):  # type: ignore[no-untyped-def]
    """tests/fixtures/breaks in loop mode: 4 goroutines calling main.handle every millisecond."""
    return start_target(build_fixture("breaks"), ["loop"])
