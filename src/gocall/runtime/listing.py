"""Where each goroutine is, for listings of thousands: Delve's four locations and pprof labels.

For every goroutine (Delve's ``goroutines``, pkg/proc/goroutine_info.go):

- current location: the innermost frame, runtime internals included (Delve's ``-r``);
- user location: the innermost frame of the program's own code, neither the runtime nor the
  standard library nor cgo's generated wrappers (``main.worker`` for a worker asleep in
  ``time.Sleep``). Delve's ``-u`` stops at the first frame outside the runtime
  (``time.Sleep`` there); a goroutine with no such frame falls back as Delve's does;
- go statement (``g.gopc``, symbolized at the CALL as ``printcreatedby`` does) and start
  function (``g.startpc``);
- pprof labels (:mod:`gocall.runtime.labels`).

Speed: each goroutine's stack is read with one ``pread`` from its saved SP to ``stack.hi``
and walked in that copy, and every PC is symbolized once per process
(:meth:`Unwinder.source_frames`, the pclntab's per-PC answers), so a listing costs a few
reads per goroutine and almost no decoding once the first goroutines have been seen.
"""

from __future__ import annotations

import struct
from typing import Any, NamedTuple

from ..binary.buildinfo import BuildInfo
from ..binary.pclntab import Func, Pclntab
from ..errors import ProcessError
from ..process.memory import Memory
from .goroutines import Goroutine, Status
from .labels import read_labels
from .unwind import SourceFrame, Unwinder, is_shown, walk

__all__ = ["GoroutineInfo", "Location", "Lister", "is_user_function", "package_of"]

# A parked goroutine's live stack is rarely above a few KB; bigger ones are read in one go up
# to this, and word by word past it.
_STACK_IMAGE_MAX = 256 << 10
# The user location is never deeper than this in a sane stack.
_MAX_FRAMES = 1000

# Functions cgo generates in the program's package (cmd/cgo/out.go): calls into C and exports.
_CGO_PREFIXES = ("_Cfunc_", "_cgoexp_", "_Cgo_", "_cgo_")


class Location(NamedTuple):
    """A PC as a source location: where a goroutine is, was created, or started."""

    function: str
    file: str
    line: int
    pc: int

    def __str__(self) -> str:
        return f"{self.function} {self.file.rsplit('/', 1)[-1]}:{self.line}"


class GoroutineInfo(NamedTuple):
    """A goroutine with where it is (the locations of Delve's ``goroutines``) and its labels.
    (A NamedTuple: listings make thousands, and a frozen dataclass builds each field by field.)"""

    goroutine: Goroutine
    location: SourceFrame | None  # innermost frame runtime.Stack would print
    location_pc: int
    created_by: SourceFrame | None  # the go statement, as runtime.Stack prints it (None: hidden)
    created_by_offset: int
    system: bool  # the runtime's own (runtime.Stack hides these)
    current: Location | None  # innermost frame, runtime internals included
    user: Location | None  # innermost frame of the program's own code (see the module docstring)
    go: Location | None  # the go statement that created it (g.gopc)
    start: Location | None  # its start function (g.startpc)
    labels: dict[str, str]  # runtime/pprof labels

    @property
    def goid(self) -> int:
        return self.goroutine.goid


def package_of(function: str) -> str:
    """The import path of a function's package: ``net/http`` for ``net/http.(*conn).serve``,
    ``main`` for ``main.worker.func1``; "" for a name without one (cgo's ``_cgoexp_...``)."""
    name = function.split("[", 1)[0]  # generic instantiations: main.Map[go.shape.int]
    dot = name.find(".", name.rfind("/") + 1)
    return name[:dot] if dot > 0 else ""


