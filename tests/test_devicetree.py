"""The device tree (emu/machine/devicetree.py) against dtc and QEMU 7.2.

dtc (Debian's device-tree-compiler) must read every tree without a warning.
For the board of issue 12 at -m 128M, each node both machines have must
match QEMU 7.2's own tree (`-machine virt,dumpdtb=F -m 128M -smp 1`)
property by property, byte for byte and in the same order, except the
documented differences (DIFFERENCES); the nodes emu leaves out and the one
it adds are listed too (LEFT_OUT, EMU_ONLY). /chosen is compared with
QEMU's for the same -append and initrd. The DTB's address must be QEMU's
for the same RAM size, and QEMU's OpenSBI must find the board in emu's tree
(-dtb). The `riscv,isa` string is checked against what the
pinned unicorn executes. Trees are read back with a small reader of the
DTB format written here, independent of the library that writes them.

dtc and qemu-system-riscv64: a test that needs one is skipped (saying why)
outside CI and fails in CI, which installs both (.ci/run).
"""

from __future__ import annotations

import os
import re
import select
import struct
import subprocess
import time
from pathlib import Path

import pytest
import unicorn as U
from unicorn import riscv_const as R

from emu.machine.devicetree import (
    FDT_MAX_SIZE,
    RISCV_ISA,
    BoardSpec,
    ChosenSpec,
    DeviceSpec,
    HartSpec,
    build_dtb,
    fdt_address,
)
from tests.conftest import need_tool as need

MIB = 1 << 20

# The board of issue 12 (QEMU's virt with one hart, emu's eNIC at 0x4000000).
VIRT_DEVICES = (
    DeviceSpec("test", 0x100000, 0x1000),
    DeviceSpec("clint", 0x2000000, 0x10000),
    DeviceSpec("other", 0x4000000, 0x1000, irq=64, name="ethernet", compatible=("emu,enic",)),
    DeviceSpec("plic", 0xC000000, 0x600000, ndev=96),
    DeviceSpec("serial", 0x10000000, 0x100, irq=10),
    *(DeviceSpec("virtio_mmio", 0x10001000 + 0x1000 * i, 0x1000, irq=1 + i) for i in range(8)),
)
VIRT = BoardSpec(0x8000_0000, 128 * MIB, VIRT_DEVICES)

# QEMU 7.2's nodes that emu does not have, and emu's that QEMU does not.
LEFT_OUT = {"/pmu", "/fw-cfg@10100000", "/flash@20000000", "/platform-bus@4000000",
            "/soc/rtc@101000", "/soc/pci@30000000"}
EMU_ONLY = {"/soc/ethernet@4000000"}


def _cstr(*values: str) -> bytes:
    return b"".join(v.encode() + b"\0" for v in values)


# (node, property): emu's value (None: emu has no such property), for every
# property where the two trees differ on a node both have.
DIFFERENCES = {
    ("/", "model"): _cstr("riscv-virtio,emu"),
    ("/cpus/cpu@0", "riscv,isa"): _cstr("rv64imafdc_zicsr_zifencei"),
    ("/cpus/cpu@0", "mmu-type"): _cstr("riscv,sv39"),
    ("/cpus/cpu@0/interrupt-controller", "#address-cells"): struct.pack(">I", 0),
    ("/chosen", "rng-seed"): None,          # QEMU's is random; emu's only when given
}


