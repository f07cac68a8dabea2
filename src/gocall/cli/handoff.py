"""The client half of the ``gocall call`` server (cli/server.py): hand the command (``call``,
or another one-shot look at a process: cli/__init__.py) to a running server of this same gocall,
or start one for next time and let the caller run the command itself.

Why a server: a ``gocall call`` spends most of its start loading modules (click, the engine,
~150 in all, bench/cold_attach.py), more than the call itself. A server that has them loaded
forks a child per command; the child runs exactly the one-shot path (cli/main.py, its signal
handling and exit statuses included) with this process's argv, environment, working
directory, umask and stdin/stdout/stderr (passed as file descriptors, so a terminal stays a
terminal: colours, the live status line). This process only waits and relays:

* every signal that would end it (process/signals.py's list, SIGPIPE and SIGXFSZ aside: the
  child meets those itself on the streams it writes) is forwarded to the child, which handles
  it as the one-shot gocall would (a call finished or unwound, the target restored, 128 + n);
  signals this process ignores (``nohup``) are ignored by the child too;
* the child's end is this process's end: its exit status, or its death by a signal.

Anything unusual makes :func:`hand_over` return, and the caller runs the command itself: no
server (one is started for next time, as this process leaves: its start, ~0.25 s of CPU loading
modules, never competes with the command for a CPU), ``GOCALL_SERVER=0``, a runtime directory that is not
private to this user, a server of another gocall (``stale``: it leaves), of another PID or
mount namespace, a closed standard stream. Only the C modules ``_socket`` and ``_signal`` are
imported here: ``socket.py`` and ``signal.py`` load ``enum`` and more, start-up time this
module exists to save.
"""

import _signal  # type: ignore[import-not-found]  # (no stubs: its names are signal's)
import _socket
import os
import sys

PROTOCOL = "gocall-server 1"
SWITCH = "GOCALL_SERVER"  # "0": never use nor start a server
IDLE = "GOCALL_SERVER_IDLE"  # seconds a server waits for work before leaving (default server.IDLE_SECONDS)

# process/signals.py TERMINATING less SIGPIPE and SIGXFSZ (see above): numbers from the C module,
# as signal.py would wrap each in an enum. SIGWINCH too, so that the child sees a resize.
_FORWARDED = (_signal.SIGHUP, _signal.SIGINT, _signal.SIGQUIT, _signal.SIGTERM, _signal.SIGUSR1, _signal.SIGUSR2,
              _signal.SIGALRM, _signal.SIGVTALRM, _signal.SIGPROF, _signal.SIGXCPU,
              *range(_signal.SIGRTMIN, _signal.SIGRTMAX + 1), _signal.SIGWINCH)  # fmt: skip


def runtime_dir() -> str:
    """Where the server's socket lives: ``$XDG_RUNTIME_DIR/gocall`` (private to the user by
    the XDG spec), else ``/tmp/gocall-UID``."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    return os.path.join(base, "gocall") if base else f"/tmp/gocall-{os.getuid()}"


def private_dir(path: str, create: bool) -> bool:
    """Whether ``path`` is a directory of this user's that no one else may enter (made 0700 if
    ``create`` and absent). A directory someone else owns or can write could hold a socket of
    theirs, which would then be given this user's terminal and the call."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        if not create:
            return False
        try:
            os.mkdir(path, 0o700)
            st = os.lstat(path)
        except OSError:
            return False
    except OSError:
        return False
    return st.st_mode & 0o170777 == 0o040700 and st.st_uid == os.getuid()  # S_IFDIR, rwx------


def package_dir() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def socket_path(directory: str) -> str:
    """One server per installed gocall (its package directory's device and inode): two
    virtualenvs or checkouts never share one."""
    st = os.stat(package_dir())
    return os.path.join(directory, f"server-{st.st_dev:x}-{st.st_ino:x}.sock")


