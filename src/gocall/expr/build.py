"""From expression tree to operands: names, selectors, indexing, dereference,
type assertions and operators, each following the Go spec's rule for that form;
the forms that make values or reach the target have modules of their own:
literals (expr/literals.py), conversions and assignability (expr/convert.py),
calls (expr/calls.py), slice expressions (expr/slicing.py).

Memory the target must see (strings, ``&T{...}``, slice backing arrays, boxed
interface values) is allocated in the target with its real size and type
(call/alloc.py, through :meth:`Builder.alloc`); debugger-side addresses never
reach the target.
"""

from __future__ import annotations

import struct
from dataclasses import replace
from typing import TYPE_CHECKING

from ..binary.gotypes import GoType, Kind
from ..errors import ArgumentError, ExprError, SymbolNotFound
from ..values import arith
from ..values.decode import is_error, pointer_shaped
from ..values.encode import default_type_name, encode
from ..values.model import GoValue
from ..values.pointers import has_pointers, pointer_words
from .calls import call, call_bound
from .convert import arg, convert, typed
from .escape import check_escape
from .literals import composite, new_object
from .names import pointer_to, slice_of
from .operand import Fn, Operand, describe
from .parse import Binary, Call, Composite, Const, Expr, Index, Name, Selector, SliceExpr, TypeAssert, TypeExpr, Unary
from .slicing import slice_operand

if TYPE_CHECKING:
    from .eval import Evaluator, Session


_MAP_SCAN = 1 << 16  # entries scanned for m[k]
_OPTIMIZED = ("the binary is optimized: a local the compiler folded into a constant or did not keep was optimized "
              "away; rebuild with -gcflags='all=-N -l' to see every local")
_LOWEST_ADDRESS = 0x1000  # below it no Go program has memory (Linux's vm.mmap_min_addr is at least this)
_MISREAD = "in an optimized build, rebuild with -gcflags='all=-N -l' to see it"
_NOT_YET = "check the spelling; a variable declared further down is not visible yet"
# A method in the source but not in the binary: (*net/url.URL).Query in a server that never calls it.
_UNLINKED_METHOD = "check the spelling; the linker leaves out the methods a program never calls"


def _pointer_method(type_name: str, method: str) -> str:
    """The linker's name of a pointer-receiver method: ``main.Point``, ``Scale`` -> ``main.(*Point).Scale``."""
    pkg, _, t = type_name.rpartition(".")
    return f"{pkg}.(*{t}).{method}"


