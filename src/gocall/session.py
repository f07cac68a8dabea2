"""``gocall.Process``: one attached Go process, and calls into it.

The engine the front ends (CLI, Python API, later GDB) share. It ties the
layers together: the binary says what to call and how, the call engine
(call/engine.py) stops one thread where the runtime accepts a call and runs
the protocol, the evaluator (expr/eval.py) turns expressions into calls and
results into values. Only the thread that runs the chosen goroutine is ever
stopped, and only while one call runs; between calls the process runs untraced
(with breakpoints set every thread is traced, and a call stops them all for its length).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from functools import cached_property
from typing import TYPE_CHECKING, Any

from .binary import GoBinary
from .binary.support import check_callable
from .call.engine import CallEngine
from .errors import ExprError
from .expr.eval import Evaluation, Evaluator
from .expr.parse import Call, Const, Name, parse
from .process.memory import Memory
from .runtime import layouts

if TYPE_CHECKING:
    from .call.waits import Observer
    from .process.regs import user_regs_struct
    from .runtime.roots import FrameRoots
    from .runtime.unwind import Frame
    from .runtime.gselect import Filter, Group
    from .runtime.view import GoroutineInfo, RuntimeView
    from .stop import Breakpoint, Debugger, Exited, Stop


class Process:
    """A live Go process. Use :func:`gocall.attach` or :func:`gocall.launch` to get one."""

    _debugger: Debugger | None = None  # breakpoints and stops (stop.py), once asked for
    launched = False  # started by gocall.launch: killed by close()

    def __init__(self, pid: int, timeout: float = 10.0) -> None:
        self.pid = pid
        try:
            # /proc/PID/exe: the binary even when its path is not in our mount namespace or was deleted.
            self.binary = GoBinary.of_process(pid)  # a PIE's addresses moved to where it was loaded
        except OSError as e:  # gone, or not ours to read: the one diagnosis (process/permissions.py)
            from .process.permissions import attach_error

            raise attach_error(pid, e.errno or 0) from None
        check_callable(self.binary)  # no debugCallV2: refused with the reason (binary/support.py)
        self.layout = layouts.for_go(self.binary.go_version_tuple, self.binary.dwarf)
        self.mem = Memory(pid)
        self.engine = CallEngine(pid, self.binary, self.mem, self.layout, timeout)
        self.evaluator = Evaluator(self.binary, self.mem, self.layout, self.engine)

    @cached_property
    def runtime(self) -> RuntimeView:
        """Goroutines, stacks and GC roots read from outside (imported on first use: a call
        needs none of it, and every module is cold-start time)."""
        from .runtime.view import RuntimeView

        view = RuntimeView(self.pid, self.binary, self.mem, self.layout)
        view.traced = self._traced
        return view

    def _traced(self, tid: int) -> AbstractContextManager[user_regs_struct] | None:
        """A thread the debugger traces (every thread while breakpoints are in) held still for the
        runtime view, which cannot seize such a thread itself; None for any other thread."""
        return self._debugger.still(tid) if self._debugger is not None else None

    def __enter__(self) -> Process:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the process: breakpoints removed, then a launched program is killed and an
        attached one detached. Without breakpoints no thread is traced between calls."""
        try:
            if self._debugger is not None:
                self._debugger.release(kill=self.launched)
            elif self.launched:
                _kill(self.pid)
            self.engine.close()  # the guardian of guard/watch.py, if any
        finally:
            self.mem.close()
            if self.evaluator.names.source is not None:  # signatures read from Go source, for the next start
                self.evaluator.names.source.save()

    @property
    def debugger(self) -> Debugger:
        """Breakpoints and stops; attaching it traces every thread (see :mod:`gocall.stop`)."""
        if self._debugger is None:
            from .process.tracee import Tracee
            from .stop import Debugger

            self.engine.release_kept()  # a batch's thread (call/batch.py): the tracee takes every thread
            # With ``guard``, the guardian is there before the first INT3 (guard/watch.py): a kill
            # of gocall puts every byte back, and sees a call at a stop, or a kept run, through.
            watch = self.engine.start_watch() if self.engine.guard else None
            tracee = Tracee.attach(self.pid)
            if watch is not None:
                tracee.breaks.record = watch.breakpoint
            self._debugger = Debugger(self, tracee)
            self.engine.lender = self._debugger.lend  # calls while it runs: on a thread it lends
        return self._debugger

    def break_at(self, location: str, condition: str | None = None) -> Breakpoint:
        """Stop at ``pkg.Func``, ``file.go:LINE`` or ``*0xADDR`` (optionally ``... if COND``)."""
        return self.debugger.break_at(location, condition)

    def wait(self, timeout: float | None = None) -> Stop | Exited | None:
        """Run until a breakpoint or runtime.Breakpoint() stops a goroutine (a :class:`~gocall.stop.Stop`),
        or the program ends (:class:`~gocall.stop.Exited`); None after ``timeout`` seconds."""
        return self.debugger.wait(timeout)

    def cont(self) -> None:
        """Resume from the current stop (an attached program without breakpoints left is let go)."""
        self.debugger.cont()
        self._release_if_idle()

    @property
    def traced(self) -> bool:
        """Every thread is traced (breakpoints in, or a launched program not yet let go):
        :meth:`wait` reports what the program does, and a call while it runs stops every thread
        for its length (stops/calls.py ``lent``)."""
        return self._debugger is not None

    @property
    def breakpoints(self) -> list[Breakpoint]:
        """The breakpoints set, in order (none without asking: the debugger is not attached)."""
        return list(self._debugger.breakpoints) if self._debugger is not None else []

    @property
    def stopped(self) -> Stop | None:
        """The current stop (every thread stopped), until :meth:`cont` or :meth:`wait`."""
        return self._debugger.stop if self._debugger is not None else None

    def clear(self, bp: Breakpoint) -> None:
        """Remove the breakpoint ``bp``. Without a stop, the last one removed lets every thread
        of an attached program go (detached), so that calls can run again while it runs."""
        self.debugger.clear(bp)
        self._release_if_idle()

    def _release_if_idle(self) -> None:
        """An attached program with no breakpoint left and no stop is let go (a launched one
        stays traced: :meth:`wait` reports its runtime.Breakpoint() stops and its exit)."""
        dbg = self._debugger
        if dbg is not None and not self.launched and not dbg.breakpoints and dbg.stop is None and not dbg.nonstop:
            dbg.release(kill=False)
            self._debugger = None
            self.engine.lender = None

    def release_others(self, stop: Stop) -> None:
        """Non-stop from ``stop`` on: every breakpoint removed, every other thread detached and
        running, while expressions are evaluated on the stopped goroutine."""
        self.debugger.release_others(stop)

    def kill(self) -> None:
        """Remove every breakpoint and kill the program (a launched one, usually)."""
        self.debugger.release(kill=True)

    @property
    def interrupted(self) -> int | None:
        """The signal that ended the last :meth:`wait` (it returned None before its timeout):
        SIGINT, SIGTERM, SIGHUP... (process/signals.py TERMINATING); None if none did."""
        from .process.waiting import interrupts

        return interrupts.signal

    @property
    def observer(self) -> Observer | None:
        """Told what the engine waits for while it waits (a goroutine to run Go code, a hit, a
        callee to return): see :mod:`gocall.call.waits`; a front end's live status line
        (cli/status.py) is one. None: nobody listens, and the waits cost nothing more."""
        return self.engine.observer

    @observer.setter
    def observer(self, observer: Observer | None) -> None:
        self.engine.observer = observer

    def call(self, func: str, *args: Any) -> Any:
        """Call ``func`` (``"main.Add"``) with Python values as Go untyped constants."""
        text = f"{func}({', '.join(repr(a) for a in args)})"
        tree = Call(Name(func), tuple(Const(a, repr(a)) for a in args), text)
        return self.evaluator.evaluate(tree, text).python_value

    def batch(self, linger: float = 0.001) -> AbstractContextManager[object]:
        """Keep the calling thread traced across a burst of calls: ``with proc.batch(): ...``.

        After each call the thread stays stopped for at most ``linger`` seconds, inside the
        call's debugCallV2 run, so that the next call starts there (one ptrace stop instead of
        four); then it is let go, restored as found (the next call looks for a thread again).
        The price: the goroutine the calls run on, and a stop-the-world, may wait up to
        ``linger`` (plus however late Python runs a signal handler) between calls. Leaving the block, also
        through an exception, detaches the thread. Only on the main thread (Python runs
        signal handlers there); elsewhere, when every real-time signal already has a handler
        in this process, and for stop-the-world calls, each call seizes and detaches as
        outside a batch. See
        :mod:`gocall.call.batch`."""
        return self.engine.batch(linger)

    def release_kept(self) -> None:
        """Detach now the thread a :meth:`batch` keeps between calls, if any (the batch's next
        call seizes one again): another tracer (a second gocall, Delve) may then attach. At a
        stop, end the debugCallV2 run the last evaluation left open (stops/calls.py held): the
        stopped goroutine is seen as it stopped again."""
        self.engine.release_kept()
        if self._debugger is not None:
            self._debugger.settle()

    def declare(self, signature: str) -> None:
        """Declare a function's signature for a binary without DWARF (``-ldflags=-w``):
        ``proc.declare("func main.Add(a, b int) int")`` (syntax: :mod:`gocall.expr.signature`)."""
        from .expr.signature import parse_signature

        self.binary.declare(parse_signature(signature))

    def use_source(self, goroot: str | None = None, source: Sequence[str] = ()) -> None:
        """Where to read signatures from when the binary has no DWARF (:mod:`gocall.gosource`):
        ``goroot``, a GOROOT of the binary's Go release (else one is searched for); ``source``,
        module roots of the program (its go.mod module path matched against the build info)."""
        from .gosource.source import GoSource

        self.evaluator.names.source = GoSource(self.binary, goroot, source)

    def warm(self) -> None:
        """Do now what a first evaluation would otherwise pay for, for a front end to call while
        nothing waits (the shell, once its prompt is up): load the expression parser, the
        runtime view's modules and the DWARF unit list, which frames and locals at a stop
        read. 100-250 ms for an 8 MB binary, the first call's own lag
        before; nothing in the process is read or stopped."""
        from .expr.parse import load_parser

        load_parser()
        self.runtime  # noqa: B018 (its modules imported, the unwinder's tables built)
        if self.binary.dwarf is not None:
            # Every unit's name (decompressing .debug_info), and main's units parsed: a stop is
            # most often in main.
            self.binary.dwarf.package_units("main")

    def eval(self, expr: str, unsafe: bool = False) -> Any:
        """Evaluate a Go expression (``"main.Add(1, 2)"``) and return Python values;
        ``unsafe`` passes pointers into the goroutine's stack (no escape check)."""
        return self.evaluate(expr, unsafe).python_value

    def shell(self, as_json: bool = False, keep_going: bool = False) -> int:
        """The interactive gocall shell on this process (a script when stdin is not a terminal),
        until ``exit`` or Ctrl-D; its exit status. The process stays open (close it as usual)."""
        from .shell import run

        return run(self, as_json=as_json, keep_going=keep_going)

    def goroutines(self, with_: Sequence[str | Filter] = (), without: Sequence[str | Filter] = ()
                   ) -> list[GoroutineInfo]:
        """Every live goroutine (system ones included): id, state, thread, its locations (user,
        current, go statement, start), pprof labels; only those matching every ``with_`` filter
        and none of ``without`` (Delve's syntax: ``"userloc main.worker"``, ``"label k=v"``,
        ``"running"``, ``"user"``; see :mod:`gocall.runtime.gselect`).

        Read from ``runtime.allgs`` while the program runs; the thread of each running
        goroutine is stopped for a few microseconds to read where it is."""
        self.release_kept()  # a batch's thread, seized: its goroutine would be seen from g.sched
        return self.runtime.listing(_filters(with_, without)).goroutines

    def goroutine_groups(self, by: str, with_: Sequence[str | Filter] = (), without: Sequence[str | Filter] = ()
                         ) -> list[Group]:
        """The goroutines :meth:`goroutines` selects, grouped ``by`` ``"userloc"``, ``"curloc"``,
        ``"goloc"``, ``"startloc"`` or ``"label K"``, largest group first."""
        self.release_kept()
        groups = self.runtime.listing(_filters(with_, without), by).groups
        assert groups is not None
        return groups

    def stack(self, goid: int) -> list[Frame]:
        """The physical frames of goroutine ``goid``, innermost first; each lists its
        source frames (inlined calls first) in ``Frame.calls``."""
        self.release_kept()
        return self.runtime.frames(self.runtime.goroutine(goid))

    def roots(self, goid: int) -> list[FrameRoots]:
        """How the GC would scan each frame of goroutine ``goid``: precise frames with their
        live pointer slots, conservative ones (injected frames and what they interrupted)
        with every word that points into the heap or the stack."""
        self.release_kept()
        return self.runtime.roots(self.runtime.goroutine(goid))

    def evaluate(self, expr: str, unsafe: bool = False) -> Evaluation:
        """Evaluate a Go expression. Problems with the expression itself are reported in
        the :class:`Evaluation` (``error``); problems with the process are raised.
        ``unsafe`` turns off the escape check (expr/escape.py)."""
        try:
            tree = parse(expr)
        except ExprError as e:
            return Evaluation(expr, error=str(e), exception=e)
        return self.evaluator.evaluate(tree, expr, unsafe)


