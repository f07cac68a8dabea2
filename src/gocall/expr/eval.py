"""Evaluating expressions: from a parsed tree to injected calls and decoded values.

One expression runs on one held thread (``CallEngine.hold``), taken only when
the first call is needed: an expression that fails before (unknown name, wrong
argument type...) never stops a thread. Everything the expression allocates in
the target (call/alloc.py) stays pinned until it is done. Operands follow Go's
rules: untyped constants take the parameter's type (lossy conversions are
refused with the compiler's wording), methods get ``&x`` or ``*p`` as their
receiver wants, interface methods dispatch through the itab, variadic
arguments are packed into a new slice.
"""

from __future__ import annotations

import contextlib
import struct
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from ..binary import GoBinary
from ..binary.gotypes import DECLARED, INJECTED, GoType, Kind, Param
from ..call import abi
from ..call.alloc import PinSupport, ReadOnlyData, TargetHeap, pin_support
from ..call.engine import CallEngine, Held
from ..call.protocol import CallSetup, Panicked
from ..errors import (ArgumentError, BadAddress, BinaryError, CallRefused, ExprError, GocallError, GoPanic,
                      SymbolNotFound)
from ..process.memory import Memory
from ..runtime.layouts import Layout
from ..runtime import injected
from ..runtime.maps import MapReader
from ..runtime.types import RuntimeTypes
from ..values.decode import Decoder, image_from_slot, is_error
from ..values.encode import encode
from ..values.pointers import pointer_words
from ..values.gofmt import format_value
from ..values.model import GoValue
from .build import Builder
from .escape import Escape
from .names import Names
from .operand import Fn, Operand, Scope
from .parse import Assign, Call, Const, Expr, Name


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
    calls: int = 0  # injected calls, allocations and pins included

    def to_json(self) -> dict[str, Any]:
        return {
            "expr": self.expr,
            "results": [r.to_json() for r in self.results],
            "panic": self.panic.to_json() if self.panic else None,
            "error": self.error,
        }

    @property
    def python_value(self) -> Any:
        """What the Python API returns: one value, a tuple for several, None for none.
        A panic raises GoPanic; a non-nil ``error`` result raises GoError."""
        if self.error is not None:
            raise self.exception or GocallError(self.error)
        if self.panic is not None:
            raise GoPanic(self.panic.type.name, self.panic.value, format_value(self.panic))
        for r in self.results:
            if is_error(r.type) and r.value is not None:
                from ..errors import GoError

                raise GoError(r.text or "", [x.value for x in self.results], format_value(r))
        if len(self.results) == 1:
            return self.results[0].value
        return tuple(r.value for r in self.results) if self.results else None


_MAX_PLANS = 4096  # distinct call expressions remembered (expressions are typed by people, or by loops)


class _Panicked(Exception):
    def __init__(self, value: GoValue) -> None:
        self.value = value