class Builder:
    """Evaluates one expression's parts for :class:`~gocall.expr.eval.Evaluator`, on one
    session (held thread, target heap, stopped frame's scope). The public helpers
    below the entry points serve the modules the other forms live in."""

    def __init__(self, ev: Evaluator, session: Session) -> None:
        self.ev = ev
        self.s = session
        self.names = ev.names
        self.mem = ev.mem

    # -- entry points ----------------------------------------------------------

    def eval(self, e: Expr, hint: GoType | None = None) -> Operand:
        match e:
            case Const():
                return Operand(None, e.value, text=e.text)
            case Name():
                return self._name(e.qualified)
            case Selector():
                if (method := self._method_expression(e)) is not None:
                    return method
                return self._select(self.eval(e.x), e.field, e.text)
            case Index():
                return self._index(self.eval(e.x), self.eval(e.key), e.text)
            case SliceExpr():
                x = self.eval(e.x)
                lo, hi, mx = (None if b is None else self.integer(self.eval(b)) for b in (e.low, e.high, e.max))
                string = self.names.type("string")
                assert string is not None
                return slice_operand(x, (lo, hi, mx), e.text, lambda p: self._deref(p, p.text), self._slice_type,
                                     string)
            case Unary():
                return self._unary(e)
            case Binary():
                return self._binary(e)
            case Call():
                return call(self, e)
            case Composite():
                t = self.type_of(e.type) if e.type is not None else hint
                if t is None:
                    raise ExprError(f"invalid composite literal {e.text!r}: missing type")
                return composite(self, t, e)
            case TypeAssert():
                return self._assert(self.eval(e.x), self.type_of(e.type), e.text)
            case TypeExpr():
                raise ExprError(f"{e.text} (type) is not an expression")
        raise ExprError(f"cannot evaluate {e!r}")

    def results(self, op: Operand) -> list[GoValue]:
        ops = list(op.results) if op.results is not None else [op]
        if op.fn is not None:
            raise ExprError(f"{op.text} is a function; call it ({op.text}(...))")
        out = []
        for o in ops:
            v = self.value(o)
            if is_error(v.type) and v.parts:
                v = replace(v, text=self._error_text(o))  # a GoValue, a dataclass
            out.append(v)
        return out

    def assign(self, target: Expr, value: Expr) -> Operand:
        """``target = value``: written to the target's memory, or to the register a
        local lives in (through the scope); the new value is the result."""
        dst = self.eval(target)
        if dst.type is None or dst.fn is not None or dst.results is not None:
            raise ExprError(f"cannot assign to {target.text} (neither addressable nor a map index expression)")
        image = arg(self, value, dst.type, "assignment")
        if dst.addr is not None:
            self.mem.write(dst.addr, image)
        elif self.s.scope is None or not self.s.scope.store(dst, image):
            raise ExprError(f"cannot assign to {target.text} (it is not a variable in memory or in a register)")
        return Operand(dst.type, image=image, addr=dst.addr, text=target.text)

    # -- names -------------------------------------------------------------------

    def _name(self, name: str) -> Operand:
        scope = self.s.scope
        if scope is not None:  # a stopped frame's variables shadow package members, as in Go
            head, dot, rest = name.partition(".")
            local = scope.lookup(head)
            if local is not None:
                for part in rest.split(".") if dot else ():
                    local = self._select(local, part, f"{local.text}.{part}")
                return local
        q = self.names.qualify(name)
        fn = self.names.function(q)
        if fn is not None:
            return Operand(None, text=name, fn=fn)
        var = self.names.variable(q)
        if var is not None:
            addr, t = var
            return Operand(t, image=self.mem.read(addr, t.size), addr=addr, text=name)
        head, dot, rest = name.partition(".")
        if dot and not self.names.is_package(head) and head != "main":
            try:
                op = self._name(head)
            except SymbolNotFound as e:
                if not str(e).startswith((f"undefined: {head} (function or variable main.{head} ",
                                          f"undefined: {head} (no function main.{head};")):
                    raise
                # Not a variable either: most likely a package the program does not link (crypto/sha256).
                raise SymbolNotFound(f"undefined: {name} (no package {head} is linked into the binary, and main.{head} "
                                     "is no function or variable)",
                                     hint="the linker keeps only the packages and functions the program uses") from None
            for part in rest.split("."):
                op = self._select(op, part, f"{op.text}.{part}")
            return op
        if self.names.type(name) is not None:
            raise ExprError(f"{name} (type) is not an expression")
        if scope is not None and not dot:
            raise SymbolNotFound(f"undefined: {name} (no variable {name} in {scope.function} at this point, and no "
                                 f"package member {q})", hint=_OPTIMIZED if self.names.optimized else _NOT_YET)
        if self.names.dwarf is None and not self.names.binary.has_symtab:  # a variable and a typo look alike
            raise SymbolNotFound(f"undefined: {name} (no function {q}; a package variable cannot be found in a "
                                 "binary with neither DWARF nor a symbol table, -ldflags='-s -w')",
                                 hint="call a function that returns the value, or give the program's source with "
                                      "--source DIR and build without -s")
        raise SymbolNotFound(f"undefined: {name} (function or variable {q} is not in the binary)",
                             hint="check the spelling; unused functions and variables may be dead-code "
                                  "eliminated or inlined away (mark functions //go:noinline and use them)")

    def _method_expression(self, e: Selector) -> Operand | None:
        """``pkg.(*T).M``, ``(*pkg.T).M`` or ``pkg.T.M``: the method as a function whose first
        parameter is the receiver (the spec's method expressions), found by the name the linker
        gives it (``pkg.(*T).M``, ``pkg.T.M``); None for any other selector. Told apart by that
        name being in pclntab, which needs no DWARF: a stripped binary's methods are called so."""
        sure = False  # the form is a method expression whether or not the method is linked
        match e.x:
            case TypeAssert(x=Name(qualified=pkg), type=TypeExpr(text=t)) if t.startswith("*"):
                head, linked = pkg, self.names.qualify(f"{pkg}.({t}).{e.field}")
                sure = pkg == "main" or self.names.is_package(pkg)  # a package is no value to assert on
            case Unary(op="*", x=Name(qualified=q)) if "." in q:
                head, linked = q, _pointer_method(self.names.qualify(q), e.field)
            case Name(qualified=q) if "." in q:
                head, linked = q, f"{self.names.qualify(q)}.{e.field}"
            case _:
                return None
        if self.is_local(head):
            return None
        linked_in = self.names.binary.pclntab.func_by_name
        if linked_in(linked) is None:
            if isinstance(e.x, Name) and linked_in(_pointer_method(self.names.qualify(e.x.qualified), e.field)):
                raise ExprError(f"invalid method expression {e.text} (needs pointer receiver "
                                f"(*{e.x.qualified}).{e.field})")
            if sure:
                raise SymbolNotFound(f"undefined: {e.text} (method {linked} is not in the binary)", hint=_UNLINKED_METHOD)
            return None
        return Operand(None, text=e.text, fn=self.names.function(linked))

    def is_local(self, name: str) -> bool:
        """Whether ``name``'s first part is a variable of the stopped frame (it shadows packages)."""
        if self.s.scope is None:
            return False
        try:
            return self.s.scope.lookup(name.partition(".")[0]) is not None
        except ExprError:
            return True  # a local that is not available here: still a local

    def type_of(self, e: Expr) -> GoType:
        text = e.qualified if isinstance(e, Name) else e.text
        if isinstance(e, Unary) and e.op == "*":
            return pointer_to(self.type_of(e.x))
        t = self.names.type(text)
        if t is None:
            raise SymbolNotFound(f"undefined type: {text} (not in the binary's DWARF)",
                                 hint="types the program never uses are not in the binary")
        return t

    # -- selectors, indexing, dereference ----------------------------------------

    def _select(self, x: Operand, field: str, text: str) -> Operand:
        t = x.type
        if t is None:
            raise ExprError(f"{text}: {x.text} has no field or method {field}")
        if t.kind == Kind.INTERFACE:
            return self._interface_method(x, field, text)
        base = t.elem if t.kind == Kind.POINTER and t.elem is not None else t
        if base.kind == Kind.STRUCT:
            for f in base.fields:
                if f.name == field:
                    s = self._deref(x, text) if t.kind == Kind.POINTER else x
                    assert s.image is not None
                    addr = None if s.addr is None else s.addr + f.offset
                    return Operand(f.type, image=s.image[f.offset : f.offset + f.type.size], addr=addr, text=text)
        found = self.names.method(t, field)
        if found is not None:
            return self._bind(x, *found, text)
        if base.kind == Kind.STRUCT:  # promoted through embedded fields, breadth first
            for f in base.fields:
                if f.embedded:
                    try:
                        return self._select(self._select(x, f.name, f"{x.text}.{f.name}"), field, text)
                    except (ExprError, SymbolNotFound):
                        continue
        raise ExprError(f"{text} undefined (type {t.name} has no field or method {field})",
                        hint=_UNLINKED_METHOD)

    def _bind(self, x: Operand, fn: Fn, wants_ptr: bool, text: str) -> Operand:
        assert x.type is not None
        if wants_ptr:
            if x.type.kind == Kind.POINTER:
                recv = x
            elif x.addr is not None:
                recv = Operand(pointer_to(x.type), image=struct.pack("<Q", x.addr), text="&" + x.text)
            else:
                raise ExprError(f"cannot call pointer method {text.rsplit('.', 1)[-1]} on {x.type.name} "
                                f"({x.text} is not addressable)")
        else:
            recv = self._deref(x, x.text) if x.type.kind == Kind.POINTER else x
        return Operand(None, text=text, fn=fn._replace(bound=(recv,)))

    def _interface_method(self, x: Operand, field: str, text: str) -> Operand:
        assert x.image is not None and x.type is not None
        tab, data = struct.unpack("<QQ", x.image)
        if not x.type.fields or x.type.fields[0].name == "_type":
            raise ExprError(f"{text} undefined (type {x.type.name} has no field or method {field})")
        if tab == 0:
            raise ExprError(f"invalid memory address or nil pointer dereference: {x.text} is a nil {x.type.name}")
        if tab < _LOWEST_ADDRESS or 0 < data < _LOWEST_ADDRESS:
            raise ExprError(f"{x.text} holds ({tab:#x}, {data:#x}), which is no interface value: it is not set yet "
                            "at this point, or its location was misread", hint=_MISREAD)
        pc = self.ev.runtime_types.itab_method(tab, field)
        if pc is None:
            raise ExprError(f"{text} undefined (type {x.type.name} has no method {field})")
        fn = self.names.interface_method(pc)
        if fn is None:
            return self._stubbed_method(x, tab, data, field, text)
        recv = Operand(fn.sig.params[0].type, image=struct.pack("<Q", data), text=x.text)
        return Operand(None, text=text, fn=fn._replace(bound=(recv,)))

    def _stubbed_method(self, x: Operand, tab: int, data: int, field: str, text: str) -> Operand:
        """An itab slot the linker stubbed (runtime.unreachableMethod): the method of the
        dynamic type, found by name as on a value of that type (value or pointer receiver,
        promoted through embedded fields); refused only when the binary has none."""
        rt = self.ev.runtime_types
        dyn = rt.dynamic_type(rt.itab_type(tab))
        if pointer_shaped(dyn):
            value = Operand(dyn, image=struct.pack("<Q", data), text=f"{x.text}.({dyn.name})")
        else:  # the interface holds a copy, which no pointer method may change: no address
            value = Operand(dyn, image=self.mem.read(data, dyn.size), text=f"{x.text}.({dyn.name})")
        try:
            return self._select(value, field, text)
        except (ExprError, SymbolNotFound):
            raise SymbolNotFound(f"{text}: the linker removed this method ({dyn.name}.{field}): the program never "
                                 "calls it", hint="use it in the program (a call through the interface, or a method "
                                                  "value) and rebuild") from None

    def _deref(self, p: Operand, text: str) -> Operand:
        assert p.type is not None and p.image is not None
        if p.type.kind != Kind.POINTER or p.type.elem is None:
            raise ExprError(f"invalid operation: cannot indirect {describe(p)}")
        addr = struct.unpack_from("<Q", p.image)[0]
        if addr == 0:
            raise ExprError(f"invalid memory address or nil pointer dereference: {p.text} is nil")
        t = p.type.elem
        return Operand(t, image=self.mem.read(addr, t.size), addr=addr, text=text)

    def _index(self, x: Operand, i: Operand, text: str) -> Operand:
        t = x.type
        if t is None or x.image is None:
            raise ExprError(f"invalid operation: cannot index {describe(x)}")
        if t.kind == Kind.MAP:
            return self._map_index(x, i, text)
        n = self.integer(i)
        if t.kind == Kind.POINTER and t.elem is not None and t.elem.kind == Kind.ARRAY:
            x, t = self._deref(x, x.text), t.elem
        assert x.image is not None
        if t.kind == Kind.ARRAY and t.elem is not None:
            size, length, base, image = t.elem.size, t.length, x.addr, x.image
            elem = t.elem
        elif t.kind in (Kind.SLICE, Kind.STRING):
            ptr, length = struct.unpack_from("<Qq", x.image)
            found = t.elem if t.kind == Kind.SLICE else self.names.type("uint8")
            assert found is not None
            elem = found
            size, base, image = elem.size, ptr, None
        else:
            raise ExprError(f"invalid operation: cannot index {describe(x)}")
        if not 0 <= n < length:
            raise ExprError(f"index out of range [{n}] with length {length}")
        addr = None if base is None else base + n * size
        data = image[n * size : (n + 1) * size] if image is not None else self.mem.read(addr or 0, size)
        return Operand(elem, image=data, addr=addr if t.kind != Kind.STRING else None, text=text)

    def _map_index(self, m: Operand, k: Operand, text: str) -> Operand:
        """``m[k]``: the map is scanned from outside (no hashing); a missing key gives the zero value."""
        assert m.type is not None and m.type.key is not None and m.type.elem is not None and m.image is not None
        want = self.value(Operand(m.type.key, image=convert(self, k, m.type.key, "map index"))).value
        ptr = struct.unpack_from("<Q", m.image)[0]
        if ptr:
            entries, length = self.ev.runtime_types.map_entries(m.type, ptr, _MAP_SCAN)
            dec = self.ev.decoder()
            for kimg, eimg in entries:
                if dec.decode(m.type.key, kimg).value == want:
                    return Operand(m.type.elem, image=eimg, text=text)
            if length > len(entries):
                raise ExprError(f"{text}: the map has {length} entries; gocall scans at most {_MAP_SCAN}")
        return Operand(m.type.elem, image=bytes(m.type.elem.size), text=text)

    def _assert(self, x: Operand, t: GoType, text: str) -> Operand:
        if x.type is None or x.type.kind != Kind.INTERFACE or x.image is None:
            raise ExprError(f"invalid operation: {x.text} is not an interface")
        word, data = struct.unpack("<QQ", x.image)
        rt = self.ev.runtime_types
        dyn = None if word == 0 else rt.dynamic_type(word if x.type.fields[0].name == "_type" else rt.itab_type(word))
        if dyn is None or dyn.name != t.name:
            have = "nil" if dyn is None else dyn.name
            raise ExprError(f"interface conversion: {x.type.name} is {have}, not {t.name}")
        if pointer_shaped(t):
            return Operand(t, image=struct.pack("<Q", data), text=text)
        return Operand(t, image=self.mem.read(data, t.size), addr=data, text=text)

    # -- operators -----------------------------------------------------------------

    def _unary(self, e: Unary) -> Operand:
        if e.op == "&":
            if isinstance(e.x, Composite):
                lit = self.eval(e.x)
                assert lit.type is not None
                return new_object(self, lit, e.text)
            x = self.eval(e.x)
            if x.addr is None or x.type is None:
                raise ExprError(f"invalid operation: cannot take address of {describe(x)}")
            return Operand(pointer_to(x.type), image=struct.pack("<Q", x.addr), text=e.text)
        x = self.eval(e.x)
        if e.op == "*":
            return self._deref(x, e.text)
        if x.type is None:
            raise ExprError(f"invalid operation: operator {e.op} on {e.text}")
        v = self.value(x).value
        if e.op == "!" and x.type.kind == Kind.BOOL:
            return typed(x.type, not v, e.text)
        if isinstance(v, (int, float, complex)) and not isinstance(v, bool) and e.op in "-+^":
            r = -v if e.op == "-" else v if e.op == "+" else ~v  # type: ignore[operator]
            return typed(x.type, r, e.text)
        raise ExprError(f"invalid operation: operator {e.op} not defined on {describe(x)}")

    def _binary(self, e: Binary) -> Operand:
        x, y = self.eval(e.x), self.eval(e.y)
        if x.untyped and y.untyped:
            return Operand(None, arith.binary_const(e.op, x.const, y.const, x.text, y.text), text=e.text)
        t = x.type or y.type
        assert t is not None
        if e.op not in ("<<", ">>"):
            for o in (x, y):
                if o.type is not None and o.type.name != t.name:
                    raise ExprError(f"invalid operation: {e.text} (mismatched types {x.type.name if x.type else 'untyped'}"
                                    f" and {y.type.name if y.type else 'untyped'})")
        xv = x.const if x.type is None else self.value(x).value
        yv = y.const if y.type is None else self.value(y).value
        if arith.is_comparison(e.op):
            return Operand(None, arith.compare(e.op, xv, yv), text=e.text)
        if e.op in ("&&", "||"):
            return typed(t, (xv and yv) if e.op == "&&" else (xv or yv), e.text)
        r = arith.apply(e.op, xv, yv, integer=t.is_integer, text=e.text)
        return typed(t, r, e.text)

    # -- objects in the target -------------------------------------------------------

    def alloc(self, t: GoType, image: bytes, text: str) -> int:
        """A new object of type ``t`` in the target holding ``image`` (escape-checked first).

        The GC needs the object's type where it has pointers: ``t``'s descriptor, or for an
        array its element's (``mallocgc(n*size, elem, true)`` is the runtime's ``newarray``).
        A pointer-free type the program never uses (``[37]byte``) has no descriptor and needs
        none: a nil type gives a noscan object of the same size."""
        self.escape_check([(t, image, text, "a value stored in the heap")])
        rtype, of = None, t
        while rtype is None:
            off = self.names.runtime_type(of)
            rtype = None if not off else self.ev.runtime_types.rtype_addr(off)  # go1.19 DWARF says 0 for none
            if rtype is None and of.kind == Kind.ARRAY and of.elem is not None:
                of = of.elem
            elif rtype is None:
                if has_pointers(t):
                    self.rtype(t)  # raises, naming the type
                rtype = 0
        return self.s.heap.alloc(t.size, rtype, image)

    def _slice_type(self, elem: GoType) -> GoType:
        t = self.names.type("[]" + elem.name)
        return t if t is not None else slice_of(elem)

    def rtype(self, t: GoType) -> int:
        """The address of ``t``'s runtime type descriptor (``*_type``) in the target."""
        off = self.names.runtime_type(t)
        if off is None:
            raise SymbolNotFound(f"no runtime type descriptor for {t.name} in the binary",
                                 hint="only types the program itself uses have one")
        return self.ev.runtime_types.rtype_addr(off)

    def escape_check(self, values: list[tuple[GoType, bytes, str, str]]) -> None:
        """Refuse pointers into the calling goroutine's stack (expr/escape.py): values as
        (type, image, text, role). Which goroutine calls is known once a thread is held,
        so one is taken now if any value holds a pointer."""
        if self.s.unsafe or all(next(pointer_words(t, image), None) is None for t, image, _, _ in values):
            return
        held = self.s.thread()
        if held.g is None:
            return
        for t, image, text, role in values:
            check_escape(t, image, text, role, held.g)

    def stored(self, t: GoType, image: bytes, text: str) -> bytes:
        """``image`` about to be written into an object allocated in the target, escape-checked."""
        self.escape_check([(t, image, text, "a value stored in the heap")])
        return image

    # -- values ----------------------------------------------------------------------

    def value(self, o: Operand) -> GoValue:
        """The operand decoded; an untyped constant as a value of its default type."""
        if o.type is None:
            t = self.names.type(default_type_name(o.const)) if o.const is not None else None
            if t is None:
                return GoValue(GoType("untyped nil", Kind.INVALID, 0), None)
            if t.kind == Kind.STRING:
                return GoValue(t, o.const)
            return GoValue(t, self.ev.decoder().decode(t, encode(t, o.const, o.text)).value)
        if o.image is None:
            return GoValue(o.type, o.const)
        return self.ev.decoder().decode(o.type, o.image)

    def integer(self, o: Operand) -> int:
        """An index or bound's value: an untyped integer constant or a value of an integer type."""
        if o.type is None:
            if isinstance(o.const, bool) or not isinstance(o.const, int):
                raise ExprError(f"invalid argument: index {o.text} must be integer")
            return o.const
        if not o.type.is_integer:
            raise ExprError(f"invalid argument: index {describe(o)} must be integer")
        return int(self.value(o).value)

    def _error_text(self, o: Operand) -> str | None:
        """``err.Error()`` for a non-nil error value, by an injected call."""
        try:
            op = call_bound(self, self._interface_method(o, "Error", f"{o.text}.Error"))
            return str(self.value(op).value)
        except (ExprError, SymbolNotFound, ArgumentError):
            return None