def fingerprint() -> str:
    """What must be equal for a server's code to be this client's: the protocol, the
    interpreter and its environment, and every source file of gocall (count, mtimes, sizes: an upgrade or an edit
    changes them; ~0.5 ms for ~120 files). A server whose fingerprint differs is stale."""
    count = mtimes = sizes = 0
    stack = [package_dir()]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.name.endswith(".py"):
                    st = entry.stat(follow_symlinks=False)
                    count, mtimes, sizes = count + 1, mtimes + st.st_mtime_ns, sizes + st.st_size
                elif entry.name != "__pycache__" and entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
    # The interpreter by its real path and its environment (sys.prefix): a venv's bin/python and
    # bin/python3 are one interpreter, and must not take turns replacing each other's server.
    return f"{PROTOCOL} {os.path.realpath(sys.executable)} {sys.prefix} {package_dir()} {count} {mtimes} {sizes}"


def namespaces() -> str:
    """The PID and mount namespaces: a PID means another process in another PID namespace."""
    return " ".join(os.readlink(f"/proc/self/ns/{ns}") for ns in ("pid", "mnt"))


def hand_over(argv: list[str]) -> None:
    """Run ``gocall ARGV`` in the server and end this process as it ends; return if it cannot
    (a server then started for next time as this process leaves, when there was none)."""
    if os.environ.get(SWITCH) == "0":
        return
    directory = runtime_dir()
    if not private_dir(directory, create=True):
        return
    path = socket_path(directory)
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC)
    try:
        sock.connect(path)
    except OSError:  # none yet, or one that died (its lock is free: the new one cleans up)
        sock.close()
        _start_at_exit(path)
        return
    pending: list[int] = []  # signals that came before the child was started
    child = [0]  # its PID once started: signals go to it directly if the server is gone
    previous = _forward_signals(sock, pending, child)
    try:
        _send_request(sock, argv)
        reply = sock.recv(64)
    except (OSError, AttributeError):  # AttributeError: a standard stream is closed (sys.stdout None)
        reply = b""
    if reply.startswith(b"started "):
        child[0] = int(reply.split()[1])
        _relay(sock, child[0])
    sock.close()
    for signum, handler in previous.items():  # as found, for the command run here instead
        _signal.signal(signum, handler)
    if pending:  # nothing was done yet: end of it, as this process would have without a server
        _die_of(pending[0])
    if reply == b"stale":  # it leaves (cli/server.py); one of this gocall takes its place
        _start_at_exit(path, replacing=True)
    # "elsewhere": another namespace's server; b"": refused, or gone: this process runs the command


def _send_request(sock: _socket.socket, argv: list[str]) -> None:
    """One message: the fields below, NUL-separated, with stdin, stdout and stderr attached."""
    mask = os.umask(0o022)
    os.umask(mask)
    ignored = [str(s) for s in _FORWARDED if _signal.getsignal(s) == _signal.SIG_IGN]
    fields = [fingerprint(), namespaces(), os.fsdecode(os.getcwdb()), str(mask), ",".join(ignored),
              sys.stdout.encoding, sys.stdout.errors or "strict", sys.stdin.encoding, sys.stdin.errors or "strict",
              str(len(argv)), *argv]
    payload = b"\0".join([*(os.fsencode(f) for f in fields), *(k + b"=" + v for k, v in os.environb.items())])
    fds = b"".join(fd.to_bytes(4, sys.byteorder) for fd in (0, 1, 2))
    sock.sendmsg([payload], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fds)])


def _forward_signals(sock: _socket.socket, pending: list[int], child: list[int]) -> dict[int, object]:
    """Forward each signal that would end this process to the child (through the server, or
    to ``child[0]`` itself once the server is gone), noting it in ``pending`` too; return the
    handlers replaced."""

    def forward(signum: int, frame: object) -> None:
        if signum != _signal.SIGWINCH:
            pending.append(signum)
        try:
            sock.send(b"signal %d" % signum)
        except OSError:  # the server is gone
            if child[0]:
                os.kill(child[0], signum)

    previous = {}
    for signum in _FORWARDED:
        handler = _signal.getsignal(signum)
        if handler == _signal.SIG_DFL or handler is _signal.default_int_handler:
            previous[signum] = _signal.signal(signum, forward)
    return previous


