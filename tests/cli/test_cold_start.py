"""What a cold ``gocall call`` loads: modules it does not need stay unimported (each costs
start-up time, bench/cold_attach.py), and the parser's fast path for ``pkg.F(literals)``
gives exactly the tree tree-sitter gives."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from gocall.expr.parse import _parse_tree, _simple_call

# Loaded on first use only: tree-sitter (expressions beyond pkg.F(literals)), rich (a terminal),
# breakpoints and stops, the other commands, ctypes.util's ldconfig run.
_NOT_AT_START = ("tree_sitter", "tree_sitter_go", "rich", "gocall.stop", "gocall.process.tracee", "gocall.cli.info",
                 "gocall.cli.run", "gocall.cli.goroutines", "ctypes.util", "subprocess", "prompt_toolkit", "pygments",
                 "gocall.shell", "gocall.cli.attach", "gocall.expr.members")


def test_cli_start_imports_only_what_call_needs() -> None:
    code = ("import sys, gocall.cli.main\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {_NOT_AT_START!r} or m in {_NOT_AT_START!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_lazy_names_still_importable() -> None:
    code = ("import sys, gocall; print('gocall.session' in sys.modules)\n"
            "from gocall import Stop, Breakpoint, Exited, attach, Process\n"
            "print(Stop.__name__, gocall.Breakpoint.__name__, attach.__name__, gocall.launch.__name__, Process.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "Stop", "Breakpoint", "attach", "launch", "Process"]


# The `gocall` command (scripts/gocall: gocall.cli:main), run as the installed one runs it.
_ENTRY = "import sys; from gocall.cli import main; sys.argv[0] = 'gocall'; main()"


def _entry(*args: str, before: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", before + _ENTRY, *args], capture_output=True, text=True, timeout=60)


def test_console_script_same_as_module(shared_target):  # type: ignore[no-untyped-def]
    module = [sys.executable, "-m", "gocall.cli.main"]
    for args in (["--help"], ["call", "--help"], ["call"], ["call", str(shared_target.pid), "main.Add(1, 2)"],
                 ["call", str(shared_target.pid), "--json", "main.Add(1, 2)", "main.Nope()"]):
        r, m = _entry(*args), subprocess.run([*module, *args], capture_output=True, text=True, timeout=60)
        assert (r.returncode, _same(r.stdout)) == (m.returncode, _same(m.stdout)), args
    assert r.returncode == 1 and "main.Nope is not in the binary" in r.stdout  # the last: JSON flushed on exit 1


def _same(out: str) -> object:
    """``out`` without where each call was made (the goroutine running at that moment)."""
    if not out.startswith("[{"):
        return out
    return [{k: v for k, v in item.items() if k not in ("goroutine", "location")} for item in json.loads(out)]


def test_console_script_collects_garbage_in_commands() -> None:
    # The collector is off only while the modules load: a command's cycles are collected.
    before = "import gc, atexit; atexit.register(lambda: print('gc on', gc.isenabled(), gc.get_freeze_count() > 0)); "
    r = _entry("--help", before=before)
    assert r.returncode == 0 and r.stdout.splitlines()[-1] == "gc on True True"


def test_fast_exit_keeps_atexit_and_threads() -> None:
    # gocall leaves by os._exit after the atexit handlers and a flush; a thread still running
    # (none of gocall's own) makes it take Python's ordinary exit, which waits for the thread.
    r = _entry("call", before="import atexit; atexit.register(print, 'atexit ran'); ")
    assert (r.returncode, r.stdout) == (2, "atexit ran\n") and "give a PID and at least one EXPR" in r.stderr
    thread = ("import sys, threading, time\n"
              "def late():\n"  # still running when the command is done: it starts its 0.3 s once gocall is loaded
              "    while 'gocall.cli.main' not in sys.modules: time.sleep(0.01)\n"
              "    time.sleep(0.3); print('thread done')\n"
              "threading.Thread(target=late).start()\n")
    r = _entry("--help", before=thread)
    assert r.returncode == 0 and "Usage: gocall" in r.stdout and "thread done" in r.stdout.splitlines()


@pytest.mark.parametrize("text", [
    "main.Add(1, 2)", 'main.Greet("world")', "main.Scale(2.5, true)", "main.F()", "main.F(-1, -0, -2.5, 0.0, false)",
    "main.F(1,)", 'main.F("a, b", "")', "x.M(1)", "main.F( 1 , 2 )", 'strings.ToUpper("héllo")', "main.F(1\n, 2)",
    "main.F(123456789012345678901234567890)",
])
def test_fast_path_is_the_tree_sitter_tree(text: str) -> None:
    assert _simple_call(text) is not None
    assert _simple_call(text) == _parse_tree(text)


@pytest.mark.parametrize("text", [
    "main.F(1,,2)", "main.F(,)", "main.F(01)", "main.F(1 2)", 'main.F("a\\n")', "main.F(0x10)", "map.F(1)",
    "main.F(1)(2)", "main.pt.Sum()", " main.F(1)", "main.F(1e3)", "main.F(.5)", "main.F(- 1)", "Add(1)", "main.F('a')",
])
def test_fast_path_leaves_the_rest_to_tree_sitter(text: str) -> None:
    assert _simple_call(text) is None


def test_plain_call_skips_click_with_the_same_result(shared_target):  # type: ignore[no-untyped-def]
    """``call PID EXPR... [--json] [-q]`` runs call's body without click's parse (cli/main.py
    _plain_call); the same command with an option only click parses gives the same output."""
    pid = str(shared_target.pid)
    for args in ([pid, "main.Add(1, 2)"], [pid, "--json", "main.Add(1, 2)", "main.Nope()"], ["-q", pid, "main.F(1,,2)"],
                 [pid, "main.Add(1, 2)", "main.Scale(2.5, true)", "--quiet"]):
        plain, parsed = _entry("call", *args), _entry("call", "--timeout", "10", *args)
        assert (plain.returncode, _same(plain.stdout)) == (parsed.returncode, _same(parsed.stdout)), args


def test_plain_call_form() -> None:
    from gocall.cli.main import _plain_call

    assert _plain_call(["call", "12", "main.F()", "--json", "-q"]) == {
        "args": ("12", "main.F()"), "as_json": True, "quiet": True, "timeout": None}
    for argv in (["call", "12"], ["call", "x", "main.F()"], ["call", "12", "main.F()", "--timeout", "3"],
                 ["call", "--", "12", "main.F()"], ["call", "12", "-main.F()"], ["call", "--help"],
                 ["--log", "all", "call", "12", "main.F()"], ["stack", "12"]):
        assert _plain_call(argv) is None, argv
