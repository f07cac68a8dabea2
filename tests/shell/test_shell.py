"""The shell on real programs: completion, the line editor's history, hits announced while
idle, Ctrl-C in each state, exit leaving nothing behind, script mode and --json.

Each test drives one short session (a second or two per release)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

import gocall
from gocall.toolchain import known_toolchains
from gocall.shell.commands import Commands
from gocall.shell.completion import GoCompleter
from gocall.shell.output import Output
from gocall.shell.state import ShellState

from .conftest import (SIGINT, SIGINT_IN_CALL, UNTIL_BREAKPOINT, UNTIL_STOPPED, Shown, text_as_in_file, traced_by_us,
                       untraced)

GOCALL = [sys.executable, "-m", "gocall.cli.main"]
pytestmark = pytest.mark.timeout(90)  # a session waiting for keys that never come fails, not hangs


def completions(completer: GoCompleter, text: str) -> list[str]:
    return [c.text for c in completer.get_completions(Document(text), CompleteEvent(completion_requested=True))]


def test_completion_from_the_binary_and_the_stop(build_fixture) -> None:  # type: ignore[no-untyped-def]
    with gocall.launch([str(build_fixture("breaks")), "inspect"]) as proc:
        stop = proc.wait(30)
        assert isinstance(stop, gocall.Stop)
        state = ShellState(proc)
        completer = GoCompleter(state, Commands(state, Output(False, plain=True)))
        completer.warm()  # what the shell does 0.2 s after its first prompt: the first Tab then indexes nothing
        indexed = dict(completer.members.__dict__)
        assert {"Double", "IsSeven", "Total", "Label", "handle"} <= set(completions(completer, "main."))
        assert completer.members.__dict__ == indexed and "_index" in indexed
        assert {"Double", "IsSeven"} <= set(completions(completer, "x := main.Do") + completions(completer, "main.I"))
        assert set(completions(completer, "p.")) >= {"X", "Y", "String", "Scale"}  # a struct: fields and methods
        assert set(completions(completer, "pp.")) >= {"X", "Y", "String", "Scale"}  # a pointer: its methods too
        assert set(completions(completer, "req.")) == {"ID", "Path", "Tags", "Tag"}
        assert completions(completer, "req.Ta") == ["Tags", "Tag"] or set(completions(completer, "req.Ta")) == {"Tags", "Tag"}
        assert {"msg", "flag", "ratio", "local"} <= set(completions(completer, ""))  # locals at the stop
        assert "msg" in completions(completer, "ms")
        assert "1" in completions(completer, "goroutine ")  # goroutine ids
        assert completions(completer, "break main.Doub") == ["Double"]
        assert "breakpoints" in completions(completer, "brea")
        assert completer.signature("main.Double(") == "func main.Double(x int) int"
        assert completer.signature("req.Tag(") == "func main.(*Request).Tag(r *main.Request, i int) string"


def test_tab_at_a_stop_through_the_line_editor(build_fixture, drive) -> None:  # type: ignore[no-untyped-def]
    """The completion lists as the line editor shows them (pipe input, Tab), at a stop: a struct's
    fields and methods, a pointer's method, a local, goroutine ids, a package's function."""
    with gocall.launch([str(build_fixture("breaks")), "inspect"]) as proc:
        assert isinstance(proc.wait(30), gocall.Stop)
        # Each Tab, then what it draws (a menu, or the one completion inline), then Ctrl-C.
        keys = [("req.Ta\t", r"field \[\]string"), ("pp.Sc\t", r"pp\.Scale"), ("p.\t", r"String\s+method"),
                ("fla\t", "flag"), ("goroutine \t", r"\b1\s+goroutine"), ("main.Doub\t", r"main\.Double")]
        screen = drive(proc, [(0.3, k) for step, shown in keys for k in (step, Shown(shown), "\x03")]
                       + [(0.3, "exit\r")])  # fmt: skip
    lines = screen.splitlines()
    assert any("Tags" in line and "field []string" in line for line in lines), screen  # the menu, with meta
    assert any("Tag" in line and "method" in line for line in lines), screen
    assert "pp.Scale" in screen and "flag" in screen and "main.Double" in screen, screen
    assert any("String" in line and "method" in line for line in lines), screen
    assert any(re.search(r"\b1\s+goroutine", line) for line in lines), screen


def test_tab_completes_and_calls(shared_target, drive, capfd) -> None:  # type: ignore[no-untyped-def]
    with gocall.attach(shared_target.pid) as proc:
        screen = drive(proc, [(0.2, "main.Ad\t"), (1.5, "(20, 22)\r"), (0.2, "exit\r")])
    assert "main.Add(20, 22)" in screen
    assert capfd.readouterr().out.splitlines()[0] == "42"
    shared_target.assert_healthy()


def test_history_across_sessions_and_a_broken_file(shared_target, drive, capfd, history_file: Path) -> None:  # type: ignore[no-untyped-def]
    with gocall.attach(shared_target.pid) as proc:
        drive(proc, [(0.2, "main.Add(40, 2)\r"), (0.2, "exit\r")])
        assert "+main.Add(40, 2)" in history_file.read_text()
        drive(proc, [(0.2, "\x1b[A\x1b[A\r"), (0.2, "exit\r")])  # Up twice (exit, then the call), Enter
        assert capfd.readouterr().out.split() == ["42", "42"]
        history_file.unlink()
        history_file.mkdir()  # unreadable as a file: reported, the session goes on
        drive(proc, [(0.2, "main.Add(1, 1)\r"), (0.2, "exit\r")])
    captured = capfd.readouterr()
    assert captured.out.split() == ["2"] and "history not kept" in captured.err


def test_hit_announced_while_idle_then_exit_leaves_nothing(loop, drive, capfd) -> None:  # type: ignore[no-untyped-def]
    with gocall.attach(loop.pid) as proc:
        screen = drive(proc, [(0.2, "break main.handle if req.ID == 5\r"), (0.2, UNTIL_STOPPED), (0.2, "req.ID\r"),
                              (0.2, "locals\r"),
                              (0.2, "exit\r")])
        assert not proc.breakpoints and not proc.traced  # the shell's exit let it go, proc still open
        assert untraced(loop.pid) and proc.eval("main.Double(2)") == 4
    assert "breakpoint 1 hit: goroutine" in screen and "main.handle:" in screen  # the prompt shows the stop
    out = capfd.readouterr().out.splitlines()
    assert "5" in out and 'req = &main.Request{ID:5, Path:"/loop/5", Tags:[]string{"w1"}}' in out, out
    assert untraced(loop.pid) and text_as_in_file(loop.pid, loop.binary)
    assert loop.proc.poll() is None


def test_calls_at_the_prompt_let_their_thread_go(target, drive, capfd, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A line's calls share a thread (proc.batch()), let go a millisecond after the line: nothing
    stays traced while the person types (sessions 8-10 kept it seized and running until 5 s at
    the prompt; its stops then waited for a SIGCHLD handler), and the next line's call works."""
    seen: dict[str, object] = {}
    # The threads are looked at once the line has run, not while it runs: a call seizes and
    # detaches threads as it looks for one.
    ran = threading.Semaphore(0)
    run_line = Commands.run

    def run_and_tell(self: Commands, line: str) -> bool:
        try:
            return run_line(self, line)
        finally:
            ran.release()

    monkeypatch.setattr(Commands, "run", run_and_tell)

    def let_go() -> None:
        seen["ran"] = ran.acquire(timeout=20)
        deadline = time.monotonic() + 10
        while traced_by_us(target.pid) and time.monotonic() < deadline:
            time.sleep(0.002)
        seen["let go"] = not traced_by_us(target.pid)
        seen["within"] = time.monotonic() < deadline - 9.5  # half a second: a millisecond, a loaded CI's wake-up

    with gocall.attach(target.pid) as proc:
        drive(proc, [(0.2, "main.Add(1, 2)\r"), (0, let_go), (0.3, "main.Add(2, 3)\r"), (0.3, "exit\r")])
    assert capfd.readouterr().out.split() == ["3", "5"]
    assert seen == {"ran": True, "let go": True, "within": True}, seen
    assert untraced(target.pid)
    target.assert_healthy()


