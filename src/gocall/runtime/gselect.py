"""Filtering and grouping goroutine listings, as Delve's ``goroutines -with/-without/-group``.

One function, :func:`select`, serves ``gocall goroutines``, ``Process.goroutines`` and the
shell. Filters are written as in Delve (pkg/terminal/command.go, ``goroutines`` help):

- ``userloc SUBSTR``, ``curloc SUBSTR``, ``goloc SUBSTR``, ``startloc SUBSTR``: the location
  (``function /full/path/file.go:line``) contains SUBSTR;
- ``label K=V`` (label K has value V), ``label K`` (label K is set);
- ``running``: running on a thread; ``user``: not one of the runtime's own goroutines.

Groups: ``userloc``, ``curloc``, ``goloc``, ``startloc`` (by ``function file:line``),
``running`` (running or not), ``user`` (user or runtime goroutine) or ``label K`` (by K's value),
largest first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from ..errors import GocallError
from .goroutines import Status
from .listing import GoroutineInfo, Location

__all__ = ["Filter", "FilterError", "Group", "Selection", "parse_filter", "parse_group", "parse_words", "select"]

LOCATIONS = ("userloc", "curloc", "goloc", "startloc")
KINDS = (*LOCATIONS, "label", "running", "user")
NEEDS_ARGUMENT = (*LOCATIONS, "label")
GROUPS = (*LOCATIONS, "running", "user", "label")
# Delve's short spellings of -with and -without.
_OPTIONS = {"with": "with", "w": "with", "without": "without", "wo": "without", "group": "group"}


class FilterError(GocallError):
    """A filter or grouping that cannot be understood."""


class Filter(NamedTuple):
    """One ``--with``/``--without``: ``kind`` is one of :data:`KINDS`."""

    kind: str
    arg: str = ""
    negate: bool = False

    def matches(self, info: GoroutineInfo) -> bool:
        return self._test(info) != self.negate

    def _test(self, info: GoroutineInfo) -> bool:
        if self.kind in LOCATIONS:
            loc = _location(info, self.kind)
            return loc is not None and self.arg in _spelled(loc)
        if self.kind == "label":
            key, eq, value = self.arg.partition("=")
            return key in info.labels and (not eq or info.labels[key] == value)
        if self.kind == "running":
            return info.goroutine.status == Status.RUNNING
        return not info.system  # "user"

    def __str__(self) -> str:
        return f"{'without' if self.negate else 'with'} {self.kind}{' ' + self.arg if self.arg else ''}"


@dataclass(frozen=True)
class Group:
    """Goroutines sharing one key (a location, or a label's value), in listing order."""

    key: str
    goroutines: list[GoroutineInfo]

    @property
    def count(self) -> int:
        return len(self.goroutines)


class Selection(NamedTuple):
    """What :func:`select` kept, and its groups when grouping was asked for."""

    goroutines: list[GoroutineInfo]
    groups: list[Group] | None


def parse_filter(text: str, negate: bool = False) -> Filter:
    """``"userloc main.worker"``, ``"label k=v"``, ``"running"``... as a :class:`Filter`."""
    kind, _, arg = text.strip().partition(" ")
    arg = arg.strip()
    if kind not in KINDS:
        raise FilterError(f"unknown goroutine filter {kind!r}", hint=f"one of: {', '.join(KINDS)}")
    if kind in NEEDS_ARGUMENT and not arg:
        what = "K or K=V" if kind == "label" else "a substring of the location"
        raise FilterError(f"filter {kind} needs {what}", hint=f"e.g. --with {kind} "
                          + ("k=v" if kind == "label" else "main.worker"))
    if kind not in NEEDS_ARGUMENT and arg:
        raise FilterError(f"filter {kind} takes no argument (got {arg!r})")
    return Filter(kind, arg, negate)


def parse_group(text: str) -> tuple[str, str]:
    """``"userloc"`` or ``"label K"`` as (kind, label key)."""
    kind, _, key = text.strip().partition(" ")
    key = key.strip()
    if kind not in GROUPS:
        raise FilterError(f"cannot group goroutines by {kind!r}", hint=f"one of: {', '.join(GROUPS)} K")
    if (kind == "label") != bool(key):
        raise FilterError("group by label needs the label's key: --group label K" if kind == "label"
                          else f"group by {kind} takes no argument (got {key!r})")
    return kind, key


def parse_words(words: Sequence[str]) -> tuple[list[Filter], str | None, list[str]]:
    """A command line as Delve's ``goroutines`` takes it (``-with userloc main.worker -wo user
    -group label k``; ``--with`` and ``--group`` too) as (filters, group_by, the other words), for
    front ends that read a line of text (the shell)."""
    filters: list[Filter] = []
    group_by: str | None = None
    rest: list[str] = []
    it = iter(words)
    for word in it:
        option = _OPTIONS.get(word.lstrip("-")) if word.startswith("-") else None
        if option is not None:
            kind = next(it, "")
            takes = NEEDS_ARGUMENT if option != "group" else ("label",)
            text = f"{kind} {next(it, '')}" if kind in takes else kind
            if option == "group":
                parse_group(text)
                group_by = text
            else:
                filters.append(parse_filter(text, negate=option == "without"))
        else:
            rest.append(word)
    return filters, group_by, rest


def select(infos: Iterable[GoroutineInfo], filters: Sequence[Filter] = (),
           group_by: str | None = None) -> Selection:
    """The goroutines every filter accepts, in order, and their groups by ``group_by``
    (:func:`parse_group`'s syntax; None: no grouping), largest group first."""
    kept = [i for i in infos if all(f.matches(i) for f in filters)]
    if group_by is None:
        return Selection(kept, None)
    kind, key = parse_group(group_by)
    groups: dict[str, list[GoroutineInfo]] = {}
    for info in kept:
        groups.setdefault(_group_key(info, kind, key), []).append(info)
    ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    return Selection(kept, [Group(k, members) for k, members in ordered])


def _location(info: GoroutineInfo, kind: str) -> Location | None:
    return {"userloc": info.user, "curloc": info.current, "goloc": info.go, "startloc": info.start}[kind]


def _spelled(loc: Location) -> str:
    return f"{loc.function} {loc.file}:{loc.line}"


def _group_key(info: GoroutineInfo, kind: str, key: str) -> str:
    if kind == "running":
        return "running" if info.goroutine.status == Status.RUNNING else "not running"
    if kind == "user":
        return "runtime" if info.system else "user"
    if kind == "label":
        return f"{key}={info.labels[key]}" if key in info.labels else f"no label {key}"
    loc = _location(info, kind)
    return "?" if loc is None else str(loc)