def read_dtb(blob: bytes) -> dict[str, list[tuple[str, bytes]]]:
    """Every node of a DTB by path, in the blob's order, with its properties
    (name, raw value) in order. Checks the v17 header on the way."""
    (magic, total, off_struct, off_strings, _rsv, version, last_comp, _cpu, size_strings,
     size_struct) = struct.unpack_from(">10I", blob)
    assert (magic, version, last_comp) == (0xD00DFEED, 17, 16)
    assert total <= len(blob) and off_strings + size_strings <= total
    strings = blob[off_strings:off_strings + size_strings]
    nodes: dict[str, list[tuple[str, bytes]]] = {}
    path: list[str] = []
    pos = off_struct
    while True:
        (tag,) = struct.unpack_from(">I", blob, pos)
        pos += 4
        if tag == 1:                                    # FDT_BEGIN_NODE
            end = blob.index(b"\0", pos)
            path.append(blob[pos:end].decode())
            pos = (end + 4) & ~3
            nodes["/" + "/".join(path[1:])] = []
        elif tag == 2:                                  # FDT_END_NODE
            path.pop()
        elif tag == 3:                                  # FDT_PROP
            length, nameoff = struct.unpack_from(">II", blob, pos)
            name = strings[nameoff:strings.index(b"\0", nameoff)].decode()
            nodes["/" + "/".join(path[1:])].append((name, blob[pos + 8:pos + 8 + length]))
            pos = (pos + 8 + length + 3) & ~3
        elif tag == 9:                                  # FDT_END
            assert pos - off_struct == size_struct
            return nodes
        else:
            assert tag == 4, f"bad tag {tag} at {pos - 4}"  # FDT_NOP


def props(nodes: dict[str, list[tuple[str, bytes]]], path: str) -> dict[str, bytes]:
    return dict(nodes[path])


@pytest.fixture(scope="module")
def qemu_tree(tmp_path_factory) -> dict[str, list[tuple[str, bytes]]]:
    """QEMU 7.2's own tree for `-machine virt -m 128M -smp 1`."""
    qemu = need("qemu-system-riscv64")
    out = tmp_path_factory.mktemp("qemu") / "virt.dtb"
    subprocess.run([qemu, "-machine", f"virt,dumpdtb={out}", "-m", "128M", "-smp", "1",
                    "-nographic"], check=True, capture_output=True, timeout=60)
    return read_dtb(out.read_bytes())