def test_ctrl_c_at_the_prompt_and_during_a_call(target, drive, capfd) -> None:  # type: ignore[no-untyped-def]
    with gocall.attach(target.pid) as proc:
        drive(proc, [(0.2, "main.Ad\x03"), (0.2, "main.Sleep(3000)\r"), (0.0, SIGINT_IN_CALL), (0.5, "main.Add(2, 3)\r"),
                     (0.3, "exit\r")])
    captured = capfd.readouterr()
    assert captured.out.split() == ["5"]  # the cleared line never ran; the interrupted call printed no result
    assert "interrupted" in captured.err
    assert untraced(target.pid)
    target.assert_healthy()


def test_calls_while_a_hot_breakpoint_is_armed(build_fixture, start_target, drive, capfd) -> None:  # type: ignore[no-untyped-def]
    """A Delve user's habit: a breakpoint armed on a function three goroutines call in a tight
    loop (condition never true), and calls typed while the program runs; one calls the
    breakpointed function itself: stepped over and said, not a stop."""
    spin = start_target(build_fixture("breaks"), ["spin", "3"])
    with gocall.attach(spin.pid) as proc:
        drive(proc, [(0.2, "break main.hot if n == -1\r"), (0, UNTIL_BREAKPOINT), (0.3, "main.Double(21)\r"),
                     (0.3, "main.HotNeg(-5)\r"), (0.3, "breakpoints\r"), (0.3, "exit\r")])
        assert not proc.breakpoints and not proc.traced
    captured = capfd.readouterr()
    out = captured.out.splitlines()
    assert out[1:3] == ["42", "true"] and "tests=" in out[3], out
    assert "breakpoint 1 was passed once inside the call, not stopped at" in captured.err
    assert untraced(spin.pid) and text_as_in_file(spin.pid, spin.binary)
    assert spin.alive


