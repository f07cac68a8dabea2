"""The per-user ``gocall call`` server (cli/server.py, cli/handoff.py), end to end: the
``gocall`` console script started on demand, a server of another gocall replaced, the socket
private, Ctrl-C through the server, the command run in-process when no server can be used.

Each test has a runtime directory of its own (``XDG_RUNTIME_DIR``) and stops every server it
started."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import random
import re
import select
import shlex
import signal
import socket
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gocall.cli import handoff
from gocall.cli.server import _MOST_LOST
from harness import tracer_pids

_ENTRY = "import sys; from gocall.cli import main; sys.argv[0] = 'gocall'; main()"  # as the console script
_STALE_SERVER = ("import sys; from gocall.cli import handoff, server\n"
                 "handoff.fingerprint = lambda: 'an older gocall'\n"
                 "server.serve(sys.argv[1])")  # fmt: skip


class Runtime:
    """A runtime directory, the ``gocall`` commands run with it, and the servers they start."""

    def __init__(self, base: Path) -> None:
        base.mkdir(mode=0o700)
        self.base = base
        self.dir = base / "gocall"  # handoff.runtime_dir with XDG_RUNTIME_DIR=base
        self.socket = Path(handoff.socket_path(str(self.dir)))
        self.env = {**os.environ, "XDG_RUNTIME_DIR": str(base)}
        self.env.pop("GOCALL_SERVER", None)

    def gocall(self, *args: str, python: str = sys.executable, cwd: Path | None = None,
               **env: str) -> subprocess.Popen[str]:
        return subprocess.Popen([python, "-c", _ENTRY, *args], env={**self.env, **env}, text=True, cwd=cwd,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip

    def run(self, *args: str, python: str = sys.executable, cwd: Path | None = None,
            **env: str) -> tuple[int, str, str, int]:
        """(exit status, stdout, stderr, the client's PID) of ``gocall ARGS``."""
        p = self.gocall(*args, python=python, cwd=cwd, **env)
        out, err = p.communicate(timeout=60)
        return p.returncode, out, err, p.pid

    def servers(self) -> list[int]:
        """PIDs of the servers for this directory's socket (not their children: the command
        running, the spare waiting for the next, which have the server's command line)."""
        found = {}
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            if os.fsencode(self.socket) in argv:  # python -m gocall.cli.server SOCKET (or the stale one's -c)
                found[int(pid)] = parent
        return [pid for pid, parent in found.items() if parent not in found]

    def wait_listening(self, timeout: float = 30.0) -> int:
        """The PID of the server, once it accepts connections."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
                try:
                    s.connect(str(self.socket))
                except OSError:
                    time.sleep(0.05)  # a server loads its modules before it listens
                    continue
            if len(servers := self.servers()) == 1:  # (a stale one may still be on its way out)
                return servers[0]
            time.sleep(0.05)
        raise AssertionError(f"no server listening on {self.socket} after {timeout} s: {self.log()}")

    def log(self) -> str:
        logs = list(self.dir.glob("server-*.log"))
        return logs[0].read_text() if logs else "(no log)"

    def stop(self) -> None:
        for pid in self.servers():
            os.kill(pid, signal.SIGTERM)
            _wait_gone(pid)


def _wait_gone(pid: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
                return
        except (FileNotFoundError, ProcessLookupError):
            return  # reaped between two looks, or between the open and the read (ESRCH)
        assert time.monotonic() < deadline, f"process {pid} still running"
        time.sleep(0.05)


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    r = Runtime(tmp_path / "run")
    try:
        yield r
    finally:
        r.stop()


def _started(runtime: Runtime, pid: int) -> int:
    """Run a first command (in its own process: no server yet), and the server it started."""
    status, out, _, _ = runtime.run("call", str(pid), "main.Add(1, 2)")
    assert (status, out) == (0, "3\n")
    return runtime.wait_listening()


def test_started_on_demand_then_used(runtime, shared_target):  # type: ignore[no-untyped-def]
    assert runtime.servers() == []
    server = _started(runtime, shared_target.pid)
    # Private: the directory only this user may enter, the socket only this user may use.
    assert runtime.dir.stat().st_mode & 0o777 == 0o700 and runtime.socket.stat().st_mode & 0o777 == 0o600
    status, out, _, client = runtime.run("call", str(shared_target.pid), "main.Add(1, 2)")
    assert (status, out) == (0, "3\n")
    assert f"PID {client}: exit 0" in runtime.log()  # handed over, not run by the client
    assert runtime.servers() == [server]
    # The same exit statuses and output as the command run in its own process.
    for args in (["call", str(shared_target.pid), "--json", "main.Add(1, 2)", "main.Nope()"], ["call"],
                 ["call", "--help"], ["call", str(shared_target.pid), "main.Add(1, 2)", "main.Scale(2.5, true)"]):
        served, alone = runtime.run(*args), runtime.run(*args, GOCALL_SERVER="0")
        assert served[0] == alone[0] and (served[1] == alone[1] or _same_json(served[1], alone[1])), args
        if args[1:2] != [str(shared_target.pid)]:  # not a note of where a call was made, which varies
            assert served[2] == alone[2], args
        assert f"PID {served[3]}: exit {served[0]}" in runtime.log()
    assert runtime.run("call")[0] == 2


def test_read_only_commands_are_served_too(runtime, shared_target):  # type: ignore[no-untyped-def]
    """goroutines, stack, roots, doctor, info and ps are one-shot looks at a process too: handed
    over (1.1-1.8 s -> 0.2-0.3 s for goroutines and stack on an 8.7 MB server at load 12),
    with the output and exit status they have run alone."""
    pid = str(shared_target.pid)
    _started(runtime, shared_target.pid)
    for args in (["info", pid], ["info", pid, "--json"], ["goroutines", pid], ["stack", pid, "1"],
                 ["roots", pid, "1"], ["doctor", pid], ["ps"], ["stack", pid, "999999"]):
        served, alone = runtime.run(*args), runtime.run(*args, GOCALL_SERVER="0")
        assert f"PID {served[3]}: exit {served[0]}" in runtime.log(), args  # handed over
        assert served[0] == alone[0] and served[2] == alone[2], (args, served, alone)
        if args[0] == "info":
            assert served[1] == alone[1], args
        else:  # what the program's goroutines are doing now varies
            assert bool(served[1]) == bool(alone[1]), args
    assert runtime.run("stack", pid, "999999")[0] != 0  # a failure is one still


def _same_json(a: str, b: str) -> bool:
    """The same results, wherever each call was made (the goroutine running at that moment)."""
    def strip(out: str) -> object:
        return [{k: v for k, v in item.items() if k not in ("goroutine", "location")} for item in json.loads(out)]

    return a.startswith("[{") and strip(a) == strip(b)


def test_one_interpreter_by_two_names_shares_a_server(runtime, shared_target):  # type: ignore[no-untyped-def]
    """A venv's bin/python and bin/python3 (the console script's) are one interpreter: neither
    takes the other's server for a stale one."""
    names = [p for p in (Path(sys.executable).with_name(n) for n in ("python", "python3")) if p.exists()]
    if len(names) < 2:
        pytest.skip(f"one name only for this interpreter: {names}")
    server = _started(runtime, shared_target.pid)
    for python in names * 2:
        status, out, _, client = runtime.run("call", str(shared_target.pid), "main.Add(1, 2)", python=str(python))
        assert (status, out) == (0, "3\n") and f"PID {client}: exit 0" in runtime.log()
    assert runtime.servers() == [server]