class Session:
    """The target side of one expression: a lazily held thread and the objects allocated."""

    def __init__(self, ev: Evaluator, unsafe: bool, held: Held | None = None, scope: Scope | None = None) -> None:
        self.ev = ev
        self.unsafe = unsafe
        self.held: Held | None = held
        self.fixed = held is not None  # a thread stopped by a breakpoint: calls run there or not at all
        self.scope = scope
        self._stack: contextlib.ExitStack = contextlib.ExitStack()
        self.calls = 0
        self.heap = TargetHeap(self.runtime_call, ev.mem.write, ev.pin_support, ev.static_bytes)

    def early(self, engine: CallEngine) -> None:
        """Interrupt the thread the first call will most likely run on now (call/engine.py
        ``early``); let go, if not taken, when the session closes."""
        self._stack.enter_context(engine.early())

    def thread(self) -> Held:
        if self.held is None:
            self.held = self._stack.enter_context(self.ev.engine.hold())
        return self.held

    def close(self) -> None:
        try:
            if self.held is not None:
                self.heap.release()
        finally:
            self._stack.close()

    def call(self, fn: Fn, images: list[bytes], consumes: bool = False) -> list[bytes]:
        """Inject ``fn`` with argument images; the results' images, or _Panicked. ``consumes``:
        a function of the expression, which takes over the objects its arguments point to
        (call/alloc.py TargetHeap.before_call) if it runs in the same debugCallV2 run as the calls
        that made them (no GC cycle can end in between); runtime helpers take over nothing."""
        frame, float_results, stack_results = self.ev.frame(fn)
        takes = consumes and isinstance(self.held, Held) and self.held.would_chain(frame.size)
        self.heap.before_call((lambda: {w for p, image in zip(fn.sig.params, images, strict=True)
                                        for _, w, _ in pointer_words(p.type, image)}) if takes else None)
        ints, floats, stack = abi.place(frame, images)
        setup = CallSetup(fn.entry, frame.size, ints, floats, stack, fn.closure, float_results, stack_results)
        outcome = self._inject(setup)
        if isinstance(outcome, Panicked):
            raise _Panicked(self.ev.panic_value(outcome))
        return [image_from_slot(s, outcome.int_regs, outcome.fpregs, outcome.frame) for s in frame.results]

    def _inject(self, setup: CallSetup) -> Any:
        deadline = time.monotonic() + self.ev.engine.timeout
        while True:
            held = self.thread()
            try:
                self.calls += 1
                return held.call(setup)
            except CallRefused as e:
                # Before anything was allocated, another stop may accept the call.
                if not e.transient or self.fixed or self.calls > 1 or time.monotonic() > deadline:
                    raise
                self._stack.close()
                self._stack, self.held, self.calls = contextlib.ExitStack(), None, 0

    def runtime_call(self, name: str, args: tuple[int | bytes, ...]) -> int:
        """Call a runtime helper with word (int) or memory-image (bytes) arguments; its first word back."""
        fn = self.ev.runtime_fn(name)
        images = [a if isinstance(a, bytes) else (a & (1 << 64) - 1).to_bytes(8, "little")[: p.type.size]
                  for a, p in zip(args, fn.sig.params, strict=True)]
        out = self.call(fn, images)
        return int.from_bytes(out[0][:8], "little") if out else 0


def _types(params: tuple[Param, ...]) -> str:
    return ", ".join(p.type.name for p in params)


