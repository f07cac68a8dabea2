"""The shell's commands, with Delve's words; any other line is a Go expression.

Each command is a ``cmd_*`` method whose docstring is its help (first line: usage and what
it does). Every failure is reported as one line and the shell goes on; :meth:`Commands.run`
says whether the line failed (scripts stop there unless --keep-going).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..errors import GocallError
from ..stop import Exited, Stop
from ..values.gofmt import format_value
from .output import Output
from .state import ShellState

_WAIT_SLICE = 0.25  # seconds per proc.wait() while `continue` waits (Ctrl-C is noticed between)


class ExitShell(Exception):
    """`exit`, `quit` (Ctrl-D too): leave the shell."""


class Commands:
    def __init__(self, state: ShellState, out: Output) -> None:
        self.state = state
        self.out = out
        self.proc = state.proc

    @property
    def names(self) -> list[str]:
        return sorted(n[4:] for n in dir(self) if n.startswith("cmd_"))

    def handler(self, word: str) -> Callable[[str], None] | None:
        fn: Callable[[str], None] | None = getattr(self, f"cmd_{word}", None)
        return fn

    # -- one line -------------------------------------------------------------------------

    def run(self, line: str) -> bool:
        """Execute one input line; False when it failed. Raises ExitShell on `exit`."""
        line = line.strip()
        if not line or line.startswith("#"):
            return True
        word, _, arg = line.partition(" ")
        fn = self.handler(word)
        self.out.begin(line)
        ok = True
        try:
            if fn is not None:
                fn(arg.strip())
            else:
                ok = self.expression(line)
        except ExitShell:
            self.out.end()
            raise
        except GocallError as e:
            self.out.error(str(e))
            ok = False
        except KeyboardInterrupt:  # Ctrl-C outside the engine's own handling (which reports it as an error)
            self.out.error("interrupted; the program runs on as it was")
            ok = False
        self.out.end()
        return ok

    def expression(self, text: str) -> bool:
        state, proc = self.state, self.proc
        if state.exited is not None:
            self.out.error(f"the program {state.exited}")
            return False
        stop = state.stop
        proc.engine.last_site = None
        skipped = {n: bp.skipped for n, bp in state.numbers.items()}
        start = time.perf_counter()
        if stop is not None:
            ev = stop.evaluate(text, state.frame)
        else:
            proc.engine.goroutine = state.goroutine
            ev = proc.evaluate(text)
        ms = (time.perf_counter() - start) * 1000
        self.out.evaluation(ev, proc.engine.last_site if stop is None else None, ms)
        for n, bp in state.numbers.items():
            if (passed := bp.skipped - skipped.get(n, bp.skipped)) > 0:  # stops/calls.py: a call is not interrupted
                self.out.note(f"breakpoint {n} was passed {_times(passed)} inside the call, not stopped at")
        return ev.error is None

    def announce(self, event: Stop | Exited) -> None:
        """A hit or the program's end, seen while idle at the prompt."""
        self.out.event(*self._seen(event))

    def _seen(self, event: Stop | Exited) -> tuple[str, dict[str, Any]]:
        self.state.frame = 0
        if isinstance(event, Exited):
            self.state.exited = event.text
            return f"the program {event.text}", {"exited": event.text}
        bp = event.breakpoint
        which = f"breakpoint {self.state.number(bp)}" if bp is not None else "runtime.Breakpoint()"
        return f"{which} hit: {event.where}", event.to_json([])

    # -- the program ----------------------------------------------------------------------

    def cmd_goroutines(self, arg: str) -> None:
        """goroutines [-with FILTER] [-without FILTER] [-group KIND] [-r] [-g] [-s] [-l] [-system]: list the
        goroutines (id, state, thread, user location) as gocall goroutines does, with Delve's filters
        (-with userloc main.worker, -with running, -without label k=v) and grouping (-group userloc)."""
        from ..cli.goroutines import group_json, group_lines, info_json, listing_lines
        from ..runtime.gselect import NEEDS_ARGUMENT

        with_: list[str] = []
        without: list[str] = []
        columns: list[str] = []
        group: str | None = None
        system = False
        words = iter(arg.split())
        flags = {"-r": "current", "-g": "go", "-s": "start", "-l": "labels"}
        for word in words:
            if word in ("-with", "-without", "-group"):
                kind = next(words, "")
                takes = NEEDS_ARGUMENT if word != "-group" else ("label",)
                value = f"{kind} {next(words, '')}".strip() if kind in takes else kind
                if word == "-group":
                    group = value
                else:
                    (with_ if word == "-with" else without).append(value)
            elif word in flags:
                columns.append(flags[word])
            elif word == "-system":
                system = True
            else:
                raise GocallError(f"goroutines: what is {word!r}?", hint="help goroutines")
        if not system and not any(w.split()[0] == "user" for w in with_):
            with_.append("user")
        if group is not None:
            groups = self.proc.goroutine_groups(group, with_, without)
            self.out.lines(group_lines(groups, group, 5), [group_json(g) for g in groups])
            return
        infos = self.proc.goroutines(with_, without)
        styles: list[str | None] = ["bold", *("green" if i.goroutine.state == "running" else None for i in infos)]
        self.out.lines(listing_lines(infos, columns), [info_json(i) for i in infos], styles)

    def cmd_goroutine(self, arg: str) -> None:
        """goroutine [N]: make goroutine N the one calls run on (no N: show the current one)."""
        state = self.state
        if not arg:
            current = state.stop.goroutine if state.stop is not None else state.goroutine
            self.out.lines([f"goroutine {current}" if current is not None else "any goroutine (none chosen)"],
                           {"goroutine": current})
            return
        goid = _number(arg, "goroutine N")
        if state.stop is not None and goid != state.stop.goroutine:
            raise GocallError(f"at a stop, calls run on the stopped goroutine {state.stop.goroutine}",
                              hint="continue first, or use stack N to look at another one")
        self.proc.runtime.goroutine(goid)  # raises NoGoroutine with a hint
        state.goroutine = goid
        self.out.lines([f"calls run on goroutine {goid}"], {"goroutine": goid})

    def cmd_stack(self, arg: str) -> None:
        """stack [N] [depth]: the frames of goroutine N (default: the stopped or chosen one)."""
        from ..cli.stack import frames_json

        words = arg.split()
        goid = _number(words[0], "stack [N] [depth]") if words else self._current_goroutine()
        depth = _number(words[1], "stack [N] [depth]") if len(words) > 1 else 50
        stop = self.state.stop
        frames = stop.frames if stop is not None and goid == stop.goroutine else self.proc.stack(goid)
        frames = frames[:depth]
        lines = []
        for n, fr in enumerate(frames):
            for sf in fr.calls:
                lines.append(f"{n:>3}  {sf.function}{'(...)' if sf.inlined else ''}")
                lines.append(f"       {sf.file}:{sf.line}")
        self.out.lines(lines, frames_json(frames))

    def cmd_roots(self, arg: str) -> None:
        """roots [N]: how the GC would scan goroutine N's stack, frame by frame, as gocall roots
        prints it (default: the stopped or chosen goroutine, else every goroutine)."""
        from ..cli.roots import roots_json, roots_lines

        stop = self.state.stop
        goid = _number(arg, "roots [N]") if arg else stop.goroutine if stop is not None else self.state.goroutine
        runtime = self.proc.runtime
        gs = [runtime.goroutine(goid)] if goid is not None else runtime.goroutines()
        self.proc.release_kept()  # a warm call's thread (repl.py): the running goroutines' threads are stopped to read them
        found = [(g, runtime.roots(g)) for g in gs]
        lines: list[tuple[str, str | None]] = []
        for g, roots in found:
            lines += [(f"goroutine {g.goid} [{g.header}]:", "bold"), *roots_lines(roots), ("", None)]
        self.out.lines([text for text, _ in lines],
                       [{"goid": g.goid, "state": g.header, "frames": roots_json(r)} for g, r in found],
                       [style for _, style in lines])

    def _current_goroutine(self) -> int:
        stop = self.state.stop
        goid = stop.goroutine if stop is not None else self.state.goroutine
        if goid is None:
            raise GocallError("which goroutine?", hint="give its id (see goroutines), or choose one: goroutine N")
        return goid

    # -- breakpoints ----------------------------------------------------------------------

    def cmd_break(self, arg: str) -> None:
        """break LOC [if COND]: stop at pkg.Func, file.go:LINE or *0xADDR (when COND holds)."""
        if not arg:
            raise GocallError("break where?", hint="break main.handle, break main.go:42, break main.handle if req.ID == 7")
        bp = self.proc.break_at(arg)
        n = self.state.number(bp)
        self.out.lines([f"breakpoint {n} at {bp}"], {"breakpoint": n, "location": str(bp)})

    def cmd_breakpoints(self, arg: str) -> None:
        """breakpoints: list the breakpoints with their hits and condition tests."""
        rows = [(n, bp) for n, bp in sorted(self.state.numbers.items())]
        self.out.lines([f"{n:>3}  {bp}  hits={bp.hits}" + (f" tests={bp.tests}" if bp.condition else "")
                        for n, bp in rows] or ["no breakpoints"],
                       [{"breakpoint": n, "location": str(bp), "hits": bp.hits, "tests": bp.tests} for n, bp in rows])

    def cmd_clear(self, arg: str) -> None:
        """clear N|all: remove breakpoint N, or every one (the last one gone, no thread stays traced)."""
        numbers = list(self.state.numbers) if arg == "all" else [_number(arg, "clear N|all")]
        for n in numbers:
            bp = self.state.numbers.get(n)
            if bp is None:
                raise GocallError(f"no breakpoint {n}", hint="see breakpoints")
            self.proc.clear(bp)
            self.state.forget(n)
        self.out.lines([f"cleared {', '.join(map(str, numbers)) or 'nothing'}"], {"cleared": numbers})

    def cmd_continue(self, arg: str) -> None:
        """continue: run until a breakpoint is hit or the program ends (Ctrl-C: stop waiting, the
        program runs on). Without breakpoints, just resume from the stop."""
        state, proc = self.state, self.proc
        if state.exited is not None:
            raise GocallError(f"the program {state.exited}")
        state.frame = 0
        if not proc.breakpoints and not proc.launched:
            if state.stop is not None:
                proc.cont()
            self.out.lines(["running"], {"running": True})
            return
        self.out.note("waiting for a hit; Ctrl-C to stop waiting")
        while True:
            event = proc.wait(_WAIT_SLICE)
            if event is not None:
                text, result = self._seen(event)
                self.out.lines([text], result, ["bold magenta"])
                return
            if proc.interrupted:
                self.out.lines(["stopped waiting; the program runs on, breakpoints in"], {"running": True})
                return

    # -- at a stop ------------------------------------------------------------------------

    def _stop(self) -> Stop:
        stop = self.state.stop
        if stop is None:
            raise GocallError("the program is running", hint="break LOC, then continue, to stop it somewhere")
        return stop

    def cmd_frame(self, arg: str) -> None:
        """frame N: evaluate in frame N of the stopped goroutine (0: the innermost)."""
        stop = self._stop()
        n = _number(arg, "frame N")
        if not 0 <= n < len(stop.frames):
            raise GocallError(f"there is no frame {n}: goroutine {stop.goroutine} has {len(stop.frames)}")
        self.state.frame = n
        sf = stop.frames[n].calls[-1] if stop.frames[n].calls else None
        where = f"{sf.function} ({sf.file}:{sf.line})" if sf is not None else f"{stop.frames[n].pc:#x}"
        self.out.lines([f"frame {n}: {where}"], {"frame": n, "location": where})

    def cmd_up(self, arg: str) -> None:
        """up [N]: N frames outwards (default 1)."""
        self.cmd_frame(str(self.state.frame + (_number(arg, "up [N]") if arg else 1)))

    def cmd_down(self, arg: str) -> None:
        """down [N]: N frames inwards (default 1)."""
        self.cmd_frame(str(self.state.frame - (_number(arg, "down [N]") if arg else 1)))

    def cmd_locals(self, arg: str) -> None:
        """locals: the parameters and locals of the current frame, and their values."""
        self._variables(parameters=False)

    def cmd_args(self, arg: str) -> None:
        """args: the parameters of the current frame, and their values."""
        self._variables(parameters=True)

    def _variables(self, parameters: bool) -> None:
        stop = self._stop()
        frame = self.state.frame
        wanted = {v.name for v in stop.variables(frame) if v.parameter or not parameters}
        values = {k: v for k, v in stop.locals(frame).items() if k in wanted}
        shown = {k: v if isinstance(v, str) else format_value(v) for k, v in values.items()}
        self.out.lines([f"{k} = {v}" for k, v in shown.items()] or ["(none)"],
                       {k: (v if isinstance(v, str) else v.to_json()) for k, v in values.items()})

    # -- the session ----------------------------------------------------------------------

    def cmd_info(self, arg: str) -> None:
        """info: the process, its binary, the state, the breakpoints."""
        proc, state = self.proc, self.state
        data: dict[str, Any] = {"pid": proc.pid, "binary": proc.binary.path, "go": proc.binary.go_version,
                                "state": state.exited or ("stopped" if state.stop is not None else "running"),
                                "goroutine": state.goroutine, "breakpoints": len(state.numbers)}
        self.out.lines([f"{k}: {v}" for k, v in data.items()], data)

    def cmd_declare(self, arg: str) -> None:
        """declare SIG: the signature of a function in a binary without DWARF, e.g.
        declare func main.Add(a, b int) int"""
        self.proc.declare(arg if arg.startswith("func ") else f"func {arg}")
        self.out.lines([f"declared {arg}"], {"declared": arg})

    def cmd_help(self, arg: str) -> None:
        """help [command]: the commands, or one command's help."""
        if arg:
            fn = self.handler(arg)
            if fn is None:
                raise GocallError(f"no command {arg}", hint="help lists them")
            self.out.lines([_doc(fn)], {"help": _doc(fn)})
            return
        lines = ["Type a Go expression to evaluate it (main.Add(1, 2), pkg.Var, at a stop: locals, x = f()).",
                 "Commands:"]
        docs = [_doc(self.handler(n)) for n in self.names]  # type: ignore[arg-type]
        lines += [f"  {d}" for d in dict.fromkeys(docs)]  # an alias (quit) once, under its command's help
        lines.append("Stepping (next, step, stepout) is not there yet.")
        self.out.lines(lines, {"commands": self.names})

    def cmd_exit(self, arg: str) -> None:
        """exit (or quit, Ctrl-D): remove every breakpoint and leave (the program runs on; one
        started by run -i is killed)."""
        raise ExitShell

    cmd_quit = cmd_exit


def _times(n: int) -> str:
    return "once" if n == 1 else "twice" if n == 2 else f"{n} times"


def _doc(fn: Callable[[str], None]) -> str:
    return " ".join((fn.__doc__ or "").split())


def _number(text: str, usage: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise GocallError(f"{text!r} is not a number", hint=f"usage: {usage}") from None
