"""The per-user ``gocall call`` server: the modules a command needs loaded once, a child
forked per command (cli/handoff.py is the client, and says why).

    python -m gocall.cli.server SOCKET     (started by the client, in the background)

* One per installed gocall and user: a lock file beside the socket is held for the server's
  life, so that two clients starting one at once get one; the socket (``SOCK_SEQPACKET``) is
  made 0600 in a 0700 directory, and each connection's peer must be this user
  (``SO_PEERCRED``).
* A request whose fingerprint (handoff.fingerprint: the interpreter and gocall's source
  files) is not the server's own is answered ``stale``: the server stops listening, lets its
  lock go and leaves once its running commands end, and the client starts a new one.
* Each command runs in a forked child, as ``gocall`` would run it from the client's shell (a
  spare forked ahead of the request and waiting for it, so that the fork, ~1.3 ms of the
  server's CPU, is off the command's path; forked for the request if there is none; a spare
  that ran a plain ``call`` serves the next command too, see :class:`_Worker`):
  the client's stdin/stdout/stderr, argv, environment, working directory and umask, signal
  dispositions as a new Python's (the ones the client ignores ignored), then cli/main.py's
  ``main``. The server relays the client's signals to it (``signal N``), sends SIGHUP if the
  client goes away (as a closed terminal would), and sends back how it ended (``exit N``,
  ``killed N``).
* The server is its children's guardian (guard/watch.py): each shares a slot with it, and a child
  that ends with a call open (killed outright: ``kill -9``, the OOM killer) has the call seen
  through by a process the server forks then, instead of a guardian forked by every command.
* SIGTERM, SIGHUP or SIGINT: it stops listening and leaves once its running commands end.
* It leaves after ``GOCALL_SERVER_IDLE`` seconds (default :data:`IDLE_SECONDS`) without a
  command. Its log (a line per command, errors of its own) is ``server-*.log`` beside the
  socket, cut when it passes 1 MB.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import gc
import importlib
import logging
import mmap
import os
import resource
import selectors
import signal
import socket
import struct
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import NoReturn

from ..guard import watch
from ..guard.alone import live_alone
from . import handoff

IDLE_SECONDS = 600.0
_MOST_LOST = 3  # spare children ending unasked before the server stops forking them (Server.reap_spare)
_MOST_SERVED = 100  # commands one child runs at most (_Worker): what a command leaves in memory is bounded
_LOG_LIMIT = 1 << 20
_MAX_REQUEST = 1 << 20  # argv and environment (the client falls back if its request is larger)
# Loaded before listening, so that no command loads them: the call path, and what a call loads
# on first use (tree-sitter for expressions beyond pkg.F(literals), pyelftools for DWARF not yet
# in the index cache, rich and the status line for a terminal, --break's stops), and the other
# commands served (cli/__init__.py).
_PRELOAD = ("gocall.cli.main", "gocall.expr.parse", "tree_sitter", "tree_sitter_go", "elftools.dwarf.dwarfinfo",
            "elftools.elf.elffile", "rich.console", "rich.markup", "gocall.cli.status", "gocall.cli.breakcall",
            "gocall.stop", "gocall.fleet", "gocall.runtime.view", "gocall.runtime.listing", "gocall.runtime.roots",
            "gocall.doctor", *(f"gocall.cli.{c}" for c in ("goroutines", "stack", "roots", "doctor", "info", "ps")))  # fmt: skip


_LEAVE_SIGNALS = {signal.SIGTERM, signal.SIGHUP, signal.SIGINT}  # the server's own: it leaves (on_signals)


@dataclass
class _Command:
    conn: socket.socket
    client: int  # the client's PID (SO_PEERCRED), for the log
    child: int = 0
    pidfd: int = -1
    slot: mmap.mmap = field(default_factory=watch.new_slot)  # shared with the child: its open call (guard/watch.py)
    target: int = 0  # the PID a ``call PID ...`` names (0: another command)
    started: float = field(default_factory=time.monotonic)
    pair: socket.socket | None = None  # the server's end of a spare's pair: the command's end comes on it (_Worker)


@dataclass
class _Spare:
    """A child forked before its request: it waits on its end of ``sock`` for one (the client's
    message and descriptors, as the server received them), then runs it as :meth:`Server._child`."""

    pid: int
    pidfd: int
    sock: socket.socket  # the server's end
    slot: mmap.mmap


class Server:
    def __init__(self, path: str) -> None:
        self.path = path
        self.fingerprint = handoff.fingerprint()
        self.namespaces = handoff.namespaces()
        self.idle = float(os.environ.get(handoff.IDLE, IDLE_SECONDS))
        self.selector = selectors.DefaultSelector()
        self.commands: dict[int, _Command] = {}  # by the connection's fd
        self.listener: socket.socket | None = None
        self.lock_fd = -1
        self.bound: tuple[int, int] | None = None  # the socket file's (st_dev, st_ino), to remove only ours
        self.wakeup: tuple[int, ...] = ()  # the pipe signals wake the loop through (on_signals)
        self.spare: _Spare | None = None
        self.retired: set[int] = set()  # pidfds of spares let go, until reaped
        self.lost_spares = 0  # spares that ended unasked: after _MOST_LOST, commands fork for themselves

    # -- life ---------------------------------------------------------------------------------

    def take_lock(self) -> bool:
        """Whether this is the one server for ``path`` (another holding the lock: leave)."""
        self.lock_fd = os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def listen(self) -> None:
        with contextlib.suppress(FileNotFoundError):  # a socket left by a server that died: ours now (the lock)
            os.unlink(self.path)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        old = os.umask(0o177)  # made 0600, with no moment at a wider mode
        try:
            self.listener.bind(self.path)
        finally:
            os.umask(old)
        st = os.stat(self.path)
        self.bound = (st.st_dev, st.st_ino)
        self.listener.listen(16)
        self.selector.register(self.listener, selectors.EVENT_READ, self.accept)

    def stop_listening(self) -> None:
        """No new commands: the socket removed (if still ours) and the lock let go, so that
        another server can start while this one's running commands end."""
        if self.listener is None:
            return
        self.retire_spare()
        self.selector.unregister(self.listener)
        self.listener.close()
        self.listener = None
        with contextlib.suppress(OSError):
            st = os.stat(self.path)
            if (st.st_dev, st.st_ino) == self.bound:
                os.unlink(self.path)
        os.close(self.lock_fd)
        self.lock_fd = -1

    def on_signals(self) -> None:
        """SIGTERM, SIGHUP, SIGINT: no new commands, the running ones relayed to their end
        (their clients still forward Ctrl-C), then leave."""
        read, write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(write)
        for signum in _LEAVE_SIGNALS:
            signal.signal(signum, lambda signum, frame: None)  # the wake-up byte is the message
        self.wakeup = (read, write)
        self.selector.register(read, selectors.EVENT_READ, self.leave)

    def leave(self, read: int) -> None:
        os.read(read, 64)
        if self.listener is not None:
            _log(f"signalled: leaving once {len(self.commands)} running command(s) end")
            self.stop_listening()

    def run(self) -> None:
        last = time.monotonic()
        while self.listener is not None or self.commands:
            if self.spare is None and self.listener is not None and not self.commands \
                    and self.lost_spares < _MOST_LOST:
                self.fork_spare()  # between commands: not competing with one for a CPU
            timeout = None if self.commands else max(0.0, last + self.idle - time.monotonic())
            events = self.selector.select(timeout)
            if not events and not self.commands:
                _log("idle: leaving")
                break
            for key, _ in events:
                key.data(key.fileobj)
            last = time.monotonic()
        self.stop_listening()

    # -- commands -----------------------------------------------------------------------------

    def accept(self, listener: socket.socket) -> None:
        conn, _ = listener.accept()
        conn.settimeout(5.0)  # the client sends its request at once; a stuck one must not stop the server
        fds: list[int] = []
        try:
            pid, uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
            msg, ancdata, flags, _ = conn.recvmsg(_MAX_REQUEST, socket.CMSG_SPACE(3 * 4))
            for level, kind, data in ancdata:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds += struct.unpack(f"{len(data) // 4}i", data[: len(data) // 4 * 4])
            if uid != os.getuid() or len(fds) != 3 or flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
                _log(f"refused a connection from PID {pid} (uid {uid}, {len(fds)} descriptors)")
                return conn.close()
            fields = [os.fsdecode(f) for f in msg.split(b"\0")]
            if fields[0] != self.fingerprint:
                _log(f"PID {pid} runs another gocall: leaving for a server of it")
                conn.send(b"stale")
                conn.close()
                return self.stop_listening()
            if fields[1] != self.namespaces:
                conn.send(b"elsewhere")
                return conn.close()
            argv = fields[10 : 10 + int(fields[9])]
            target = int(argv[1]) if argv[:1] == ["call"] and len(argv) > 1 and argv[1].isdigit() else 0
            if (spare := self.take_spare(msg, fds)) is not None:
                command = _Command(conn, pid, spare.pid, spare.pidfd, spare.slot, target, pair=spare.sock)
            else:
                command = _Command(conn, pid, target=target)
                with _signals_held():
                    command.child = os.fork()
                    if command.child == 0:
                        self._child(command.slot, lambda: (fields, fds), conn=conn)  # never returns
                command.pidfd = os.pidfd_open(command.child)
            conn.send(b"started %d" % command.child)
        except (OSError, ValueError, IndexError) as e:
            _log(f"bad request: {type(e).__name__}: {e}")
            return conn.close()
        finally:
            for fd in fds:
                os.close(fd)
        conn.setblocking(False)
        self.commands[conn.fileno()] = command
        self.selector.register(conn, selectors.EVENT_READ, self.relay)
        self.selector.register(command.pidfd, selectors.EVENT_READ, self.reap)
        if command.pair is not None:
            self.selector.register(command.pair, selectors.EVENT_READ, self.done)

    def _child(self, slot: mmap.mmap, request: Callable[[], tuple[list[str], list[int]]],
               pair: socket.socket | None = None, conn: socket.socket | None = None) -> None:
        """In a forked child: let go of everything of the server's (its own connection ``conn``
        too, when forked for the command: the client must see the server's end as the
        connection's, or with the server killed its Ctrl-C would go to this copy, unread), take
        the request (a spare waits for it here, on ``pair``), become the client's ``gocall`` and
        run the command; a spare then serves the next one if it can (:class:`_Worker`). Never
        returns."""
        code: object = 1
        try:
            self.selector.close()
            for sock in [self.listener, conn, *(c.conn for c in self.commands.values()),
                         *(c.pair for c in self.commands.values())]:  # fmt: skip
                if sock is not None:
                    sock.close()
            for c in self.commands.values():
                if c.pidfd >= 0:
                    os.close(c.pidfd)
                if c.slot is not slot:
                    c.slot.close()
            if self.spare is not None:  # (a spare's end held here would keep it waiting)
                self.spare.sock.close()
                os.close(self.spare.pidfd)
                self.spare.slot.close()
            for pidfd in self.retired:
                os.close(pidfd)
            watch.guarded_by_parent(slot)
            if self.lock_fd >= 0:
                os.close(self.lock_fd)
            signal.set_wakeup_fd(-1)
            for fd in self.wakeup:
                os.close(fd)
            worker = _Worker(slot, pair)
            # The handling a one-shot gocall starts with (main() installs its own): a signal
            # held since the fork is taken now, as it would have been by a gocall of its own.
            _as_new_gocall()
            while True:
                fields, fds = request()
                if worker.served:  # (its signals were ignored since its last command: _Worker.leave)
                    _as_new_gocall()
                _, _, cwd, umask, ignored, out_enc, out_err, in_enc, in_err, nargs = fields[:10]
                argv, env = fields[10 : 10 + int(nargs)], fields[10 + int(nargs) :]
                _become(fds, cwd, int(umask), {int(s) for s in ignored.split(",") if s}, (out_enc, out_err),
                        (in_enc, in_err), env)  # fmt: skip
                sys.argv = ["gocall", *argv]
                from .main import main

                worker.argv = argv
                try:
                    main(worker.leave)  # leaves by os._exit, or by SystemExit when a thread still runs (cli/main.py _exit)
                except _Served:
                    assert pair is not None
                    request = functools.partial(_wait_request, pair)
                    continue
                code = 0
                break
        except SystemExit as e:
            code = e.code
        except KeyboardInterrupt:  # a Ctrl-C before main() took signals over: nothing was done yet
            code = 130
        except _NoRequest:  # a spare let go (or its server gone): it ends unseen
            os._exit(0)
        except BaseException as e:  # noqa: BLE001 (the child must never return into the server)
            with contextlib.suppress(Exception):
                sys.stderr.write(f"gocall: the server's child failed: {type(e).__name__}: {e}\n")
        finally:
            os._exit(_finish(code))

    # -- the spare ----------------------------------------------------------------------------

    def fork_spare(self) -> None:
        """Fork the child the next command will run in, before its request (see _Spare)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        slot = watch.new_slot()
        try:
            with _signals_held():
                pid = os.fork()
                if pid == 0:
                    ours.close()
                    self._child(slot, functools.partial(_wait_request, theirs), theirs)  # never returns
            pidfd = os.pidfd_open(pid)
        except OSError as e:
            _log(f"no spare child: {type(e).__name__}: {e}")
            ours.close()
            slot.close()
            return
        finally:
            theirs.close()
        self.spare = _Spare(pid, pidfd, ours, slot)
        self.selector.register(pidfd, selectors.EVENT_READ, self.reap_spare)

    def take_spare(self, msg: bytes, fds: list[int]) -> _Spare | None:
        """The spare, given the request ``msg`` and its descriptors; None if there is none or it
        cannot take it (it died: then reaped and the command is forked for)."""
        spare, self.spare = self.spare, None
        if spare is None:
            return None
        try:
            spare.sock.sendmsg([msg], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack(f"{len(fds)}i", *fds))])
        except OSError as e:
            _log(f"the spare child {spare.pid} took no request ({type(e).__name__}: {e}): forking for it")
            spare.sock.close()
            self.retired.add(spare.pidfd)
            return None
        self.selector.unregister(spare.pidfd)  # reaped as the command's child from now on
        return spare

    def retire_spare(self) -> None:
        """Let the spare go (it leaves when its end of the pair closes): the server leaves, or
        keeps a new executable that a child forked now would find read (binary/kept.py)."""
        spare, self.spare = self.spare, None
        if spare is not None:
            self.let_go(spare)

    def let_go(self, spare: _Spare) -> None:
        """``spare`` leaves when its end of the pair closes (_NoRequest), reaped by reap_spare."""
        spare.sock.close()
        spare.slot.close()
        self.retired.add(spare.pidfd)

    def reap_spare(self, pidfd: int) -> None:
        """A spare ended (let go, or killed by someone) before it had a request."""
        self.selector.unregister(pidfd)
        with contextlib.suppress(ChildProcessError):
            os.waitid(os.P_PIDFD, pidfd, os.WEXITED)
        os.close(pidfd)
        if self.spare is not None and self.spare.pidfd == pidfd:
            _log(f"the spare child {self.spare.pid} ended before a command")
            self.spare.sock.close()
            self.spare.slot.close()
            self.spare = None
            self.lost_spares += 1  # (one that cannot even wait would otherwise be forked again at once, forever)
        self.retired.discard(pidfd)

    def relay(self, conn: socket.socket) -> None:
        """A message from the client: a signal for the child, or its end (SIGHUP: as if its
        terminal had closed)."""
        command = self.commands.get(conn.fileno())
        if command is None:
            return  # its command ended earlier in the same round of events (reap closed the connection)
        try:
            msg = conn.recv(64)
        except BlockingIOError:
            return
        except OSError:
            msg = b""
        if not msg:
            self.selector.unregister(conn)
            msg = b"signal %d" % signal.SIGHUP
        kind, _, number = msg.partition(b" ")
        if kind == b"signal" and command.pidfd >= 0:
            with contextlib.suppress(OSError, ValueError):
                signal.pidfd_send_signal(command.pidfd, int(number))

    def reap(self, pidfd: int) -> None:
        """A command's child ended (a worker's end between commands is reap_spare's)."""
        command = next((c for c in self.commands.values() if c.pidfd == pidfd), None)
        if command is None:
            return  # a worker that said its command ended in the same round of events (done): a spare's now
        _, status, usage = os.wait4(command.child, 0)
        self.selector.unregister(pidfd)
        os.close(pidfd)
        command.pidfd = -1
        if command.pair is not None:
            self.selector.unregister(command.pair)
            command.pair.close()
        if os.WIFSIGNALED(status):
            end = b"killed %d" % os.WTERMSIG(status)
        else:
            end = b"exit %d" % os.waitstatus_to_exitcode(status)
        rescue = ""
        if (target := watch.open_run(command.slot)) is not None:
            rescue = f"; its call in process {target} is seen through by process {_see_through(command.slot, target)}"
        command.slot.close()
        self._answer(command, end, f"CPU {1e3 * (usage.ru_utime + usage.ru_stime):.1f} ms, {usage.ru_minflt} page faults{rescue}")
        if command.target and _keep_binary(command.target):  # after the client has its answer
            self.retire_spare()  # the next command's child, forked after this, finds it read

    def done(self, pair: socket.socket) -> None:
        """A worker's command ended (_Worker.leave: ``done STATUS CPU_US FAULTS``): its client
        told, as reap would; the worker is then the spare, unless one is there already, the
        server is leaving, or it lacks an executable the server has just kept. An empty
        message: it is ending (reap's then)."""
        command = next((c for c in self.commands.values() if c.pair is pair), None)
        if command is None:
            return  # its child ended in the same round of events (reap closed the pair)
        try:
            msg = pair.recv(64)
        except OSError:
            msg = b""
        self.selector.unregister(pair)
        command.pair = None
        if not msg:
            pair.close()
            return
        _, status, cpu_us, faults = msg.split()
        self.selector.unregister(command.pidfd)
        self._answer(command, b"exit %d" % int(status), f"CPU {int(cpu_us) / 1e3:.1f} ms, {int(faults)} page faults")
        worker = _Spare(command.child, command.pidfd, pair, command.slot)
        self.selector.register(command.pidfd, selectors.EVENT_READ, self.reap_spare)
        if command.target and _keep_binary(command.target):
            self.retire_spare()  # forked before the executable was kept, as this worker was
            self.let_go(worker)
        elif self.spare is not None or self.listener is None:
            self.let_go(worker)
        else:
            self.spare = worker

    def _answer(self, command: _Command, end: bytes, usage: str) -> None:
        """Tell the client how its command ended (``exit N``, ``killed N``), logged first."""
        _log(f"PID {command.client}: {end.decode()} after {time.monotonic() - command.started:.3f} s, {usage}")  # before the client ends: it may read this
        with contextlib.suppress(OSError):
            command.conn.setblocking(True)
            command.conn.send(end)
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(command.conn)
        del self.commands[command.conn.fileno()]
        command.conn.close()


def _see_through(slot: mmap.mmap, target: int) -> int:
    """A child ended with a call open in ``target`` (the kernel has let its thread go): what its
    guardian would have done (guard/watch.py), in a process forked twice (init reaps it; a
    session of its own) that reads the target's binary itself; its pid. The server serves on."""
    read, write = os.pipe2(os.O_CLOEXEC)
    fork = os.fork()
    if fork:
        os.close(write)
        os.waitpid(fork, 0)  # the fork between, which leaves once the rescuer is forked
        rescuer = int.from_bytes(os.read(read, 8) or bytes(8), sys.byteorder)
        os.close(read)
        return rescuer
    try:
        os.setsid()
        if (rescuer := os.fork()) != 0:
            os.write(write, rescuer.to_bytes(8, sys.byteorder))
        else:
            signal.set_wakeup_fd(-1)
            log = os.dup(2)
            live_alone(log)
            try:
                from ..session import Process

                with Process(target) as process:
                    watch.see_through(slot, process.engine.guardian())
            except BaseException as e:  # noqa: BLE001 (a rescuer never returns into the server)
                with contextlib.suppress(OSError):
                    os.write(log, f"{time.strftime('%Y-%m-%d %H:%M:%S')} [{os.getpid()}] seeing a call in "
                                  f"{target} through failed: {type(e).__name__}: {e}\n".encode())
    finally:
        os._exit(0)


# The symbols every call looks up in .symtab (a scan of .strtab each, ~0.1 ms on the small
# benchmark binary): the module data for runtime types (runtime/view.py, expr/eval.py) and the
# trap net's hook and its abort (guard/net.py).
_CALL_SYMBOLS = ("runtime.firstmoduledata", "runtime.testSigtrap", "runtime.abort")


class _NoRequest(Exception):
    """A spare's end of its pair closed before a request came."""


class _Served(Exception):
    """A command ended in a child that serves the next one (_Worker.leave): out of main()'s frames."""


@dataclass
class _Worker:
    """A spare child that serves another command once its own has ended, instead of ending.

    Why: a child forked for each command spent ~8.5 ms of CPU on ``gocall call`` on the small
    benchmark target (bench/cold_attach.py), ~1,500 page faults of it copies of pages shared
    with the server since the fork that the command wrote (refcounts, the allocator's); a
    child that has run one command owns those pages already: ~2.5 ms and ~30 faults. So a
    plain ``call PID EXPR...`` (cli/main.py ``_plain_call``: no ``--log``, nothing that
    configures the process) is followed by the next command in the same child when it left
    nothing behind: no thread (its atexit handlers have run, and are gone: atexit's own rule),
    nothing open in the slot (no run, no net, no breakpoint: guard/watch.py), no logging
    handler. Its streams are then pointed at /dev/null (a reader of its output sees the end)
    and the console's rich consoles dropped (they keep the terminal they were made for).
    Anything else, and after _MOST_SERVED commands, the child ends as a forked one does. The
    command's CPU time and page faults are reported from here (getrusage since the last
    command's end; the first one's since the fork), as the server's wait4 gives them."""

    slot: mmap.mmap
    pair: socket.socket | None  # its end of the pair with the server (None: forked for one command)
    served: int = 0
    argv: list[str] = field(default_factory=list)  # the command's, after ``gocall``
    usage: tuple[int, int] = (0, 0)  # CPU µs and page faults at the end of the last command

    def leave(self, code: int) -> NoReturn:
        """main()'s end (the atexit handlers run, the streams flushed): serve on if this command
        left nothing behind, else end as a command's own process would."""
        if self.pair is None or self.served + 1 >= _MOST_SERVED or not self._left_nothing():
            os._exit(code)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
        from .main import console

        console.forget_streams()
        # A signal the client forwards as its command ends reaches this child after that end:
        # it is not the next command's (which installs its handling when it comes, _as_new_gocall).
        for signum in {*handoff._FORWARDED, *_LEAVE_SIGNALS}:
            signal.signal(signum, signal.SIG_IGN)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        now = (round(1e6 * (usage.ru_utime + usage.ru_stime)), usage.ru_minflt)
        try:
            self.pair.send(b"done %d %d %d" % (code & 0xFF, now[0] - self.usage[0], now[1] - self.usage[1]))
        except OSError:  # the server is gone: its client waits for this process's end (handoff._wait_orphan)
            os._exit(code)
        self.usage = now
        self.served += 1
        raise _Served

    def _left_nothing(self) -> bool:
        from .main import _plain_call

        threading = sys.modules.get("threading")
        return (_plain_call(self.argv) is not None and (threading is None or threading.active_count() == 1)
                and watch.open_run(self.slot) is None and not logging.getLogger().handlers)  # fmt: skip


def _as_new_gocall() -> None:
    """The signal handling a one-shot gocall starts with (main() installs its own)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for signum in _LEAVE_SIGNALS - {signal.SIGINT}:
        signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _LEAVE_SIGNALS)


def _wait_request(sock: socket.socket) -> tuple[list[str], list[int]]:
    """In a spare: the request the server passes on (its fields, and the client's stdin, stdout
    and stderr); :class:`_NoRequest` if let go first."""
    msg, ancdata, _, _ = sock.recvmsg(_MAX_REQUEST, socket.CMSG_SPACE(3 * 4))
    if not msg:
        raise _NoRequest
    fds: list[int] = []
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds += struct.unpack(f"{len(data) // 4}i", data[: len(data) // 4 * 4])
    return [os.fsdecode(f) for f in msg.split(b"\0")], fds


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Around a fork: the child starts with the server's handlers and wake-up pipe, and a signal
    relayed to it before _child drops them (a client killed at once: SIGHUP) would be a byte in
    the server's pipe, read as the server's own SIGTERM/SIGHUP/SIGINT (it left), and be lost for
    the child. Held until each side has its own handling."""
    signal.pthread_sigmask(signal.SIG_BLOCK, _LEAVE_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _LEAVE_SIGNALS)


def _keep_binary(pid: int) -> bool:
    """The executable of ``pid`` read here, once, as each command's Process reads it (its
    pclntab, the index cache's state, the runtime's layout, the symbols a call looks up), and
    kept for the children forked from now on (binary/kept.py); whether it is newly kept."""
    from ..binary import kept
    from ..binary.elffile import GoBinary
    from ..binary.support import check_callable
    from ..runtime import layouts

    if kept.kept(pid):
        return False
    try:
        binary = GoBinary.of_process(pid)
    except Exception:  # noqa: BLE001 (gone, or not a Go binary: the command said so already)
        return False
    try:
        binary.pclntab  # noqa: B018 (read now: a cached property)
        for name in _CALL_SYMBOLS:
            binary.symbol(name)
        check_callable(binary)
        layouts.for_go(binary.go_version_tuple, binary.dwarf)
        if not kept.keep(binary, pid):
            binary.close()
            return False
    except Exception as e:  # noqa: BLE001 (what the command would have reported itself)
        binary.close()
        _log(f"not keeping the executable of {pid}: {type(e).__name__}: {e}")
        return False
    gc.freeze()  # as the preloaded modules: not walked by the children's collections
    _log(f"keeping the executable of {pid} read for the next commands")
    return True


def _become(fds: list[int], cwd: str, umask: int, ignored: set[int], out: tuple[str, str], inp: tuple[str, str],
            env: list[str]) -> None:
    """This process as the client's would be: its streams, directory, umask, environment, and
    signal dispositions as a new Python sets them (those the client ignores ignored)."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    with contextlib.suppress(OSError):  # as a shell in a directory since removed: the command runs anyway
        os.chdir(cwd)
    os.umask(umask)
    os.environ.clear()
    os.environ.update(item.partition("=")[::2] for item in env if "=" in item)
    # Python's own streams, opened again on the new descriptors: line-buffered on a terminal as
    # at start-up (the server's were made for /dev/null).
    streams = {"stdin": open(0, encoding=inp[0], errors=inp[1], closefd=False),  # noqa: SIM115
               "stdout": open(1, "w", buffering=1 if os.isatty(1) else -1, encoding=out[0], errors=out[1],  # noqa: SIM115
                              closefd=False),
               "stderr": open(2, "w", buffering=1, encoding=out[0], errors="backslashreplace", closefd=False)}  # noqa: SIM115
    for name, stream in streams.items():
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    for signum in handoff._FORWARDED:
        signal.signal(signum, signal.SIG_IGN if signum in ignored else signal.SIG_DFL)
    if signal.SIGINT not in ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    for signum in (signal.SIGPIPE, signal.SIGXFSZ):  # Python/pylifecycle.c
        signal.signal(signum, signal.SIG_IGN)


def _finish(code: object) -> int:
    """What Python's exit would do with ``code`` (a message printed, 1), after waiting for
    threads still running and flushing the streams."""
    if code is None:
        code = 0
    if not isinstance(code, int):
        with contextlib.suppress(Exception):
            print(code, file=sys.stderr)
        code = 1
    threading = sys.modules.get("threading")
    with contextlib.suppress(Exception):
        if threading is not None:
            threading._shutdown()
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    return code & 0xFF


def _log(text: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        if os.fstat(2).st_size > _LOG_LIMIT:
            os.ftruncate(2, 0)
        sys.stderr.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} [{os.getpid()}] {text}\n")
        sys.stderr.flush()


def serve(path: str) -> None:
    """Be the server for ``path``, unless one is already (its lock taken)."""
    server = Server(path)
    if not server.take_lock():
        return
    log = os.open(path.removesuffix(".sock") + ".log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
    os.dup2(log, 2)
    os.close(log)
    gc.disable()  # as cli/__init__.py: the modules' objects live until exit, frozen so as not to be walked
    for module in _PRELOAD:
        try:
            importlib.import_module(module)
        except Exception as e:  # noqa: BLE001 (a module a command may load itself)
            _log(f"preload {module}: {type(e).__name__}: {e}")
    with contextlib.suppress(Exception):  # what every command would compute: the index cache's stamp
        from ..binary import cache

        cache._stamp()
    gc.freeze()
    gc.enable()
    server.on_signals()
    server.listen()
    _log(f"listening on {path} (gocall in {handoff.package_dir()}, Python {sys.executable})")
    server.run()


if __name__ == "__main__":
    serve(sys.argv[1])
