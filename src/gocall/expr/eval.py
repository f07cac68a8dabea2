"""Evaluating expressions: from a parsed tree to injected calls and decoded values.

The evaluator resolves names in the binary (pclntab for the entry and the
argument frame size, DWARF for the signature), converts arguments to the
parameter types, lays them out per ABIInternal, asks the call engine to
inject, and decodes what came back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..binary import GoBinary
from ..binary.gotypes import GoType, Kind
from ..call import abi
from ..call.engine import CallEngine
from ..call.protocol import CallSetup, Panicked
from ..errors import ArgumentError, CallRefused, ExprError, GocallError, GoPanic, SymbolNotFound
from ..process.memory import Memory
from ..runtime.layouts import Layout
from ..runtime.types import read_type
from ..values.decode import decode, image_from_slot
from ..values.encode import encode
from ..values.gofmt import format_value
from ..values.model import GoValue
from .parse import Call, Const, Expr


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


class Evaluator:
    def __init__(self, binary: GoBinary, mem: Memory, layout: Layout, engine: CallEngine) -> None:
        self.binary = binary
        self.mem = mem
        self.layout = layout
        self.engine = engine

    def evaluate(self, tree: Expr, text: str) -> Evaluation:
        if not isinstance(tree, Call):
            e = ExprError(f"{text!r} is not a function call; gocall evaluates calls like main.Add(1, 2)")
            return Evaluation(text, error=str(e), exception=e)
        try:
            setup, frame = self.prepare(tree)
        except (ArgumentError, SymbolNotFound, ExprError) as e:
            return Evaluation(text, error=str(e), exception=e)
        ev = Evaluation(text)
        try:
            outcome, site = self.engine.call(setup)
        except CallRefused as e:
            ev.error, ev.exception = str(e), e
            return ev
        ev.goroutine, ev.location = site.goroutine, site.function
        if isinstance(outcome, Panicked):
            ev.panic = self._panic_value(outcome)
        else:
            ev.results = [
                decode(s.param.type, image_from_slot(s, outcome.int_regs, outcome.fpregs, outcome.frame), self.mem)
                for s in frame.results
            ]
        return ev

    def prepare(self, call: Call) -> tuple[CallSetup, abi.Frame]:
        """Everything the R12=0 step writes, computed before the target is touched."""
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
        return self._setup(f.entry, frame, call.args, name), frame

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

    def _panic_value(self, p: Panicked) -> GoValue:
        if p.eface_type == 0:
            return GoValue(GoType("nil", Kind.INVALID, 0), None)
        types_base = self.mem.u64(self._firstmoduledata() + self.layout.md_types)
        rt = read_type(self.mem, types_base, p.eface_type)
        t = GoType(rt.name, rt.kind, rt.size)
        if rt.kind == Kind.STRING or t.is_integer or t.is_float or rt.kind == Kind.BOOL:
            # The data word of an interface points at the boxed value.
            return decode(t, self.mem.read(p.eface_data, rt.size), self.mem)
        return GoValue(t, f"<{rt.name} value at {p.eface_data:#x}>")

    def _firstmoduledata(self) -> int:
        addr = self.binary.symbol("runtime.firstmoduledata")
        if addr is None:
            raise SymbolNotFound("runtime.firstmoduledata is not in the symbol table (stripped binary)")
        return addr
