"""The debugger side of ``runtime.debugCallV2`` on linux/amd64.

The protocol is specified by the comment above ``debugCallV2`` in
``runtime/asm_amd64.s`` and by ``runtime/debugcall.go``; the runtime's own
in-process injector (``export_debug_test.go``) is the reference for each step.
One call, from a thread stopped at a safe point of a user goroutine:

1. :func:`_save`       save every register, RFLAGS and the XSAVE area.
2. :func:`_enter`      push the interrupted PC, store the argument frame size
                       at SP-16, jump to debugCallV2 and run to its first INT3.
3. the R12 dispatch, one ``match`` in :func:`inject`:
   * ``REFUSED``     (8)  debugCallCheck said no; its reason is a string at SP.
   * ``FRAME_READY`` (0)  :func:`_start_callee`: stack arguments at SP, register
                          arguments, return PC pushed, RIP = the function.
                          This runs on a *new* goroutine (debugCallWrap), so
                          the callee may grow its stack freely.
   * ``RETURNED``    (1)  :func:`_read_results`: results in registers and at SP.
   * ``PANICKED``    (2)  the recovered panic value, an ``interface{}`` at SP.
   * ``RESTORE``     (16) :func:`_restore`: every register back as saved.
4. The thread is left stopped exactly where it was, registers, RFLAGS and
   vector state identical, ready for another call or for detaching.

Chaining (``Injector.chain``, what an expression's calls use): after R12=1 the
run is left open, and the next call starts in the same debugCallNN frame (its
return PC is the one after debugCallNN's first INT3, which raises R12=1 again),
so each further call costs one stop instead of three and no register
save/restore; :meth:`Injector.finish` lets debugCallV2 finish (R12=16) and
restores. The runtime's own export_debug_test.go injector makes one call per
run; nothing in debugCallNN cares how often the code after its first INT3 runs.

Why step 16 does not run the runtime's epilogue: the tail after the R12=16
INT3 only reloads RAX..R15 from debugCallV2's save area, then ``ADDQ $152,SP;
POPQ BP; RET``. That ADDQ clobbers RFLAGS after the debugger restored them
(Delve's injected-call flag corruption bug). gocall checks the tail is exactly
that code and performs its effect itself in one SETREGS, with the saved RFLAGS;
this also saves the ~18 single steps Delve pays per call. If the tail is not
the known code, gocall single-steps it and restores RFLAGS afterwards.
"""

from __future__ import annotations

import enum
import logging
import operator
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from ..errors import CallRefused, GocallError, Interrupted, ProcessError
from ..process import ptrace
from ..process.memory import Memory
from ..process.regs import FIELD_INDEX, INT_ARG_REGS, user_regs_struct, xmm_set
from ..process.group import ThreadGroup
from ..process.threads import Thread, TrapStop
from ..process.waiting import interrupts
from ..runtime.layouts import Layout
from .lock import Lock, lock, unlock

if TYPE_CHECKING:
    from ..guard.watch import Watch

log = logging.getLogger("gocall.call")


class Code(enum.IntEnum):
    """The value in R12 at each INT3 of debugCallV2 and friends."""

    FRAME_READY = 0
    RETURNED = 1
    PANICKED = 2
    REFUSED = 8
    RESTORE = 16


_CODES = {int(c): c for c in Code}

# debugCallV2's frame (asm_amd64.s: $152 plus the saved BP): offsets from SP in its body.
_SAVE_AREA = {  # register -> offset of its saved copy
    "r15": 0x20, "r14": 0x28, "r13": 0x30, "r12": 0x38, "r11": 0x40, "r10": 0x48,
    "r9": 0x50, "r8": 0x58, "rdi": 0x60, "rsi": 0x68, "rbp": 0x70, "rbx": 0x78,
    "rdx": 0x80, "rcx": 0x88, "rax": 0x90,
}  # fmt: skip
_SAVED_BP = 0x98
_RETURN_PC = 0xA0
_FRAME_TOP = 0xA8  # SP after the epilogue's RET

