"""The machine: wires RAM, the hart, the board's devices, the network and
the firmware together, loads the kernel and boots it.

What happens while it runs lives beside it, one job a module:
runloop.py (slices, time, wfi), exits.py (why unicorn stopped), traps.py
(trap delivery), console.py (console bytes in and out), firmware.py (SBI).
Tools (emu/tools, emu/debug) drive a Machine through the attributes below
and never reach into those modules' private state.

Layer: machine.
"""

from __future__ import annotations

import hashlib
from typing import IO

import unicorn as U

from emu.core import hartstate, isa, twins
from emu.core.clock import Clock
from emu.core.memory import PhysMem
from emu.core.units import ConfigError
from emu.devices.bus import Device, IrqLine
from emu.devices.clint import Clint
from emu.devices.finisher import Finisher
from emu.devices.nic import Nic
from emu.devices.plic import Plic
from emu.devices.uart import Uart
from emu.devices.virtio.blk import VirtioBlk
from emu.devices.virtio.mmio import VirtioMmio
from emu.devices.virtio.net import VirtioNet
from emu.machine import board, boot
from emu.machine.config import DiskSpec, MachineConfig, NicSpec, place_virtio
from emu.machine.console import ConsoleIO, ConsoleScript
from emu.machine.cpu import MEDELEG_S, MIDELEG_S, Cpu
from emu.machine.devicetree import build_dtb, patch_chosen
from emu.machine.exits import Exits
from emu.machine.firmware import Firmware
from emu.machine.images import default_kernel
from emu.machine.loader import Image
from emu.machine.peers import RealPeers
from emu.machine.runloop import RunLoop
from emu.machine.stats import Stats
from emu.machine.tracelog import TraceLog
from emu.machine.traps import Traps
from emu.net.network import NetConfig, Network


