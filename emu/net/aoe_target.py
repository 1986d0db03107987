"""An AoE r11 target that answers exactly as vblade does: embedded or on a real interface.

`AoETarget.handle(frame) -> reply | None` is the protocol, transport-free and
byte-compatible with vblade 25 (aoe.c / ata.c), which tests/test_net_vblade.py
checks against a real vblade on a veth pair:

- Filters (vblade's aoe()): frames shorter than the AoE header, not AoE,
  responses (R set), for another shelf/slot (0xFFFF / 0xFF are broadcast),
  from a MAC outside a non-empty mask list are ignored; so are frames for
  another unicast MAC (a NIC filters those; vblade's raw socket does not).
- ATA (cmd 0): READ 0x20/0x24, WRITE 0x30/0x34 (the command picks LBA28,
  masked to 28 bits, or LBA48, as vblade; the E aflag is not consulted),
  IDENTIFY 0xEC (capacity in words 60-61 and 100-103, emu/net/ata.py), FLUSH
  0xE7, CHECK POWER MODE 0xE5; anything else: status DRDY|ERR, error ABRT.
  A sector count above scnt = (MTU - 36) / 512, an identify of other than 1
  sector, or write data shorter than the count: AoE error 2 (bad argument).
  An LBA range past the end: status DRDY|ERR (0x41), error IDNF (0x10). A
  reserved target (reserve list set) answers others' non-identify requests
  with AoE error 6. The reply echoes the request's header and argument with
  R set, shelf/slot filled in, and status, error and remaining sector count
  updated; its length follows vblade: 36 + 512 * sectors transferred for a
  read, else 60 bytes (so a write reply echoes the first 24 data bytes).
- Config (cmd 1): read / test exact / test prefix (no reply on mismatch),
  set if empty (error 4 if a different string is set) / force set; bufcnt,
  firmware version, scnt and the config string in every reply.
- MAC mask list (cmd 2) and reserve/release (cmd 3) as vblade, except that
  mask edits follow r11's intent: vblade 25's addmask()/rmmask() bound the
  list by nmasks bytes instead of entries (a second add can overwrite an
  entry, a delete crashes vblade), so the differential test covers only
  mask reads and adds.
- Other commands: error 1 (unrecognized command), the request echoed.

Duplicated requests are simply re-executed (AoE commands are idempotent for
plain duplicates; vblade keeps no per-tag state); a repeated (source, tag)
is only counted (`repeated_tags`).

Differences from vblade, all where vblade reads memory the request did not
fill (a stale receive buffer or an uninitialised variable): bytes past the
end of a short request read as zero; FLUSH reports error register 0; a
config, mask or reserve list that runs past the end of the frame is read
with zeros.

As a segment endpoint (`receive(wire)`), replies go out through `port` after
an optional service time in virtual time: one request at a time in arrival
order (vblade is single threaded), at most `bufcnt` waiting (more are
dropped and counted as `dropped_busy`). emu/tools/aoe_server.py runs the same protocol on a
real Linux interface for `emu aoe-target`.

Layer: net (imports only emu.core).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import Any

from emu.core.clock import Clock
from emu.net import ata
from emu.net.codec import build_ata, build_config, pad, parse
from emu.net.disk import Disk
from emu.net.fcs import append_fcs, strip_fcs
from emu.net.frames import (
    AFLAG_W,
    ATA_CHECK_POWER,
    ATA_FLUSH,
    ATA_HLEN,
    ATA_IDENTIFY,
    ATA_READ,
    ATA_READ_EXT,
    ATA_WRITE,
    ATA_WRITE_EXT,
    CCMD_FORCE_SET,
    CCMD_PREFIX,
    CCMD_READ,
    CCMD_SET,
    CCMD_TEST,
    CFG_HLEN,
    CMD_ATA,
    CMD_CONFIG,
    CMD_MASK,
    CMD_RESERVE,
    CONFIG_MAX,
    ERR_BAD_ARG,
    ERR_BAD_CMD,
    ERR_CONFIG,
    ERR_RESERVED,
    ETH_P_AOE,
    FLAG_E,
    FLAG_R,
    MASK_HLEN,
    SECTOR,
    SRR_HLEN,
)
from emu.net.store import BlockStore

VBLADE_FWVER = 0x4000 + 25   # vblade's FWV = 0x4000 + VBLADE_VERSION (Debian: 25)
DEFAULT_MODEL = "emu vblade-compatible AoE target"
DEFAULT_FIRMWARE = "V25"
DEFAULT_BUFCNT = 16          # vblade's Bufcount
MAX_MASKS = 32               # vblade's Nmasks
MAX_RESERVE = 256            # vblade's Nsrr
_TAG_MEMORY = 4096           # (source, tag) pairs remembered for repeated_tags

_MASK_READ, _MASK_EDIT = 0, 1
_DIR_NOP, _DIR_ADD, _DIR_DEL = 0, 1, 2
_MERR_BADDIR, _MERR_FULL = 2, 3


@dataclass
class TargetStats:
    """Per-target counters."""

    received: int = 0         # frames that reached the target
    bytes_in: int = 0
    crc_errors: int = 0       # dropped: bad FCS
    ignored: int = 0          # not for this target (see the filters)
    truncated: int = 0        # AoE frames too short for their command's argument
    requests: int = 0         # requests processed
    replies: int = 0
    bytes_out: int = 0
    dropped_busy: int = 0     # arrived with bufcnt requests already waiting
    repeated_tags: int = 0    # a (source, tag) seen again: a retransmit or a duplicate
    reads: int = 0
    writes: int = 0
    sectors_read: int = 0
    sectors_written: int = 0
    identify: int = 0
    flush: int = 0
    other_ata: int = 0
    config: int = 0
    mask: int = 0
    reserve: int = 0
    ata_errors: int = 0       # replies with the ATA ERR status bit
    aoe_errors: int = 0       # replies with the AoE E flag

    def as_dict(self) -> dict[str, int]:
        """The counters as a plain dict."""
        return asdict(self)


def default_mac(shelf: int, slot: int) -> bytes:
    """A locally administered MAC derived from the target's address."""
    return bytes([0x02, 0xAE, 0x00, shelf >> 8, shelf & 0xFF, slot])


