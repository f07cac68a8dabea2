"""The runtime of one live process, seen from outside: goroutines, stacks, GC roots.

Ties the binary (pclntab, FUNCDATA, symbols) to the process memory. Reads run while
the program runs, as the runtime's own racy readers do (``forEachGRace``): a parked
goroutine's stack does not move while it stays parked, and a goroutine that changes
state meanwhile is simply shown as it was. Only a goroutine *running* on a thread needs
that thread's registers; :meth:`RuntimeView.thread_regs` stops that one thread for a
few microseconds (PTRACE_SEIZE + INTERRUPT, GETREGS, DETACH) and nothing else. A thread
this process traces already (every one while breakpoints are in: stop.py) is asked of
its tracer instead (:attr:`RuntimeView.traced`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from functools import cached_property

from ..binary import GoBinary
from ..binary.funcdata import FuncData
from ..binary.stripped import find_wait_reason_strings
from ..errors import GocallError, NoGoroutine, ProcessError, SymbolNotFound
from ..process.memory import Memory
from ..process.namespaces import host_tid
from ..process.regs import user_regs_struct
from ..process.threads import Thread
from ..process.waiting import signals_held
from .goroutines import Goroutine, Status, allgs, allgs_slice, read_goroutine, thread_g, wait_reasons
from .gselect import Filter, Selection, select
from .heap import Heap
from .layouts import Layout, labels_are_list
from .listing import GoroutineInfo, Lister, modules_of
from .roots import FrameRoots, scan_frames
from .unwind import Frame, Unwinder

__all__ = ["GoroutineInfo", "RuntimeView", "funcdata_of", "wait_reason_strings"]


def funcdata_of(binary: GoBinary, layout: Layout) -> FuncData:
    """The binary's FUNCDATA, based at ``firstmoduledata.gofunc`` as the file initialises it."""
    md = binary.symbol("runtime.firstmoduledata")  # recovered from the data when stripped (-s)
    if md is None:
        raise SymbolNotFound("runtime.firstmoduledata is neither in the binary's symbol table nor found in its data",
                             hint="stacks and roots need a binary not stripped with -s")
    gofunc = int.from_bytes(binary.read(md + layout.md_gofunc, 8), "little")
    return FuncData(binary, binary.pclntab, gofunc)


def wait_reason_strings(binary: GoBinary) -> list[str]:
    """runtime.waitReasonStrings of ``binary`` (``"IO wait"``, ``"select"``...), by waitReason."""
    array = binary.symbol("runtime.waitReasonStrings")
    if array is not None:
        return wait_reasons(binary.read, array, binary.symbol_size("runtime.waitReasonStrings") or 0)
    array = find_wait_reason_strings(binary)  # stripped (-s): no symbol, so no size either
    if array is None:
        raise SymbolNotFound("runtime.waitReasonStrings is neither in the binary's symbol table nor found "
                             "in its data", hint="goroutines and stacks need a binary not stripped with -s")
    return wait_reasons(binary.read, array, None)