def dtc(blob: bytes, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`dtc -I dtb -O dts` of `blob`."""
    path = tmp_path / "t.dtb"
    path.write_bytes(blob)
    return subprocess.run([need("dtc"), "-I", "dtb", "-O", "dts", str(path)],
                          capture_output=True, text=True, timeout=60)


# -- dtc -----------------------------------------------------------------------

MINIMAL = BoardSpec(0x8000_0000, 16 * MIB, (
    DeviceSpec("serial", 0x10000000, 0x100, irq=10), DeviceSpec("plic", 0xC000000, 0x600000,
                                                                 ndev=96)))
NO_PLIC = BoardSpec(0x8000_0000, 16 * MIB, (
    DeviceSpec("test", 0x100000, 0x1000), DeviceSpec("clint", 0x2000000, 0x10000),
    DeviceSpec("other", 0x4000000, 0x1000, name="ethernet", compatible=("emu,enic", "x"))))
WITH_CHOSEN = BoardSpec(0x8000_0000, 128 * MIB, VIRT_DEVICES, chosen=ChosenSpec(
    bootargs="console=ttyS0 root=/dev/vda ro", initrd=(0x8420_0000, 0x8420_1388),
    rng_seed=bytes(range(32))))


@pytest.mark.peer
@pytest.mark.parametrize("spec", [VIRT, MINIMAL, NO_PLIC, WITH_CHOSEN],
                         ids=["virt", "minimal", "no-plic", "chosen"])
def test_dtc_reads_the_tree_without_a_warning(spec, tmp_path):
    blob = build_dtb(spec)
    run = dtc(blob, tmp_path)
    assert run.returncode == 0 and run.stderr == "", run.stderr
    assert "/dts-v1/;" in run.stdout
    # Packed, as QEMU packs its tree: the header's size is the blob's.
    assert struct.unpack_from(">I", blob, 4)[0] == len(blob)
    read_dtb(blob)


@pytest.mark.peer
def test_qemu_own_tree_draws_the_interrupt_provider_warning_emu_avoids(tmp_path):
    qemu = need("qemu-system-riscv64")
    out = tmp_path / "virt.dtb"
    subprocess.run([qemu, "-machine", f"virt,dumpdtb={out}", "-m", "128M", "-smp", "1",
                    "-nographic"], check=True, capture_output=True, timeout=60)
    run = dtc(out.read_bytes(), tmp_path)
    assert run.stderr.splitlines() == [
        "<stdout>: Warning (interrupt_provider): /cpus/cpu@0/interrupt-controller: "
        "Missing #address-cells in interrupt provider"]


# -- QEMU 7.2's tree, node by node -------------------------------------------------

@pytest.mark.peer
def test_nodes_are_qemus_less_what_emu_leaves_out(qemu_tree):
    ours = read_dtb(build_dtb(VIRT))
    assert LEFT_OUT <= set(qemu_tree)
    assert set(ours) == (set(qemu_tree) - LEFT_OUT) | EMU_ONLY
    # ... and in QEMU's order, so that the two dts files diff cleanly.
    assert [p for p in ours if p in qemu_tree] == [p for p in qemu_tree if p in ours]


@pytest.mark.peer
def test_each_shared_node_matches_qemu_property_by_property(qemu_tree):
    ours = read_dtb(build_dtb(VIRT))
    differing = {}
    for path in set(ours) & set(qemu_tree):
        mine, theirs = props(ours, path), props(qemu_tree, path)
        for name in set(mine) | set(theirs):
            if mine.get(name) != theirs.get(name):
                differing[(path, name)] = mine.get(name)
        shared = [n for n, _ in ours[path] if n in theirs]
        assert shared == [n for n, _ in qemu_tree[path] if n in mine], path
    assert differing == DIFFERENCES


@pytest.mark.peer
def test_the_added_enic_node_has_a_virtio_nodes_shape(qemu_tree):
    ours = read_dtb(build_dtb(VIRT))
    enic = ours["/soc/ethernet@4000000"]
    virtio = qemu_tree["/soc/virtio_mmio@10001000"]
    assert [n for n, _ in enic] == [n for n, _ in virtio]
    assert dict(enic) == {
        "interrupts": struct.pack(">I", 64),
        "interrupt-parent": props(qemu_tree, "/soc/plic@c000000")["phandle"],
        "reg": struct.pack(">4I", 0, 0x4000000, 0, 0x1000),
        "compatible": b"emu,enic\0"}


@pytest.mark.peer
def test_chosen_matches_qemu_for_the_same_append_and_initrd(kernel, tmp_path):
    qemu = need("qemu-system-riscv64")
    initrd = tmp_path / "initrd"
    initrd.write_bytes(bytes(5000))
    out = tmp_path / "q.dtb"
    append = "console=ttyS0 root=/dev/vda rw  quiet"
    subprocess.run([qemu, "-machine", f"virt,dumpdtb={out}", "-m", "128M", "-smp", "1",
                    "-nographic", "-kernel", kernel, "-initrd", str(initrd),
                    "-append", append], check=True, capture_output=True, timeout=60)
    theirs = dict(read_dtb(out.read_bytes())["/chosen"])
    start, end = (struct.unpack(">I", theirs[k])[0]
                  for k in ("linux,initrd-start", "linux,initrd-end"))
    assert end - start == 5000
    spec = BoardSpec(VIRT.ram_base, VIRT.ram_size, VIRT_DEVICES,
                     chosen=ChosenSpec(bootargs=append, initrd=(start, end)))
    ours = read_dtb(build_dtb(spec))["/chosen"]
    del theirs["rng-seed"]
    assert ours == list(theirs.items())


@pytest.mark.peer
def test_opensbi_finds_the_board_in_emus_tree(tmp_path):
    """QEMU 7.2 with emu's tree instead of its own (-dtb): its OpenSBI takes
    the console, timer, IPI and reset devices from the tree and passes the
    tree on at the address fdt_address gives."""
    qemu = need("qemu-system-riscv64")
    blob = build_dtb(VIRT)
    dtb = tmp_path / "emu.dtb"
    dtb.write_bytes(blob)
    proc = subprocess.Popen([qemu, "-machine", "virt", "-m", "128M", "-smp", "1",
                             "-nographic", "-dtb", str(dtb)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    banner = b""
    deadline = time.monotonic() + 60
    try:        # until the banner is out: OpenSBI then has no kernel to jump to
        while b"Boot HART ID" not in banner and time.monotonic() < deadline:
            if select.select([proc.stdout], [], [], 0.5)[0]:
                chunk = os.read(proc.stdout.fileno(), 4096)
                if not chunk:
                    break
                banner += chunk
    finally:
        proc.kill()
        proc.wait()
    lines = dict(tuple(p.strip() for p in line.split(":", 1))
                 for line in banner.decode(errors="replace").splitlines() if ":" in line)
    assert lines["Platform Name"] == "riscv-virtio,emu"
    assert lines["Platform HART Count"] == "1"
    assert lines["Platform IPI Device"] == "aclint-mswi"
    assert lines["Platform Timer Device"] == "aclint-mtimer @ 10000000Hz"
    assert lines["Platform Console Device"] == "uart8250"
    assert lines["Platform Shutdown Device"] == "sifive_test"
    assert int(lines["Domain0 Next Arg1"], 16) == fdt_address(VIRT.ram_base, VIRT.ram_size,
                                                              len(blob))


# -- /chosen --------------------------------------------------------------------------

def chosen(**kw) -> dict[str, bytes]:
    return props(read_dtb(build_dtb(BoardSpec(VIRT.ram_base, VIRT.ram_size, VIRT_DEVICES,
                                              chosen=ChosenSpec(**kw)))), "/chosen")


def test_chosen_holds_bootargs_initrd_seed_and_the_uarts_path():
    c = chosen(bootargs="console=ttyS0 earlycon=sbi", initrd=(0x8400_0000, 0x8410_0000),
               rng_seed=b"\x01\x02\x03\x04" * 8)
    assert c == {
        "linux,initrd-end": struct.pack(">I", 0x8410_0000),
        "linux,initrd-start": struct.pack(">I", 0x8400_0000),
        "rng-seed": b"\x01\x02\x03\x04" * 8,
        "bootargs": b"console=ttyS0 earlycon=sbi\0",
        "stdout-path": b"/soc/serial@10000000\0"}


def test_chosen_leaves_out_what_is_not_given():
    assert chosen() == {"stdout-path": b"/soc/serial@10000000\0"}
    no_uart = BoardSpec(VIRT.ram_base, VIRT.ram_size,
                        tuple(d for d in VIRT_DEVICES if d.kind != "serial"),
                        chosen=ChosenSpec(bootargs="quiet"))
    assert props(read_dtb(build_dtb(no_uart)), "/chosen") == {"bootargs": b"quiet\0"}


def test_bootargs_may_be_utf8():
    assert chosen(bootargs="name=é")["bootargs"] == "name=é\0".encode()


def test_an_initrd_above_4gib_takes_two_cells():
    spec = BoardSpec(0x8000_0000, 8 << 30, VIRT_DEVICES,
                     chosen=ChosenSpec(initrd=(0x1_8000_0000, 0x1_8000_1000)))
    c = props(read_dtb(build_dtb(spec)), "/chosen")
    assert c["linux,initrd-start"] == struct.pack(">2I", 1, 0x8000_0000)
    assert c["linux,initrd-end"] == struct.pack(">2I", 1, 0x8000_1000)


def test_without_a_plic_the_test_finisher_takes_phandle_3():
    tree = read_dtb(build_dtb(NO_PLIC))
    assert props(tree, "/soc/test@100000")["phandle"] == struct.pack(">I", 3)
    assert props(tree, "/poweroff")["regmap"] == struct.pack(">I", 3)
    assert "interrupts" not in props(tree, "/soc/ethernet@4000000")
    assert "/reboot" in tree and "/soc/plic@c000000" not in tree


# -- where the tree goes --------------------------------------------------------

# Read from QEMU 7.2's reset vector (the a1 it loads) for a 4 KiB tree.
QEMU_FDT_ADDR = {16: 0x80E0_0000, 128: 0x87E0_0000, 2047: 0xBFE0_0000, 2048: 0xBFE0_0000,
                 4096: 0xBFE0_0000}


@pytest.mark.parametrize("mib", sorted(QEMU_FDT_ADDR))
def test_fdt_address_is_qemus(mib):
    assert fdt_address(0x8000_0000, mib * MIB, 4222) == QEMU_FDT_ADDR[mib]


def test_fdt_address_above_3gib_follows_the_end_of_ram():
    assert fdt_address(0x1_0000_0000, 64 * MIB, 0x1000) == 0x1_03E0_0000


@pytest.mark.peer
@pytest.mark.parametrize("mib", [16, 128, 2047])
def test_fdt_address_matches_a_live_qemu(mib, tmp_path):
    qemu = need("qemu-system-riscv64")
    dump = tmp_path / "v.dtb"
    args = ["-machine", "virt", "-m", f"{mib}M", "-smp", "1", "-bios", "none"]
    subprocess.run([qemu, *args[:1], f"virt,dumpdtb={dump}", *args[2:], "-nographic"],
                   check=True, capture_output=True, timeout=60)
    size = struct.unpack_from(">I", dump.read_bytes(), 4)[0]
    # QEMU's reset vector holds the tree's address at 0x1020 (a1 at entry).
    run = subprocess.run([qemu, *args, "-S", "-monitor", "stdio", "-display", "none",
                          "-serial", "none", "-nodefaults"], input="xp /2wx 0x1020\nquit\n",
                         capture_output=True, text=True, timeout=60)
    m = re.search(r"0000000000001020: (0x[0-9a-f]+) (0x[0-9a-f]+)", run.stdout)
    assert m, run.stdout
    assert fdt_address(0x8000_0000, mib * MIB, size) == int(m[1], 16) | int(m[2], 16) << 32


def test_the_tree_fits_one_page_and_a_long_cmdline_is_refused():
    assert len(build_dtb(WITH_CHOSEN)) <= 4096
    huge = BoardSpec(VIRT.ram_base, VIRT.ram_size, VIRT_DEVICES,
                     chosen=ChosenSpec(bootargs="x" * FDT_MAX_SIZE))
    with pytest.raises(ValueError, match="over the 1048576-byte limit"):
        build_dtb(huge)


# -- riscv,isa against the pinned unicorn -------------------------------------------------

# One instruction of each extension (rs1 = x3 points at RAM, FS is on).
PROBES = {
    "i": 0x003100B3,          # add x1, x2, x3
    "m": 0x023100B3,          # mul
    "a": 0x0021B0AF,          # amoadd.d x1, x2, (x3)
    "f": 0x003100D3,          # fadd.s
    "d": 0x023100D3,          # fadd.d
    "c": 0x0085,              # c.addi x1, 1
    "zicsr": 0x340020F3,      # csrrs x1, mscratch, x0
    "zifencei": 0x0000100F,   # fence.i
}
REFUSED = {
    "q": 0x063100D3,          # fadd.q
    "h": 0x22000073,          # hfence.vma
    "v": 0x000170D7,          # vsetvli
    "zba": 0x203120B3,        # sh1add
    "zbb": 0x403170B3,        # andn
    "zbc": 0x0A3110B3,        # clmul
    "zbs": 0x283110B3,        # bset
    "zfh": 0x00019087,        # flh
    "zicbom": 0x0011A00F,     # cbo.clean (x3)
    "zicboz": 0x0041A00F,     # cbo.zero (x3)
    "svinval": 0x16000073,    # sinval.vma
    "sstc": 0x14D020F3,       # csrr x1, stimecmp
}


def executes(insn: int) -> bool:
    """True when unicorn runs `insn` in M-mode; False when it traps."""
    uc = U.Uc(U.UC_ARCH_RISCV, U.UC_MODE_RISCV64)
    uc.mem_map(0x1000, 0x1000)
    uc.mem_map(0x8000_0000, 0x1000)
    code = struct.pack("<I" if insn & 3 == 3 else "<H", insn)
    uc.mem_write(0x1000, code)
    uc.reg_write(R.UC_RISCV_REG_X3, 0x8000_0000)
    uc.reg_write(R.UC_RISCV_REG_MSTATUS, 0x2000)   # FS = initial
    try:
        uc.emu_start(0x1000, 0x1000 + len(code), count=1)
    except U.UcError:
        return False
    return uc.reg_read(R.UC_RISCV_REG_PC) == 0x1000 + len(code)


def test_riscv_isa_advertises_exactly_what_unicorn_executes():
    base, *multi = RISCV_ISA.split("_")
    assert base.startswith("rv64")
    advertised = [*base[4:], *multi]
    assert set(advertised) == set(PROBES)
    for ext, insn in PROBES.items():
        assert executes(insn), ext
    for ext, insn in REFUSED.items():
        assert not executes(insn), ext


# -- bad descriptions -------------------------------------------------------------------

def board(*devices: DeviceSpec, **kw) -> BoardSpec:
    return BoardSpec(kw.pop("ram_base", 0x8000_0000), kw.pop("ram_size", 16 * MIB),
                     devices, **kw)


PLIC = DeviceSpec("plic", 0xC000000, 0x600000, ndev=96)
BAD = {
    "unknown kind": (board(DeviceSpec("rtc", 0x101000, 0x1000)), "kind 'rtc' unknown"),
    "serial without irq": (board(PLIC, DeviceSpec("serial", 0x10000000, 0x100)),
                           "needs a PLIC source"),
    "clint with irq": (board(PLIC, DeviceSpec("clint", 0x2000000, 0x10000, irq=3)),
                       "raises no PLIC interrupt"),
    "irq without plic": (board(DeviceSpec("serial", 0x10000000, 0x100, irq=10)),
                         "PLIC source 10 but the board has no PLIC"),
    "irq past ndev": (board(PLIC, DeviceSpec("virtio_mmio", 0x10001000, 0x1000, irq=97)),
                      "PLIC sources 1..96"),
    "plic without ndev": (board(DeviceSpec("plic", 0xC000000, 0x600000)), "ndev"),
    "two plics": (board(PLIC, DeviceSpec("plic", 0xD000000, 0x600000, ndev=8)),
                  "2 plic devices"),
    "overlap": (board(PLIC, DeviceSpec("serial", 0xC100000, 0x100, irq=10)),
                "overlaps serial@c100000"),
    "device in RAM": (board(DeviceSpec("test", 0x8000_1000, 0x1000)), "RAM at 0x80000000"),
    "empty ram": (board(ram_size=0), "RAM: base"),
    "other without compatible": (board(DeviceSpec("other", 0x4000000, 0x1000, name="x")),
                                 "needs a compatible"),
    "other with a bad name": (board(DeviceSpec("other", 0x4000000, 0x1000, name="a b",
                                               compatible=("x",))), "node name 'a b'"),
    "compatible on a uart": (board(PLIC, DeviceSpec("serial", 0x10000000, 0x100, irq=10,
                                                    compatible=("x",))), "for kind 'other'"),
    "bad isa": (board(hart=HartSpec(isa="RV64GC")), "not an rv64 ISA string"),
    "timebase": (board(hart=HartSpec(timebase_hz=1 << 32)), "32-bit cell"),
    "nul in bootargs": (board(chosen=ChosenSpec(bootargs="a\0b")), "NUL"),
    "initrd outside RAM": (board(chosen=ChosenSpec(initrd=(0x9000_0000, 0x9000_1000))),
                           "not inside RAM"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_description_is_a_one_line_value_error(case):
    spec, words = BAD[case]
    with pytest.raises(ValueError) as err:
        build_dtb(spec)
    message = str(err.value)
    assert words in message and "\n" not in message


def test_ram_too_small_for_the_tree_is_a_value_error():
    with pytest.raises(ValueError, match="does not fit in 0 MiB"):
        fdt_address(0x8000_0000, 0x800, 0x1000)