class AoETarget:
    """An AoE target (shelf, slot) serving `store`; see the module docstring.

    Why this class is long: it answers the whole AoE r11 command set
    (ATA, config, MAC mask, reserve/release) with vblade's checks in vblade's
    order, as vblade's aoe.c does in one file; the checks share the target's
    state (config string, mask and reserve lists, busy queue).
    """

    def __init__(self, store: BlockStore, *, shelf: int, slot: int, mac: bytes | None = None,
                 mtu: int = 9000, bufcnt: int = DEFAULT_BUFCNT, fwver: int = VBLADE_FWVER,
                 config: bytes = b"", model: str = DEFAULT_MODEL,
                 firmware: str = DEFAULT_FIRMWARE, serial: str | None = None,
                 clock: Clock | None = None, service_ns: int = 0, sector_ns: int = 0,
                 masks: list[bytes] | None = None, promiscuous: bool = False,
                 disk: Disk | None = None) -> None:
        """Create a target. Raises ValueError for an address, MTU or size out of range.

        `serial` defaults to vblade's "shelf.slot:host" form with host "emu"
        (deterministic). `clock` is needed only for a service time. `disk`:
        a seek/rotation/transfer model (emu/net/disk.py) whose service time
        is added to each ATA request's, in arrival order.
        `promiscuous` answers frames for any destination MAC, as vblade's raw
        socket does; by default only our MAC and broadcast/multicast, as a NIC.
        """
        if not 0 <= shelf < 0xFFFF or not 0 <= slot < 0xFF:
            raise ValueError(f"AoE address e{shelf}.{slot} out of range "
                             "(shelf 0..65534, slot 0..254; 65535/255 mean broadcast)")
        if mtu < ATA_HLEN - 14 + 10 + SECTOR:
            raise ValueError(f"MTU {mtu} cannot carry one 512-byte sector")
        if not 1 <= bufcnt <= 0xFFFF or len(config) > CONFIG_MAX:
            raise ValueError("bufcnt must be 1..65535 and the config string <= 1024 bytes")
        if (service_ns or sector_ns or disk) and clock is None:
            raise ValueError("a service time needs the clock")
        self.store = store
        self.shelf, self.slot = shelf, slot
        self.mac = bytes(mac) if mac is not None else default_mac(shelf, slot)
        self.mtu = mtu
        self.scnt = (mtu - ATA_HLEN) // SECTOR   # NOTES 2: sectors per frame
        self.bufcnt = bufcnt
        self.fwver = fwver
        self.config = bytes(config)
        self.serial = serial if serial is not None else f"{shelf}.{slot}:emu"[:19]
        self.ident = ata.identify_data(store.nsectors, model=model, firmware=firmware,
                                       serial=self.serial)
        self.clock = clock
        self.service_ns, self.sector_ns = service_ns, sector_ns
        self.disk = disk
        self.masks: list[bytes] = [bytes(m) for m in (masks or [])][:MAX_MASKS]
        self.promiscuous = promiscuous
        self.reserve: list[bytes] = []
        self.port: Any = None      # the segment port handle (has send(wire))
        # True: requests are still served, but no reply leaves - a target
        # whose transmit path died (the deadlock and swap tests' dead server)
        self.silent = False
        self.stats = TargetStats()
        self._tags: OrderedDict[tuple[bytes, int], None] = OrderedDict()
        self._waiting = 0
        self._busy_until = 0

    # -- as a segment endpoint ----------------------------------------------
    def attach(self, segment: Any, name: str = "target", **links: Any) -> Any:
        """Attach to `segment` as port `name` (links: up/down/net netem specs)."""
        self.port = segment.attach(self, name, **links)
        return self.port

    def receive(self, wire: bytes) -> None:
        """Take one frame + FCS from the wire; reply through `port`."""
        st = self.stats
        st.received += 1
        st.bytes_in += len(wire)
        frame = strip_fcs(wire)
        if frame is None:
            st.crc_errors += 1
            return
        if not (self.service_ns or self.sector_ns or self.disk):
            self._reply(self.handle(frame))
            return
        if self._waiting >= self.bufcnt:
            st.dropped_busy += 1
            return
        assert self.clock is not None
        ata_req = len(frame) >= 34 and frame[19] == CMD_ATA
        sectors = frame[26] if ata_req else 0
        start = max(self.clock.now, self._busy_until)
        self._busy_until = start + self.service_ns + self.sector_ns * sectors
        if self.disk is not None and sectors:
            # AoE ATA header: sector count at 26, LBA bytes 0-5 at 28-33
            lba = int.from_bytes(frame[28:34], "little") & ((1 << 48) - 1)
            self._busy_until += self.disk.serve(start, lba, sectors)
        self._waiting += 1
        self.clock.schedule(self._busy_until, self._complete, frame)

    def _complete(self, frame: bytes) -> None:
        self._waiting -= 1
        self._reply(self.handle(frame))

    def _reply(self, reply: bytes | None) -> None:
        if reply is None or self.silent:
            return
        wire = append_fcs(pad(reply))   # a NIC pads short frames to 60 bytes
        self.stats.replies += 1
        self.stats.bytes_out += len(wire)
        if self.port is not None:
            self.port.send(wire)

    def announce_frames(self) -> list[bytes]:
        """The config advertisements vblade broadcasts at start: one to broadcast,
        or one to each MAC of a non-empty mask list (frames without FCS)."""
        return [build_config(dst, self.mac, self.shelf, self.slot, 0, flags=FLAG_R,
                             bufcnt=self.bufcnt, fwver=self.fwver, scnt=self.scnt, aoever=1,
                             ccmd=CCMD_READ, config=self.config)
                for dst in (self.masks or [b"\xff" * 6])]

    def announce(self) -> None:
        """Send the start-up advertisements through `port` (the machine calls this
        once the target is attached, as vblade does when it starts)."""
        for f in self.announce_frames():
            self._reply(f)

    # -- the protocol ---------------------------------------------------------
    def handle(self, frame: bytes | bytearray | memoryview) -> bytes | None:
        """Answer one request frame (no FCS). Returns the reply frame (no FCS, not
        padded) or None when vblade would stay silent. Never raises for any bytes."""
        frame = bytes(frame)
        st = self.stats
        n = len(frame)
        if (n < 24 or frame[12] != ETH_P_AOE >> 8 or frame[13] != ETH_P_AOE & 0xFF
                or frame[14] & FLAG_R):
            st.ignored += 1
            return None
        major, minor, src, dst = (frame[16] << 8) | frame[17], frame[18], frame[6:12], frame[0:6]
        if ((major != self.shelf and major != 0xFFFF) or (minor != self.slot and minor != 0xFF)
                or (self.masks and src not in self.masks)
                or (not self.promiscuous and not dst[0] & 1 and dst != self.mac)):
            st.ignored += 1
            return None
        cmd = frame[19]
        need = {CMD_ATA: ATA_HLEN, CMD_CONFIG: CFG_HLEN, CMD_MASK: MASK_HLEN,
                CMD_RESERVE: SRR_HLEN}.get(cmd, 24)
        if n < need:
            st.truncated += 1
            return None
        st.requests += 1
        key = (src, int.from_bytes(frame[20:24], "big"))
        if key in self._tags:
            st.repeated_tags += 1
            self._tags.move_to_end(key)
        else:
            self._tags[key] = None
            if len(self._tags) > _TAG_MEMORY:
                self._tags.popitem(last=False)
        if cmd == CMD_ATA:
            reply = self._ata(frame)
        elif cmd == CMD_CONFIG:
            reply = self._config(frame)
        elif cmd == CMD_MASK:
            reply = self._mask(frame)
        elif cmd == CMD_RESERVE:
            reply = self._srr(frame)
        else:
            reply = self._header(frame, ERR_BAD_CMD) + frame[24:]
        if reply is not None and reply[14] & FLAG_E:
            st.aoe_errors += 1
        return reply

    def _header(self, frame: bytes, error: int = 0) -> bytes:
        """The reply's 24-byte header: vblade's doaoe() edits of the request's."""
        flags = frame[14] | FLAG_R | (FLAG_E if error else 0)
        return b"".join((frame[6:12], self.mac, frame[12:14], bytes([flags, error or frame[15]]),
                         self.shelf.to_bytes(2, "big"), bytes([self.slot]), frame[19:24]))

    def _reserved_against(self, src: bytes) -> bool:
        return bool(self.reserve) and src not in self.reserve

    def _ata(self, frame: bytes) -> bytes:
        st = self.stats
        req = parse(frame)          # cannot fail: 36 bytes of AoE ATA are present
        cmd, sectors = req.cmdstat, req.scnt
        if cmd != ATA_IDENTIFY and self._reserved_against(req.src):
            return self._ata_error(frame, ERR_RESERVED)
        status, err, left, data = 0, 0, sectors, b""
        if cmd == ATA_FLUSH:
            st.flush += 1
            try:
                self.store.flush()
            except OSError:
                status, err = ata.ST_DRDY | ata.ST_ERR, ata.ERR_ABRT
        elif cmd == ATA_IDENTIFY:
            st.identify += 1
            if sectors != 1:
                return self._ata_error(frame, ERR_BAD_ARG)
            status, left, data = ata.ST_DRDY, 0, self.ident
        elif cmd == ATA_CHECK_POWER:
            st.other_ata += 1
            status, left = ata.ST_DRDY, 0xFF          # active or idle
        elif cmd in (ATA_READ, ATA_READ_EXT, ATA_WRITE, ATA_WRITE_EXT):
            lba = req.lba & (ata.MAX_LBA28 if cmd in (ATA_READ, ATA_WRITE) else (1 << 48) - 1)
            write = cmd in (ATA_WRITE, ATA_WRITE_EXT)
            if sectors > self.scnt:
                return self._ata_error(frame, ERR_BAD_ARG)
            if lba + sectors > self.store.nsectors:
                status, err = ata.ST_DRDY | ata.ST_ERR, ata.ERR_IDNF
            elif write and req.data_len < SECTOR * sectors:
                return self._ata_error(frame, ERR_BAD_ARG)
            else:
                try:
                    if write:
                        self.store.write(lba, req.data[:SECTOR * sectors])
                        st.writes += 1
                        st.sectors_written += sectors
                    else:
                        data = self.store.read(lba, sectors)
                        st.reads += 1
                        st.sectors_read += sectors
                    status, left = ata.ST_DRDY, 0
                except OSError:     # e.g. a read-only file: vblade reports ABRT
                    status, err = ata.ST_DRDY | ata.ST_ERR, ata.ERR_ABRT
        else:
            st.other_ata += 1
            status, err = ata.ST_DRDY | ata.ST_ERR, ata.ERR_ABRT
        if status & ata.ST_ERR:
            st.ata_errors += 1
        # vblade's reply length: 60, or for a non-write with a sector count,
        # the header plus the sectors actually transferred (may be <= 0: silence).
        length = 60
        if not req.aflags & AFLAG_W and sectors:
            length = ATA_HLEN + (sectors - left) * SECTOR
            if length <= 0:
                return None
        body = _data_area(frame[ATA_HLEN:], data, length - ATA_HLEN)
        reply = build_ata(frame[6:12], self.mac, self.shelf, self.slot, req.tag,
                          flags=req.flags | FLAG_R, error=req.error, aflags=req.aflags,
                          errfeat=err, scnt=left, cmdstat=status, lba=req.lba, data=body,
                          ver=req.ver)
        return _keep_reserved(reply, frame)

    def _ata_error(self, frame: bytes, error: int) -> bytes:
        """An AoE-level error: the request's first 60 bytes echoed with E set."""
        return self._header(frame, error) + _data_area(frame[24:], b"", 36)

    def _config(self, frame: bytes) -> bytes | None:
        self.stats.config += 1
        n = len(frame)
        cslen = (frame[30] << 8) | frame[31]
        ccmd = frame[29] & 0x0F
        string = frame[CFG_HLEN:CFG_HLEN + cslen].ljust(cslen, b"\0")
        error = 0
        # vblade compares the length with the whole frame length, not the string space.
        if ccmd != CCMD_READ and (cslen > CONFIG_MAX or cslen > n):
            return None
        if ccmd in (CCMD_TEST, CCMD_PREFIX):
            if ccmd == CCMD_TEST and cslen != len(self.config):
                return None
            if cslen > len(self.config) or self.config[:cslen] != string:
                return None
        elif ccmd == CCMD_SET:
            if self.config and self.config != string:
                error = ERR_CONFIG
            else:
                self.config = string
        elif ccmd == CCMD_FORCE_SET:
            self.config = string
        elif ccmd != CCMD_READ:
            error = ERR_BAD_ARG
        return build_config(frame[6:12], self.mac, self.shelf, self.slot,
                            int.from_bytes(frame[20:24], "big"),
                            flags=(frame[14] & 0x0F) | FLAG_R | (FLAG_E if error else 0),
                            error=error or frame[15], bufcnt=self.bufcnt, fwver=self.fwver,
                            scnt=self.scnt, aoever=1, ccmd=ccmd, config=self.config,
                            ver=frame[14] >> 4)

    def _mask(self, frame: bytes) -> bytes:
        self.stats.mask += 1
        mcmd, count = frame[25], frame[27]
        if mcmd == _MASK_EDIT:
            for i in range(count):
                d = frame[MASK_HLEN + 8 * i:MASK_HLEN + 8 * i + 8].ljust(8, b"\0")
                dcmd, mac = d[1], bytes(d[2:8])
                if dcmd == _DIR_DEL:
                    if mac in self.masks:
                        self.masks.remove(mac)
                elif dcmd == _DIR_ADD:
                    if mac not in self.masks:
                        if len(self.masks) >= MAX_MASKS:
                            return self._mask_reply(frame, 0, frame[24:25] + bytes(
                                [mcmd, _MERR_FULL, i]))
                        self.masks.append(mac)
                elif dcmd != _DIR_NOP:
                    return self._mask_reply(frame, 0, frame[24:25] + bytes(
                        [mcmd, _MERR_BADDIR, i]))
        elif mcmd != _MASK_READ:
            return self._mask_reply(frame, ERR_BAD_ARG, frame[24:28])
        listing = b"".join(b"\0\0" + m for m in self.masks)
        return self._mask_reply(frame, 0, frame[24:25] + bytes([mcmd, 0, len(self.masks)])
                                + listing)

    def _mask_reply(self, frame: bytes, error: int, payload: bytes) -> bytes:
        return self._header(frame, error) + payload

    def _srr(self, frame: bytes) -> bytes:
        self.stats.reserve += 1
        rcmd, count = frame[24], frame[25]
        error = 0
        if rcmd == 1 and self._reserved_against(frame[6:12]):
            error = ERR_RESERVED
        elif rcmd in (1, 2):
            if len(frame) < SRR_HLEN + 6 * count:
                error = ERR_BAD_ARG
            else:
                body = frame[SRR_HLEN:SRR_HLEN + 6 * count]
                self.reserve = [body[i:i + 6] for i in range(0, len(body), 6)][:MAX_RESERVE]
        elif rcmd != 0:
            error = ERR_BAD_ARG
        return (self._header(frame, error) + bytes([rcmd, len(self.reserve)])
                + b"".join(self.reserve))

    def stats_dict(self) -> dict[str, Any]:
        """Counters plus the target's identity (shelf, slot, scnt, bufcnt, sectors)."""
        d: dict[str, Any] = self.stats.as_dict()
        d.update(shelf=self.shelf, slot=self.slot, scnt=self.scnt, bufcnt=self.bufcnt,
                 nsectors=self.store.nsectors)
        if self.disk is not None:
            d["disk"] = self.disk.stats()
        return d


def _data_area(tail: bytes, produced: bytes, want: int) -> bytes:
    """vblade's reply data area, `want` bytes: what the command produced, laid over
    the request's own bytes from the same offset (vblade replies from the request's
    buffer), zero past the end of the request."""
    if want <= 0:
        return b""
    if len(produced) >= want:
        return produced[:want]
    area = bytearray(tail[:want].ljust(want, b"\0"))
    area[:len(produced)] = produced
    return bytes(area)


def _keep_reserved(reply: bytes, frame: bytes) -> bytes:
    """vblade echoes the ATA argument's 2 reserved bytes; the codec writes zeros."""
    if frame[34] or frame[35]:
        return reply[:34] + frame[34:36] + reply[36:]
    return reply