def _relay(sock: _socket.socket, child: int) -> None:
    """Wait for the child's end, then end the same way. Never returns."""
    while True:
        try:
            reply = sock.recv(64)  # a signal runs forward() here, and the recv goes on (PEP 475)
        except OSError:
            reply = b""
        kind, _, number = reply.partition(b" ")
        if kind == b"exit":
            _exit(int(number))
        if kind == b"killed":  # as the one-shot gocall would have died
            _die_of(int(number))
        if not reply:  # the server is gone, its child (the command) not: wait for it, unreported
            _wait_orphan(child)


def _wait_orphan(child: int) -> None:
    """Wait for ``child``, which runs this command but whose server died (its end unknown to
    anyone now), signals sent to it directly meanwhile; then exit 1, saying so."""
    import select

    try:
        pidfd = os.pidfd_open(child)
        while not select.select([pidfd], [], [])[0]:  # readable when it ends; a signal just forwards
            pass
    except OSError:  # already gone: nothing to wait for
        pass
    os.write(2, b"gocall: the gocall server ended during the command, which ran to its end in process %d; "
                b"its exit status is not known (the server's log is in %s)\n" % (child, os.fsencode(runtime_dir())))
    _exit(1)


def _exit(code: int) -> None:
    """Leave as cli/main.py's _exit does: atexit handlers (of whoever runs this process: the
    command's ran in the child) and a flush first, then no interpreter teardown; with another
    thread running, Python's ordinary exit, which waits for it."""
    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() > 1:
        sys.exit(code)
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):  # closed, or None: nothing of ours to lose
            pass
    os._exit(code)


def _die_of(signum: int) -> None:
    try:
        _signal.signal(signum, _signal.SIG_DFL)
    except OSError:  # SIGKILL (the child killed outright) has no handler to reset
        pass
    _signal.pthread_sigmask(_signal.SIG_UNBLOCK, [signum])
    os.kill(os.getpid(), signum)
    os._exit(128 + signum)  # a signal whose default action does not end a process (SIGWINCH)


def _start_at_exit(path: str, replacing: bool = False) -> None:
    """:func:`start_server` once the command run here instead has ended (this process's atexit
    handlers run on every exit but death by a signal: cli/main.py _exit)."""
    import atexit

    atexit.register(start_server, path, replacing)


_SUN_PATH_MAX = 107  # sizeof(sockaddr_un.sun_path) - 1, unix(7)
_RESTART_SECONDS = 30.0


def start_server(path: str, replacing: bool = False) -> None:
    """Start a server for ``path`` in the background (its own session, no terminal, nothing of
    this process's open), and return at once: this command runs without it.

    Not if one was started in the last :data:`_RESTART_SECONDS` (the lock file's mtime, set
    here), unless ``replacing`` a stale one: a server loads its modules for ~0.5 s before it
    listens, and every command in that time would start another (~30 ms CPU each, to find the
    lock taken); one that cannot start at all is tried again only that often."""
    import time  # (not on the path that hands a command over)

    if len(os.fsencode(path)) > _SUN_PATH_MAX:  # no socket can be bound there
        return
    lock = path + ".lock"
    try:
        if not replacing and time.time() - os.stat(lock).st_mtime < _RESTART_SECONDS:
            return
    except OSError:  # none ever started here (or unreadable: the open below says)
        pass
    try:
        os.close(os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
        os.utime(lock)
    except OSError:
        return
    pid = os.fork()
    if pid:
        os.waitpid(pid, 0)  # the intermediate child, which leaves at once: the server is not ours
        return
    try:  # the child: never returns
        os.setsid()
        if os.fork() == 0:
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            os.closerange(3, 1 << 16)
            # -P: not the directory it was started from first on sys.path, as -m would put it (a
            # click.py there would be loaded for every command); / as its directory, holding none.
            os.chdir("/")
            os.execv(sys.executable, [sys.executable, "-P", "-m", "gocall.cli.server", path])
    finally:
        os._exit(0)
