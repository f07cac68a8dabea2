"""``gocall.Process``: one attached Go process, and calls into it.

The engine the front ends (CLI, Python API, later GDB) share. It ties the
layers together: the binary tells what to call and how (pclntab, DWARF, ABI),
the process layer stops one thread, the runtime layer says whether a call may
be injected there, and call/protocol.py makes the call. Only the thread that
runs the chosen goroutine is ever stopped, and only for the duration of one
expression; between expressions the process runs untraced.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .binary import GoBinary
from .binary.gotypes import Kind, Signature
from .call import abi
from .call.protocol import CallSetup, Entry, Injector, Panicked, Returned
from .errors import (
    ArgumentError,
    CallRefused,
    ExprError,
    GocallError,
    GoPanic,
    Interrupted,
    NoGoroutine,
    SymbolNotFound,
    TargetExited,
)
from .expr.parse import Call, Const, Expr, Name, parse
from .process.memory import Memory
from .process.threads import Thread, thread_ids
from .process.waiting import interrupts, signals_held
from .runtime import layouts, safepoint
from .runtime.types import read_type
from .values.decode import decode, image_from_slot
from .values.encode import encode
from .values.gofmt import format_value
from .values.model import GoValue

log = logging.getLogger("gocall.session")

_DEBUG_CALL_FUNCS = ("runtime.debugCallV2", "runtime.debugCallPanicked") + tuple(
    f"debugCall{1 << n}" for n in range(5, 17)
)


@dataclass
class Evaluation:
    """The outcome of one expression: results, or a panic, or an error message."""

    expr: str
    results: list[GoValue] = field(default_factory=list)
    panic: GoValue | None = None
    error: str | None = None
    goroutine: int | None = None  # the goroutine the call was injected into
    location: str | None = None  # the function it was stopped in
    exception: GocallError | None = field(default=None, repr=False)  # what the API raises for ``error``

    def to_json(self) -> dict[str, Any]:
        return {
            "expr": self.expr,
            "results": [r.to_json() for r in self.results],
            "panic": self.panic.to_json() if self.panic else None,
            "error": self.error,
        }

    @property
    def python_value(self) -> Any:
        """What the Python API returns: one value, a tuple for several, None for none."""
        if self.error is not None:
            raise self.exception or GocallError(self.error)
        if self.panic is not None:
            raise GoPanic(self.panic.type.name, self.panic.value, format_value(self.panic))
        if len(self.results) == 1:
            return self.results[0].value
        return tuple(r.value for r in self.results) if self.results else None


class Process:
    """A live Go process. Use :func:`gocall.attach` to get one."""

    def __init__(self, pid: int, timeout: float = 10.0) -> None:
        self.pid = pid
        self.timeout = timeout
        try:
            self.binary = GoBinary.open(f"/proc/{pid}/exe")
        except FileNotFoundError:
            raise TargetExited(f"process {pid} does not exist") from None
        self.layout = layouts.for_go(self.binary.go_version_tuple, self.binary.dwarf)
        self.mem = Memory(pid)
        self._entry = self._protocol_entry()
        self._preferred_tid: int | None = None
        self.step_epilogue = False  # tests: restore through the runtime's own epilogue

    def __enter__(self) -> Process:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the process. No thread is traced between expressions, so nothing to undo."""
        self.mem.close()

    # -- public API ------------------------------------------------------------

    def call(self, func: str, *args: Any) -> Any:
        """Call ``func`` (``"main.Add"``) with Python values as Go untyped constants."""
        consts = tuple(Const(a, repr(a)) for a in args)
        text = f"{func}({', '.join(repr(a) for a in args)})"
        return self._evaluate(Call(Name(func), consts, text), text).python_value

    def eval(self, expr: str) -> Any:
        """Evaluate a Go expression (``"main.Add(1, 2)"``) and return Python values."""
        return self.evaluate(expr).python_value

    def evaluate(self, expr: str) -> Evaluation:
        """Evaluate a Go expression; errors that concern only this expression are
        reported in the Evaluation, errors about the process are raised."""
        try:
            tree = parse(expr)
        except ExprError as e:
            return Evaluation(expr, error=str(e), exception=e)
        return self._evaluate(tree, expr)

    # -- evaluation --------------------------------------------------------------

    def _evaluate(self, tree: Expr, text: str) -> Evaluation:
        if not isinstance(tree, Call):
            return Evaluation(text, error=f"{text!r} is not a function call; gocall evaluates calls like main.Add(1, 2)")
        try:
            setup, frame, sig = self._prepare(tree)
        except (ArgumentError, SymbolNotFound, ExprError) as e:
            return Evaluation(text, error=str(e), exception=e)
        ev = Evaluation(text)
        try:
            outcome = self._inject(setup, ev)
        except CallRefused as e:
            ev.error, ev.exception = str(e), e
            return ev
        if isinstance(outcome, Panicked):
            ev.panic = self._panic_value(outcome)
        else:
            ev.results = [
                decode(s.param.type, image_from_slot(s, outcome.int_regs, outcome.fpregs, outcome.frame), self.mem)
                for s in frame.results
            ]
        return ev

    def _prepare(self, call: Call) -> tuple[CallSetup, abi.Frame, Signature]:
        name = call.func.qualified if "." in call.func.qualified else f"main.{call.func.qualified}"
        f = self.binary.pclntab.func_by_name(name)
        if f is None:
            raise SymbolNotFound(
                f"function {name} is not in the binary",
                hint="check the spelling; unexported or unused functions may be dead-code eliminated or inlined away "
                "(mark them //go:noinline and use them)",
            )
        dwarf = self.binary.dwarf
        sig = dwarf.function_signature(name) if dwarf is not None else None
        if sig is None:
            raise SymbolNotFound(f"no DWARF signature for {name}", hint="build without -ldflags=-w")
        if len(call.args) != len(sig.params):
            want = ", ".join(p.type.name for p in sig.params)
            which = "not enough" if len(call.args) < len(sig.params) else "too many"
            raise ArgumentError(f"{which} arguments in call to {name} (want ({want}), have {len(call.args)})")
        frame = abi.assign(sig.params, sig.results)
        if frame.size != f.args:
            raise ArgumentError(
                f"argument frame of {name} computed as {frame.size} bytes but the binary says {f.args}",
                hint="gocall misread the signature; please report this",
            )
        setup = self._setup(f.entry, frame, call.args, name)
        return setup, frame, sig

    def _setup(self, fn: int, frame: abi.Frame, args: tuple[Expr, ...], name: str) -> CallSetup:
        int_regs: dict[int, int] = {}
        float_regs: dict[int, bytes] = {}
        stack = bytearray(frame.size)
        for i, (slot, arg) in enumerate(zip(frame.params, args, strict=True)):
            if not isinstance(arg, Const):
                raise ExprError(f"argument {i + 1} of {name} must be a constant for now, not {arg}")
            image = encode(slot.param.type, arg.value, f"argument to {name}")
            if slot.pieces is None:
                assert slot.stack_offset is not None
                stack[slot.stack_offset : slot.stack_offset + len(image)] = image
                continue
            for p in slot.pieces:
                part = image[p.offset : p.offset + p.size]
                if p.is_float:
                    float_regs[p.reg] = part
                else:
                    int_regs[p.reg] = int.from_bytes(part, "little")
        return CallSetup(fn, frame.size, int_regs, float_regs, bytes(stack))

    def _inject(self, setup: CallSetup, ev: Evaluation) -> Returned | Panicked:
        deadline = time.monotonic() + self.timeout
        with signals_held():
            while True:
                with self._injection_point(deadline) as (thread, verdict):
                    ev.goroutine = verdict.g.goid if verdict.g else None
                    ev.location = verdict.function
                    injector = Injector(thread, self.mem, self._entry)
                    injector.step_epilogue = self.step_epilogue
                    try:
                        return injector.inject(setup)
                    except CallRefused as e:
                        if not e.transient or time.monotonic() > deadline:
                            raise
                        log.debug("refused at %s (%s); trying again", verdict.function, e.reason)

    @contextlib.contextmanager
    def _injection_point(self, deadline: float) -> Iterator[tuple[Thread, safepoint.Verdict]]:
        """A thread stopped where a call may be injected; detached again afterwards."""
        seen: dict[int, str] = {}
        attempts = 0
        while True:
            for tid in self._candidate_tids():
                if interrupts.signal is not None:
                    raise Interrupted("interrupted while looking for a goroutine; nothing was changed")
                thread = Thread(self.pid, tid)
                try:
                    thread.seize()
                except TargetExited:
                    continue  # the thread ended between listing and seizing
                try:
                    regs = thread.stop()
                    verdict = safepoint.check(regs, self.mem, self.layout, self.binary.pclntab)
                    attempts += 1
                    if verdict.ok:
                        self._preferred_tid = tid
                        yield thread, verdict
                        return
                    seen[tid] = verdict.reason or ""
                finally:
                    thread.detach()
            if time.monotonic() > deadline:
                detail = "; ".join(f"thread {t}: {r}" for t, r in sorted(seen.items()))
                raise NoGoroutine(
                    f"no goroutine was running Go user code at a safe point in {self.timeout:g} s "
                    f"({attempts} looks; last seen: {detail})",
                    hint="the program may be idle (all goroutines blocked); raise --timeout or call while it works",
                )
            time.sleep(0.0005)

    def _candidate_tids(self) -> list[int]:
        tids = thread_ids(self.pid)
        if self._preferred_tid in tids:
            tids.remove(self._preferred_tid)
            tids.insert(0, self._preferred_tid)
        return tids

    # -- helpers -------------------------------------------------------------------

    def _protocol_entry(self) -> Entry:
        tab = self.binary.pclntab
        ranges = []
        for name in _DEBUG_CALL_FUNCS:
            f = tab.func_by_name(name)
            if f is not None:
                ranges.append((f.entry, f.end))
        v2 = tab.func_by_name("runtime.debugCallV2")
        if v2 is None:
            raise SymbolNotFound(
                "runtime.debugCallV2 is not in the binary", hint="gocall needs a Go >= 1.17 amd64 binary"
            )
        return Entry(v2.entry, tuple(ranges))

    def _panic_value(self, p: Panicked) -> GoValue:
        from .binary.gotypes import GoType

        if p.eface_type == 0:
            return GoValue(GoType("nil", Kind.INVALID, 0), None)
        types_base = self.mem.u64(self._firstmoduledata() + self.layout.md_types)
        rt = read_type(self.mem, types_base, p.eface_type)
        t = GoType(rt.name, rt.kind, rt.size)
        if rt.kind == Kind.STRING or (t.is_integer or t.is_float or rt.kind == Kind.BOOL):
            # The data word of an interface points at the boxed value.
            return decode(t, self.mem.read(p.eface_data, rt.size), self.mem)
        return GoValue(t, f"<{rt.name} value at {p.eface_data:#x}>")

    def _firstmoduledata(self) -> int:
        addr = self.binary.symbol("runtime.firstmoduledata")
        if addr is None:
            raise SymbolNotFound("runtime.firstmoduledata is not in the symbol table (stripped binary)")
        return addr


def attach(pid: int, timeout: float = 10.0) -> Process:
    """Attach to the Go process ``pid``. Use as a context manager::

        with gocall.attach(pid) as proc:
            proc.call("main.Add", 1, 2)
    """
    return Process(pid, timeout)


__all__ = ["Evaluation", "Process", "attach"]