def is_user_function(function: str, modules: tuple[str, ...] = ()) -> bool:
    """Whether ``function`` is the program's own code: in package main or a module of the build
    (``modules``, from the binary's build info), or in a package whose path starts with a domain;
    not the standard library (no dot in its first path element: go/build's
    ``isStandardImportPath``; ``vendor/golang.org/x/...`` included) and not a cgo wrapper."""
    pkg = package_of(function)
    if not pkg or function[len(pkg) + 1:].startswith(_CGO_PREFIXES):
        return False
    if pkg == "main" or any(pkg == m or pkg.startswith(m + "/") for m in modules):
        return True
    return "." in pkg.split("/", 1)[0]


def modules_of(info: BuildInfo | None) -> tuple[str, ...]:
    """The module paths of a build (main module and dependencies): their packages are user code."""
    if info is None:
        return ()
    mods = ([info.main] if info.main is not None else []) + list(info.deps)
    return tuple(m.path for m in mods if m.path)


class _StackImage:
    """A copy of ``[lo, hi)`` of a goroutine's stack; words outside it are read from the process."""

    def __init__(self, mem: Memory, lo: int, data: bytes) -> None:
        self.mem, self.lo, self.data = mem, lo, data

    def u64(self, addr: int) -> int:
        off = addr - self.lo
        if 0 <= off <= len(self.data) - 8:
            return int(struct.unpack_from("<Q", self.data, off)[0])
        return self.mem.u64(addr)


# _Frame.shown when it depends on the frame below (a wrapper, shown only under a panic).
_DEPENDS = object()


class _Frame(NamedTuple):
    """One physical frame as a listing sees it (kept per PC)."""

    calls: tuple[SourceFrame, ...]  # innermost first
    locs: tuple[Location, ...]  # the same, as locations at this frame's PC
    user: Location | None  # its innermost source frame of the program's own code
    shown: Any  # (SourceFrame, Location) runtime.Stack shows first, None, or _DEPENDS
    last_funcID: int  # the funcID of its outermost source frame: the callee of the next frame

    @property
    def current(self) -> Location:
        return self.locs[0]


