"""What a name can be followed by, read from the binary alone: the members of a package
(functions from pclntab, variables from DWARF) and the fields and methods of a type.

The shell completes with it (``main.<Tab>``, ``req.<Tab>``): nothing here reads the
process or injects a call, so completing never stops the program. Only what the linker
kept is listed (a method nothing uses is not in the binary).
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import NamedTuple

from ..binary import GoBinary
from ..binary.gotypes import GoType, Kind, Signature
from .names import Names

# A function a person may call, as pclntab names it, one name a line: the package path (up to the
# first dot after its last slash), then a name, or a receiver type and a method name. Not the
# compiler's: closures and wrappers (``.func1``, ``.gowrap1``, ``.deferwrap1``, ``-fm``, ``.abi0``),
# package initializers (``.init.0``), type helpers (``type:``, ``type..eq.``), generic instances
# (``[...]``), linker symbols (``go:``). One pass of the regex engine over every name at once: a
# loop over cmd/go's 13,000 names in Python was 45 ms of the first completion, this is 18.
_CALLABLE = re.compile(r"^(?!type:|go:|.*\.\.|.*\[)((?:.*/)?[^./:\n]+)\.(?:\(\*([^\W\d]\w*)\)|([^\W\d]\w*))"
                       r"(?:\.(?!(?:func|gowrap|deferwrap)\d|abi0$)([^\W\d]\w*))?$", re.M)


class Member(NamedTuple):
    """One completion: the name after the dot and what it is (``func``, ``var``, ``field int``...)."""

    name: str
    kind: str


class Members:
    """Names of one binary by package and by receiver type, indexed on first use."""

    def __init__(self, binary: GoBinary, names: Names) -> None:
        self.binary = binary
        self.names = names

    @cached_property
    def _index(self) -> tuple[dict[str, set[str]], dict[str, dict[str, bool]]]:
        """Package path -> function names; receiver type (``main.Point``) -> method -> wants a pointer."""
        funcs: dict[str, set[str]] = {}
        methods: dict[str, dict[str, bool]] = {}
        for pkg, pointer, name, method in _CALLABLE.findall("\n".join(self.binary.pclntab.names())):
            if method:
                methods.setdefault(f"{pkg}.{pointer or name}", {})[method] = bool(pointer)
            elif name:
                funcs.setdefault(pkg, set()).add(name)
        return funcs, methods

    @property
    def packages(self) -> list[str]:
        """Package paths with functions in the binary."""
        return sorted(self._index[0])

    def package(self, path: str) -> list[Member]:
        """Functions and variables of the package ``path`` (``main``, ``net/http``)."""
        out = {f: Member(f, "func") for f in self._index[0].get(path, ())}
        for v in self._variables(path):
            out.setdefault(v, Member(v, "var"))
        return sorted(out.values())

    def _variables(self, path: str) -> list[str]:
        dwarf = self.binary.dwarf
        if dwarf is None:
            return []
        return [v for v in dwarf.package_variables(path) if v.isidentifier()]

    def of_type(self, t: GoType) -> list[Member]:
        """Fields (promoted ones too) and methods of ``t``; through a pointer, of what it points at.
        Methods with a pointer receiver are listed for values too (Go takes the address)."""
        base = t.elem if t.kind == Kind.POINTER and t.elem is not None else t
        out: dict[str, Member] = {}
        self._fields(base, out, 0)
        for m in sorted(self._index[1].get(base.name, {})):
            out.setdefault(m, Member(m, "method"))
        return sorted(out.values())

    def _fields(self, t: GoType, out: dict[str, Member], depth: int) -> None:
        if t.kind != Kind.STRUCT or depth > 4:
            return
        for f in t.fields:
            out.setdefault(f.name, Member(f.name, f"field {f.type.name}"))
        for f in t.fields:
            if f.embedded:
                inner = f.type.elem if f.type.kind == Kind.POINTER and f.type.elem is not None else f.type
                self._fields(inner, out, depth + 1)
                for m in self._index[1].get(inner.name, {}):
                    out.setdefault(m, Member(m, "method"))

    def method_signature(self, t: GoType, name: str) -> Signature | None:
        base = t.elem if t.kind == Kind.POINTER and t.elem is not None else t
        pointer = self._index[1].get(base.name, {}).get(name)
        if pointer is None:
            return None
        pkg, _, tname = base.name.rpartition(".")
        qualified = f"{pkg}.(*{tname}).{name}" if pointer else f"{pkg}.{tname}.{name}"
        return self.binary.function_signature(qualified)


def signature_text(sig: Signature) -> str:
    """``func main.Add(a int, b int) int`` (as the shell shows it while arguments are typed)."""
    params = ", ".join(f"{p.name} {p.type.name}".strip() for p in sig.params)
    results = [p.type.name for p in sig.results]
    tail = "" if not results else f" {results[0]}" if len(results) == 1 else f" ({', '.join(results)})"
    return f"func {sig.name}({params}){tail}"


def split_chain(text: str) -> list[str] | None:
    """``a.b(1, 2).c[i]`` -> ``["a", "b()", "c[]"]``: a selector chain with its call and index
    suffixes; None when ``text`` is anything else (completion then offers nothing)."""
    parts: list[str] = []
    cur = ""
    depth = 0
    for ch in text:
        if depth:
            depth += {"(": 1, "[": 1, ")": -1, "]": -1}.get(ch, 0)
            if depth == 0:
                cur += ")" if ch == ")" else "]"
            continue
        if ch in "([":
            if not cur:
                return None
            cur += ch
            depth = 1
        elif ch == ".":
            if not cur:
                return None
            parts.append(cur)
            cur = ""
        elif ch.isalnum() or ch in "_/":
            if cur.endswith((")", "]")):
                return None
            cur += ch
        else:
            return None
    if depth or not cur:
        return None
    return [*parts, cur]


def static_type(members: Members, chain: list[str], local: dict[str, GoType]) -> GoType | None:
    """The static type of a selector chain (see :func:`split_chain`), from DWARF alone: a local
    or package variable, a function's first result, then fields, methods' first results and
    elements. None when any step is unknown."""
    names = members.names
    head, rest = chain[0], chain[1:]
    t: GoType | None
    local_name = head.split("[")[0]
    if local_name in local:
        t = _suffix(local[local_name], head[len(local_name) :])
    else:
        # A package: `main`, `http` or `net/http`, then one of its members.
        if not rest:
            return None
        member, rest = rest[0], rest[1:]
        name = member.split("(")[0].split("[")[0]
        qualified = f"{head}.{name}" if "/" in head else names.qualify(f"{head}.{name}")
        if member.endswith(")"):
            sig = members.binary.function_signature(qualified)
            t = sig.results[0].type if sig is not None and sig.results else None
            t = _suffix(t, member[member.index(")") + 1 :]) if t is not None else None
        else:
            var = names.variable(qualified)
            t = _suffix(var[1], member[len(name) :]) if var is not None else None
    for part in rest:
        if t is None:
            return None
        t = _step(t, part, members)
    return t


def _step(t: GoType, part: str, members: Members) -> GoType | None:
    name = part.split("(")[0].split("[")[0]
    base = t.elem if t.kind == Kind.POINTER and t.elem is not None else t
    if part.startswith(name + "("):
        sig = members.method_signature(t, name)
        result = sig.results[0].type if sig is not None and sig.results else None
        return _suffix(result, part[part.index(")") + 1 :]) if result is not None else None
    field = _field(base, name, 0)
    return _suffix(field, part[len(name) :]) if field is not None else None


def _field(t: GoType, name: str, depth: int) -> GoType | None:
    if t.kind != Kind.STRUCT or depth > 4:
        return None
    for f in t.fields:
        if f.name == name:
            return f.type
    for f in t.fields:
        if f.embedded:
            inner = f.type.elem if f.type.kind == Kind.POINTER and f.type.elem is not None else f.type
            found = _field(inner, name, depth + 1)
            if found is not None:
                return found
    return None


def _suffix(t: GoType | None, part: str) -> GoType | None:
    """``x[i]`` and ``x[i][j]``: the element type, once per index."""
    for _i in range(part.count("[")):
        if t is None:
            return None
        base = t.elem if t.kind == Kind.POINTER and t.elem is not None and t.elem.kind == Kind.ARRAY else t
        t = base.elem if base.kind in (Kind.SLICE, Kind.ARRAY, Kind.MAP) else None
    return t
