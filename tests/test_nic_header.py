"""guest/kernel/nic.h mirrors emu/devices/nic.py: every NIC_* constant the
header defines has the device's value, every constant the device exports
(ABI_NAMES, STAT_NAMES) is in the header, and the descriptor struct compiles
to the documented layout (when the ziglang toolchain is installed)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from emu.devices import nic as N

ROOT = Path(__file__).resolve().parents[1]
HEADER = ROOT / "guest" / "kernel" / "nic.h"
DEFINE = re.compile(r"^\s*#\s*define\s+(NIC_\w+)\s+(\S+)")


def header_defines() -> dict[str, int]:
    """Return {name: value} for every #define NIC_* in nic.h (values must be literals)."""
    out: dict[str, int] = {}
    for line in HEADER.read_text().splitlines():
        m = DEFINE.match(line)
        if m:
            name, text = m.groups()
            assert name not in out, f"{name} defined twice"
            out[name] = int(text.rstrip("uUlL"), 0)
    return out


def test_every_abi_constant_matches() -> None:
    defs = header_defines()
    for name in N.ABI_NAMES:
        assert f"NIC_{name}" in defs, f"nic.h lacks NIC_{name}"
        assert defs[f"NIC_{name}"] == getattr(N, name), name


def test_stat_indices_match() -> None:
    defs = header_defines()
    for i, key in enumerate(N.STAT_NAMES):
        assert defs.get(f"NIC_STAT_{key.upper()}") == i, key
    assert defs["NIC_NSTATS"] == len(N.STAT_NAMES)


def test_header_defines_nothing_else() -> None:
    expected = {f"NIC_{n}" for n in N.ABI_NAMES}
    expected |= {f"NIC_STAT_{k.upper()}" for k in N.STAT_NAMES} | {"NIC_NSTATS"}
    assert set(header_defines()) == expected


def test_error_names_cover_codes() -> None:
    codes = {getattr(N, n) for n in N.ABI_NAMES if n.startswith("ERR_")}
    assert codes == set(range(len(N.ERR_NAMES)))
    for code, name in enumerate(N.ERR_NAMES):
        assert getattr(N, f"ERR_{name.upper()}") == code


def test_header_compiles_with_layout_asserts(tmp_path: Path) -> None:
    src = tmp_path / "t.c"
    src.write_text('#include "types.h"\n#include "memlayout.h"\n#include "nic.h"\n'
                   "struct nic_desc ring[NIC_RING_MIN];\n")
    r = subprocess.run([sys.executable, "-m", "ziglang", "cc", "-target",
                        "riscv64-freestanding-none", "-ffreestanding", "-Wall", "-Werror",
                        "-I", str(HEADER.parent), "-c", str(src), "-o",
                        str(tmp_path / "t.o")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
