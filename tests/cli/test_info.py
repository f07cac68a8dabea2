"""``gocall info``: checked against the toolchain's own view of the same binary
(``go version -m``, ``go tool nm``) on every release of the matrix."""

from __future__ import annotations

import json
import subprocess
import sys

from gocall.binary import GoBinary
from gocall.toolchain import GoToolchain


def _gocall(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gocall.cli.main", *args], capture_output=True, text=True,
                          timeout=120, check=False)


def test_info_json_matches_the_toolchain(go_toolchain: GoToolchain, calls_binary) -> None:  # type: ignore[no-untyped-def]
    r = _gocall("info", "--json", str(calls_binary))
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["go_version"] == go_toolchain.version
    version_m = go_toolchain.run("version", "-m", calls_binary)
    assert f"\tmod\t{d['module']}" in version_m
    assert all(f"build\t{k}=" in version_m for k in d["build_settings"] if k != "DefaultGODEBUG")
    nm = go_toolchain.run("tool", "nm", calls_binary)
    # Every pclntab function is a text symbol (plus a few markers such as runtime.text/etext).
    text_symbols = sum(1 for line in nm.splitlines() if line.split()[1:2] in (["T"], ["t"]))
    assert 0 < d["functions"] <= text_symbols
    with GoBinary.open(calls_binary) as binary:
        assert sum(d["sizes"]["pclntab"].values()) == len(binary.pclntab.data)
        assert sum(d["sizes"]["pctab"].values()) <= d["sizes"]["pclntab"]["pctab"]
    assert d["features"]["calls"] and d["features"]["dwarf"] and d["features"]["symtab"]
    assert d["features"]["debug_pinner"] == (go_toolchain.release >= (1, 23))
    assert d["sizes"]["dwarf"][".debug_info"]["uncompressed"] > d["sizes"]["dwarf"][".debug_info"]["file"]


def test_info_text_by_pid(target) -> None:  # type: ignore[no-untyped-def]
    r = _gocall("info", str(target.pid))
    assert r.returncode == 0, r.stderr
    assert "gocall: calls; signatures from DWARF" in r.stdout
    assert "PCDATA_UnsafePoint" in r.stdout and "FUNCDATA_LocalsPointerMaps" in r.stdout
    target.assert_healthy()


def test_info_on_stripped_binary(build_fixture) -> None:  # type: ignore[no-untyped-def]
    r = _gocall("info", "--json", str(build_fixture("calls", ["-ldflags=-s -w"])))
    d = json.loads(r.stdout)
    assert d["features"]["calls"] and not d["features"]["dwarf"] and not d["features"]["symtab"]
    assert d["sizes"]["dwarf"] == {}


def test_info_on_non_go_file_exits_1() -> None:
    r = _gocall("info", "/bin/true")
    assert r.returncode == 1 and "not a Go executable" in r.stderr and "Traceback" not in r.stderr