# The code after the R12=16 INT3: 15 x MOVQ off(SP), reg (AX CX DX BX BP SI DI R8..R15), then the
# frame teardown the assembler generates for a $152 frame. Go 1.21-1.27 push BP in the prologue
# (ADDQ $0x98, SP; POPQ BP; RET); Go 1.19 stores it in the frame (MOVQ 0x98(SP), BP;
# ADDQ $0xa0, SP; RET). Both leave BP = [SP+0x98], PC = [SP+0xa0], SP = SP+0xa8.
EPILOGUE_RELOADS = bytes.fromhex(
    "488b842490000000" "488b8c2488000000" "488b942480000000" "488b5c2478" "488b6c2470"
    "488b742468" "488b7c2460" "4c8b442458" "4c8b4c2450" "4c8b542448" "4c8b5c2440"
    "4c8b642438" "4c8b6c2430" "4c8b742428" "4c8b7c2420"
)
EPILOGUE_ENDINGS = (
    bytes.fromhex("4881c498000000" "5d" "c3"),  # go1.21+
    bytes.fromhex("488bac2498000000" "4881c4a0000000" "c3"),  # go1.19
)
_MAX_EPILOGUE_STEPS = 64
TAIL_SIZE = len(EPILOGUE_RELOADS) + max(map(len, EPILOGUE_ENDINGS))
_FIRST_RELOAD = EPILOGUE_RELOADS[:8]  # MOVQ 0x90(SP), AX
INT3 = b"\xcc"


def known_tail(code: bytes) -> bool:
    """Whether ``code`` (:data:`TAIL_SIZE` bytes after the R12=16 INT3) is the runtime's tail
    gocall performs itself, its first byte the original or the INT3 a guarded session keeps there
    (guard/watch.py ``Watch.tail``: this session's, or another's)."""
    if code[:1] not in (EPILOGUE_RELOADS[:1], INT3) or code[1 : len(EPILOGUE_RELOADS)] != EPILOGUE_RELOADS[1:]:
        return False
    return any(map(code[len(EPILOGUE_RELOADS) :].startswith, EPILOGUE_ENDINGS))


@dataclass(frozen=True)
class Entry:
    """Addresses in the target the protocol needs (from the binary)."""

    debug_call_v2: int
    trap_ranges: tuple[tuple[int, int], ...]  # [lo, hi) of every function that may INT3 for us

    @cached_property
    def _trap_pcs(self) -> set[int]:
        return set()

    @cached_property
    def epilogues(self) -> dict[int, bool]:
        """R12=16 trap PC -> whether the code after it is the tail gocall performs itself
        (:func:`known_tail`, the same with or without a guarded session's INT3 there): looked at
        once per session, not once per call (a 100-byte read of every unbatched call's)."""
        return {}

    def may_trap(self, pc: int) -> bool:
        """Whether ``pc`` is in one of the debug-call functions (the few PCs seen are remembered)."""
        if pc in self._trap_pcs:
            return True
        if any(lo <= pc < hi for lo, hi in self.trap_ranges):
            self._trap_pcs.add(pc)
            return True
        return False


@dataclass(frozen=True)
class CallSetup:
    """What to write at R12=0: register arguments, the stack part of the frame, and the target."""

    fn: int  # entry PC of the function to call
    frame_size: int  # argument frame size (``_func.args``)
    int_regs: dict[int, int]  # ABI integer register index -> value
    float_regs: dict[int, bytes]  # X register index -> low bytes
    stack: bytes  # image of the argument frame's stack-assigned arguments (from SP up)
    closure: int = 0  # RDX: the funcval for closure calls
    float_results: bool = True  # some result is in X registers (else they are not read back)
    stack_results: bool = True  # some result is on the stack (else the frame is not read back)


@dataclass(frozen=True)
class Returned:
    int_regs: tuple[int, ...]  # RAX.. R11 as ABI integer registers 0..8
    fpregs: bytes  # FXSAVE image holding X0..X14 (empty unless CallSetup.float_results)
    frame: bytes  # the argument frame as the callee left it (empty unless CallSetup.stack_results)


@dataclass(frozen=True)
class Panicked:
    eface_type: int  # *_type of the panic value
    eface_data: int  # its data word


Outcome = Returned | Panicked


# The smallest frame a chaining run asks debugCallV2 for (it picks debugCallNN, NN >= this): room
# for the stack arguments of every later call of the expression (runtime helpers need <= 32 bytes).
CHAIN_FRAME = 256