def test_ctrl_c_during_a_wait(loop, drive, capfd) -> None:  # type: ignore[no-untyped-def]
    with gocall.attach(loop.pid) as proc:
        drive(proc, [(0.2, "break main.handle if req.ID == 99\r"), (0, UNTIL_BREAKPOINT), (0.2, "continue\r"), (1.0, SIGINT),
                     (0.5, "clear all\r"), (0.2, "main.Double(4)\r"), (0.3, "exit\r")])
    captured = capfd.readouterr()
    assert "cleared 1" in captured.out and captured.out.splitlines()[-1] == "8"
    assert "stopped waiting" in captured.out or "interrupted" in captured.err
    assert untraced(loop.pid) and text_as_in_file(loop.pid, loop.binary)


_SCRIPT = "main.Double(21)\nbreak main.handle if req.ID == 7\ncontinue\nreq.Path\nnope(\nclear all\ncontinue\nmain.Total > 0\n"


def test_script_mode_and_json(loop) -> None:  # type: ignore[no-untyped-def]
    r = subprocess.run([*GOCALL, "attach", str(loop.pid)], input=_SCRIPT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1  # stopped at the bad line
    assert r.stdout.splitlines()[0] == "42" and r.stdout.splitlines()[-1] == '"/loop/7"'
    assert "nope(: not a valid Go expression" in r.stderr
    r = subprocess.run([*GOCALL, "attach", str(loop.pid), "--json", "--keep-going"], input=_SCRIPT,
                       capture_output=True, text=True, timeout=60)
    objects = [json.loads(line) for line in r.stdout.splitlines()]
    assert r.returncode == 1 and len(objects) == len(_SCRIPT.splitlines())
    assert objects[0]["results"] == [{"type": "int", "value": 42}] and objects[0]["location"]["thread"] > 0
    assert objects[2]["result"]["location"].startswith("main.handle")
    assert objects[3]["results"][0]["value"] == "/loop/7"
    assert objects[4]["error"].startswith("not a valid Go expression")
    assert objects[-1]["results"] == [{"type": "bool", "value": True}]
    assert untraced(loop.pid) and text_as_in_file(loop.pid, loop.binary)


def test_help_lists_each_command_once(shared_target) -> None:  # type: ignore[no-untyped-def]
    r = subprocess.run([*GOCALL, "attach", str(shared_target.pid)], input="help\nhelp quit\n", capture_output=True,
                       text=True, timeout=60)
    lines = r.stdout.splitlines()
    assert r.returncode == 0 and len(lines) == len(set(lines)), r.stdout  # quit, exit's alias, not twice
    assert [line.strip()[:24] for line in lines].count("exit (or quit, Ctrl-D): ") == 2  # and help quit says so


def test_roots_as_gocall_roots_prints_them(loop) -> None:  # type: ignore[no-untyped-def]
    """`roots N` in the shell prints what `gocall roots PID N` prints (goroutine 1 is parked in
    main.loop: its frames stay put; addresses may move if the GC shrinks its stack meanwhile)."""
    def masked(text: str) -> list[str]:
        return re.sub(r"0x[0-9a-f]+", "0x?", text).splitlines()

    cli = subprocess.run([*GOCALL, "roots", str(loop.pid), "1"], capture_output=True, text=True, timeout=60)
    shell = subprocess.run([*GOCALL, "attach", str(loop.pid)], input="roots 1\n", capture_output=True, text=True,
                           timeout=60)
    assert cli.returncode == 0 and shell.returncode == 0, (cli.stderr, shell.stderr)
    assert masked(shell.stdout) == masked(cli.stdout) and "main.loop" in shell.stdout, (shell.stdout, cli.stdout)
    shell = subprocess.run([*GOCALL, "attach", str(loop.pid), "--json"], input="roots 1\n", capture_output=True,
                           text=True, timeout=60)
    (result,) = json.loads(shell.stdout)["result"]
    assert result["goid"] == 1 and {"function", "mode", "slots"} <= set(result["frames"][0])
    assert untraced(loop.pid)


_AT_A_STOP = "break main.handle\ncontinue\ngoroutines\nstack\nroots\nmain.Double(req.ID)\ngoroutines\nclear all\ncontinue\n"


def test_goroutines_stack_and_roots_at_a_stop(loop) -> None:  # type: ignore[no-untyped-def]
    """At a stop every thread is the debugger's: goroutines and roots failed there after 5 s
    each ('thread N did not stop': the runtime view tried to seize and stop the stopped goroutine's
    thread itself), also after an evaluation (its debugCallV2 run kept open). Now they show the
    stopped goroutine where it stopped, read from its thread."""
    r = subprocess.run([*GOCALL, "attach", str(loop.pid), "--json"], input=_AT_A_STOP, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = [json.loads(line) for line in r.stdout.splitlines()]
    assert [o.get("error") for o in out] == [None] * len(_AT_A_STOP.splitlines()), out
    goid = out[1]["result"]["goroutine"]
    for listing in (out[2]["result"], out[6]["result"]):  # before and after the evaluation
        (mine,) = [g for g in listing if g["goid"] == goid]
        assert mine["status"] == "running" and mine["current"]["function"] == "main.handle", mine
    assert out[3]["result"][0]["function"] == "main.handle"
    (roots,) = out[4]["result"]
    assert roots["goid"] == goid and roots["frames"][0]["function"] == "main.handle", roots
    assert untraced(loop.pid) and text_as_in_file(loop.pid, loop.binary)


def test_run_interactive_script_kills_on_exit(build_fixture) -> None:  # type: ignore[no-untyped-def]
    binary = build_fixture("breaks")
    r = subprocess.run([*GOCALL, "run", "-i", "--break", "main.add", "--", str(binary), "inspect"],
                       input="continue\nargs\nmain.Double(a)\nexit\n", capture_output=True, text=True, timeout=60)
    lines = r.stdout.splitlines()
    assert r.returncode == 0, r.stderr
    assert any(line.startswith("breakpoint 1 hit: goroutine 1 at main.add") for line in lines)
    assert lines[-3:] == ["a = 3", "b = 4", "6"]
    assert "done" not in r.stdout  # killed on exit, never reached its end


class _Tmux:
    """A terminal a person types into: tmux running ``gocall attach PID`` (the real console script)."""

    def __init__(self, pid: int, history: Path) -> None:
        self.name = f"gocall-test-{os.getpid()}"
        self.tmux = ["tmux", "-L", self.name]
        gocall_script = Path(sys.executable).with_name("gocall")
        subprocess.run([*self.tmux, "new-session", "-d", "-s", self.name, "-x", "120", "-y", "20",
                        f"env GOCALL_HISTORY={history} {gocall_script} attach {pid}"], check=True)

    def keys(self, *keys: str) -> None:
        subprocess.run([*self.tmux, "send-keys", "-t", self.name, *keys], check=True)

    def screen(self, colours: bool = False) -> str:
        return subprocess.run([*self.tmux, "capture-pane", "-p", *(["-e"] if colours else []), "-t", self.name],
                              capture_output=True, text=True).stdout

    def wait_for(self, text: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while text not in (s := self.screen()):
            assert time.monotonic() < deadline, s
            time.sleep(0.1)
        return s

    def wait_for_prompt(self, timeout: float = 20) -> None:
        """Until the prompt is back: keys typed while a command runs meet the terminal's line
        discipline (Ctrl-R would be its reprint), not the line editor."""
        deadline = time.monotonic() + timeout
        while not (s := self.screen()).rstrip().endswith("running>"):
            assert time.monotonic() < deadline, s
            time.sleep(0.1)

    def wait_ended(self, timeout: float = 20) -> None:
        """Until the console script has exited (its tmux session ends with it). The screen changes
        as soon as `exit` is typed: a close then hung the script up in the middle of its way out,
        and its guarded session's INT3 on debugCallV2's tail (guard/watch.py) was left for the
        guardian to put back a moment later (seen at load 10: the tail's byte still 0xCC)."""
        deadline = time.monotonic() + timeout
        while subprocess.run([*self.tmux, "has-session", "-t", self.name], capture_output=True).returncode == 0:
            assert time.monotonic() < deadline, self.screen()
            time.sleep(0.1)

    def close(self) -> None:
        subprocess.run([*self.tmux, "kill-server"], capture_output=True)


_NO_TMUX = subprocess.run(["which", "tmux"], capture_output=True).returncode != 0


@pytest.mark.skipif(_NO_TMUX, reason="no tmux")
def test_console_script_in_tmux(shared_target, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """As a person: `gocall attach PID` in a terminal, type main.Ad, Tab, finish the call, Enter."""
    term = _Tmux(shared_target.pid, tmp_path / "history")
    try:
        term.wait_for("running>")
        term.keys("main.Ad", "Tab")
        term.wait_for("main.Add")
        term.keys("(19, 23)", "Enter")
        lines = term.wait_for("\n42\n").splitlines()
        assert any("main.Add(19, 23)" in line for line in lines)
        term.keys("exit", "Enter")
        term.wait_ended()  # not hung up on its way out (_Tmux.wait_ended)
    finally:
        term.close()
    assert untraced(shared_target.pid)
    shared_target.assert_healthy()


@pytest.mark.skipif(_NO_TMUX, reason="no tmux")
def test_multiline_input_ctrl_r_and_colour_in_tmux(shared_target, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """As a person: a composite literal typed over two lines (Enter with a brace open goes on),
    the result in Go colours, the latency line dim; then Ctrl-R finds that input in the history
    and runs it again."""
    term = _Tmux(shared_target.pid, tmp_path / "history")
    try:
        term.wait_for("running>")
        term.keys("main.Add(len([]int{1, 2,", "Enter")
        time.sleep(0.3)
        assert "\n42\n" not in term.screen()  # not run: the line goes on
        term.keys("3}), 39)", "Enter")
        term.wait_for("\n42\n")
        term.wait_for_prompt()
        coloured = term.screen(colours=True).splitlines()
        result = next(line for line in coloured if "42" in line and "Add" not in line)
        assert "\x1b[" in result, coloured  # coloured as Go
        assert any(" ms" in line and "\x1b[2m" in line for line in coloured), coloured  # the latency, dim
        term.wait_for_prompt()
        term.keys("C-r", "len(")
        term.wait_for("I-search backward: len(")
        term.keys("Enter", "Enter")
        deadline = time.monotonic() + 20
        while term.screen().count("\n42\n") + term.screen().endswith("42\n") < 2:
            assert time.monotonic() < deadline, term.screen()
            time.sleep(0.1)
        term.keys("exit", "Enter")
        term.wait_ended()  # not hung up on its way out (_Tmux.wait_ended)
    finally:
        term.close()
    assert untraced(shared_target.pid)
    shared_target.assert_healthy()


@pytest.mark.skipif(_NO_TMUX, reason="no tmux")
def test_waiting_is_said_on_the_status_line(build_fixture, start_target, go_toolchain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A call into a program whose goroutines are all parked waits: the shell says so on the live
    status line gocall call uses (issue 20), and Ctrl-C ends the wait, the line gone, the prompt
    back. Oldest and newest release only (a few seconds of waiting each)."""
    releases = sorted(t.release for t in known_toolchains())
    if go_toolchain.release not in (releases[0], releases[-1]):
        pytest.skip("the status line in the shell: oldest and newest release only")
    idle = start_target(build_fixture("idle"))
    term = _Tmux(idle.pid, tmp_path / "history")
    try:
        term.wait_for("running>")
        term.keys("main.Add(1, 2)", "Enter")
        term.wait_for("waiting for a goroutine to run Go code")
        term.keys("C-c")
        term.wait_for("nothing was changed")  # the engine's one line, after the status ends
        term.wait_for_prompt()  # then the prompt (the line is printed a moment before it)
        screen = term.screen()
        assert "waiting for a goroutine" not in screen, screen  # erased when the wait ended
        # The same with a breakpoint set (the call then waits for a thread the tracee can lend).
        term.keys("break main.Add", "Enter")
        term.wait_for("breakpoint 1 at main.Add")
        term.wait_for_prompt()
        term.keys("main.Add(1, 2)", "Enter")
        term.wait_for("waiting for a goroutine to run Go code")
        term.keys("C-c")
        deadline = time.monotonic() + 20
        while (screen := term.screen()).count("nothing was changed") < 2:
            assert time.monotonic() < deadline, screen
            time.sleep(0.1)
        assert "waiting for a goroutine" not in screen, screen
        term.wait_for_prompt()
        term.keys("exit", "Enter")
        term.wait_ended()  # not hung up on its way out (_Tmux.wait_ended)
    finally:
        term.close()
    assert untraced(idle.pid)
    assert idle.alive


@pytest.mark.skipif(_NO_TMUX, reason="no tmux")
def test_calls_into_a_sleeping_program_after_break_in_tmux(build_fixture, start_target, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """As a person on a mostly sleeping server (four goroutines waking every 200 ms): with a
    breakpoint set, a typed call runs (on a parked goroutine caught as it wakes: no thread runs
    Go code to lend); then a breakpoint the goroutines run into is announced above the prompt, a
    call at that stop, `clear`, `continue`, `exit`. Before, the call waited for a running
    goroutine and timed out (issue 12)."""
    sleepy = start_target(build_fixture("breaks"), ["loop", "200"])
    term = _Tmux(sleepy.pid, tmp_path / "history")
    try:
        term.wait_for("running>")
        term.keys("break main.IsNeg", "Enter")  # never called: the program runs on, every thread traced
        term.wait_for("breakpoint 1 at main.IsNeg")
        term.wait_for_prompt()
        term.keys("main.Double(21)", "Enter")
        term.wait_for("\n42\n")
        term.wait_for_prompt()
        term.keys("break main.handle", "Enter")
        term.wait_for("breakpoint 2 hit: goroutine")  # announced while idle at the prompt
        deadline = time.monotonic() + 20
        while not re.search(rf"gocall {sleepy.pid} main\.handle:\d+ g\d+>$", screen := term.screen().rstrip()):
            assert time.monotonic() < deadline, screen  # the prompt turns to the stop
            time.sleep(0.1)
        term.keys("main.Double(req.ID) == 2*req.ID", "Enter")
        term.wait_for("\ntrue\n")
        term.keys("clear all", "Enter")
        term.wait_for("cleared 1, 2")
        term.keys("continue", "Enter")
        term.wait_for_prompt()
        term.keys("exit", "Enter")
        term.wait_ended()
    finally:
        term.close()
    assert untraced(sleepy.pid)
    assert text_as_in_file(sleepy.pid, sleepy.binary)
    assert sleepy.alive
