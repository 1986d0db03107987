"""QEMU's virt command line on `emu run`: option strings read as QemuOpts,
disks placed from -drive/-device, every unsupported spelling refused with
one line (never misread), -machine virt,dumpdtb=FILE, and the console
script (--send/--prompt/--until)."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from emu.core.units import ConfigError
from emu.machine.config import DiskSpec, NicSpec
from emu.machine.console import ConsoleScript
from emu.tools import qemuflags
from tests.test_cli import emu


def test_qemuopts_syntax():
    assert qemuflags.parse_opts("virt,dumpdtb=a,,b.dtb", implied="type") == \
        {"type": "virt", "dumpdtb": "a,b.dtb"}
    assert qemuflags.parse_opts("file=x.img,if=none") == {"file": "x.img", "if": "none"}
    with pytest.raises(ConfigError, match="expected key=value"):
        qemuflags.parse_opts("file=x.img,oops")


def test_drives_and_devices_become_disks_in_device_order():
    drives = ["file=a.img,if=none,format=raw,id=x0",
              "file=b.img,if=none,format=raw,id=x1,readonly=on",
              "file=unused.img,if=none,id=x2",
              "file=c.img,format=raw,if=virtio"]
    devices = ["virtio-blk-device,drive=x1,serial=SN1",
               "virtio-blk-device,drive=x0,bus=virtio-mmio-bus.0"]
    # QEMU's placement: bus= first, the rest in the highest free slots in
    # command-line order (-device lines, then if=virtio drives)
    assert qemuflags.devices_from(drives, devices, [], snapshot=False) == ((
        DiskSpec("b.img", 7, False, True, "SN1"),
        DiskSpec("a.img", 0, False, False, ""),
        DiskSpec("c.img", 6, False, False, "")), ())
    (d,), () = qemuflags.devices_from(["file=a.img,if=none,id=x0"],
                                      ["virtio-blk-device,drive=x0"], [], snapshot=True)
    assert d.snapshot and d.slot == 7


def test_netdevs_and_net_devices_become_nics_in_device_order():
    """A NIC and a disk share the slots in command-line order; NICs get
    QEMU's default MACs counting the eNIC as NIC 0, or their mac=."""
    disks, nics = qemuflags.devices_from(
        ["file=a.img,if=none,id=d0"],
        ["virtio-net-device,netdev=n0", "virtio-blk-device,drive=d0",
         "virtio-net-device,netdev=n1,mac=02:00:00:00:00:01,host_mtu=9000,bus=virtio-mmio-bus.2,"
         "csum=off,host_tso6=no"],
        ["segment,id=n0", "segment,id=n1,netem=loss 5% delay 1ms", "segment,id=unused"],
        snapshot=False)
    assert disks == (DiskSpec("a.img", 6),)
    assert nics == (NicSpec("n0", bytes.fromhex("525400123457"), None, 7, None),
                    NicSpec("n1", bytes.fromhex("020000000001"), 9000, 2, "loss 5% delay 1ms",
                            csum=False, host_tso4=True, host_tso6=False))


@pytest.mark.parametrize("drives, devices, needle", [
    (["file=a.img,format=qcow2,if=none,id=x"], [], "raw images only"),
    (["file=a.img,if=ide,id=x"], [], "if=ide"),
    (["file=a.img,if=none"], [], "needs id=ID"),
    (["if=none,id=x"], [], "needs file="),
    (["file=a.img,if=none,id=x", "file=b.img,if=none,id=x"], [], "duplicate id"),
    (["file=a.img,if=none,id=x,aio=native"], [], "unsupported option 'aio'"),
    ([], ["virtio-blk-device,drive=nope"], "no -drive with id='nope'"),
    (["file=a.img,if=none,id=x"], ["virtio-blk-device,drive=x", "virtio-blk-device,drive=x"],
     "already in use"),
    (["file=a.img,if=none,id=x"], ["virtio-blk-device,drive=x,bus=pci.0"],
     "not virtio-mmio-bus.N"),
    (["file=a.img,if=none,id=x"], ["e1000,netdev=n0"], "virtio-blk-device and virtio-net"),
    ([], ["virtio-net-device,netdev=n9"], "no -netdev with id='n9'"),
    ([], ["virtio-net-device,netdev=n0", "virtio-net-device,netdev=n0"], "already in use"),
    ([], ["virtio-net-device,netdev=n0,mac=52:54:00:12:34"], "not six hex bytes"),
    ([], ["virtio-net-device,netdev=n0,mac=52:54:00:12:34:zz"], "not six hex bytes"),
    ([], ["virtio-net-device,netdev=n0,host_mtu=big"], "not a number"),
    ([], ["virtio-net-device,netdev=n0,host_tso4=maybe"], "host_tso4='maybe' is not on/off"),
    ([], ["virtio-net-device,netdev=n0,romfile="], "unsupported option 'romfile'"),
])
def test_bad_drive_and_device_lines(drives, devices, needle):
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(".", r"\.")):
        qemuflags.devices_from(drives, devices, ["segment,id=n0"], snapshot=False)