class Evaluator:
    def __init__(self, binary: GoBinary, mem: Memory, layout: Layout, engine: CallEngine) -> None:
        self.binary = binary
        self.mem = mem
        self.layout = layout
        self.engine = engine
        self.names = Names(binary)
        self._runtime_fns: dict[str, Fn] = {}
        # id(sig) -> (sig, name, frame, a result in X registers, a result on the stack)
        self._frames: dict[int, tuple[object, str, abi.Frame, bool, bool]] = {}
        # Calls of package functions with constant arguments, resolved once (expr/calls.py ``call``).
        self.call_plans: dict[Call, tuple[Fn, list[bytes]]] = {}
        self._runtime_types: RuntimeTypes | None = None

    def remember_plan(self, call: Call, fn: Fn, images: list[bytes]) -> None:
        if len(self.call_plans) >= _MAX_PLANS:
            self.call_plans.clear()
        self.call_plans[call] = (fn, images)

    @property
    def runtime_types(self) -> RuntimeTypes:
        if self._runtime_types is None:
            base = self.mem.u64(self._firstmoduledata() + self.layout.md_types)
            # Without DWARF, dynamic types are looked up in Go source by their runtime names.
            self._runtime_types = RuntimeTypes(self.mem, base, self.binary.dwarf or self.names.go_source(),
                                               self.binary.pclntab,
                                               MapReader(self.mem, self.binary.dwarf))
        return self._runtime_types

    @cached_property
    def pin_support(self) -> PinSupport | None:
        """How objects are pinned in this binary (call/alloc.py); looked up once."""
        pointer = self.names.type("unsafe.Pointer")
        off = self.names.runtime_type(pointer) if pointer is not None else None
        return pin_support(self.binary.pclntab.func_by_name, None if off is None else self.runtime_types.rtype_addr(off))

    @cached_property
    def _read_only(self) -> ReadOnlyData | None:
        data, address = self.binary.section_data(".rodata"), self.binary.section_address(".rodata")
        return None if data is None or address is None else ReadOnlyData(data, address)

    def static_bytes(self, data: bytes) -> int | None:
        """Where the executable's ``.rodata`` holds ``data`` in the process (call/alloc.py:
        such string bytes need no allocation); None if nowhere. Read on the first string."""
        ro = self._read_only
        return None if ro is None else ro.find(data)

    def decoder(self) -> Decoder:
        return Decoder(self.mem, self.runtime_types)

    def runtime_fn(self, name: str) -> Fn:
        """A runtime function gocall calls itself (mallocgc, the Pinner, getitab, map helpers),
        its signature from runtime/injected.py: the same with or without DWARF."""
        fn = self._runtime_fns.get(name)
        if fn is None:
            declared = injected.for_go(name, self.binary.go_version_tuple)
            if declared is None:  # a release older than the table: DWARF says, if it is there
                found = self.names.function(name)
            else:
                from .signature import parse_signature  # most calls never need it

                f = self.binary.pclntab.func_by_name(name)
                found = None if f is None else Fn(name, f.entry, parse_signature(declared)._replace(origin=INJECTED))
            if found is None:
                raise SymbolNotFound(f"{name} is not in the binary")
            fn = self._runtime_fns[name] = found
        return fn

    def frame(self, fn: Fn) -> tuple[abi.Frame, bool, bool]:
        """``fn``'s argument frame (checked against the binary's), whether a result is in
        X registers and whether one is on the stack; computed once per signature."""
        cached = self._frames.get(id(fn.sig))
        if cached is not None and cached[0] is fn.sig and cached[1] == fn.name:
            return cached[2], cached[3], cached[4]
        frame = abi.assign(fn.sig.params, fn.sig.results)
        f = self.binary.pclntab.func_by_name(fn.name)
        if f is not None and f.args >= 0 and frame.size != f.args:
            raise frame_mismatch(fn, frame.size, f.args, self.binary.go_version)
        floats = any(p.is_float for s in frame.results for p in s.pieces or ())
        on_stack = any(s.pieces is None for s in frame.results)
        self._frames[id(fn.sig)] = (fn.sig, fn.name, frame, floats, on_stack)
        return frame, floats, on_stack

    def evaluate(self, tree: Expr | Assign, text: str, unsafe: bool = False, held: Held | None = None,
                 scope: Scope | None = None) -> Evaluation:
        """Evaluate ``tree``; at a stop, ``held`` is the stopped thread (calls run there) and
        ``scope`` the stopped frame's variables."""
        ev = Evaluation(text)
        session = Session(self, unsafe, held, scope)
        try:
            try:
                if held is None and isinstance(tree, Call) and tree in self.call_plans:
                    # A call worked out before (call_plans): sure to reach the target, whose thread
                    # is interrupted now, its stop coming while the call is set up (engine.early).
                    session.early(self.engine)
                b = Builder(self, session)
                op = b.assign(tree.target, tree.value) if isinstance(tree, Assign) else b.eval(tree)
                ev.results = b.results(op)
            finally:
                ev.calls = session.calls
                if session.held is not None:
                    ev.goroutine, ev.location = session.held.site.goroutine, session.held.site.function
                session.close()
        except _Panicked as p:
            ev.panic = p.value
        except (ArgumentError, BinaryError, ExprError, CallRefused, Escape, BadAddress) as e:
            ev.error, ev.exception = str(e), e
        except GocallError:
            raise  # the process's problem (it exited, ptrace failed, Ctrl-C): the caller's to handle
        except Exception as e:  # noqa: BLE001 (no input may end in a traceback: a bug of gocall's, said as one)
            bug = GocallError(f"gocall failed on {text!r} in {self.binary.path}: {type(e).__name__}: {e}",
                              hint="please report this, with the expression and the binary")
            ev.error, ev.exception = str(bug), bug
        return ev

    def prepare(self, call: Call) -> tuple[CallSetup, abi.Frame]:
        """The R12=0 setup of a call with constant scalar arguments, computed without touching
        the target (tests drive the protocol with it)."""
        if not isinstance(call.func, Name):
            raise ExprError(f"{call.text!r}: prepare takes a call of a named function")
        fn = self.names.function(self.names.qualify(call.func.qualified))
        if fn is None:
            raise SymbolNotFound(f"function {call.func.qualified} is not in the binary")
        if len(call.args) != len(fn.sig.params):
            raise ArgumentError(f"wrong number of arguments in call to {fn.name}")
        images = []
        for a, p in zip(call.args, fn.sig.params, strict=True):
            if not isinstance(a, Const):
                raise ExprError(f"prepare takes constant arguments, not {a}")
            images.append(encode(p.type, a.value, f"argument to {fn.name}"))
        frame = abi.assign(fn.sig.params, fn.sig.results)
        ints, floats, stack = abi.place(frame, images)
        return CallSetup(fn.entry, frame.size, ints, floats, stack), frame

    def panic_value(self, p: Panicked) -> GoValue:
        if p.eface_type == 0:
            return GoValue(GoType("nil", Kind.INVALID, 0), None)
        t = GoType("interface {}", Kind.INTERFACE, 16, 8)
        v = self.decoder().decode(t, struct.pack("<QQ", p.eface_type, p.eface_data))
        return v.parts[0] if v.parts else v

    def _firstmoduledata(self) -> int:
        addr = self.binary.symbol("runtime.firstmoduledata")
        if addr is None:
            raise SymbolNotFound("runtime.firstmoduledata is not in the symbol table (stripped binary)")
        return addr


