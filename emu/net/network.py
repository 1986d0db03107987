"""The machine's network, assembled from a NetConfig: segment, targets, noise, pcap, bridges.

    guest NIC ==[--net, both directions]== switch == e0.0 (embedded AoE target)
                                                 == e0.1 ...
                                                 == noise generator (--noise)
                                                 == bridge to a real interface (--target iface:NAME)
                                          tap -> --pcap FILE (--pcap-snaplen)

Only the guest's port carries the `--net` impairments (each direction its own
generator), so every frame between the guest and a target crosses exactly one
impaired link. Targets, noise and bridges sit on perfect links.

`--target` (repeatable; default `mem:64M`):

    mem:SIZE[@S.N]     embedded target on a sparse in-memory disk (SIZE as -m: 64M, 1G)
    file:PATH[@S.N]    embedded target on a file (e.g. made with truncate -s)
    iface:NAME         bridge to a real interface (vblade behind it, ...): not deterministic
    iface:NAME,frames=all   ... carrying every frame, not only AoE (an NFS server: IP, ARP)

    ...,disk=MODEL     (mem and file) how long the disk takes: ram (free, the
                       default), flash, hdd (seeks and rotation: emu/net/disk.py)

Embedded targets are numbered e0.0, e0.1, ... in order unless `@S.N` is given.
The machine calls `attach_guest(nic, mac)` once (the eNIC), `attach_nic` for
each virtio-net device (each its own port, by default with the --net
impairments too), `capture_port()` once all are attached (--pcap-port: the
capture where one port meets its device, instead of at the switch),
`poll()` at every slice
boundary (bridges only), `stats()` for the report and `close()` at the end.

Layer: net (imports only emu.core).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from emu.core import twins
from emu.core.clock import Clock
from emu.core.units import ConfigError, parse_size, parse_time_ns
from emu.net.aoe_target import AoETarget
from emu.net.bridge import Bridge
from emu.net.disk import MODELS, Disk, model
from emu.net.link import derive_seed
from emu.net.netem import NetemSpec, parse_netem
from emu.net.noise import NoiseGenerator, parse_noise
from emu.net.pcap import DEFAULT_SNAPLEN, PcapTap, check_snaplen
from emu.net.rawsock import ETH_P_AOE
from emu.net.segment import Endpoint, Port, Segment
from emu.net.store import SECTOR, FileStore, MemoryStore

_TARGET = re.compile(r"^(mem|file|iface):(.+?)(?:@(\d+)\.(\d+))?$")


@dataclass
class TargetSpec:
    """One parsed --target."""

    kind: str                 # "mem" | "file" | "iface"
    arg: str                  # size text, path or interface name
    shelf: int | None = None
    slot: int | None = None
    disk: str = "ram"         # emu/net/disk.py model
    all_frames: bool = False  # iface: bridge every ethertype, not only AoE


def parse_target(text: str) -> TargetSpec:
    """Parse one --target value. Raises ConfigError (one line)."""
    head, *opts = text.strip().split(",")
    disk, all_frames = "ram", False
    bridge = head.startswith("iface:")
    for opt in opts:
        key, _, value = (x.strip() for x in opt.partition("="))
        if bridge and key == "frames" and value in ("aoe", "all"):
            all_frames = value == "all"
        elif not bridge and key == "disk" and value in MODELS:
            disk = value
        else:
            raise ConfigError(f"bad --target {text!r}: options are disk={'|'.join(MODELS)} "
                              "(mem, file) and frames=aoe|all (iface)")
    m = _TARGET.match(head)
    if m is None:
        raise ConfigError(f"bad --target {text!r} (expected mem:SIZE, file:PATH or iface:NAME, "
                          "optionally @SHELF.SLOT for mem/file)")
    kind, arg = m.group(1), m.group(2)
    shelf = int(m.group(3)) if m.group(3) is not None else None
    slot = int(m.group(4)) if m.group(4) is not None else None
    if kind == "iface" and shelf is not None:
        raise ConfigError(f"bad --target {text!r}: a bridge has no shelf.slot")
    if kind == "mem":
        parse_size(arg)  # ConfigError if bad
    if shelf is not None and (shelf >= 0xFFFF or slot is None or slot >= 0xFF):
        raise ConfigError(f"bad --target {text!r}: shelf 0..65534, slot 0..254")
    return TargetSpec(kind, arg, shelf, slot, disk, all_frames)


@dataclass
class Parsed:
    """A NetConfig's values parsed once, at validation: what Network builds from."""

    netem: NetemSpec
    noise: tuple[float, int] | None       # (frames per second, frame size)
    targets: tuple[TargetSpec, ...]
    service_ns: int


@dataclass
class NetConfig:
    """The network knobs of a run (the CLI's --net, --noise, --pcap,
    --pcap-snaplen, --target...), kept as the user spelled them; `parsed()`
    is what the network is built from."""

    net: str = ""
    noise: str | None = None
    pcap: str | None = None
    pcap_snaplen: int = DEFAULT_SNAPLEN     # bytes kept of each frame, 0: whole frames
    pcap_port: str | None = None          # capture at this port's endpoint, not the switch
    targets: tuple[str, ...] = ("mem:64M",)
    target_service: str = "0us"
    seed: int = 0
    mtu: int = 9000

    def parsed(self) -> Parsed:
        """Parse every value once. Raises ConfigError (one line) if any is bad."""
        try:
            netem = parse_netem(self.net)
            noise = parse_noise(self.noise) if self.noise is not None else None
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        check_snaplen(self.pcap_snaplen)
        return Parsed(netem, noise, tuple(parse_target(t) for t in self.targets),
                      parse_time_ns(self.target_service))

    def validate(self) -> None:
        """Raise ConfigError (one line) if any value is bad."""
        self.parsed()

    @property
    def deterministic(self) -> bool:
        """False when a bridge to a real interface is configured."""
        return not any(parse_target(t).kind == "iface" for t in self.targets)


