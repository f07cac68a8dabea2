"""What names in an expression mean in the target binary: functions (pclntab for
the entry, DWARF for the signature), package variables and types (DWARF), and
methods (``pkg.T.M`` / ``pkg.(*T).M``, promoted through embedded fields).

Package names are resolved as Go source spells them: ``filepath.Join`` is
``path/filepath.Join`` in the binary; an unqualified name is in ``main``.
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import TYPE_CHECKING

from ..binary import GoBinary
from ..binary.dwarf import package_of
from ..call import abi
from ..binary.gotypes import Field, GoType, Kind, Param, Signature
from ..errors import ExprError, GocallError, SymbolNotFound
from .operand import Fn

if TYPE_CHECKING:
    from ..gosource.source import GoSource

_BASIC_TYPES = frozenset({
    "bool", "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "uintptr",
    "float32", "float64", "complex64", "complex128", "string", "byte", "rune", "error", "any",
    "unsafe.Pointer",
})  # fmt: skip
_ALIASES = {"byte": "uint8", "rune": "int32", "any": "interface {}"}
_EMPTY_INTERFACE = re.compile(r"(?<![\w.])any(?!\w)|\binterface\s*\{\s*\}")
_EMPTY_STRUCT = re.compile(r"\bstruct\s*\{\s*\}")

_BASIC_KINDS = {
    "bool": (Kind.BOOL, 1), "int": (Kind.INT, 8), "int8": (Kind.INT8, 1), "int16": (Kind.INT16, 2),
    "int32": (Kind.INT32, 4), "int64": (Kind.INT64, 8), "uint": (Kind.UINT, 8), "uint8": (Kind.UINT8, 1),
    "uint16": (Kind.UINT16, 2), "uint32": (Kind.UINT32, 4), "uint64": (Kind.UINT64, 8),
    "uintptr": (Kind.UINTPTR, 8), "float32": (Kind.FLOAT32, 4), "float64": (Kind.FLOAT64, 8),
    "complex64": (Kind.COMPLEX64, 8), "complex128": (Kind.COMPLEX128, 16), "string": (Kind.STRING, 16),
    "unsafe.Pointer": (Kind.UNSAFE_POINTER, 8),  # for stripped binaries, which have no DWARF to say it
}  # fmt: skip

_NOT_LINKED = ("check the spelling; unexported or unused functions may be dead-code eliminated or "
               "inlined away (mark them //go:noinline and use them)")


def _declare_hint(name: str) -> str:
    """How to give ``name`` a signature: the example is the function itself, never another."""
    return (f"build without -ldflags=-w, or declare it in Go syntax: --declare 'func {name}(a int, s string) "
            "(int, error)' with its real parameters (Process.declare in Python)")


class Names:
    def __init__(self, binary: GoBinary) -> None:
        self.binary = binary
        self.dwarf = binary.dwarf
        self._types: dict[str, GoType | None] = {}
        self._signatures: dict[str, tuple[Signature, Signature]] = {}  # found -> receiver restored
        self.source: GoSource | None = None  # Process.use_source sets it; made on first need otherwise

    def go_source(self) -> GoSource | None:
        """Where signatures and types come from without DWARF (gosource/); None with DWARF."""
        if self.dwarf is not None:
            return None
        if self.source is None:
            from ..gosource.source import GoSource

            self.source = GoSource(self.binary)
        return self.source

    @cached_property
    def _packages(self) -> dict[str, list[str]]:
        """Short package name -> package paths (``filepath`` -> ``path/filepath``)."""
        source = self.go_source()
        if source is not None:  # no DWARF: the packages that have functions in pclntab
            return source.by_name
        out: dict[str, list[str]] = {}
        for path in self.dwarf.packages if self.dwarf is not None else ():
            out.setdefault(path.rsplit("/", 1)[-1], []).append(path)
        return out

    @cached_property
    def optimized(self) -> bool:
        """Whether the compiler optimized the program (no ``-gcflags=all=-N -l`` in its build
        settings): then locals may have been optimized away."""
        info = self.binary.buildinfo
        return info is None or "-N" not in info.settings.get("-gcflags", "").replace("=", " ").split()

    def is_package(self, name: str) -> bool:
        return name in self._packages

    def qualify(self, name: str) -> str:
        """``Add`` -> ``main.Add``; ``filepath.Join`` -> ``path/filepath.Join``."""
        if "." not in name:
            return f"main.{name}"
        pkg, rest = name.split(".", 1)
        paths = self._packages.get(pkg, [])
        if len(paths) == 1:
            return f"{paths[0]}.{rest}"
        return name

    # -- functions -------------------------------------------------------------

    def function(self, qualified: str) -> Fn | None:
        f = self.binary.pclntab.func_by_name(qualified)
        if f is None:
            return None
        return Fn(qualified, f.entry, self._signature(qualified, f.args))

    def function_at(self, pc: int) -> Fn:
        """The function whose entry is ``pc`` (a func value's code pointer or an itab slot)."""
        f = self.binary.pclntab.func_for_pc(pc)
        if f is None:
            raise ExprError(f"no function at {pc:#x} in the binary")
        return Fn(f.name, f.entry, self._signature(f.name, f.args))

    def _signature(self, name: str, args: int) -> Signature:
        """``name``'s signature: declared (expr/signature.py) or DWARF's, its receiver restored
        where DWARF left it out (``args``: the binary's argument frame size), else read from Go
        source (gosource/)."""
        found = self.binary.function_signature(name)
        if found is None:
            return self._source_signature(name)
        known = self._signatures.get(name)
        if known is None or known[0] is not found:  # a declaration may come later (Process.declare)
            known = self._signatures[name] = (found, self._with_receiver(found, args))
        return known[1]

    def _source_signature(self, name: str) -> Signature:
        source = self.go_source()
        if source is None:
            raise SymbolNotFound(f"no DWARF signature for {name}", hint=_declare_hint(name))
        sig = source.signature(name)
        if sig is None:
            raise SymbolNotFound(f"no signature for {name} (no DWARF): {source.missing(name)}",
                                 hint=_declare_hint(name))
        return sig

    def _with_receiver(self, sig: Signature, args: int) -> Signature:
        """Go 1.19-1.21's DWARF leaves blank and unnamed parameters out (``func (_ X) CallMe()``
        lists no receiver; 1.22 and later name them ``~p0``...). A method's receiver type is
        in its name (``pkg.T.M``, ``pkg.(*T).M``): put it back when the frame computed from
        DWARF is short by exactly that receiver. Other parameters have no type but in the Go
        source (gosource/), used when found and its frame is the binary's; else the frame
        check (expr/eval.py) refuses the call, saying DWARF left parameters out."""
        if sig.origin or args < 0 or abi.assign(sig.params, sig.results).size == args:
            return sig  # a declaration is the user's word: a wrong one is refused as such (expr/eval.py)
        recv = self.receiver_type(sig.name)
        if recv is not None:
            restored = Signature(sig.name, (Param("_", recv, False), *sig.params), sig.results)
            if abi.assign(restored.params, restored.results).size == args:
                return restored
        from ..gosource.source import GoSource  # the rare case: most calls never need it

        if self.source is None:
            self.source = GoSource(self.binary)
        try:
            declared = self.source.signature(sig.name)
        except GocallError:
            return sig  # no such source (moved, -trimpath): the frame check says why
        if declared is not None and abi.assign(declared.params, declared.results).size == args:
            return declared
        return sig

    def receiver_type(self, method: str) -> GoType | None:
        """The receiver type of method ``pkg.T.M`` / ``pkg.(*T).M`` from its name; None for a
        function, or a type DWARF does not have."""
        head, dot, _ = method.rpartition(".")
        pkg = package_of(head) if dot else None
        if pkg is None or not head.startswith(pkg + "."):
            return None
        tname = head[len(pkg) + 1 :]
        pointer = tname.startswith("(*") and tname.endswith(")")
        tname = tname[2:-1] if pointer else tname
        if not tname or "." in tname.split("[", 1)[0] or self.dwarf is None:
            return None  # a function (``main.Blank``'s head is ``main``) or a closure (``main.main.func1``)
        t = self.dwarf.type_named(f"{pkg}.{tname}")
        return None if t is None else pointer_to(t) if pointer else t

    def method(self, t: GoType, name: str) -> tuple[Fn, bool] | None:
        """Method ``name`` of type ``t`` (or ``*t``): (function, wants a pointer receiver)."""
        base = t.elem if t.kind == Kind.POINTER and t.elem is not None else t
        pkg, _, tname = base.name.rpartition(".")
        if not pkg:
            return None
        for qualified, pointer in ((f"{pkg}.{tname}.{name}", False), (f"{pkg}.(*{tname}).{name}", True)):
            fn = self.function(qualified)
            if fn is not None:
                return fn, pointer
        return None

    def interface_method(self, entry_pc: int) -> Fn | None:
        """The function an itab slot points at; its receiver is the interface's data word.
        None for ``runtime.unreachableMethod``: the linker stubs the slots of methods the
        program never calls through an interface (cmd/link deadcode.go), though the concrete
        method may be in the binary for other calls."""
        f = self.binary.pclntab.func_for_pc(entry_pc)
        if f is not None and f.name == "runtime.unreachableMethod":
            return None
        fn = self.function_at(entry_pc)
        if not fn.sig.params or (f is not None and abi.assign(fn.sig.params, fn.sig.results).size != f.args):
            # DWARF leaves out a receiver the method never uses; the frame size tells.
            word = GoType("unsafe.Pointer", Kind.UNSAFE_POINTER, 8, 8)
            return Fn(fn.name, fn.entry, Signature(fn.sig.name, (Param("", word, False), *fn.sig.params),
                                                   fn.sig.results))
        if fn.sig.params:
            recv = fn.sig.params[0]
            if recv.type.kind != Kind.POINTER:  # a value method reached through its pointer wrapper
                word = GoType("*" + recv.type.name, Kind.POINTER, 8, 8, elem=recv.type)
                params = (Param(recv.name, word, False), *fn.sig.params[1:])
                fn = Fn(fn.name, fn.entry, Signature(fn.sig.name, params, fn.sig.results))
        return fn

    # -- variables and types ---------------------------------------------------

    def variable(self, qualified: str) -> tuple[int, GoType] | None:
        """Address and type of package variable ``qualified``: from DWARF, else the symbol
        table's address and the type the Go source declares (gosource/)."""
        if self.dwarf is not None:
            return self.dwarf.variable(qualified)
        source = self.go_source()
        t = source.variable_type(qualified) if source is not None else None
        if t is None:
            return None
        if not self.binary.has_symtab:
            raise SymbolNotFound(f"{qualified} is a package variable, but the binary has no symbol table "
                                 "(-ldflags=-s): where it lives is unknown",
                                 hint="build without -s (-ldflags=-w alone keeps the symbol table)")
        addr = self.binary.symbol(qualified)
        return None if addr is None else (addr, t)

    def type(self, text: str) -> GoType | None:
        """The type spelled ``text`` in Go source (``int``, ``Point``, ``[]main.Point``)."""
        text = _ALIASES.get(text, text)
        if "{" in text or "any" in text:  # spelt as the compiler names types in DWARF
            text = _EMPTY_INTERFACE.sub("interface {}", _EMPTY_STRUCT.sub("struct {}", text))
        if text not in self._types:
            self._types[text] = self._lookup(text)
        return self._types[text]

    def _lookup(self, text: str) -> GoType | None:
        names = [text]
        if text not in _BASIC_TYPES and "." not in text and text[:1].isalpha():
            names.insert(0, f"main.{text}")
        elif "." in text and text[:1].isalpha():
            names.insert(0, self.qualify(text))
        source = self.go_source()
        for n in names:
            t = self.dwarf.type_named(n) if self.dwarf is not None else None
            if t is None and source is not None and "." in n and text not in _BASIC_KINDS:
                t = source.type_named(n)
            if t is not None:
                return t
        if text in _BASIC_KINDS:
            kind, size = _BASIC_KINDS[text]
            return GoType(text, kind, size, min(size, 8) if kind not in (Kind.COMPLEX64, Kind.COMPLEX128) else size // 2)
        if text.startswith("*"):
            elem = self.type(text[1:])
            return None if elem is None else pointer_to(elem)
        if m := re.fullmatch(r"\[(\d+)\](.+)", text, re.S):
            elem = self.type(m[2])
            return None if elem is None else array_of(elem, int(m[1]))
        if text.startswith("[]"):
            elem = self.type(text[2:])
            return None if elem is None else slice_of(elem)
        return None

    def runtime_type(self, t: GoType) -> int | None:
        """Offset of ``t``'s ``abi.Type`` from ``moduledata.types`` (DW_AT_go_runtime_type)."""
        if self.dwarf is None:  # stripped: search the type descriptors by name (binary/rtype.py)
            from ..gosource.source import runtime_name
            from ..runtime.layouts import for_go

            md_types = for_go(self.binary.go_version_tuple).md_types
            return self.binary.runtime_type(runtime_name(t.name), t.kind, md_types)
        off = self.dwarf.runtime_type(t)
        if off is None:
            same = self.dwarf.type_named(t.name)
            off = self.dwarf.runtime_type(same) if same is not None else None
        return off


def pointer_to(t: GoType) -> GoType:
    return GoType("*" + t.name, Kind.POINTER, 8, 8, elem=t)


def array_of(elem: GoType, n: int) -> GoType:
    """``[n]elem``, for array types the binary's DWARF does not have (only used ones are there)."""
    return GoType(f"[{n}]{elem.name}", Kind.ARRAY, n * elem.size, elem.align or 1, elem=elem, length=n)


def slice_of(elem: GoType) -> GoType:
    """``[]elem``: pointer, length, capacity."""
    int_t = GoType("int", Kind.INT, 8, 8)
    return GoType(f"[]{elem.name}", Kind.SLICE, 24, 8, elem=elem,
                  fields=(Field("array", pointer_to(elem), 0), Field("len", int_t, 8), Field("cap", int_t, 16)))