class Lister:
    """Computes :class:`GoroutineInfo` of the goroutines of one process, caching per PC."""

    def __init__(self, mem: Memory, tab: Pclntab, unwinder: Unwinder, modules: tuple[str, ...],
                 labels_are_list: bool) -> None:
        self.mem = mem
        self.tab = tab
        self.unwinder = unwinder
        self.modules = modules
        self.labels_are_list = labels_are_list
        self._user: dict[str, bool] = {}
        self._places: dict[tuple[int, bool], Location | None] = {}
        self._frames: dict[tuple[int, bool], _Frame] = {}
        self._created: dict[int, tuple[SourceFrame, int] | None] = {}

    def info(self, g: Goroutine, regs: tuple[int, int] | None) -> GoroutineInfo:
        """Where ``g`` is; ``regs`` are (rip, rsp) of the thread running it on its own stack."""
        current, user, shown, shown_pc = self._walk(g, regs)
        start = self._place(g.startpc, call=False)
        created = self._created_by(g)
        return GoroutineInfo(
            goroutine=g,
            location=shown,
            location_pc=shown_pc,
            created_by=created[0] if created else None,
            created_by_offset=created[1] if created else 0,
            system=_system(g, start),
            current=current,
            user=user,
            go=self._place(g.gopc, call=True),
            start=start,
            labels=read_labels(self.mem, g.labels, self.labels_are_list),
        )

    def _walk(self, g: Goroutine, regs: tuple[int, int] | None
              ) -> tuple[Location | None, Location | None, SourceFrame | None, int]:
        """(current, user location, innermost shown frame, its PC) from one walk of ``g``'s stack,
        which stops once both the user frame and the shown one are found."""
        pc, sp, trap = g.unwind_start(regs)
        stack = (g.g.stack_lo, g.g.stack_hi)
        current = user = None
        shown: tuple[SourceFrame, Location] | None = None
        callee: int | None = None
        for depth, step in enumerate(walk(self._image(sp, stack[1]), self.tab, self.unwinder.ids, pc, sp, trap,
                                          stack)):
            here = self._frame(step.func, step.pc, step.trap)
            current = current or here.current
            user = user or here.user
            if shown is None:
                shown = here.shown if here.shown is not _DEPENDS else self._shown(here, callee)
            callee = here.last_funcID
            if (user is not None and shown is not None) or depth >= _MAX_FRAMES:
                break
        # No frame of the program's own: the frame a traceback shows first, else the innermost (Delve).
        if shown is None:
            return current, user or current, None, 0
        return current, user or shown[1], shown[0], shown[1].pc

    def _frame(self, f: Func, pc: int, trap: bool) -> _Frame:
        """What a listing needs of one physical frame, worked out once per PC."""
        key = (pc, trap)
        known = self._frames.get(key)
        if known is not None:
            return known
        calls = self.unwinder.source_frames(f, pc, trap)
        locs = tuple(Location(sf.function, sf.file, sf.line, pc) for sf in calls)
        user = next((loc for loc in locs if self._is_user(loc.function)), None)
        here = _Frame(calls, locs, user, None, calls[-1].funcID)
        shown: tuple[SourceFrame, Location] | None | object = _DEPENDS
        if calls[0].funcID != self.unwinder.ids.wrapper:  # only a wrapper's showing depends on its callee
            shown = self._shown(here, None)
        known = self._frames[key] = here._replace(shown=shown)
        return known

    def _shown(self, here: _Frame, callee: int | None) -> tuple[SourceFrame, Location] | None:
        """The first of ``here``'s source frames runtime.Stack shows, ``callee`` the funcID below it."""
        for sf, loc in zip(here.calls, here.locs):
            if is_shown(sf, True, callee, self.unwinder.ids):
                return sf, loc
            callee = sf.funcID
        return None

    def _created_by(self, g: Goroutine) -> tuple[SourceFrame, int] | None:
        if g.goid == 1 or g.gopc not in self._created:
            created = self.unwinder.created_by(g)
            if g.goid == 1:
                return created
            self._created[g.gopc] = created
        return self._created[g.gopc]

    def _image(self, sp: int, hi: int) -> _StackImage | Memory:
        size = min(hi - sp, _STACK_IMAGE_MAX)
        if size <= 0:
            return self.mem
        try:
            return _StackImage(self.mem, sp, self.mem.read(sp, size))
        except ProcessError:
            return self.mem  # a bad saved SP: the walk reads what it can, word by word

    def _is_user(self, function: str) -> bool:
        known = self._user.get(function)
        if known is None:
            known = self._user[function] = is_user_function(function, self.modules)
        return known

    def _place(self, pc: int, call: bool) -> Location | None:
        """``pc`` as a location; ``call``: a return address, symbolized at the CALL before it."""
        key = (pc, call)
        if key not in self._places:
            f = self.tab.func_for_pc(pc) if pc else None
            place = None
            if f is not None:
                file, line = f.file_line(pc - 1 if call and pc > f.entry else pc)
                place = Location(f.name, file, line, pc)
            self._places[key] = place
        return self._places[key]


def _system(g: Goroutine, start: Location | None) -> bool:
    """runtime.isSystemGoroutine, roughly: started by the runtime (not runtime.main), or a g kept
    for C threads calling into Go (``_Gdeadextra``: the runtime's tracebacks skip those too).
    Unlike the runtime, a debugger's call (debugCallWrap's goroutine, started at debugCallWrap1)
    is listed as the program's: it runs the program's code, and a call left to a guardian is
    what a person looks for in the listing."""
    if g.status == Status.DEADEXTRA:
        return True
    if start is None or start.function in _NOT_SYSTEM:
        return False
    return start.function.startswith("runtime.")


_NOT_SYSTEM = frozenset({"runtime.main", "runtime.debugCallWrap1"})