class Machine:
    """One emu machine built from a MachineConfig and a kernel ELF.

    Parts: `mem`, `clock`, `cpu`, `traps`, `exits`, `loop`, `console_io`,
    `peers` (real peers and the clock mode), the board's devices (`plic`,
    `clint`, `uart`, `nic`, `finisher`, `virtio` - the eight virtio-mmio
    slots -, all in `devices` by slot name), `network`, `firmware`, `image`
    (the kernel), `boot` (what was loaded, emu/machine/boot.py), `fdt` (the
    tree's address; None when no tree was handed over). After run(), `exit_status`
    holds the status for the shell (guest shutdown status, 124 when
    --max-insns ran out, 125 when the guest waits forever), `stop_reason`
    says why in words, `console` is everything the guest printed.
    """

    def __init__(self, config: MachineConfig, console: IO[bytes] | None = None,
                 kernel: str | None = None) -> None:
        config.validate()
        self.config = config
        self.mem = PhysMem(board.RAM_BASE, config.ram_size)
        self.clock: Clock = twins.pick_class("clock", config.io, Clock)()
        self.cpu = Cpu(self.mem, config.mmu, config.budget, config.traps)
        self.stats = Stats()
        self.exit_status: int | None = None
        self.stop_reason = ""
        self.idle_ns = 0
        self.log = TraceLog(config.debug, config.debug_file, self.now)
        self.peers = RealPeers(config.clock)
        self.console_io = ConsoleIO(console, self.peers)
        self.traps = Traps(self.cpu, self.stats, self.log)
        self.loop = RunLoop(self)

        self.devices: dict[str, Device] = {}
        self._virtio_specs = place_virtio(config.disks + config.nics)
        board.build(_Wiring(self))
        self.plic: Plic = self.devices["plic"]   # type: ignore[assignment]
        self.clint: Clint = self.devices["clint"]   # type: ignore[assignment]
        self.uart: Uart = self.devices["uart"]   # type: ignore[assignment]
        self.nic: Nic = self.devices["nic"]      # type: ignore[assignment]
        self.finisher: Finisher = self.devices["test"]   # type: ignore[assignment]
        self.virtio: list[VirtioMmio] = [self.devices[f"virtio{i}"]   # type: ignore[misc]
                                         for i in range(len(self._virtio_specs))]
        self.console_io.uart = self.uart
        self.clint.on_delta = self.loop.sync_time
        if config.console_send or config.console_until:
            self.console_io.script = ConsoleScript(
                config.console_send, config.console_prompt, config.console_until,
                self.console_io.type_,
                lambda text: self.loop.end(0, f"the console printed {text!r} (--until)"))
        netcfg = config.net or NetConfig(seed=config.seed, mtu=config.mtu)
        self.network = Network(self.clock, netcfg, config.io)
        self.nic.transmit = self.network.attach_guest(self.nic, config.mac).send
        for spec, transport in zip(self._virtio_specs, self.virtio, strict=True):
            if isinstance(spec, NicSpec):
                vnet = transport.device
                assert isinstance(vnet, VirtioNet)
                vnet.transmit = self.network.attach_nic(vnet, spec.netdev, spec.netem).send
        self.network.capture_port()
        for bridge in self.network.bridges:
            self.peers.add(f"bridge {bridge.iface}", bridge.sock.fileno())
        self.firmware = Firmware(
            console_write=self.console_io.write, console_read=self.console_io.read,
            set_timer=self.clint.set_stimecmp, read_phys=self._read_phys,
            write_phys=self._write_phys, shutdown=self._shutdown,
            fence_i=self.loop.request_tb_flush, sfence_vma=self.loop.request_tlb_flush,
            send_ipi=self._send_ipi)
        self.exits = Exits(self.cpu, self.traps, self.stats, self.firmware, self.log,
                           self.clint.mtime, self.loop.hook_failed,
                           builtin_sbi=config.bios == "default")

        self.boot = boot.load(config.bios, kernel or config.kernel or default_kernel(), self.mem)
        self.image: Image = self.boot.kernel
        self.fdt: int | None = None      # where the device tree is in RAM
        self.dtb = b""                   # the device tree handed to the guest
        self.log.install(self.cpu.uc, self._read_code, self._symbol, self._registers)
        self._boot()

    # -- wiring ------------------------------------------------------------
    def _map(self, slot: board.Slot, dev: Device) -> None:
        """Map `dev` at its slot: MMIO callbacks that never raise into unicorn."""
        loop = self.loop

        def rd(_uch: int, offset: int, size: int, _user: object) -> int:
            try:
                return dev.read(offset, size)
            except BaseException as exc:  # noqa: BLE001 - surfaced after emu_start
                loop.hook_failed(exc)
                return 0

        def wr(_uch: int, offset: int, size: int, value: int, _user: object) -> None:
            try:
                dev.write(offset, size, value)
            except BaseException as exc:  # noqa: BLE001 - surfaced after emu_start
                loop.hook_failed(exc)

        self.cpu.mmio_map(slot.base, slot.size, rd, wr)

    def _boot(self) -> None:
        """Start the hart as emu/machine/boot.py says, with the device tree
        (generated, or -dtb's with /chosen set) where QEMU 7.2 puts it and
        the initrd where QEMU puts it: through the reset vector in M-mode
        with a real firmware or none, or in S-mode at the kernel's entry
        with the built-in firmware (a0 = hart id, a1 = the tree; exceptions
        and interrupts delegated to S and the counters opened to S as
        OpenSBI leaves them)."""
        cfg, cpu = self.config, self.cpu
        initrd = (boot.load_initrd(cfg.initrd, self.mem, self.image.entry)
                  if cfg.initrd else None)
        self.dtb = dtb = self.device_tree(initrd)
        taken = [(self.image.low, self.image.high)]
        if self.boot.firmware is not None:
            taken.append((self.boot.firmware.low, self.boot.firmware.high))
        if initrd is not None:
            taken.append(initrd)
        self.fdt = fdt = boot.place_fdt(self.mem, len(dtb), taken)
        self.mem.write(fdt, dtb)
        cpu.set_csr("satp", 0)
        if self.boot.priv == isa.PRIV_S:
            if cpu.pmp_address is not None:
                # PMP as OpenSBI leaves it for S: entry 0, NAPOT over all of
                # memory, RWX (a hart with PMP and no entry denies S all).
                hartstate.write_pmp(cpu.pmp_address, 0, PMP_ALL_RWX, (1 << 64) - 1)
            cpu.set_csr("mideleg", MIDELEG_S)
            cpu.set_csr("medeleg", MEDELEG_S)
            cpu.set_csr("mcounteren", COUNTEREN_ALL)
            cpu.set_csr("scounteren", COUNTEREN_ALL)
            cpu.set_reg("a0", 0)
            cpu.set_reg("a1", fdt)
        else:
            start = self.boot.firmware.entry if self.boot.firmware else self.image.entry
            cpu.uc.mem_map(boot.MROM_BASE, boot.MROM_SIZE, U.UC_PROT_READ | U.UC_PROT_EXEC)
            cpu.uc.mem_write(boot.MROM_BASE, boot.reset_rom(start, fdt, self.image.entry))
        cpu.priv = self.boot.priv
        cpu.pc = self.boot.pc
        self.traps.arm()

    def _send_ipi(self) -> None:
        """SBI send_ipi to this hart: SSIP set in mip, as OpenSBI's IPI
        handler leaves it for S (software clears it through sip)."""
        self.cpu.set_csr("mip", self.cpu.csr("mip") | 1 << isa.IRQ_S_SOFT)
        self.traps.arm()

    def device_tree(self, initrd: tuple[int, int] | None = None) -> bytes:
        """The flattened device tree handed to the guest: -dtb's file with
        /chosen set, or emu's board as QEMU 7.2's virt describes it
        (emu/machine/devicetree.py), with an rng-seed drawn from --seed."""
        cfg = self.config
        if cfg.dtb:
            try:
                with open(cfg.dtb, "rb") as f:
                    blob = f.read()
            except OSError as exc:
                raise ConfigError(f"cannot open -dtb {cfg.dtb!r}: {exc.strerror}") from None
            return patch_chosen(blob, cfg.append, initrd)
        seed = hashlib.sha256(f"emu rng-seed {cfg.seed}".encode()).digest()
        return build_dtb(board.board_spec(self.mem.base, self.mem.size, cfg.append,
                                          initrd=initrd, rng_seed=seed))

    # -- time --------------------------------------------------------------
    @property
    def icount(self) -> int:
        """Instructions retired so far."""
        return self.cpu.budget.icount

    def now(self) -> int:
        """Current virtual time in ns (exact to the current block)."""
        return self.cpu.budget.icount * self.config.ns_per_insn + self.idle_ns

    # -- running -------------------------------------------------------------
    def run(self) -> int:
        """Run until shutdown, --max-insns or a hang. Returns the exit status."""
        return self.loop.run()

    def run_slice(self) -> None:
        """Run one slice (emu/machine/runloop.py)."""
        self.loop.run_slice()

    @property
    def after_slice(self) -> list:
        """Slice-end observers (timeline, progress, deadlock watch)."""
        return self.loop.after_slice

    @property
    def on_trap(self) -> list:
        """Observers of every trap delivery: cb(cause, tval, epc, interrupt)."""
        return self.traps.on_trap

    @property
    def console(self) -> bytearray:
        """Everything the guest printed so far."""
        return self.console_io.transcript

    # -- what the -d log shows ---------------------------------------------------
    def _read_code(self, va: int, size: int) -> bytes | None:
        """The bytes of a block about to run at virtual `va` (no side effects)."""
        pa = self.cpu.translate_fetch(va)
        return self.mem.read(pa, size) if pa is not None and self.mem.contains(pa, size) \
            else None

    def _symbol(self, va: int) -> str:
        hit = self.image.symbols.lookup(va)
        return f"{hit[0]}+{hit[1]}" if hit else f"0x{va:x}"

    def _registers(self) -> str:
        cpu = self.cpu
        regs = cpu.gprs()
        lines = [f" pc       {cpu.pc:016x}  priv {'USHM'[cpu.priv]}"]
        for i in range(0, 32, 4):
            lines.append(" " + " ".join(f"x{j:<2}/{isa.GPR_NAMES[j]:<4} {regs[j]:016x}"
                                        for j in range(i, i + 4)))
        return "\n".join(lines)

    # -- firmware's side effects -----------------------------------------------
    def _read_phys(self, pa: int, n: int) -> bytes | None:
        return self.mem.read(pa, n) if self.mem.contains(pa, n) else None

    def _write_phys(self, pa: int, data: bytes) -> bool:
        if not self.mem.contains(pa, len(data)):
            return False
        self.mem.write(pa, data)
        return True

    def _shutdown(self, status: int) -> None:
        self.exit_status = status
        self.stop_reason = f"guest shutdown (status {status})"
        self.loop.stop_cpu()

    def _reset_requested(self) -> None:
        # QEMU resets the machine and boots again; emu ends the run there, as
        # QEMU does with -no-reboot (docs/guests.md).
        self.exit_status = 0
        self.stop_reason = "guest asked for a reset (emu stops there, as QEMU -no-reboot)"
        self.loop.stop_cpu()