def test_stale_server_is_replaced(runtime, shared_target):  # type: ignore[no-untyped-def]
    """A server of another gocall (an upgrade, an edit: another fingerprint) leaves when a
    client sees it; the command runs in the client, which starts a server of its own gocall."""
    runtime.dir.mkdir(mode=0o700)
    old = subprocess.Popen([sys.executable, "-c", _STALE_SERVER, str(runtime.socket)], env=runtime.env,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        assert runtime.wait_listening() == old.pid
        status, out, _, _ = runtime.run("call", str(shared_target.pid), "main.Add(1, 2)")
        assert (status, out) == (0, "3\n")
        assert old.wait(timeout=30) == 0
        new = runtime.wait_listening()
        assert new != old.pid
        status, out, _, client = runtime.run("call", str(shared_target.pid), "main.Add(1, 2)")
        assert (status, out) == (0, "3\n") and f"PID {client}: exit 0" in runtime.log()
    finally:
        old.kill()
        old.wait()


def test_ctrl_c_through_the_server(runtime, target):  # type: ignore[no-untyped-def]
    """Ctrl-C to the client reaches the command in the server's child, which unwinds the call
    as the one-shot gocall does: the target restored and running, exit status 130."""
    server = _started(runtime, target.pid)
    client = runtime.gocall("call", str(target.pid), "main.Sleep(5000)")
    tracer = _in_flight(client, target.pid)
    assert int(Path(f"/proc/{tracer}/stat").read_text().rsplit(")", 1)[1].split()[1]) == server  # the server's child
    client.send_signal(signal.SIGINT)
    out, err = client.communicate(timeout=30)
    assert client.returncode == 130 and out == "" and "interrupted" in err, (out, err)
    target.assert_healthy()
    assert set(tracer_pids(target.pid).values()) == {0}
    assert runtime.servers() == [server]


def _in_flight(client: subprocess.Popen[str], target_pid: int) -> int:
    """The tracer of ``target_pid`` once the command's call is in flight."""
    deadline = time.monotonic() + 30
    while not (tracers := set(tracer_pids(target_pid).values()) - {0}):
        assert client.poll() is None and time.monotonic() < deadline, client.communicate()
        time.sleep(0.01)
    (tracer,) = tracers
    return tracer


def test_server_signalled_lets_commands_end(runtime, target):  # type: ignore[no-untyped-def]
    """SIGTERM to the server: no new commands, the running one relayed to its end."""
    server = _started(runtime, target.pid)
    client = runtime.gocall("call", str(target.pid), "main.Sleep(1500)")
    _in_flight(client, target.pid)
    os.kill(server, signal.SIGTERM)
    out, err = client.communicate(timeout=30)
    assert (client.returncode, out) == (0, "1500\n"), err
    _wait_gone(server)
    assert not runtime.socket.exists() and "signalled: leaving once 1 running command(s) end" in runtime.log()
    target.assert_healthy()


def test_server_killed_mid_command(runtime, target):  # type: ignore[no-untyped-def]
    """The server SIGKILLed while its child runs a call: the client waits for the child, sends
    it Ctrl-C itself, and says the exit status is unknown; the target is unharmed."""
    server = _started(runtime, target.pid)
    client = runtime.gocall("call", str(target.pid), "main.Sleep(5000)")
    _in_flight(client, target.pid)
    os.kill(server, signal.SIGKILL)
    _wait_gone(server)
    client.send_signal(signal.SIGINT)
    out, err = client.communicate(timeout=30)
    assert client.returncode == 1 and "its exit status is not known" in err and "interrupted" in err, (out, err)
    target.assert_healthy()
    assert set(tracer_pids(target.pid).values()) == {0}


def test_server_killed_mid_command_forked_for_it(runtime, target, start_target):  # type: ignore[no-untyped-def]
    """The same for a command that found no spare (the spare runs the first of two at once),
    whose child the server forked for it: that child let go of the server's end of its client's
    connection too. Before, it kept it, and with the server killed the client's Ctrl-C went into
    that copy, unread; the call ran to its end (CI saw it once, a spare not yet forked)."""
    server = _started(runtime, target.pid)
    first = runtime.gocall("call", str(target.pid), "main.Sleep(5000)")  # in the spare
    _in_flight(first, target.pid)
    other = start_target()
    second = runtime.gocall("call", str(other.pid), "main.Sleep(5000)")  # forked for it
    _in_flight(second, other.pid)
    os.kill(server, signal.SIGKILL)
    _wait_gone(server)
    second.send_signal(signal.SIGINT)
    first.send_signal(signal.SIGINT)
    for client, t in ((second, other), (first, target)):
        out, err = client.communicate(timeout=30)
        assert client.returncode == 1 and "its exit status is not known" in err and "interrupted" in err, (out, err)
        t.assert_healthy()
        assert set(tracer_pids(t.pid).values()) == {0}


def test_child_killed_mid_call_is_seen_through_by_the_server(runtime, target):  # type: ignore[no-untyped-def]
    """`kill -9` of the server's child (the OOM killer's way) while its callee runs: no guardian
    was forked for the command (guard/watch.py guarded_by_parent); the server, its parent, sees
    the call through from the slot they share, in a process of its own: the callee returns, the
    thread is restored and detached, the target unharmed, and the server serves on."""
    server = _started(runtime, target.pid)
    client = runtime.gocall("call", str(target.pid), "main.Sleep(1500)")
    child = _in_flight(client, target.pid)
    assert _forks_of(child) == []  # no guardian of its own
    time.sleep(0.3)  # well into the callee
    os.kill(child, signal.SIGKILL)
    _, err = client.communicate(timeout=30)
    assert client.returncode == -signal.SIGKILL, err  # it ends as its command did
    rescue = re.search(rf"PID {client.pid}: killed 9 .*its call in process {target.pid} is seen through by "
                       r"process (\d+)", runtime.log())  # fmt: skip
    assert rescue, runtime.log()
    rescuer = int(rescue.group(1))
    deadline = time.monotonic() + 30
    while (os.path.exists(f"/proc/{rescuer}") or set(tracer_pids(target.pid).values()) != {0}) \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    assert set(tracer_pids(target.pid).values()) == {0}, runtime.log()
    target.assert_healthy()  # the interrupted worker got its goroutine back, registers intact
    status, out, _, _ = runtime.run("call", str(target.pid), "main.Add(1, 2)")
    assert (status, out) == (0, "3\n") and runtime.servers() == [server]
    assert "failed" not in runtime.log(), runtime.log()


def _forks_of(pid: int) -> list[int]:
    """The live children of ``pid``."""
    found = []
    for d in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(d))
    return found


