"""Displaced stepping (process/displaced.py): a hit whose condition is false is stepped over
out of line while the other threads run, and no hit is missed: the condition is tested
exactly once per execution of the breakpoint's instruction, on four goroutines at once,
including an instruction with a RIP-relative operand (moved to the slot with its
displacement fixed). The program's output is the untraced one."""

from __future__ import annotations

import subprocess
import sys

import capstone
from capstone import x86

import gocall
from gocall.binary import GoBinary

N = 300


def untraced(binary: str, *args: str) -> str:
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=60, check=True).stdout


def test_false_condition_every_hit_tested(build_fixture) -> None:
    binary = str(build_fixture("breaks"))
    with gocall.launch([binary, "serve", str(N)]) as proc:
        bp = proc.break_at("main.handle if req.ID == -1")
        end = proc.wait(120)
        assert isinstance(end, gocall.Exited) and end.code == 0, end
        assert (bp.tests, bp.hits) == (N, 0)  # every call of handle, on whichever goroutine
        slot = proc.debugger.displaced.slot(bp.pcs[0], bytes)  # made at the first hit, kept
        assert slot is not None and slot.original == bp.pcs[0]


def rip_relative_pc(binary: str) -> int:
    """The first instruction of main.handle with a RIP-relative memory operand (a global's address)."""
    with GoBinary.open(binary) as b:
        f = b.pclntab.func_by_name("main.handle")
        assert f is not None
        cs = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
        cs.detail = True
        for insn in cs.disasm(b.read(f.entry, f.end - f.entry), f.entry):
            if any(op.type == x86.X86_OP_MEM and op.mem.base == x86.X86_REG_RIP for op in insn.operands):
                return int(insn.address)
    raise AssertionError("no RIP-relative instruction in main.handle")


def test_rip_relative_instruction_displaced(build_fixture) -> None:
    binary = str(build_fixture("breaks"))
    pc = rip_relative_pc(binary)
    with gocall.launch([binary, "serve", str(N)]) as proc:
        bp = proc.break_at(f"*{pc:#x} if Total == -1")
        end = proc.wait(120)
        assert isinstance(end, gocall.Exited) and end.code == 0, end
        assert bp.tests >= N  # once per call at least (the instruction may be in a loop: mu.Lock's fast path)
        slot = proc.debugger.displaced.slot(pc, bytes)
        assert slot is not None and slot.addr != pc
    # The same computation as untraced: the displaced loads and stores hit the right globals.
    traced = subprocess.run([sys.executable, "-m", "gocall.cli.main", "run", "--break", f"*{pc:#x} if Total == -1",
                             "--", binary, "serve", str(N)], capture_output=True, text=True, timeout=120)
    assert traced.returncode == 0, traced.stderr
    assert traced.stdout == untraced(binary, "serve", str(N))



def test_faulting_instruction_displaced(build_fixture) -> None:
    """The displaced copy of a nil dereference faults at the slot: the program's handler must see
    the fault at the original instruction (the runtime turns it into a panic, recovered)."""
    binary = str(build_fixture("breaks"))
    with GoBinary.open(binary) as b:
        f = b.pclntab.func_by_name("main.deref")
        assert f is not None
        cs = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
        cs.detail = True
        pc = next(int(i.address) for i in cs.disasm(b.read(f.entry, f.end - f.entry), f.entry)
                  if any(op.type == x86.X86_OP_MEM and op.mem.base not in (x86.X86_REG_RSP, x86.X86_REG_RBP,
                                                                          x86.X86_REG_RIP, x86.X86_REG_R14)
                         for op in i.operands))
    with gocall.launch([binary, "nilcheck", "50"]) as proc:
        bp = proc.break_at(f"*{pc:#x} if Total == -1")
        end = proc.wait(120)
        assert isinstance(end, gocall.Exited) and end.code == 0, end
        assert bp.tests >= 50
        slot = proc.debugger.displaced.slot(pc, bytes)
        assert slot is not None and slot.addr != pc
    traced = subprocess.run([sys.executable, "-m", "gocall.cli.main", "run", "--break", f"*{pc:#x} if Total == -1",
                             "--", binary, "nilcheck", "50"], capture_output=True, text=True, timeout=120)
    assert (traced.returncode, traced.stdout) == (0, "recovered 50\n"), traced.stderr