# mcounteren and scounteren as OpenSBI's mstatus_init leaves them: S, and U
# until the kernel says otherwise, may read cycle, time and instret (Linux's
# vDSO reads time in U-mode; it only narrows scounteren when its SBI PMU
# driver starts).
COUNTEREN_ALL = 0b111
PMP_ALL_RWX = 0x1F     # pmpcfg: A = NAPOT (3 << 3), X W R


class _Wiring:
    """What the board's factories get from the machine (board.Wiring)."""

    def __init__(self, m: Machine) -> None:
        self._m = m
        self.clock = m.clock
        self.mem = m.mem
        self.mac = m.config.mac
        self.mtu = m.config.mtu
        self.io = m.config.io
        self.now = m.now
        self.set_line = m.traps.set_line
        self.console_write = m.console_io.write
        self.end = m._shutdown
        self.reset = m._reset_requested

    def irq(self, source: int) -> IrqLine:
        """The PLIC line for `source`."""
        return self._m.devices["plic"].line(source)   # type: ignore[attr-defined]

    def virtio(self, index: int, slot: board.Slot) -> Device:
        """Slot `index`'s transport, with the disk or NIC the configuration
        puts there. Raises ConfigError for an image that cannot be opened."""
        m = self._m
        spec = m._virtio_specs[index]
        dev: VirtioBlk | VirtioNet | None = None
        if isinstance(spec, NicSpec):
            dev = VirtioNet(spec.mac, spec.mtu, csum=spec.csum, tso4=spec.host_tso4,
                            tso6=spec.host_tso6)
        elif isinstance(spec, DiskSpec):
            try:
                dev = VirtioBlk(spec.file, snapshot=spec.snapshot, read_only=spec.read_only,
                                serial=spec.serial)
            except (OSError, ValueError) as exc:
                why = getattr(exc, "strerror", None) or exc
                raise ConfigError(f"-drive file={spec.file}: {why}") from None
        assert slot.irq is not None
        return VirtioMmio(m.mem, self.irq(slot.irq), m.clock, dev, legacy=m.config.virtio_legacy,
                          name=slot.name)

    def attach(self, slot: board.Slot, dev: Device) -> None:
        """Record `dev` under its slot's name, give it the -d log, map it."""
        self._m.devices[slot.name] = dev
        dev.log = self._m.log
        self._m._map(slot, dev)