def _spare(server: int) -> int:
    """The child the server forked ahead of its next command, once it has one (and only it)."""
    deadline = time.monotonic() + 30
    while len(forks := _forks_of(server)) != 1:
        assert time.monotonic() < deadline, forks
        time.sleep(0.02)
    return forks[0]


def test_commands_run_in_a_spare_forked_ahead(runtime, shared_target):  # type: ignore[no-untyped-def]
    """Between commands the server has a child forked for the next one, which runs it (the
    fork off the command's path); one killed while it waits is replaced, and a command never
    depends on it. (``--timeout``: not a plain call, after which the child would serve on, and
    the server would keep the executable and let that child go, which _spare could take for
    the spare.)"""
    server = _started(runtime, shared_target.pid)
    for i in range(3):
        spare = _spare(server)
        assert runtime.run("call", "--timeout", "60", str(shared_target.pid), f"main.Add({i}, 2)")[:2] == (0, f"{i + 2}\n")
        _wait_gone(spare)  # it ran the command and ended (not the plain form: no serving on, no executable kept)
    os.kill(spare := _spare(server), signal.SIGKILL)
    _wait_gone(spare)
    assert runtime.run("call", "--timeout", "60", str(shared_target.pid), "main.Add(5, 2)")[:2] == (0, "7\n")
    assert runtime.servers() == [server] and runtime.log().count(": exit 0") == 4, runtime.log()
    assert _spare(server) != spare
    # Spares that keep ending unasked are not forked again and again: commands fork for themselves.
    for _ in range(_MOST_LOST - 1):
        os.kill(spare := _spare(server), signal.SIGKILL)
        _wait_gone(spare)
    deadline = time.monotonic() + 30
    while runtime.log().count("ended before a command") < _MOST_LOST:
        assert time.monotonic() < deadline, runtime.log()
        time.sleep(0.02)
    assert runtime.run("call", str(shared_target.pid), "main.Add(6, 2)")[:2] == (0, "8\n")
    assert _forks_of(server) == [] and runtime.servers() == [server], runtime.log()


