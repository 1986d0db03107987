"""Shared fixtures: the built guest, tiny assembled guests, machine runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from emu.core import twins
from emu.machine.config import MachineConfig
from emu.machine.images import GUEST_BUILD
from emu.machine.machine import Machine

REPO = Path(__file__).resolve().parent.parent
KERNEL = os.path.join(GUEST_BUILD, "kernel.elf")
IN_CI = os.environ.get("CI") == "true"

# Implementations every twin-gated test runs with (the pure path always; the
# compiled one unless EMU_PURE=1 asks for the pure path only).
IMPLS = ["python"] if twins.pure_forced() else ["python", "fast"]

def need_tool(tool: str) -> str:
    """The path of host tool `tool`; skip (outside CI, saying why) or fail
    (in CI: .ci/run installs it) without it."""
    path = shutil.which(tool)
    if path is None:
        if IN_CI:
            pytest.fail(f"{tool} is missing: CI must install it (.ci/run)")
        pytest.skip(f"needs {tool}; not in CI, so skipping")
    return path


def need_fast(available: bool, what: str = "the compiled twin") -> None:
    """Skip a compiled-twin test only when EMU_PURE=1 asks for the pure path;
    a missing twin fails in CI and skips (saying why) elsewhere."""
    if available:
        return
    if twins.pure_forced():
        pytest.skip("EMU_PURE=1: the pure-Python path only")
    if IN_CI:
        pytest.fail(f"{what} is not built in CI (make builds it)")
    pytest.skip(f"{what} is not built here (make setup builds it); CI runs this test")


LINKER_SCRIPT = """
OUTPUT_ARCH("riscv")
ENTRY(_start)
SECTIONS {
  . = 0x80200000;
  .text : { *(.text.entry) *(.text .text.*) }
  .rodata : { *(.rodata .rodata.*) }
  .data : { *(.data .data.*) }
  .bss : { *(.bss .bss.*) }
  /DISCARD/ : { *(.eh_frame) *(.eh_frame_hdr) *(.riscv.attributes) }
}
"""


@pytest.fixture(scope="session")
def kernel() -> str:
    """Path of the built default guest (built by `make guest`)."""
    if not os.path.exists(KERNEL):
        subprocess.run(["make", "-s", "-C", str(REPO / "guest"), f"PYTHON={sys.executable}"],
                       check=True)
    return KERNEL


def assemble(tmp: Path, source: str, name: str = "t", target: str = "riscv64",
             ld: str = LINKER_SCRIPT, extra: tuple[str, ...] = ()) -> str:
    """Assemble/link `source` (GNU as syntax, entry _start) into an ELF.

    Returns its path. Raises CalledProcessError if the toolchain rejects it.
    """
    src = tmp / f"{name}.S"
    src.write_text(source)
    lds = tmp / f"{name}.ld"
    lds.write_text(ld)
    out = tmp / f"{name}.elf"
    mcpu = ["-mcpu=generic_rv64+m+a+zicsr"] if target == "riscv64" else []
    if target.startswith("riscv"):
        mcpu.append("-mno-relax")
    subprocess.run([sys.executable, "-m", "ziglang", "cc", "-target", f"{target}-freestanding-none",
                    *mcpu, "-nostdlib", "-ffreestanding", "-T", str(lds),
                    "-Wl,--entry=_start", *extra, str(src), "-o", str(out)],
                   check=True, capture_output=True)
    return str(out)


def compile_c(tmp: Path, source: str, name: str = "c") -> str:
    """Compile a freestanding C test guest (entry _start, the kernel's headers
    on the include path, the guest's flags). Returns the ELF path."""
    src = tmp / f"{name}.c"
    src.write_text(source)
    lds = tmp / f"{name}.ld"
    lds.write_text(LINKER_SCRIPT)
    out = tmp / f"{name}.elf"
    r = subprocess.run([sys.executable, "-m", "ziglang", "cc",
                        "-target", "riscv64-freestanding-none",
                    "-mcpu=generic_rv64+m+a+zicsr", "-mno-relax", "-mcmodel=medany",
                    "-ffreestanding", "-nostdlib", "-fno-builtin", "-O2", "-g", "-Wall", "-Werror",
                    "-fno-asynchronous-unwind-tables", f"-I{REPO / 'guest' / 'kernel'}",
                    "-T", str(lds), "-Wl,--entry=_start", str(src), "-o", str(out)],
                   check=False, capture_output=True, text=True)
    if r.returncode:
        raise AssertionError(f"test guest {name} does not compile:\n{r.stderr}")
    return str(out)


@pytest.fixture
def asm(tmp_path):
    """Return a function(source) -> ELF path for tiny test guests."""
    counter = iter(range(1000))

    def build(source: str, **kw) -> str:
        return assemble(tmp_path, source, name=f"g{next(counter)}", **kw)

    return build


def boot(kernel_path: str, **cfg) -> Machine:
    """Run `kernel_path` to the end with MachineConfig(**cfg). Returns the machine."""
    cfg.setdefault("max_insns", 50_000_000)
    m = Machine(MachineConfig(kernel=kernel_path, **cfg))
    m.run()
    return m