@pytest.mark.parametrize("netdevs, needle", [
    (["user,id=n0"], "one backend is its emulated segment"),
    (["tap,id=n0,ifname=tap0"], "one backend is its emulated segment"),
    (["segment"], "needs id=ID"),
    (["segment,id=n0", "segment,id=n0"], "duplicate id"),
    (["segment,id=n0,hostfwd=tcp::22-:22"], "unsupported option 'hostfwd'"),
])
def test_bad_netdev_lines(netdevs, needle):
    with pytest.raises(ConfigError, match=needle):
        qemuflags.devices_from([], [], netdevs, snapshot=False)


@pytest.mark.parametrize("args, needle", [
    (["-smp", "2"], "emu has one hart"),
    (["-machine", "sifive_u"], "virt board"),
    (["-machine", "virt,aclint=on"], "unsupported option 'aclint'"),
    (["-serial", "tcp::4444"], "UART is on stdio"),
    (["-monitor", "telnet::5555"], "no QEMU monitor"),
    (["-display", "gtk"], "no display"),
    (["-global", "virtio-mmio.foo=1"], "force-legacy"),
    (["-global", "virtio-mmio.force-legacy=maybe"], "not on/off"),
    # QEMU spellings emu does not know are refused whole, never read as
    # bundled or abbreviated options (-sd is not -s -d, -no not -nographic)
    (["-sd", "x.img"], "unrecognized arguments: -sd"),
    (["-no"], "unrecognized arguments: -no"),
    (["-cpu", "rv64"], "unrecognized arguments: -cpu"),
    (["-drive", "file=/nonexistent.img,if=none,format=raw,id=x0", "-device",
      "virtio-blk-device,drive=x0,bus=virtio-mmio-bus.9"], "virtio-mmio-bus.9"),
    (["--send", "ls", "--prompt", ""], "--send needs a non-empty --prompt"),
    # a NIC's port name, MAC, MTU and link are checked before the machine exists
    (["-netdev", "segment,id=guest", "-device", "virtio-net-device,netdev=guest"],
     "one the segment uses"),
    (["-netdev", "segment,id=n0,netem=loss lots", "-device", "virtio-net-device,netdev=n0"],
     "netdev 'n0'"),
    (["-netdev", "segment,id=n0", "-device", "virtio-net-device,netdev=n0,host_mtu=65536"],
     "out of range"),
    (["-netdev", "segment,id=a", "-netdev", "segment,id=b",
      "-device", "virtio-net-device,netdev=a,mac=02:00:00:00:00:01",
      "-device", "virtio-net-device,netdev=b,mac=02:00:00:00:00:01"], "used by another NIC"),
    (["-netdev", "segment,id=n0", "-device", "virtio-net-device,netdev=n0,mac=01:00:00:00:00:01"],
     "not a unicast address"),
    (["--pcap", "/dev/null", "--pcap-port", "n9"], "--pcap-port n9: no such port (the segment "
     "has e0.0, guest)"),
    # -icount: emu's clock counts instructions at a fixed rate, as QEMU's shift=N
    (["-icount", "shift=auto"], "does not adapt to the host"),
    (["-icount", "11"], "an integer 0..10"),
    (["-icount", "shift=-1"], "an integer 0..10"),
    (["-icount", "shift=two"], "an integer 0..10"),
    (["-icount", "sleep=off"], "needs shift=N"),
    (["-icount", "2,align=on"], "never paced by the host"),
    (["-icount", "2,rr=record,rrfile=x"], "unsupported option 'rr'"),
    (["-icount", "2,sleep=maybe"], "sleep='maybe' is not on/off"),
    (["-icount", "1", "--insn-ns", "3"], "-icount 1 means --insn-ns 2, not 3"),
    (["-icount", "1,sleep=off", "--clock", "wall"], "means --clock virtual, not --clock wall"),
])
def test_unsupported_qemu_spellings_are_one_line_and_status_2(args, needle):
    r = emu("run", *args)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], r.stderr


