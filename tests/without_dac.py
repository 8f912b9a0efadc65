"""photocat run in a process without the capabilities that let root read anything
(CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH), so that a chmod 000 file or folder is unreadable to it
even when the tests run as root, as CI's do. A non-root process has none to drop."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = r"""
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
class Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]
class Data(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint32) for n in ("effective", "permitted", "inheritable")]
header, data = Header(0x20080522, 0), (Data * 2)()  # _LINUX_CAPABILITY_VERSION_3
if libc.capget(ctypes.byref(header), data):
    sys.exit(f"capget: errno {ctypes.get_errno()}")
keep = ~((1 << 1) | (1 << 2)) & 0xFFFFFFFF  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
data[0].effective &= keep; data[0].permitted &= keep; data[0].inheritable &= keep
if libc.capset(ctypes.byref(header), data):
    sys.exit(f"capset: errno {ctypes.get_errno()}")
if sys.argv[1] == "--probe":
    try:
        open(sys.argv[2], "rb")
    except PermissionError:
        sys.exit(0)
    sys.exit("still readable")
from catalog.cli import app
app(sys.argv[1:], prog_name="photocat")
"""


def can_deny(tmp_path: Path) -> bool:
    """Whether a chmod 000 file is unreadable to such a process here (capset may be refused)."""
    probe = tmp_path / "probe"
    probe.write_bytes(b"x")
    probe.chmod(0)
    try:
        done = subprocess.run([sys.executable, "-c", SCRIPT, "--probe", str(probe)], timeout=60)
    finally:
        probe.chmod(0o600)
        probe.unlink()
    return done.returncode == 0


def photocat(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`photocat ARGS...` in such a process."""
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True, timeout=timeout
    )
