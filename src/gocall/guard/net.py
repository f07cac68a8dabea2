"""The trap net: an INT3 of debugCallV2 reached untraced does not kill the target (issue 18).

gocall killed outright lets its thread go (guard/watch.py); run on by itself, the thread reaches
the next INT3 of debugCallV2 untraced, and the SIGTRAP would be fatal. The Go runtime's signal
handler asks a hook first (runtime/signal_unix.go ``sighandler``, after SIGPROF only, and before
anything fatal, in every release 1.19-1.27)::

    if sig == _SIGTRAP && testSigtrap != nil && testSigtrap(info, (*sigctxt)(noescape(unsafe.Pointer(c))), gp) {
        return
    }

``runtime.testSigtrap`` is a package variable, a func value that is nil outside the runtime's own
tests. While a guardian watches, gocall points it at a funcval of its own whose code is
runtime.abort's ``JMP .`` (asm_amd64.s: ``INT $3`` encoded CD 03, then ``loop: JMP loop``, EB FE,
every release). A SIGTRAP the program takes then leaves its thread spinning *inside the signal
handler*, where every signal is blocked (the runtime installs its handlers with a full sa_mask,
os_linux.go ``setsig``): the preemption SIGURG that makes a PC in abort fatal elsewhere
(``isAbortPC``) cannot land. The program goes on, but for that thread's goroutine (and a
stop-the-world waits for it) until the guardian takes it back: :func:`Net.release` points the
signal frame's RIP back at the INT3, returns true from the hook (RIP = the return address,
RSP += 8, AX = 1: ABIInternal's first result) and lets the handler return. rt_sigreturn puts every
register back as at the trap, and the INT3 runs again, traced now: an ordinary trap. The net
also holds the SIGTRAP of a single step or hardware breakpoint of gocall's (call/advance.py) that
a kill left queued: that thread is let go on (guard/watch.py sweeps every thread).

Where the funcval lives: the 8-aligned bytes after the end of the program's last writable
section (``.noptrbss``), inside that section's last page: mapped, zero, and used by nothing (the
kernel starts the brk heap at the next page at the earliest, fs/binfmt_elf.c). With fewer than 8
bytes there (1 build in 512), no ``runtime.testSigtrap`` (binary/stripped.py finds it without a
symbol table) or the hook already set by someone else, there is no net.

While the net is in, a SIGTRAP the program raises itself (``runtime.Breakpoint()`` untraced, which
would have killed it) is caught the same way: its thread spins until the session ends.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Container
from dataclasses import dataclass

from ..binary.elffile import GoBinary
from ..errors import ProcessError
from ..process import ptrace
from ..process.memory import Memory
from ..process.regs import user_regs_struct

log = logging.getLogger("gocall.call")

ABORT = bytes.fromhex("cd03" "ebfe")  # runtime.abort: INT $3; loop: JMP loop
_INT3 = b"\xcc"  # debugCallV2's traps and gocall's breakpoints are one-byte INT3s
_SHF_WRITE, _SHF_ALLOC, _SHF_TLS = 0x1, 0x2, 0x400
_PAGE = 4096
# runtime.sigctxt (signal_linux_amd64.go): {info *siginfo; ctxt unsafe.Pointer}, the ucontext.
_SIGCTXT_CTXT = 8
# struct ucontext_t (sys/ucontext.h, x86_64): uc_flags, uc_link, uc_stack (24 bytes), then
# uc_mcontext, whose gregs[] come first; REG_RIP is gregs[16], REG_EFL gregs[17].
_UC_RIP, _UC_EFL = 40 + 16 * 8, 40 + 17 * 8
_TF, _RF = 1 << 8, 1 << 16  # RFLAGS trap and resume flags
# siginfo_t: si_signo, si_errno, si_code (ints); an INT3's SIGTRAP has si_code SI_KERNEL.
_SI_CODE, SI_KERNEL = 8, 0x80


@dataclass(frozen=True)
class Net:
    """Where the net is in one target (see the module docstring)."""

    hook: int  # &runtime.testSigtrap
    funcval: int  # the funcval gocall writes: one word, the code address ``spin``
    spin: int  # runtime.abort's ``JMP .``: the PC of a thread the net holds

    def install(self, mem: Memory) -> bool:
        """Point the hook at the net; False if it was set already (another gocall's net, left to
        it to remove, or the program's own hook, left alone)."""
        if mem.u64(self.hook) != 0:
            return False
        mem.write_u64(self.funcval, self.spin)  # the funcval first: the hook is read at any moment
        mem.write_u64(self.hook, self.funcval)
        return True

    def remove(self, mem: Memory) -> None:
        """The hook back to nil (if it is still the net)."""
        if mem.u64(self.hook) == self.funcval:
            mem.write_u64(self.hook, 0)

    def holds(self, regs: user_regs_struct) -> bool:
        """Whether a stopped thread with ``regs`` spins in the net."""
        return bool(regs.rip == self.spin)

    def release(self, tid: int, mem: Memory, regs: user_regs_struct, retired: Container[int] = ()) -> bool:
        """Let thread ``tid`` (stopped, in the net, ``regs``) out: at the next resume it returns
        from the signal handler and runs its INT3 again (a trap it took by running on untraced).
        An INT3 at an address in ``retired`` was a breakpoint of gocall's whose byte is back
        (guard/watch.py): the original instruction runs there instead, no trap.
        The SIGTRAP of a single step or hardware breakpoint of gocall's (call/advance.py's, the
        thread's debug registers cleared by the caller): it goes on. Whether the thread traps
        again."""
        # The hook's arguments, in AX and BX (ABIInternal), unchanged: abort's JMP touches nothing.
        code = struct.unpack("<i", mem.read(regs.rax + _SI_CODE, 4))[0]
        uc = mem.u64(regs.rbx + _SIGCTXT_CTXT)
        trap = 0
        if code == SI_KERNEL:  # an INT3: the frame's RIP is after it
            trap = mem.u64(uc + _UC_RIP) - 1
            if trap not in retired and mem.read(trap, 1) != _INT3:
                raise ProcessError(f"thread {tid} took a SIGTRAP at {trap + 1:#x}, after no INT3; left in the net")
            mem.write_u64(uc + _UC_RIP, trap)
        elif code in (ptrace.TRAP_TRACE, ptrace.TRAP_HWBKPT, ptrace.TRAP_PERF):  # PERF: a catch's, process/perfbreak.py
            # An execution breakpoint is a fault, and the kernel set RF in the frame's RFLAGS so
            # that the instruction runs once without it (arch/x86/kernel/hw_breakpoint.c): kept,
            # to go on. No single step.
            mem.write_u64(uc + _UC_EFL, mem.u64(uc + _UC_EFL) & ~_TF | _RF)
        else:
            raise ProcessError(f"thread {tid} took a SIGTRAP with si_code {code}; left in the net")
        out = regs.copy()
        out.rip, out.rsp, out.rax = mem.u64(regs.rsp), regs.rsp + 8, 1  # return true
        ptrace.setregs(tid, out)
        return code == SI_KERNEL and trap not in retired


def find(binary: GoBinary, mem: Memory) -> Net | None:
    """The net for this target, or None (said in the log) where there can be none."""
    hook, abort = binary.symbol("runtime.testSigtrap"), binary.symbol("runtime.abort")
    if hook is None or abort is None or mem.read(abort, len(ABORT)) != ABORT:
        log.info("runtime.testSigtrap or runtime.abort not found: no trap net (guard/net.py)")
        return None
    ends = [s["sh_addr"] + s["sh_size"] for s in binary.sections
            if s["sh_flags"] & (_SHF_WRITE | _SHF_ALLOC | _SHF_TLS) == _SHF_WRITE | _SHF_ALLOC]  # fmt: skip
    if not ends:
        return None
    end = max(ends) + binary.bias
    funcval = (end + 7) & ~7
    if funcval + 8 > (end + _PAGE - 1) & ~(_PAGE - 1):
        log.info("no room after the last writable section: no trap net (guard/net.py)")
        return None
    return Net(hook, funcval, abort + 2)

