"""Delve as the baseline: ``dlv attach --headless`` driven through its JSON-RPC API.

Delve's API (service/rpc2) is Go's net/rpc JSON codec over TCP: one JSON object
per request, ``{"method": "RPCServer.<Name>", "params": [<args>], "id": n}``, one
object per reply, each followed by a newline. Delve needs the target stopped in
user code before it can ``call``, so :meth:`Delve.park` sets a breakpoint on
``main.tick`` (the worker's function), continues to it and clears it; the calls
then run on the worker's goroutine, as gocall's do. Delve resumes and stops
every thread for each of its stops; that is the cost being compared.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from typing import Any

from targets import die_with_the_benchmark, peak_rss_mb

# What Delve loads of each result; a nil ReturnInfoLoadConfig is refused.
_LOAD = {"FollowPointers": True, "MaxVariableRecurse": 1, "MaxStringLen": 64, "MaxArrayValues": 64, "MaxStructFields": -1}


def unavailable() -> str | None:
    """Why Delve cannot be measured here, or None."""
    if shutil.which("dlv") is None:
        return "dlv is not on PATH (apt-get install -y delve)"
    return None


class DelveError(RuntimeError):
    pass


class Delve:
    """One ``dlv attach`` server and a connection to it."""

    def __init__(self, pid: int) -> None:
        with socket.socket() as s:  # a free port: bind to 0 and let dlv take it right after
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.proc = subprocess.Popen(
            ["dlv", "attach", str(pid), "--headless", "--api-version=2", f"--listen=127.0.0.1:{port}",
             "--accept-multiclient"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            preexec_fn=die_with_the_benchmark,
        )  # fmt: skip
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # "API server listening at: ..." once it is ready
        if "listening" not in line:
            self.proc.kill()
            raise DelveError(f"dlv attach {pid} failed: {line.strip()}")
        self._sock = socket.create_connection(("127.0.0.1", port))
        self._io = self._sock.makefile("rwb")
        self._id = 0
        self._continuing = 0  # id of the continue that resume() left pending
        self.peak_rss_mb: float | None = None
        self.cpu_seconds: float | None = None  # dlv's user + system time, once reaped

    def _send(self, method: str, **params: Any) -> int:
        self._id += 1
        self._io.write(json.dumps({"method": f"RPCServer.{method}", "params": [params], "id": self._id}).encode())
        self._io.write(b"\n")
        self._io.flush()
        return self._id

    def rpc(self, method: str, **params: Any) -> dict[str, Any]:
        self._send(method, **params)
        reply = json.loads(self._io.readline())
        if reply.get("error"):
            raise DelveError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply["result"]
        return result

    def resume(self) -> None:
        """``continue`` without waiting for a stop: the target runs, traced, until :meth:`halt`."""
        self._continuing = self._send("Command", name="continue")

    def halt(self) -> dict[str, Any]:
        """Stop the target :meth:`resume` let run, as Ctrl-C in dlv does (Command is served
        asynchronously, so ``halt`` overtakes the pending ``continue``); the state it stopped in."""
        halting = self._send("Command", name="halt")
        replies = {}
        while len(replies) < 2:  # both requests answer, in either order
            reply = json.loads(self._io.readline())
            replies[reply["id"]] = reply
        if error := replies[self._continuing].get("error") or replies[halting].get("error"):
            raise DelveError(f"halt: {error}")
        state: dict[str, Any] = replies[self._continuing]["result"]["State"]
        return state

    def park(self, function: str = "main.tick") -> None:
        """Stop the target with its worker goroutine in ``function``: where Delve can call."""
        bp = self.rpc("CreateBreakpoint", Breakpoint={"functionName": function})["Breakpoint"]
        self.rpc("Command", name="continue")
        self.rpc("ClearBreakpoint", Id=bp["id"])

    def call(self, expr: str, goroutine: int = 0) -> list[str]:
        """``call expr`` on the parked goroutine (or on ``goroutine``, which must be running on a
        thread); the results' values as Delve prints them."""
        state = self.rpc("Command", name="call", Expr=expr, ReturnInfoLoadConfig=_LOAD, UnsafeCall=False,
                         goroutineID=goroutine)["State"]  # fmt: skip
        thread = state.get("currentThread") or {}
        if not thread.get("CallReturn"):
            raise DelveError(f"call {expr} did not return: {state.get('err') or state}")
        return [v["value"] for v in thread.get("ReturnValues") or []]

    def detach(self) -> None:
        """Detach, leaving the target running, and reap dlv (its peak RSS and CPU time are kept)."""
        # Read before it exits: dlv's wait4 peak would include our own RSS when we forked it.
        self.peak_rss_mb = peak_rss_mb(self.proc.pid)
        try:
            self.rpc("Detach", Kill=False)
        finally:
            self._io.close()
            self._sock.close()
            deadline = time.monotonic() + 10
            while (waited := os.wait4(self.proc.pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
                time.sleep(0.005)
            if waited[0] == 0:
                self.proc.kill()
                waited = os.wait4(self.proc.pid, 0)
            self.proc.returncode = os.waitstatus_to_exitcode(waited[1])
            self.cpu_seconds = waited[2].ru_utime + waited[2].ru_stime
            if self.proc.stdout is not None:
                self.proc.stdout.close()
