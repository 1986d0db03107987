"""Debian trixie's riscv64 Linux (the bundle `make linux-guest` builds,
docs/linux.md) boots on emu with QEMU's command line, as on QEMU 7.2: to
busybox's /init, which loads the virtio, aoe and nfs modules and runs
memhog; every page verified; a clean power-off. Linux probes for Sv57 and
Sv48 by writing satp and reading it back: emu's Sv39 hart ignores both
writes (docs/mmu.md), so Linux runs 3-level paging here and 5-level on
QEMU, and userland prints the same lines on both.

The bundle comes from Debian's archive: .ci/run builds it before make test;
outside CI the tests skip when it is missing, saying so.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from emu.core import twins
from emu.guestview.kallsyms import read_kallsyms
from emu.machine.config import MachineConfig
from emu.machine.machine import Machine
from tests.conftest import IN_CI, REPO, need_tool

BUNDLE = REPO / "build" / "linux"
APPEND = "console=ttyS0 panic=-1 emu.run=memhog,pages=1024,passes=2"
MODULES = {"virtio_mmio", "virtio_blk", "virtio_net", "net_failover", "failover", "aoe",
           "sunrpc", "netfs", "grace", "lockd", "nfs", "nfs_acl", "nfsv3"}
KSYMS = ("handle_mm_fault", "do_page_fault", "swap_writepage")   # in /proc/kallsyms
USERLAND = re.compile(r"^(?:init|memhog): .*$", re.M)


def bundle() -> tuple[str, str]:
    """(Image, initrd.gz) of the bundle; skip or fail without it."""
    image, initrd = BUNDLE / "Image", BUNDLE / "initrd.gz"
    if not (image.exists() and initrd.exists()):
        if IN_CI:
            pytest.fail("build/linux is missing: .ci/run must run make linux-guest")
        pytest.skip("no Linux bundle in build/linux (make linux-guest fetches it from "
                    "Debian); not in CI, so skipping")
    return str(image), str(initrd)


def userland(console: str) -> list[str]:
    """What /init and memhog printed (the kernel's own log left out)."""
    return USERLAND.findall(console.replace("\r", ""))


@pytest.fixture(scope="module")
def on_emu() -> Machine:
    if twins.pure_forced():
        pytest.skip("EMU_PURE=1: 4.3 G instructions take minutes on the pure twins; the "
                    "compiled run (make test) boots Linux")
    image, initrd = bundle()
    m = Machine(MachineConfig(kernel=image, initrd=initrd, ram_size=256 << 20, append=APPEND,
                              max_insns=30_000_000_000))
    m.run()
    return m


def test_linux_boots_to_init_and_runs_memhog_on_emu(on_emu):
    out = on_emu.console.decode(errors="replace")
    assert on_emu.exit_status == 0, f"{on_emu.stop_reason}\n{out[-3000:]}"
    assert "Run /init as init process" in out
    loaded = re.search(r"init: modules loaded: (.*)", out)
    assert loaded and set(loaded.group(1).split()) == MODULES, out[-3000:]
    assert "memhog: pages=1024 passes=2 mismatches=0" in out
    assert "init: exit 0" in out and "reboot: Power down" in out
    assert on_emu.cpu.budget.satp_ignored == 2          # Sv57, then Sv48: ignored
    for ext in ("TIME", "IPI", "RFENCE", "SRST", "DBCN", "HSM"):   # the built-in firmware's
        assert f"SBI {ext} extension detected" in out


def test_the_same_command_line_on_qemu_prints_the_same_userland(on_emu):
    qemu = need_tool("qemu-system-riscv64")
    image, initrd = bundle()
    r = subprocess.run([qemu, "-machine", "virt", "-m", "256M", "-nographic", "-no-reboot",
                        "-kernel", image, "-initrd", initrd, "-append", APPEND],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    theirs = userland(r.stdout)
    assert "memhog: pages=1024 passes=2 mismatches=0" in theirs, r.stdout[-3000:]
    ours = userland(on_emu.console.decode(errors="replace"))
    # module order in /proc/modules can differ with load timing: compare as sets
    assert [x for x in ours if "modules loaded" not in x] == \
        [x for x in theirs if "modules loaded" not in x]


def test_the_busybox_shell_answers_a_scripted_session():
    """Console input as for xv6: --prompt/--send type lines at busybox's
    prompt; /proc/cpuinfo shows what the device tree told Linux; the
    symbols emu's debugger reads out of the Image (kallsyms.py) are the
    addresses the running kernel gives in /proc/kallsyms."""
    if twins.pure_forced():
        pytest.skip("EMU_PURE=1: Linux on the pure twins takes minutes")
    image, initrd = bundle()
    r = subprocess.run([sys.executable, "-m", "emu", "run", "-q", "-kernel", image, "-initrd",
                        initrd, "-m", "256M", "-append", "console=ttyS0 quiet", "--prompt", "# ",
                        "--send", "grep -e mmu -e isa /proc/cpuinfo; memhog pages=64 passes=1",
                        "--send", f"grep -w {' '.join('-e ' + n for n in KSYMS)} /proc/kallsyms",
                        "--send", "poweroff -f"],
                       capture_output=True, text=True, timeout=300, cwd=REPO)
    out = r.stdout.replace("\r", "")
    assert r.returncode == 0, r.stderr[-2000:]
    assert re.search(r"^mmu\s*: sv39$", out, re.M), out[-2000:]
    assert re.search(r"^isa\s*: rv64imafdc", out, re.M)
    assert "memhog: pages=64 passes=1 mismatches=0" in out
    running = {n: int(a, 16) for a, n in re.findall(r"^([0-9a-f]{16}) [tT] (\w+)$", out, re.M)}
    assert set(running) == set(KSYMS), out[-2000:]
    image = read_kallsyms(open(BUNDLE / "Image", "rb").read())
    assert {n: image.by_name[n] for n in KSYMS} == running


def test_debian_opensbi_boots_linux_on_emu():
    """Debian's OpenSBI as -bios: M-mode firmware on emu's board, Linux in
    S-mode on its SBI (PMU and HSM included), the same userland lines."""
    from tests.test_kernel_qemu import DEBIAN_OPENSBI
    if twins.pure_forced():
        pytest.skip("EMU_PURE=1: 4 G instructions take minutes on the pure twins; the "
                    "compiled run (make test) boots Linux on OpenSBI")
    if not DEBIAN_OPENSBI.exists():
        if IN_CI:
            pytest.fail(f"{DEBIAN_OPENSBI} missing: CI must install opensbi")
        pytest.skip(f"needs {DEBIAN_OPENSBI} (apt-get install opensbi); not in CI")
    image, initrd = bundle()
    m = Machine(MachineConfig(kernel=image, initrd=initrd, bios=str(DEBIAN_OPENSBI),
                              ram_size=256 << 20, append=APPEND, max_insns=30_000_000_000))
    m.run()
    out = m.console.decode(errors="replace")
    assert m.exit_status == 0, f"{m.stop_reason}\n{out[-3000:]}"
    assert "OpenSBI v" in out and "SBI HSM extension detected" in out
    assert "memhog: pages=1024 passes=2 mismatches=0" in out and "init: exit 0" in out
    assert m.stats.sbi_calls == 0            # every SBI call went to OpenSBI, none to emu's


def test_emu_debug_stops_at_linuxs_first_user_fault_and_walks_its_tables(tmp_path):
    """The debugger on Linux: a fault breakpoint on user faults stops at the
    first one (init's first fetch), `walk` reads Linux's own Sv39 tables,
    and a command that needs our kernel's structures says so in one line.
    Names come from the Image's own kallsyms table: a breakpoint on
    handle_mm_fault stops there, inside a trap from user mode (the sret
    hooks sit at the link addresses), and `symbol-file` refuses Debian's
    stub System.map but takes a real one."""
    if twins.pure_forced():
        pytest.skip("EMU_PURE=1: 3 G instructions to user space take minutes on the pure "
                    "twins; make test debugs Linux")
    image, initrd = bundle()
    stub = next((BUNDLE / "debian" / "boot").glob("System.map-*"))
    script = ("break fault user\nc\nwalk $pc x u\ninfo proc\ndelete\nbreak handle_mm_fault\nc\n"
              f"x/2i $pc\nsymbol-file {stub}\nsymbol-file {tmp_path / 'map'}\nx/1i $pc\nquit\n")
    where = read_kallsyms(open(image, "rb").read()).by_name["handle_mm_fault"]
    (tmp_path / "map").write_text(f"{where:016x} T in_a_users_own_map\n")
    r = subprocess.run([sys.executable, "-m", "emu", "debug", "-kernel", image, "-initrd",
                        initrd, "-m", "256M", "-append", "console=ttyS0 quiet emu.run=true"],
                       input=script, capture_output=True, text=True, timeout=300)
    out = r.stdout
    assert r.returncode == 0, r.stderr[-2000:]
    assert "from U-mode (satp 0x8" in out                      # Sv39 (mode 8), U fault
    assert re.search(r"L0  pte@0x[0-9a-f]+ = 0x0+  --------  invalid", out), out[-3000:]
    assert "instruction page fault (cause 12)" in out
    assert "this kernel has no process table the debugger can read" in out
    assert re.search(r"symbols: [\d,]{6,} from the Image's kallsyms table", out)
    hit = re.search(r"breakpoint 2 at (0x[0-9a-f]+) <handle_mm_fault>\n.* trap depth 1\n", out)
    assert hit, out[-3000:]
    assert f"=> {hit.group(1)} <handle_mm_fault>:" in out
    assert "System.map-" in out and "Debian's System.map is a stub" in out
    assert f"symbols: 1 from {tmp_path / 'map'}" in out
    assert hit.group(1) == f"0x{where:x}"
    assert "<in_a_users_own_map>" in out.split("symbols: 1 from")[1]