@dataclass
class Run:
    """One debugCallV2 run in progress: what to restore, and the frame calls start in."""

    regs: user_regs_struct  # the interrupted goroutine's registers
    xstate: bytes
    ready: user_regs_struct  # where a callee starts: the frame's SP now, the PC after its first INT3
    capacity: int  # argument frame size asked for (debugCallNN has at least this much)
    g: int = 0  # the call's goroutine, once a callee was started
    locked: Lock | None = None  # call/lock.py, Go < 1.21


class Injector:
    """Runs debugCallV2 calls on one stopped thread."""

    def __init__(self, thread: Thread, mem: Memory, entry: Entry) -> None:
        self.thread = thread
        self.mem = mem
        self.entry = entry
        self.step_epilogue = False  # force the single-step restore (tests compare both)
        self.others: ThreadGroup | None = None  # the other threads, when traced (see engine.Held)
        self.stop_others = False  # stop-the-world: they are stopped whenever ours is
        self.hook: Callable[[str], None] | None = None  # tests: told each step ("enter", Code names)
        self.callee_timeout: float | None = None  # after this many seconds, say the callee still runs
        self.notify: Callable[[str], None] = log.warning
        # A callee that does not return: ``leave`` hands the call over to a guardian process
        # (guard/handover.py) on a second interrupt, or at ``callee_timeout`` with ``abandon``.
        self.leave: Leave | None = None
        self.abandon = False
        # The guardian of guard/watch.py, told of every open run; with it the thread waits at the
        # traps it must not run on from parked (:meth:`_park`), its real registers in ``_parked``.
        self.watch: Watch | None = None
        self._parked: user_regs_struct | None = None
        # Leave the protocol open after a call returns (R12=1) so that the next call starts in the
        # same frame: 2 round trips and the register save/restore fewer per extra call. The owner
        # must call finish() before releasing the thread (call/engine.py Held).
        self.chain = False
        self._open: Run | None = None
        # Go < 1.21: the layout to lock the call's goroutine to this thread with (call/lock.py).
        self.lock_layout: Layout | None = None
        # (tid, registers, XSAVE image or None) the stopped thread has now, when known: as its stop
        # read them, or as the last call restored them; the next call need not read them again.
        # Whoever changes the held thread's registers between calls must set it to None.
        self.known: tuple[int, user_regs_struct, bytes | None] | None = None

    def inject(self, setup: CallSetup) -> Outcome:
        """Make one call. The thread ends stopped where it was with every register as before;
        with ``chain``, only once :meth:`finish` is called (further calls run in between)."""
        run = self._open
        if run is not None:
            if self.would_chain(setup.frame_size):
                return self._call(run, setup)
            self.finish()
        tid = self.thread.tid
        known, self.known = self.known, None
        if known is not None and known[0] == tid:
            regs, xstate = known[1], known[2] if known[2] is not None else ptrace.getxstate(tid)
        else:
            regs, xstate = _save(tid)
        self._step("enter")
        if interrupts.signal is not None:
            raise Interrupted("interrupted before the call started; nothing was changed")
        capacity = max(setup.frame_size, CHAIN_FRAME) if self.chain else setup.frame_size
        run = Run(regs, xstate, regs, capacity)
        if self.lock_layout is not None:  # before it enters: see call/lock.py
            run.locked = lock(self.mem, self.lock_layout, self.mem.u64(regs.fs_base - 8))
        stop = self._enter(run)
        code = self._check_trap(stop)
        run.ready, self._open = stop, run
        self._park(run, stop)
        self._step(code)
        if code == Code.REFUSED:
            refused = self._read_string(stop.rsp)
            self.finish()
            raise CallRefused(refused)
        if code != Code.FRAME_READY:
            self._open = None
            self._unpark()
            raise ProcessError(f"debugCallV2 reported {code.name} before the frame was ready")
        if interrupts.signal is not None:
            self.finish()  # resuming untouched runs straight to R12=1: the callee never starts
        return self._call(run, setup)

    @property
    def open(self) -> Run | None:
        """The run left open after a chained call's return, or None."""
        return self._open

    def would_chain(self, frame_size: int) -> bool:
        """Whether :meth:`inject` would start a call with this frame in the run now open."""
        run = self._open
        return run is not None and frame_size <= run.capacity and interrupts.signal is None

    def _call(self, run: Run, setup: CallSetup) -> Outcome:
        """Start the callee in the run's frame (R12=0, or R12=1 of the previous call) and see it
        return; the run stays open after R12=1 when chaining, else it is finished."""
        self._open = None  # until the callee is seen back: if anything fails meanwhile, nothing is resumed
        if run.g == 0:
            run.g = self.mem.u64(run.ready.fs_base - 8)
        if self.watch is not None:
            self.watch.active(self.thread.tid, run, setup.fn, self._parked if self._parked is not None else run.ready)
        self._start_callee(run.ready, setup, run.g)
        stop = self._callee_returned(run, setup.fn)
        code = self._check_trap(stop)
        self._open = run
        self._park(run, stop, setup.fn)
        self._step(code)
        outcome: Outcome
        if code == Code.RETURNED:
            outcome = self._read_results(stop, setup)
            # The next call starts in the frame where it is now: the callee may have grown (moved)
            # the goroutine's stack. The PC after debugCallNN's first INT3 stays where it was.
            stop.rip, run.ready = run.ready.rip, stop
            if not self.chain or interrupts.signal is not None:
                self.finish()
        elif code == Code.PANICKED:
            typ, data = struct.unpack("<QQ", self.mem.read(stop.rsp, 16))
            outcome = Panicked(typ, data)
            self.finish()  # the runtime unwound the frame to recover: no call can start in it again
        else:
            self._open = None
            self._unpark()
            raise ProcessError(f"debugCallV2 reported {code.name} while a call ran")
        return outcome

    def finish(self) -> None:
        """End an open run: debugCallV2 returns to the interrupted goroutine (R12=16) and the
        thread gets every register back. Raises Interrupted if an interrupt came meanwhile."""
        run, self._open = self._open, None
        if run is None:
            return
        while not self._finished_at(run, self._continue(narrow=True, away=True)):
            pass
        if interrupts.signal is not None:
            raise Interrupted("interrupted; the call was unwound and the target restored")

    def _finished_at(self, run: Run, stop: user_regs_struct) -> bool:
        """A trap on the way out of ``run``: at R12=16 the thread is restored (True)."""
        code = self._check_trap(stop)
        if code == Code.RESTORE:
            self._park(run, stop, restoring=True)  # until _restore's last SETREGS: the tail must not run
        self._step(code)
        if code != Code.RESTORE:
            return False  # R12=1 of a frame whose callee never started (interrupted at R12=0): nothing to read
        if run.locked is not None and self.lock_layout is not None:
            unlock(self.mem, self.lock_layout, run.locked)  # back on the interrupted goroutine
        self.known = (self.thread.tid, self._restore(stop, run.regs, run.xstate), run.xstate)
        if self.watch is not None:
            self.watch.idle()  # restored: a kill now lets it run on as if never called
        return True

    # -- steps ---------------------------------------------------------------

    def _enter(self, run: Run) -> user_regs_struct:
        regs = run.regs
        # Killed from here on, gocall leaves the thread to run into the trap net, and the guardian
        # restores it (guard/net.py); until the SETREGS below it may not have entered at all.
        watch = self.watch if self.watch is not None and self.watch.net is not None else None
        if watch is not None:
            watch.entering(self.thread.tid, run)
        r = regs.copy()
        r.rsp -= 8
        # One write: the argument frame size at SP-16 and the return PC debugCallV2 will RET to
        # at SP; the word between is below SP, where debugCallV2 saves BP first thing.
        self.mem.write(r.rsp - 16, struct.pack("<QQQ", run.capacity, 0, regs.rip))
        r.rip = self.entry.debug_call_v2
        ptrace.setregs(self.thread.tid, r)
        if watch is not None:
            watch.entered()
        return self._continue(narrow=True)

    def _start_callee(self, stop: user_regs_struct, setup: CallSetup, g: int) -> None:
        tid = self.thread.tid
        log.debug("thread %d: starting the callee at %#x", tid, setup.fn)
        r = stop.copy()
        for i, value in setup.int_regs.items():
            setattr(r, INT_ARG_REGS[i], value & 0xFFFFFFFFFFFFFFFF)
        # ABIInternal entry conditions (abi-internal.md): R14 = current g, X15 = 0. debugCallNN
        # is ABI0 assembly entered from Go code (debugCallWrap2's closure call), which already
        # left R14 = g and X15 = 0 (go-runtime-facts §1.7); both are set anyway, X15 only when
        # the X registers are written for float arguments (two ptrace requests saved otherwise).
        r.r14 = g
        if setup.float_regs:
            fx = ptrace.getfpregs(tid)
            for i, raw in setup.float_regs.items():
                xmm_set(fx, i, raw)
            xmm_set(fx, 15, b"")
            ptrace.setfpregs(tid, fx)
        r.rsp -= 8
        # The return PC (into debugCallNN, after its INT3), then the stack part of the frame.
        self.mem.write(r.rsp, struct.pack("<Q", stop.rip) + setup.stack)
        r.rip = setup.fn
        r.rdx = setup.closure
        ptrace.setregs(tid, r)
        self._parked = None

    def _read_results(self, stop: user_regs_struct, setup: CallSetup) -> Returned:
        ints = _INT_ARGS(stop.values())
        fx = bytes(ptrace.getfpregs(self.thread.tid)) if setup.float_results else b""
        return Returned(ints, fx, self.mem.read(stop.rsp, setup.frame_size) if setup.stack_results else b"")

    def _restore(self, stop: user_regs_struct, regs: user_regs_struct, xstate: bytes) -> user_regs_struct:
        """Put the thread back as it was; the registers it is left with."""
        tid = self.thread.tid
        if self._can_emulate_epilogue(stop.rip):
            # The save area, saved BP and return PC, as the epilogue would load them.
            words = _LOADED(struct.unpack_from("<17Q", self.mem.read(stop.rsp + 0x20, _FRAME_TOP - 0x20)))
            final = regs.copy()  # RFLAGS, orig_rax as saved
            # The TLS of the thread the goroutine is on now: the call's goroutine is locked to the
            # interrupted thread (by the runtime, or call/lock.py), but it is read from the stop.
            final.fs_base, final.gs_base = stop.fs_base, stop.gs_base
            if words != _epilogue_words(regs) or stop.rsp + _FRAME_TOP != regs.rsp:
                for name, word in zip(_LOADS, words, strict=True):
                    setattr(final, name, word)
                final.rsp = stop.rsp + _FRAME_TOP
                log.warning("registers differ after the call (stack moved?): %r vs %r", final, regs)
            # The vector registers first: the thread has its own registers back with the last request.
            ptrace.setxstate(tid, xstate)
            ptrace.setregs(tid, final)
            self._parked = None
            return final
        # Let the runtime's own tail run, then put RFLAGS back: the tail's ADDQ changed them.
        r = regs.copy()
        r.rip, r.rsp = stop.rip, stop.rsp
        r.fs_base, r.gs_base = stop.fs_base, stop.gs_base
        if self.mem.read(stop.rip, 1) == INT3:
            # The guardian's INT3 on the tail's first instruction (guard/watch.py): that MOVQ
            # 0x90(SP), AX done here (it touches no flag), the rest stepped.
            r.rax, r.rip = self.mem.u64(stop.rsp + _SAVE_AREA["rax"]), stop.rip + len(_FIRST_RELOAD)
        ptrace.setregs(tid, r)
        self._parked = None
        ptrace.setxstate(tid, xstate)
        for _ in range(_MAX_EPILOGUE_STEPS):
            step = self.thread.run_until_trap(step=True)
            assert step is not None
            if step.regs.rip == regs.rip and step.regs.rsp == regs.rsp:
                final = step.regs
                final.eflags = regs.eflags
                ptrace.setregs(tid, final)
                return final
        raise ProcessError(f"debugCallV2 did not return to {regs.rip:#x} within {_MAX_EPILOGUE_STEPS} steps")

    # -- helpers -------------------------------------------------------------

    def _park(self, run: Run, stop: user_regs_struct, fn: int = 0, restoring: bool = False) -> None:
        """Issue 18: with a guardian watching (guard/watch.py), wait at a trap of debugCallV2 with the
        thread parked in runtime.procyield's PAUSE loop: a kill of gocall resumes it there (a stop
        its tracer has waited for resumes with no signal), spinning until the guardian seizes it
        and puts ``stop`` back, instead of running on. One SETREGS: the registers go back at the
        next resume (:meth:`_unpark`), or the next step's replace them.

        With a trap net (guard/net.py) there is no parking: from R12=0 and 1 a thread let go runs
        into the net at its next INT3; from R12=16 it would run the runtime's tail, which leaves
        RFLAGS and the X registers changed (module docstring), but the INT3 the session keeps on
        the tail's first instruction (guard/watch.py ``Watch.tail``) takes it into the net too. At
        R12=16 the guardian is told the run is restoring."""
        watch = self.watch
        if watch is None or (watch.net is not None and not restoring):
            return
        # First: a thread found spinning has its registers there; at R12=16 the guardian must know
        # the run is restoring even where the thread cannot be parked (a restored thread, or one
        # at this trap, is not waited for).
        watch.active(self.thread.tid, run, fn, stop, restoring)
        if watch.spin is None or self.others is not None or watch.tail is not None:
            return
        spinning = stop.copy()
        spinning.rip, spinning.rax = watch.spin, 0  # AX counts the loop down: 2^32 PAUSEs, seconds at least
        ptrace.setregs(self.thread.tid, spinning)
        # What to put back: a copy, as ``stop`` becomes the next call's frame (its PC changed) in _call.
        spinning.rip, spinning.rax = stop.rip, stop.rax
        self._parked = spinning

    def _unpark(self) -> None:
        """The thread's registers back to those of the trap it is parked at (see :meth:`_park`)."""
        if self._parked is not None:
            ptrace.setregs(self.thread.tid, self._parked)
            self._parked = None

    def _continue(self, narrow: bool = False, away: bool = False) -> user_regs_struct:
        """Resume to the next trap. ``narrow``: a protocol step of ours (into debugCallV2 to its
        first trap, from a callee's return to R12=16), run on gocall's CPU if one is free
        (process/affinity.py); not a guardian's way through a run of someone else's. ``away``:
        the run's last step (see Thread.run_until_trap)."""
        self._unpark()
        stop = self._resume_and_wait(None, narrow=narrow, away=away)
        assert stop is not None
        return stop.regs

    def _callee_returned(self, run: Run, fn: int) -> user_regs_struct:
        """Resume into the callee and wait for its trap. A started call must be seen through (an
        untraced thread would die on the next INT3): the wait is looked at every _CALLEE_SLICE,
        for a notice at ``callee_timeout``, and for :attr:`leave` (a second interrupt, or the
        timeout with :attr:`abandon`), which gives the call to a guardian and raises."""
        deadline = None if self.callee_timeout is None else time.monotonic() + self.callee_timeout
        told_late = told_interrupt = False
        stop = self._resume_and_wait(_CALLEE_SLICE, narrow=True)
        while stop is None:
            late = deadline is not None and time.monotonic() >= deadline
            leave = self.leave if self.others is None else None  # stop-the-world calls wait
            if leave is not None and (interrupts.count > 1 or (late and self.abandon)):
                left = leave(self, run, fn)
                if isinstance(left, GocallError):
                    if self.watch is not None:
                        self.watch.idle()  # the handover guardian's now, not guard/watch.py's
                    raise left  # the thread is the guardian's now: nothing of it is ours to undo
                if left is not None:
                    return left  # it returned just then
            elif late and not told_late:
                told_late = True
                self.notify(f"the called function is still running after {self.callee_timeout:g} s; it is left "
                            "to finish on its own goroutine, and the thread is restored when it returns"
                            + ("; Ctrl-C twice leaves it to a guardian process" if leave else ""))  # fmt: skip
            elif interrupts.count == 1 and leave is not None and not told_interrupt:
                told_interrupt = True
                self.notify("interrupted: the called function must return before the thread is restored; "
                            "Ctrl-C again to leave it to a guardian process and return now")
            stop = self._resume_and_wait(_CALLEE_SLICE, resumed=True)
        return stop.regs

    def see_through(self, run: Run, thread: Thread, stop: user_regs_struct | None = None) -> None:
        """A guardian's part (guard/handover.py, guard/watch.py): ``run`` is open on ``thread``,
        stopped, traced by this process now, its callee running, or ``stop``: at that trap of
        debugCallV2 already. Let the callee return, finish the run, restore the thread."""
        self.thread, self.others, self.watch = thread, None, None
        if stop is None:
            stop = self._continue()
        # The callee's return (R12=1 or 2), or whichever trap the thread was found at, then on
        # to R12=16 and the exact restore.
        while self._check_trap(stop) != Code.RESTORE:
            stop = self._continue()
        if run.locked is not None and self.lock_layout is not None:
            unlock(self.mem, self.lock_layout, run.locked)
        self._restore(stop, run.regs, run.xstate)

    def _resume_and_wait(self, timeout: float | None, resumed: bool = False, narrow: bool = False,
                         away: bool = False) -> TrapStop | None:  # fmt: skip
        """To the next trap; ``narrow``, ``away``: see Thread.run_until_trap."""
        others = self.others
        if others is None:
            if resumed:
                return self.thread.wait_trap(timeout)
            return self.thread.run_until_trap(timeout, narrow=narrow, away=away)
        if not resumed:
            others.resume_all()
            others.lend(self.thread)
            self.thread.resume()
        others.threads[self.thread.tid] = self.thread
        got = others.wait_trap(timeout)
        others.release(self.thread)
        if got is None:
            return None
        thread, stop = got
        others.took_back(thread)
        if thread is not self.thread:
            log.debug("the call moved from thread %d to thread %d", self.thread.tid, thread.tid)
            others.release(thread)
            others.threads[self.thread.tid] = self.thread  # still running, traced with the others
            self.thread = thread
        if self.stop_others:
            others.stop_all()
        return stop

    def _step(self, step: str | Code) -> None:
        if self.hook is not None:  # the name only then: an enum's .name is a descriptor call
            self.hook(step if isinstance(step, str) else step.name)

    def _check_trap(self, stop: user_regs_struct) -> Code:
        pc = stop.rip - 1
        if not self.entry.may_trap(pc):
            raise ProcessError(f"thread {self.thread.tid} trapped at {pc:#x}, outside the debug-call functions")
        code = _CODES.get(stop.r12)  # a dict, not Code(...): an enum lookup by value costs more than the rest
        if code is None:
            raise ProcessError(f"unknown debugCallV2 status R12={stop.r12}")
        return code

    def _can_emulate_epilogue(self, pc: int) -> bool:
        if self.step_epilogue:
            return False
        known = self.entry.epilogues.get(pc)
        if known is None:
            known = self.entry.epilogues[pc] = known_tail(self.mem.read(pc, TAIL_SIZE))
            if not known:
                log.info("debugCallV2 epilogue at %#x is not the known code; single-stepping it", pc)
        return known

    def _read_string(self, addr: int) -> str:
        ptr, n = struct.unpack("<QQ", self.mem.read(addr, 16))
        return self.mem.read(ptr, min(n, 4096)).decode("utf-8", "replace")