class RuntimeView:
    """Goroutines, stacks and roots of the process behind ``mem``."""

    def __init__(self, pid: int, binary: GoBinary, mem: Memory, layout: Layout) -> None:
        self.pid = pid
        self.binary = binary
        self.mem = mem
        self.layout = layout
        # A thread a tracer of this process holds (the Debugger's; session.py sets this), held still
        # by it for a look at its registers; None for a thread it does not hold. Such a thread cannot
        # be seized again, and waiting for its stop here would take (or wait for ever for) a stop
        # its tracer collects.
        self.traced: Callable[[int], AbstractContextManager[user_regs_struct] | None] | None = None

    def _symbol(self, name: str, hint: str = "goroutines, stacks and roots need a binary not stripped with -s") -> int:
        addr = self.binary.symbol(name)
        if addr is None:
            raise SymbolNotFound(f"{name} is not in the binary's symbol table", hint=hint)
        return addr

    @cached_property
    def funcdata(self) -> FuncData:
        return funcdata_of(self.binary, self.layout)

    @cached_property
    def unwinder(self) -> Unwinder:
        return Unwinder(self.mem, self.binary.pclntab, self.funcdata)

    @cached_property
    def _lister(self) -> Lister:
        return Lister(self.mem, self.binary.pclntab, self.unwinder, modules_of(self.binary.buildinfo),
                      labels_are_list(self.binary.go_version_tuple))

    @cached_property
    def _reasons(self) -> list[str]:
        return wait_reason_strings(self.binary)

    def _allgs(self) -> list[int]:
        allglen, allgptr = self.binary.symbol("runtime.allglen"), self.binary.symbol("runtime.allgptr")
        if allglen is not None and allgptr is not None:
            return allgs(self.mem, allglen, allgptr)
        # Stripped (-s): the allgs slice header, which binary.stripped finds in runtime.allgadd's code.
        return allgs_slice(self.mem, self._symbol("runtime.allgs", hint="goroutines and stacks need a binary "
                                                  "not stripped with -s"))

    def goroutines(self, include_dead: bool = False) -> list[Goroutine]:
        """Every goroutine in ``allgs`` (dead ones only if asked), in creation order."""
        addrs = self._allgs()
        result = []
        for addr in addrs:
            try:
                g = read_goroutine(self.mem, self.layout, addr, self._reasons)
            except ProcessError:
                continue  # freed under us: allgs never shrinks, but be safe
            if include_dead or g.status not in (Status.DEAD, Status.IDLE):
                result.append(g)
        return result

    def goroutine(self, goid: int) -> Goroutine:
        for g in self.goroutines():
            if g.goid == goid:
                return g
        raise NoGoroutine(f"process {self.pid} has no goroutine {goid}", hint="list them with: gocall goroutines PID")

    def thread_regs(self, g: Goroutine) -> tuple[int, int] | None:
        """(rip, rsp) of the thread running ``g`` on its own stack, stopping it briefly;
        None if ``g`` is not running Go code there (or the thread is traced by another)."""
        # g.tid is m.procid: the thread as the target's PID namespace numbers it.
        tid = host_tid(self.pid, g.tid) if g.status == Status.RUNNING and g.tid else None
        if tid is None:
            return None
        with signals_held():
            held = self.traced(tid) if self.traced is not None else None
            if held is not None:
                with held as regs:
                    return self._on_stack(g, regs)
            thread = Thread(self.pid, tid)
            try:
                thread.seize()
            except GocallError:
                return None  # gone, or traced by someone else (e.g. a gocall call in flight)
            try:
                return self._on_stack(g, thread.stop())
            finally:
                thread.detach()

    def _on_stack(self, g: Goroutine, regs: user_regs_struct) -> tuple[int, int] | None:
        """(rip, rsp) of ``regs`` if their thread runs ``g`` on its own stack."""
        tg = thread_g(self.mem, self.layout, regs.fs_base)
        if tg.g is None or tg.g.addr != g.g.addr or not g.g.stack_lo < regs.rsp <= g.g.stack_hi:
            return None  # on g0/gsignal, or already running another goroutine
        return regs.rip, regs.rsp

    def frames(self, g: Goroutine, stop_running: bool = True) -> list[Frame]:
        """The physical frames of ``g``, innermost first."""
        regs = self.thread_regs(g) if stop_running else None
        return self.unwinder.frames(g, regs)

    def info(self, g: Goroutine, stop_running: bool = True) -> GoroutineInfo:
        """Where ``g`` is (its four locations) and its labels."""
        return self._lister.info(g, self.thread_regs(g) if stop_running else None)

    def listing(self, filters: Sequence[Filter] = (), group_by: str | None = None) -> Selection:
        """Every goroutine's :class:`GoroutineInfo` by goroutine id (as Delve lists them; allgs
        order is the runtime's reuse of g structs), filtered and grouped (:func:`gselect.select`)."""
        return select((self.info(g) for g in sorted(self.goroutines(), key=lambda g: g.goid)), filters, group_by)

    def roots(self, g: Goroutine, stop_running: bool = True) -> list[FrameRoots]:
        """How the GC would scan each frame of ``g`` (precise or conservative)."""
        frames = self.frames(g, stop_running)
        # mheap_ has no reference gocall can find without symbols: goroutines and stack work on a
        # stripped binary, roots do not.
        heap = Heap(self.mem, self.layout, self._symbol(
            "runtime.mheap_", hint="roots need a binary built without -s; goroutines and stack work on stripped ones"))
        return scan_frames(frames, g, self.mem, self.funcdata, heap, self.unwinder.ids)
