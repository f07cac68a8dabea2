"""Tab completion from the binary alone (pclntab and DWARF, expr/members.py) and from what
is already stopped: it never stops the program or injects a call.

What is offered where: command names at the start of a line; after ``goroutine``,
``stack`` and ``roots`` the goroutine ids (read from ``runtime.allgs`` in memory); after
``break`` functions; after ``clear`` breakpoint numbers; in an expression, package paths
and their members (``main.<Tab>``, ``http.<Tab>``, ``net/http.<Tab>``), locals at a stop,
and after ``x.`` the fields and methods of x's static type.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cached_property

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from ..binary.gotypes import GoType
from ..errors import GocallError
from ..expr.members import Member, Members, signature_text, split_chain, static_type
from .commands import Commands
from .state import ShellState

_FRAGMENT = re.compile(r"[\w/]+(?:\([^()]*\)|\[[^\[\]]*\]|\.\w*)*$")  # `a.b(1, 2).c[i].d` before the cursor
_GOROUTINE_ARG = ("goroutine", "stack", "roots")


class GoCompleter(Completer):
    def __init__(self, state: ShellState, commands: Commands) -> None:
        self.state = state
        self.commands = commands

    @cached_property
    def members(self) -> Members:
        proc = self.state.proc
        return Members(proc.binary, proc.evaluator.names)

    @cached_property
    def _short_packages(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for path in self.members.packages:
            out.setdefault(path.rsplit("/", 1)[-1], []).append(path)
        return out

    def warm(self) -> None:
        """Index the binary's names now (what the first Tab would wait for: pclntab's names,
        main's variables), for the shell to call while nothing waits."""
        self._short_packages  # noqa: B018
        self.members.package("main")

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterable[Completion]:
        try:
            yield from self._complete(document.text_before_cursor)
        except GocallError:
            return  # nothing to offer (no DWARF, the program gone): completion stays quiet

    def _complete(self, text: str) -> Iterable[Completion]:
        word, space, rest = text.lstrip().partition(" ")
        if not space:
            if "." not in word and "(" not in word:
                yield from _matching(word, ((n, "command") for n in self.commands.names))
            yield from self._expression(text)
            return
        if word in _GOROUTINE_ARG and " " not in rest:
            ids = (str(g.goid) for g in self.state.proc.runtime.goroutines())
            yield from _matching(rest, ((i, "goroutine") for i in ids))
        elif word == "break" and " " not in rest:
            yield from self._functions(rest)
        elif word == "clear":
            yield from _matching(rest, [(str(n), str(bp)) for n, bp in self.state.numbers.items()] + [("all", "")])
        elif word == "help":
            yield from _matching(rest, ((n, "command") for n in self.commands.names))
        elif self.commands.handler(word) is None:
            yield from self._expression(text)

    def _expression(self, text: str) -> Iterable[Completion]:
        m = _FRAGMENT.search(text)
        fragment = m.group(0) if m else ""
        if "." not in fragment:
            yield from _matching(fragment, ((name, t.name) for name, t in self._locals().items()))
            yield from _matching(fragment, ((f"{short}.", "package") for short in self._short_packages))
            yield from _matching(fragment, ((f"{path}.", "package") for path in self.members.packages if "/" in path))
            yield from _matching(fragment, ((m.name, m.kind) for m in self.members.package("main")))
            return
        head, _, partial = fragment.rpartition(".")
        for member in self._after(head):
            if member.name.startswith(partial):
                yield Completion(member.name, -len(partial), display_meta=member.kind)

    def _after(self, head: str) -> list[Member]:
        """What may follow ``head.``: a package's members, or a value's fields and methods."""
        if "(" not in head and "[" not in head and head not in self._locals():
            paths = [head] if head in self.members.packages else self._short_packages.get(head, [])
            if paths:
                return [m for p in paths for m in self.members.package(p)]
        t = self._type_of(head)
        return self.members.of_type(t) if t is not None else []

    def _type_of(self, text: str) -> GoType | None:
        chain = split_chain(text)
        return static_type(self.members, chain, self._locals()) if chain else None

    def _functions(self, text: str) -> Iterable[Completion]:
        if "." not in text:
            yield from _matching(text, ((f"{short}.", "package") for short in self._short_packages))
            return
        head, _, partial = text.rpartition(".")
        paths = [head] if head in self.members.packages else self._short_packages.get(head, [])
        for p in paths:
            for m in self.members.package(p):
                if m.kind == "func" and m.name.startswith(partial):
                    yield Completion(m.name, -len(partial), display_meta="func")

    def _locals(self) -> dict[str, GoType]:
        stop = self.state.stop
        if stop is None:
            return {}
        return {v.name: v.type for v in reversed(stop.variables(self.state.frame))}  # inner ones win

    # -- the signature of the function being called ----------------------------------------

    def signature(self, text: str) -> str:
        """``func main.Add(a int, b int) int`` while the arguments of ``main.Add(`` are typed."""
        depth = 0
        for i in range(len(text) - 1, -1, -1):
            ch = text[i]
            if ch in ")]":
                depth += 1
            elif ch in "([":
                if depth == 0:
                    if ch == "[":
                        return ""
                    m = _FRAGMENT.search(text[:i])
                    return self._signature_of(m.group(0)) if m else ""
                depth -= 1
        return ""

    def _signature_of(self, callee: str) -> str:
        try:
            head, dot, name = callee.rpartition(".")
            if dot and (head in self._locals() or "(" in head or "[" in head or
                        not (head in self.members.packages or head in self._short_packages)):
                t = self._type_of(head)
                sig = self.members.method_signature(t, name) if t is not None else None
            else:
                sig = self.state.proc.binary.function_signature(self.state.proc.evaluator.names.qualify(callee))
            return signature_text(sig) if sig is not None else ""
        except GocallError:
            return ""


def _matching(prefix: str, candidates: Iterable[tuple[str, str]]) -> Iterable[Completion]:
    for name, meta in candidates:
        if name.startswith(prefix) and name != prefix:
            yield Completion(name, -len(prefix), display_meta=meta)