# Seconds between looks at a running callee's wait (a second Ctrl-C is noticed within this).
_CALLEE_SLICE = 0.1

# guard/handover.py's leave(): the error to raise once the call is a guardian's, the registers of
# the callee's trap if it returned meanwhile, or None (no guardian took it: wait on).
Leave = Callable[["Injector", Run, int], "user_regs_struct | GocallError | None"]

_INT_ARGS = operator.itemgetter(*(FIELD_INDEX[name] for name in INT_ARG_REGS))

# What the epilogue leaves in each register, from the 17 words of debugCallV2's frame from 0x20 (the
# save area, saved BP, return PC): BP's save-area slot holds debugCallV2's own frame pointer and is
# overwritten by the saved BP, so it is left out.
_LOADS = (*(name for name in _SAVE_AREA if name != "rbp"), "rbp", "rip")
_LOADED = operator.itemgetter(*((off - 0x20) // 8 for name, off in _SAVE_AREA.items() if name != "rbp"),
                              (_SAVED_BP - 0x20) // 8, (_RETURN_PC - 0x20) // 8)  # fmt: skip
_REGS_LOADED = operator.itemgetter(*(FIELD_INDEX[name] for name in _LOADS))


def _epilogue_words(regs: user_regs_struct) -> tuple[int, ...]:
    """What the epilogue would leave in :data:`_LOADS` if the frame still holds ``regs`` (it should)."""
    return _REGS_LOADED(regs.values())  # type: ignore[no-any-return]


def _save(tid: int) -> tuple[user_regs_struct, bytes]:
    return ptrace.getregs(tid), ptrace.getxstate(tid)