def test_a_plain_calls_child_serves_the_next_command(runtime, shared_target):  # type: ignore[no-untyped-def]
    """A spare that ran a plain ``call PID EXPR...`` runs the next command too (server._Worker:
    the pages it wrote are its own by then, where each forked child copied them again), exit
    statuses as before; it holds none of the last client's streams (a reader of the output sees
    its end), keeps no colours made for the last one, and a command of another form ends it."""
    pid = str(shared_target.pid)
    server = _started(runtime, shared_target.pid)
    assert runtime.run("call", pid, "main.Add(1, 2)")[:2] == (0, "3\n")  # its executable kept after: let go
    assert runtime.run("call", pid, "main.Add(2, 2)")[:2] == (0, "4\n")  # in a spare forked after that
    worker = _spare(server)
    for expr, expected in [("main.Add(2, 3)", (0, "5\n")), ("main.Nope()", (1, "")), ("main.Add(3, 2)", (0, "5\n"))]:
        assert runtime.run("call", pid, expr)[:2] == expected
        assert _spare(server) == worker, runtime.log()
        assert {os.readlink(f"/proc/{worker}/fd/{fd}") for fd in (0, 1, 2)} == {os.devnull}
    status, _, err, _ = runtime.run("call", pid, "main.Nope()", FORCE_COLOR="1")  # colour, as on a terminal
    assert status == 1 and "\x1b[" in err
    status, _, err, _ = runtime.run("call", pid, "main.Nope()")  # plain again: to a pipe
    assert status == 1 and err.startswith("gocall: main.Nope()"), err
    piped = subprocess.run(f"{shlex.quote(sys.executable)} -c {shlex.quote(_ENTRY)} call {pid} 'main.Add(4, 2)' | cat",
                           shell=True, env=runtime.env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert (piped.returncode, piped.stdout) == (0, "6\n")  # cat saw its input end: nobody else held the pipe
    assert _spare(server) == worker
    assert runtime.log().count(": exit 0") == 5 and runtime.log().count(": exit 1") == 3, runtime.log()
    assert runtime.run("goroutines", pid)[0] == 0  # another command: the child ends after it
    _wait_gone(worker)
    assert _spare(server) != worker
    shared_target.assert_healthy()


def test_ctrl_c_in_a_child_that_served_before(runtime, target):  # type: ignore[no-untyped-def]
    """Ctrl-C reaches a command run by a child that has served others (server._Worker), as it
    reaches a forked one: the call unwound, exit status 130; then the child serves on, the
    signal not carried into the next command."""
    pid = str(target.pid)
    server = _started(runtime, target.pid)
    for i in range(2):  # the first in the spare forked before the executable was kept
        assert runtime.run("call", pid, f"main.Add({i}, 2)")[:2] == (0, f"{i + 2}\n")
    worker = _spare(server)
    client = runtime.gocall("call", pid, "main.Sleep(5000)")
    assert _in_flight(client, target.pid) == worker
    client.send_signal(signal.SIGINT)
    out, err = client.communicate(timeout=30)
    assert client.returncode == 130 and out == "" and "interrupted" in err, (out, err)
    target.assert_healthy()
    assert set(tracer_pids(target.pid).values()) == {0}
    assert runtime.run("call", pid, "main.Add(5, 2)")[:2] == (0, "7\n")
    assert _spare(server) == worker and runtime.servers() == [server], runtime.log()


def test_server_keeps_its_targets_executables_read(runtime, target, start_target, build_fixture):  # type: ignore[no-untyped-def]
    """After a command, the server reads its target's executable once and keeps it for the next
    commands' children (binary/kept.py); two programs taking turns each get their own."""
    other = start_target(build_fixture("breaks"), ["loop"])
    _started(runtime, target.pid)
    for i in range(3):
        assert runtime.run("call", str(target.pid), f"main.Add({i}, 2)")[:2] == (0, f"{i + 2}\n")
        assert runtime.run("call", str(other.pid), f"main.Double({i})")[:2] == (0, f"{2 * i}\n")
    log = runtime.log()
    for pid in (target.pid, other.pid):
        assert log.count(f"keeping the executable of {pid} read") == 1, log
    target.assert_healthy()


def test_clients_killed_at_once_leave_the_server_serving(runtime, target):  # type: ignore[no-untyped-def]
    """`kill -9` of gocall, as a person would, at random early moments of each command: the
    server relays a hangup to the child each time and keeps serving (a signal relayed before the
    child had its own handlers once reached the server's wake-up pipe, and the server left);
    the target stays healthy and untraced."""
    server = _started(runtime, target.pid)
    rng = random.Random(7)
    for _ in range(20):
        client = runtime.gocall("call", str(target.pid), "main.Add(1, 2)", "main.Add(3, 4)")
        time.sleep(rng.uniform(0.0, 0.03))
        client.kill()
        client.communicate(timeout=30)
    deadline = time.monotonic() + 30
    while set(tracer_pids(target.pid).values()) != {0} and time.monotonic() < deadline:
        time.sleep(0.05)  # the last child, hung up, restores and detaches
    assert runtime.servers() == [server] and "signalled" not in runtime.log(), runtime.log()
    assert runtime.run("call", str(target.pid), "main.Add(1, 2)")[:2] == (0, "3\n")
    assert set(tracer_pids(target.pid).values()) == {0}
    target.assert_healthy()


def test_client_loads_almost_nothing(runtime, shared_target):  # type: ignore[no-untyped-def]
    """What the client imports is its start-up time (bench/cold_attach.py): no click, no engine,
    not even typing; the server's child has them."""
    _started(runtime, shared_target.pid)
    client = subprocess.run([sys.executable, "-X", "importtime", "-c", _ENTRY, "call", str(shared_target.pid),
                             "main.Add(1, 2)"], env=runtime.env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert (client.returncode, client.stdout) == (0, "3\n")
    python = subprocess.run([sys.executable, "-X", "importtime", "-c", "pass"], capture_output=True, text=True)
    assert _imported(client.stderr) - _imported(python.stderr) == {
        "gocall", "gocall.cli", "gocall.cli.handoff", "_socket", "gc", "atexit"}


def _imported(importtime: str) -> set[str]:
    return {line.rsplit("|", 1)[1].strip() for line in importtime.splitlines() if line.startswith("import time:")}


def test_client_runs_its_atexit_handlers(runtime, shared_target):  # type: ignore[no-untyped-def]
    """As cli/main.py's exit: the handlers of whoever runs the client (a harness, an embedding)
    run before it leaves, though the command ran in the server's child."""
    _started(runtime, shared_target.pid)
    served = runtime.log().count(": exit 0")
    before = "import atexit; atexit.register(print, 'atexit ran'); "
    client = subprocess.run([sys.executable, "-c", before + _ENTRY, "call", str(shared_target.pid), "main.Add(1, 2)"],
                            env=runtime.env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert (client.returncode, client.stdout) == (0, "3\natexit ran\n")
    assert runtime.log().count(": exit 0") == served + 1  # handed over


def test_live_status_line_through_the_server(runtime, target):  # type: ignore[no-untyped-def]
    """The child writes to the client's terminal (its stderr, passed over): the live status line
    shows while the callee runs, as in tests/cli/test_status.py; stdout stays the result."""
    _started(runtime, target.pid)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 250, 0, 0))
    env = {k: v for k, v in runtime.env.items() if k not in ("COLUMNS", "LINES", "FORCE_COLOR", "NO_COLOR")}
    client = subprocess.Popen([sys.executable, "-c", _ENTRY, "call", str(target.pid), "main.Sleep(800)"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave,
                              env={**env, "TERM": "xterm-256color"})  # fmt: skip
    os.close(slave)
    written = b""
    try:
        while select.select([master], [], [], 60)[0]:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every holder of the terminal (the client, the child) is done
                break
            if not data:
                break
            written += data
        out, _ = client.communicate(timeout=60)
    finally:
        os.close(master)
        client.kill()
    assert (client.returncode, out) == (0, b"800\n"), written
    assert re.search(rb"main\.Sleep running for 0\.\d s on goroutine \d+", written), written
    assert f"PID {client.pid}: exit 0" in runtime.log()


def test_no_server_where_it_cannot_be_private(runtime, shared_target):  # type: ignore[no-untyped-def]
    """A runtime directory others may write, or GOCALL_SERVER=0: the command runs in the
    client, and no server is started."""
    runtime.dir.mkdir(mode=0o700)
    runtime.dir.chmod(0o777)
    assert runtime.run("call", str(shared_target.pid), "main.Add(1, 2)")[:2] == (0, "3\n")
    assert not runtime.socket.exists() and runtime.servers() == []
    runtime.dir.chmod(0o700)
    assert runtime.run("call", str(shared_target.pid), "main.Add(1, 2)", GOCALL_SERVER="0")[:2] == (0, "3\n")
    assert not runtime.socket.exists() and runtime.servers() == []


def test_server_not_started_again_while_one_starts(runtime, shared_target):  # type: ignore[no-untyped-def]
    """A server started less than 30 s ago (the lock file's mtime) may still be loading its
    modules: no command starts another meanwhile; past that, the next one does."""
    runtime.dir.mkdir(mode=0o700)
    lock = Path(f"{runtime.socket}.lock")
    lock.touch()
    recent = time.time() - 5
    os.utime(lock, (recent, recent))
    assert runtime.run("call", str(shared_target.pid), "main.Add(1, 2)")[:2] == (0, "3\n")
    assert lock.stat().st_mtime == recent and not runtime.socket.exists()  # not started
    os.utime(lock, (recent - 60, recent - 60))
    assert runtime.run("call", str(shared_target.pid), "main.Add(1, 2)")[:2] == (0, "3\n")
    runtime.wait_listening()


def test_no_server_where_no_socket_fits(tmp_path, shared_target):  # type: ignore[no-untyped-def]
    """A runtime directory too deep for a unix socket's path (108 bytes): no server, the
    command runs in the client."""
    runtime = Runtime(tmp_path / ("d" * 100))
    assert len(bytes(runtime.socket)) > 107
    assert runtime.run("call", str(shared_target.pid), "main.Add(1, 2)")[:2] == (0, "3\n")
    assert runtime.servers() == [] and not Path(f"{runtime.socket}.lock").exists()


def test_server_ignores_its_starting_directory(runtime, shared_target, tmp_path):  # type: ignore[no-untyped-def]
    """Started from a directory with a module of the name of one it loads, the server loads the
    installed one (python -P: not the directory first on sys.path, as -m alone would)."""
    (work := tmp_path / "work").mkdir()
    (work / "tree_sitter_go.py").write_text("raise ImportError('the one in the directory')\n")
    assert runtime.run("call", str(shared_target.pid), "main.Add(1, 2)", cwd=work)[:2] == (0, "3\n")
    server = runtime.wait_listening()
    assert "the one in the directory" not in runtime.log() and os.readlink(f"/proc/{server}/cwd") == "/"


def test_idle_server_leaves(runtime, shared_target):  # type: ignore[no-untyped-def]
    status, out, _, _ = runtime.run("call", str(shared_target.pid), "main.Add(1, 2)", GOCALL_SERVER_IDLE="1")
    assert (status, out) == (0, "3\n")
    deadline = time.monotonic() + 60
    while "idle: leaving" not in runtime.log() or runtime.servers():  # (it may leave before a probe sees it)
        assert time.monotonic() < deadline, runtime.log()
        time.sleep(0.05)
    assert "listening on" in runtime.log() and not runtime.socket.exists()
