"""Start the Go test programs and watch their health.

A target (``tests/fixtures/calls``) prints ``ready pid=<pid>`` once its worker
goroutine runs, then ``health checks=<N> bad=<M>`` every 50 ms, and
``CORRUPT <details>`` when the worker finds its heap, stack or registers
damaged. :class:`Target` collects those lines on a daemon thread so a test can
inject calls, then ask :meth:`Target.assert_healthy` whether the process
survived them unharmed.

The fixtures calls, anywhere and values print these lines with the same
``main.report``; xmm, signals and bench/soak.py's generated target print them
inline. Each fixture keeps its own copy on purpose: a fixture stays one
package directory that plain ``go build`` builds (tests copy and build them
directly), and ``main.report`` stays in main.go, where the CLI tests expect a
caught reporter to be.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

__all__ = ["FIXTURES", "READY_TIMEOUT", "Target", "TargetFailed", "tracer_pids"]

FIXTURES = Path(__file__).parent / "fixtures"

READY_TIMEOUT = 10.0

_READY = re.compile(r"ready pid=(\d+)")
_HEALTH = re.compile(r"health checks=(\d+) bad=(\d+)")


def tracer_pids(pid: int) -> dict[int, int]:
    """The TracerPid of each thread of ``pid`` still alive (0: not traced).

    A thread may end between the listing of /proc/PID/task and the read of its status: the
    read then fails with ENOENT, or with ESRCH once the task is reaped but its directory is
    still open (seen with the churn fixture, which ends threads all the time). Such a thread
    has no tracer to report and is left out."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                out[int(tid)] = next(int(line.split()[1]) for line in f if line.startswith("TracerPid:"))
        except (OSError, StopIteration):
            continue  # the thread ended since the listing
    return out


def main_parked(proc: Any, timeout: float = 10.0) -> None:
    """Wait until goroutine 1 of ``proc`` (a :class:`gocall.Process` on tests/fixtures/breaks in
    loop mode) is parked for good in its channel receive. The fixture says 'ready' just before:
    until it parks, its write's return is Go user code a call may be caught in (syscall.write)."""
    deadline = time.monotonic() + timeout
    while (state := proc.runtime.goroutine(1).state) != "chan receive":
        assert time.monotonic() < deadline, f"goroutine 1 is still {state!r} after {timeout:g} s"
        time.sleep(0.005)


class TargetFailed(AssertionError):
    """The target did not start, stopped reporting, died, or reported corruption.

    An AssertionError, so pytest shows it as a test failure with the details.
    """