def frame_mismatch(fn: Fn, computed: int, recorded: int, go_version: str) -> ArgumentError:
    """The error for a signature whose argument frame is not the one the binary records
    (``_func.args``), worded after where the signature came from."""
    origin = fn.sig.origin
    if origin == DECLARED:
        return ArgumentError(
            f"the declaration of {fn.name} disagrees with the binary's argument frame (declared "
            f"{computed} bytes, binary {recorded})",
            hint="check the number, order and types of its parameters and results (a method's receiver "
                 "first) against the source the program was built from")
    if origin == INJECTED:
        return ArgumentError(f"gocall's signature of {fn.name} for {go_version} gives a {computed}-byte argument "
                             f"frame, the binary's is {recorded} bytes",
                             hint="runtime/injected.py lacks a row for this release; please report this")
    if origin:
        return ArgumentError(f"the signature of {fn.name} from {origin} gives a {computed}-byte argument frame, "
                             f"the binary's is {recorded} bytes",
                             hint=f"that source is not what this binary ({go_version}) was built from: name the "
                                  "right one with --goroot DIR (the standard library) or --source DIR (the program)")
    if computed < recorded:
        # Go 1.19-1.21's DWARF lists no blank or unnamed parameter (1.22+ name them ~p0...);
        # a blank receiver is restored from the method's name (expr/names.py), others cannot be.
        return ArgumentError(f"the DWARF of {fn.name} lists parameters ({_types(fn.sig.params)}) filling {computed} "
                             f"bytes of its {recorded}-byte argument frame: it leaves out blank (_) or unnamed "
                             "parameters, as Go 1.21 and older do",
                             hint="name those parameters in the source, or build with Go 1.22 or later")
    return ArgumentError(f"argument frame of {fn.name} computed as {computed} bytes but the binary says {recorded}",
                         hint="gocall misread the signature; please report this")