class Network:
    """The assembled network of one machine (see the module docstring)."""

    def __init__(self, clock: Clock, cfg: NetConfig, impl: str = "auto") -> None:
        """Build everything but the guest's port. `impl` picks the twins of
        the segment and the embedded targets (emu/core/twins.py: "python",
        "fast" or "auto"; the compiled segment runs compiled links). Raises
        ConfigError for bad values, OSError/ValueError/PermissionError for
        files and interfaces."""
        self.clock, self.cfg = clock, cfg
        self.parsed = parsed = cfg.parsed()
        self.segment: Segment = twins.pick_class("segment", impl, Segment)(clock, seed=cfg.seed)
        target_class = twins.pick_class("aoe_target", impl, AoETarget)
        self.targets: list[AoETarget] = []
        self.bridges: list[Bridge] = []
        self._files: list[FileStore] = []
        self.noise: NoiseGenerator | None = None
        self.guest: Port | None = None
        slot = 0
        for spec in parsed.targets:
            if spec.kind == "iface":
                bridge = Bridge(spec.arg, ethertype=None if spec.all_frames else ETH_P_AOE)
                bridge.port = self.segment.attach(bridge, f"bridge-{spec.arg}")
                self.bridges.append(bridge)
                continue
            if spec.kind == "mem":
                store: Any = MemoryStore(parse_size(spec.arg) // SECTOR)
            else:
                store = FileStore(spec.arg)
                self._files.append(store)
            shelf, sl = (spec.shelf, spec.slot) if spec.shelf is not None else (0, slot)
            slot += 1
            target = target_class(store, shelf=shelf, slot=sl, mtu=cfg.mtu, clock=clock,
                                  service_ns=parsed.service_ns,
                                  disk=None if spec.disk == "ram"
                                  else Disk(model(spec.disk), store.nsectors))
            target.attach(self.segment, f"e{shelf}.{sl}")
            self.targets.append(target)
        self.pcap = PcapTap(cfg.pcap, cfg.pcap_snaplen) if cfg.pcap else None
        if self.pcap is not None and cfg.pcap_port is None:
            self.segment.add_tap(self.pcap)

    def attach_guest(self, nic: Endpoint, mac: bytes) -> Port:
        """Attach the guest NIC (with the --net impairments) and start the noise
        generator and the targets' start-up announcements. Returns the port whose
        send(wire) the NIC's transmit path calls."""
        self.guest = self.segment.attach(nic, "guest", net=self.parsed.netem)
        if self.parsed.noise is not None:
            fps, size = self.parsed.noise
            self.noise = NoiseGenerator(self.clock, mac, fps, size,
                                        seed=derive_seed(self.cfg.seed, "noise"))
            self.noise.port = self.segment.attach(self.noise, "noise")
            self.noise.start()
        for t in self.targets:
            t.announce()
        return self.guest

    def attach_nic(self, nic: Endpoint, name: str, netem: str | None = None) -> Port:
        """Attach another guest NIC (a virtio-net device) as port `name`,
        behind `netem` (--net's spelling; None: the --net impairments, each
        direction its own generator seeded from the port's name). Returns
        the port. Raises ConfigError for a bad spec, ValueError for a name
        already attached."""
        try:
            spec = self.parsed.netem if netem is None else parse_netem(netem)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        return self.segment.attach(nic, name, net=spec)

    def capture_port(self) -> None:
        """With --pcap-port, put the capture on that port (call once every
        port is attached). Raises ConfigError naming the ports there are."""
        name = self.cfg.pcap_port
        if self.pcap is None or name is None:
            return
        port = self.segment.ports.get(name)
        if port is None:
            raise ConfigError(f"--pcap-port {name}: no such port (the segment has "
                              f"{', '.join(sorted(self.segment.ports))})")
        port.taps.append(self.pcap)

    def poll(self) -> int:
        """Bring in frames from bridged interfaces (call at slice boundaries)."""
        return sum(b.poll() for b in self.bridges)

    @property
    def deterministic(self) -> bool:
        """False when bridged to a real interface."""
        return not self.bridges

    def stats(self) -> dict[str, Any]:
        """Everything countable: segment (ports and links), targets, noise, pcap, bridges."""
        return {
            "deterministic": self.deterministic,
            "segment": self.segment.stats(),
            "targets": {f"e{t.shelf}.{t.slot}": t.stats_dict() for t in self.targets},
            "noise": self.noise.stats() if self.noise else None,
            "pcap": self.pcap.stats() if self.pcap else None,
            "bridges": {b.iface: b.as_dict() for b in self.bridges},
        }

    def close(self) -> None:
        """Flush the capture, close bridges and files. Idempotent."""
        if self.noise is not None:
            self.noise.stop()
        if self.pcap is not None:
            self.pcap.close()
        for b in self.bridges:
            b.close()
        for f in self._files:
            f.close()