class Target:
    """A running Go test program whose stdout is collected line by line.

    Use :meth:`start`; the process is SIGKILLed by :meth:`kill` or on leaving a
    ``with`` block.
    """

    def __init__(
        self, binary: Path, proc: subprocess.Popen[str], stderr: tempfile._TemporaryFileWrapper[bytes]
    ) -> None:
        self.binary = binary
        self.proc = proc
        self.pid = proc.pid
        self.lines: list[str] = []  # every stdout line so far, without newlines
        self._stderr = stderr
        self._stderr_text: str | None = None  # kept once kill() closes (and so deletes) the file
        self._cond = threading.Condition()
        self._ready = False
        self._eof = False
        self._reports = 0  # health lines seen
        self._checks = 0
        self._bad = 0
        self._reader = threading.Thread(target=self._read, name=f"target-{self.pid}-stdout", daemon=True)
        self._reader.start()

    @classmethod
    def start(
        cls, binary: str | os.PathLike[str], args: Sequence[str] = (), ready_timeout: float = READY_TIMEOUT
    ) -> Target:
        """Run ``binary args...`` and wait for its ``ready`` line.

        Raises :class:`TargetFailed` with the program's stderr if it does not
        say ready within ``ready_timeout`` seconds (the process is killed).
        """
        path = Path(binary)
        stderr = tempfile.NamedTemporaryFile(prefix=f"{path.name}-", suffix=".stderr")  # noqa: SIM115 - closed by kill()
        proc = subprocess.Popen(
            [str(path), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            # A file, not a pipe: a Go crash dumps every goroutine and must not block on a full pipe.
            stderr=stderr,
            text=True,
            bufsize=1,
        )
        target = cls(path, proc, stderr)
        try:
            target._wait_ready(ready_timeout)
        except BaseException:
            target.kill()
            raise
        return target

    def _read(self) -> None:
        """Reader thread: append each stdout line and keep the latest health values."""
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.rstrip("\n")
            with self._cond:
                self.lines.append(line)
                if (m := _HEALTH.fullmatch(line)) is not None:
                    self._checks, self._bad = int(m[1]), int(m[2])
                    self._reports += 1
                elif _READY.fullmatch(line) is not None:
                    self._ready = True
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def _wait_ready(self, timeout: float) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._ready or self._eof, timeout)
            ready = self._ready
        if not ready:
            self.kill()
            why = "exited" if self.proc.poll() is not None else f"said nothing for {timeout:.0f}s"
            raise TargetFailed(f"{self.binary.name} {why} before 'ready'\n{self._describe()}")
        pid = int(next(m[1] for line in self.lines if (m := _READY.fullmatch(line))))
        if pid != self.pid:
            raise TargetFailed(f"{self.binary.name} says pid {pid}, Popen says {self.pid}")

    # ---- Reading the reports

    @property
    def alive(self) -> bool:
        """The process has not exited (a ptrace-stopped process counts as alive).

        Not ``Popen.poll()`` while it lives: the test process is often the target's tracer too
        (gocall in-process), and the kernel reports a traced child's ptrace stops to a waitpid
        of its tracer whatever the flags; poll() would take a stop of the main thread's meant
        for gocall (a SIGURG one: Popen then says "exited -23") and leave the thread in it.
        WNOWAIT only looks."""
        if self.proc.returncode is None:
            try:
                seen = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:  # reaped by gocall: poll() says so
                pass
            else:
                if seen is None or seen.si_code not in (os.CLD_EXITED, os.CLD_KILLED, os.CLD_DUMPED):
                    return True
        return self.proc.poll() is None

    def health(self) -> tuple[int, int]:
        """The latest reported ``(checks, bad)``; ``(0, 0)`` before the first report."""
        with self._cond:
            return self._checks, self._bad

    def corruption(self) -> list[str]:
        """Every ``CORRUPT`` line so far, without the prefix."""
        with self._cond:
            return [line.removeprefix("CORRUPT ") for line in self.lines if line.startswith("CORRUPT")]

    def stderr(self) -> str:
        """What the process wrote to stderr so far (a Go panic's traceback lands here)."""
        if self._stderr_text is not None:
            return self._stderr_text
        try:
            return Path(self._stderr.name).read_text(errors="replace")
        except OSError:
            return ""

    def wait_health(self, min_checks: int, timeout: float = 5.0) -> tuple[int, int]:
        """Wait until a report shows at least ``min_checks`` checks; return ``(checks, bad)``.

        Raises :class:`TargetFailed` on timeout or if the process's stdout ends.
        """
        with self._cond:
            ok = self._cond.wait_for(lambda: self._checks >= min_checks or self._eof, timeout)
            if ok and self._checks >= min_checks:
                return self._checks, self._bad
        raise TargetFailed(f"wanted checks >= {min_checks} within {timeout:.1f}s\n{self._describe()}")

    def wait_line(self, line: str, timeout: float = 5.0) -> int:
        """Wait until the program has written ``line`` (read by the reader thread); its index in
        :attr:`lines`. Raises :class:`TargetFailed` on timeout or if the process's stdout ends."""
        with self._cond:
            if self._cond.wait_for(lambda: line in self.lines or self._eof, timeout) and line in self.lines:
                return self.lines.index(line)
        raise TargetFailed(f"wanted the line {line!r} within {timeout:.1f}s\n{self._describe()}")

    def assert_healthy(self, reports: int = 3, timeout: float = 5.0) -> None:
        """Check the worker is still running and unharmed.

        Waits for ``reports`` more health reports after this call whose check
        count moved past the one current now (so a target that is still
        ptrace-stopped or deadlocked fails), then requires ``bad == 0``, no
        ``CORRUPT`` line and a live process.
        """
        with self._cond:
            start_reports, start_checks = self._reports, self._checks
            moved = self._cond.wait_for(
                lambda: self._eof or (self._reports >= start_reports + reports and self._checks > start_checks),
                timeout,
            )
            moved = moved and not self._eof
            checks, bad = self._checks, self._bad
        problems = []
        if not moved:
            problems.append(f"checks stuck at {checks} (was {start_checks}) for {timeout:.1f}s")
        if bad:
            problems.append(f"bad={bad}")
        if corrupt := self.corruption():
            problems.append("CORRUPT: " + "; ".join(corrupt[:5]))
        if not self.alive:
            problems.append(f"process exited with {self.proc.returncode}")
        if problems:
            raise TargetFailed(
                f"{self.binary.name} (pid {self.pid}) unhealthy: {', '.join(problems)}\n{self._describe()}"
            )

    def _describe(self, tail: int = 10) -> str:
        with self._cond:
            last = self.lines[-tail:]
        stderr = self.stderr().strip()
        if len(stderr) > 4000:
            stderr = "...\n" + stderr[-4000:]
        return "last stdout lines:\n  " + "\n  ".join(last or ["(none)"]) + "\nstderr:\n" + (stderr or "(empty)")

    # ---- Ending it

    def kill(self, timeout: float = 10.0) -> None:
        """SIGKILL the process and reap it. Idempotent; safe if it is ptrace-stopped or already dead."""
        if self.proc.poll() is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout)
        finally:
            # The reader thread sees EOF once the process is gone; give it a moment to drain.
            self._reader.join(1.0)
            if not self._reader.is_alive() and self.proc.stdout is not None:
                self.proc.stdout.close()
            if self._stderr_text is None:
                self._stderr_text = self.stderr()
                self._stderr.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.kill()

    def __repr__(self) -> str:
        checks, bad = self.health()
        state = "alive" if self.alive else f"exited {self.proc.returncode}"
        return f"<Target {self.binary.name} pid={self.pid} {state} checks={checks} bad={bad}>"