def attach(pid: int, timeout: float = 10.0, abandon: bool = False, guard: bool = False) -> Process:
    """Attach to the Go process ``pid``. Use as a context manager::

        with gocall.attach(pid) as proc:
            proc.call("main.Add", 1, 2)

    ``abandon``: a called function still running after ``timeout`` seconds is left to a guardian
    process, which restores its thread when it returns, and :class:`~gocall.errors.Abandoned` is
    raised at once (without it, the call is waited for however long it takes; a second SIGINT
    or SIGTERM during it abandons it too). ``guard``: the first call starts a guardian process that
    sees a call in flight through if this process is killed outright (SIGKILL, the OOM killer;
    :mod:`gocall.guard.watch`; it forks this process: mind other threads)."""
    proc = Process(pid, timeout)
    proc.engine.abandon, proc.engine.guard = abandon, guard
    return proc


def _filters(with_: Sequence[str | Filter], without: Sequence[str | Filter]) -> list[Filter]:
    """``with_`` and ``without`` as :class:`~gocall.runtime.gselect.Filter` (strings in Delve's syntax)."""
    from .runtime.gselect import Filter, parse_filter

    return [f._replace(negate=negate) if isinstance(f, Filter) else parse_filter(f, negate)
            for fs, negate in ((with_, False), (without, True)) for f in fs]


def launch(argv: Sequence[str], timeout: float = 10.0) -> Process:
    """Start the program ``argv`` under gocall, stopped before its first instruction; set
    breakpoints, then :meth:`Process.wait`. Leaving the ``with`` block kills it::

        with gocall.launch(["./server", "-port", "0"]) as proc:
            proc.break_at("main.handle if req.ID == 7")
            stop = proc.wait()
            stop.eval("req.Path")
    """
    import os
    import signal

    from .process.launch import spawn_traced
    from .process.tracee import Tracee
    from .stop import Debugger

    pid = spawn_traced(argv)
    try:
        proc = Process(pid, timeout)
    except BaseException:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise
    proc._debugger = Debugger(proc, Tracee.launched_at_exec(pid))
    proc.engine.lender = proc._debugger.lend
    proc.launched = True
    return proc


def _kill(pid: int) -> None:
    """SIGKILL a launched program no longer traced, and reap it (it is our child)."""
    import os
    import signal

    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


__all__ = ["Evaluation", "Process", "attach", "launch"]