def test_the_accepted_spellings_run(kernel):
    r = emu("run", "-machine", "virt", "-smp", "1", "-nographic", "-serial", "mon:stdio",
            "-monitor", "none", "-display", "none", "-no-reboot", "-snapshot",
            "-global", "virtio-mmio.force-legacy=false", "-kernel", kernel, "-m", "16",
            "--max-insns", "2000000", "-q")
    assert r.returncode == 124, r.stderr


def test_icount_is_qemus_instruction_clock():
    # QEMU 7.2: one instruction every 2^N ns; sleep=on (its default) lets idle
    # time follow the host clock, sleep=off jumps to the next deadline
    assert qemuflags.icount_option(None) is None
    assert qemuflags.icount_option("0") == (1, "wall")
    assert qemuflags.icount_option("shift=3,sleep=off") == (8, "virtual")
    assert qemuflags.icount_option("shift=10,sleep=on,align=off") == (1024, "wall")


def test_icount_sets_the_virtual_time_per_instruction(kernel, tmp_path):
    stats = tmp_path / "s.json"
    r = emu("run", "-kernel", kernel, "-icount", "shift=2,sleep=off", "--max-insns", "3000000",
            "--stats-json", str(stats), "-q")
    assert r.returncode == 124, r.stderr
    s = json.loads(stats.read_text())
    assert s["clock"]["mode"] == "virtual"
    assert s["virtual_ns"] == 4 * s["instructions"] + s["idle_ns"]


@pytest.mark.skipif(shutil.which("dtc") is None, reason="needs dtc (device-tree-compiler)")
def test_dumpdtb_writes_the_tree_and_does_not_run(kernel, tmp_path):
    out = tmp_path / "virt.dtb"
    r = emu("run", "-machine", f"virt,dumpdtb={out}", "-kernel", kernel, "-m", "128M",
            "-append", "console=ttyS0")
    assert r.returncode == 0 and r.stdout == "", r.stdout + r.stderr
    dts = subprocess.run(["dtc", "-I", "dtb", "-O", "dts", str(out)], capture_output=True,
                         text=True, check=True)
    assert dts.stderr == ""
    assert 'bootargs = "console=ttyS0"' in dts.stdout
    assert "reg = <0x00 0x80000000 0x00 0x8000000>" in dts.stdout


class _Uart:
    def __init__(self) -> None:
        self.typed = b""

    def __call__(self, data: bytes) -> None:
        self.typed += data


def test_the_console_script_types_after_each_prompt_and_ends_on_until():
    typed, ended = _Uart(), []
    script = ConsoleScript(("ls", "echo hi"), "$ ", "done", typed, ended.append)
    out = bytearray()

    def guest(text: bytes) -> None:        # printed one byte at a time, as a UART does
        for b in text:
            out.append(b)
            script.printed(out, 1)

    guest(b"booting\n$")
    assert typed.typed == b""
    guest(b" ")
    assert typed.typed == b"ls\n"
    guest(b"ls\nREADME\ndone? not yet: $ ")   # `until` counts only after the last line
    assert typed.typed == b"ls\necho hi\n" and ended == []
    guest(b"echo hi\nhi\n$ done")
    assert ended == ["done"]
    guest(b"$ done")
    assert ended == ["done"]                   # once
