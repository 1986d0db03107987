# cython: language_level=3
"""Compiled twin of emu/net/aoe_target.py: the vblade-compatible AoE target.

Same names, contract, replies and counters as the reference (its docstring
is the protocol, and tests/test_net_vblade.py holds the reference against a
real vblade). What is compiled is the data path a swapped page takes - the
endpoint (`receive`, the service queue, `_reply`), the request filters and
the ATA read/write/flush/identify handling, with the counters as C fields;
the frames are still parsed and built by the frame codec's compiled twin,
and the rare commands (config, MAC mask, reserve) are the reference's own
code, run on this object. Constants come from the reference."""

from collections import OrderedDict
from dataclasses import fields

from emu.net import aoe_target as _ref
from emu.net import ata
from emu.net.aoe_target import (  # noqa: F401  (same names)
    DEFAULT_BUFCNT, DEFAULT_FIRMWARE, DEFAULT_MODEL, MAX_MASKS, MAX_RESERVE, VBLADE_FWVER,
    _data_area, _keep_reserved, default_mac,
)
from emu.net.codec import build_ata, build_config, pad, parse
from emu.net.fcs import append_fcs, strip_fcs
from emu.net.frames import (
    AFLAG_W, ATA_CHECK_POWER, ATA_FLUSH, ATA_HLEN, ATA_IDENTIFY, ATA_READ, ATA_READ_EXT,
    ATA_WRITE, ATA_WRITE_EXT, CFG_HLEN, CMD_ATA, CMD_CONFIG, CMD_MASK, CMD_RESERVE,
    CONFIG_MAX, ERR_BAD_ARG, ERR_BAD_CMD, ERR_RESERVED, ETH_P_AOE, FLAG_E, FLAG_R, MASK_HLEN,
    SECTOR, SRR_HLEN,
)

STAT_FIELDS = tuple(f.name for f in fields(_ref.TargetStats))
cdef dict _ARG_LEN = {CMD_ATA: ATA_HLEN, CMD_CONFIG: CFG_HLEN, CMD_MASK: MASK_HLEN,
                      CMD_RESERVE: SRR_HLEN}
cdef long long _TAG_MEMORY = _ref._TAG_MEMORY
cdef int C_ATA_HLEN = ATA_HLEN, C_SECTOR = SECTOR, C_FLAG_R = FLAG_R, C_FLAG_E = FLAG_E
cdef unsigned long long _LBA48 = (1 << 48) - 1, _LBA28 = ata.MAX_LBA28


cdef class TargetStats:
    """Per-target counters (the reference's TargetStats, as C fields)."""

    cdef public long long received, bytes_in, crc_errors, ignored, truncated, requests
    cdef public long long replies, bytes_out, dropped_busy, repeated_tags, reads, writes
    cdef public long long sectors_read, sectors_written, identify, flush, other_ata, config
    cdef public long long mask, reserve, ata_errors, aoe_errors

    def as_dict(self):
        """The counters as a plain dict."""
        return {name: getattr(self, name) for name in STAT_FIELDS}


cdef class AoETarget:
    """An AoE target (shelf, slot) serving `store`; see the reference."""

    cdef public object store, mac, config, serial, ident, clock, disk, masks, reserve, port
    cdef public int shelf, slot
    cdef public long long mtu, scnt, bufcnt, fwver, service_ns, sector_ns
    cdef public bint promiscuous, silent
    cdef public TargetStats stats
    cdef object _tags
    cdef long long _waiting, _busy_until
    cdef object _complete_cb

    def __init__(self, store, *, shelf, slot, mac=None, mtu=9000, bufcnt=DEFAULT_BUFCNT,
                 fwver=VBLADE_FWVER, config=b"", model=DEFAULT_MODEL,
                 firmware=DEFAULT_FIRMWARE, serial=None, clock=None, service_ns=0,
                 sector_ns=0, masks=None, promiscuous=False, disk=None):
        """Create a target. Raises ValueError for an address, MTU or size out of range
        (see the reference)."""
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
        self.scnt = (mtu - ATA_HLEN) // SECTOR
        self.bufcnt = bufcnt
        self.fwver = fwver
        self.config = bytes(config)
        self.serial = serial if serial is not None else f"{shelf}.{slot}:emu"[:19]
        self.ident = ata.identify_data(store.nsectors, model=model, firmware=firmware,
                                       serial=self.serial)
        self.clock = clock
        self.service_ns, self.sector_ns = service_ns, sector_ns
        self.disk = disk
        self.masks = [bytes(m) for m in (masks or [])][:MAX_MASKS]
        self.promiscuous = promiscuous
        self.reserve = []
        self.port = None
        self.silent = False         # replies are dropped (see the reference)
        self.stats = TargetStats()
        self._tags = OrderedDict()
        self._waiting = 0
        self._busy_until = 0
        self._complete_cb = self._complete

    # -- as a segment endpoint ----------------------------------------------
    def attach(self, segment, name="target", **links):
        """Attach to `segment` as port `name` (links: up/down/net netem specs)."""
        self.port = segment.attach(self, name, **links)
        return self.port

    def receive(self, wire):
        """Take one frame + FCS from the wire; reply through `port`."""
        cdef TargetStats st = self.stats
        cdef bytes frame
        cdef long long start, sectors
        cdef const unsigned char *p
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
        p = frame
        sectors = p[26] if len(frame) >= 34 and p[19] == CMD_ATA else 0
        start = self.clock.now
        if self._busy_until > start:
            start = self._busy_until
        self._busy_until = start + self.service_ns + self.sector_ns * sectors
        if self.disk is not None and sectors:
            # AoE ATA header: sector count at 26, LBA bytes 0-5 at 28-33
            lba = int.from_bytes(frame[28:34], "little") & _LBA48
            self._busy_until += self.disk.serve(start, lba, sectors)
        self._waiting += 1
        self.clock.schedule(self._busy_until, self._complete_cb, frame)

    def _complete(self, frame):
        self._waiting -= 1
        self._reply(self.handle(frame))

    cdef int _reply(self, reply) except -1:
        if reply is None or self.silent:
            return 0
        wire = append_fcs(pad(reply))   # a NIC pads short frames to 60 bytes
        self.stats.replies += 1
        self.stats.bytes_out += len(wire)
        if self.port is not None:
            self.port.send(wire)
        return 0

    def announce_frames(self):
        """The config advertisements vblade broadcasts at start (see the reference)."""
        return _ref.AoETarget.announce_frames(self)

    def announce(self):
        """Send the start-up advertisements through `port`."""
        for f in self.announce_frames():
            self._reply(f)

    # -- the protocol ---------------------------------------------------------
    def handle(self, frame):
        """Answer one request frame (no FCS). Returns the reply frame (no FCS, not
        padded) or None when vblade would stay silent. Never raises for any bytes."""
        cdef bytes f = bytes(frame)
        cdef TargetStats st = self.stats
        cdef Py_ssize_t n = len(f)
        cdef const unsigned char *p = f
        cdef int major, minor, cmd
        if (n < 24 or p[12] != ETH_P_AOE >> 8 or p[13] != ETH_P_AOE & 0xFF
                or p[14] & C_FLAG_R):
            st.ignored += 1
            return None
        major, minor = (p[16] << 8) | p[17], p[18]
        src = f[6:12]
        if ((major != self.shelf and major != 0xFFFF) or (minor != self.slot and minor != 0xFF)
                or (self.masks and src not in self.masks)
                or (not self.promiscuous and not p[0] & 1 and f[0:6] != self.mac)):
            st.ignored += 1
            return None
        cmd = p[19]
        if n < _ARG_LEN.get(cmd, 24):
            st.truncated += 1
            return None
        st.requests += 1
        key = (src, (p[20] << 24) | (p[21] << 16) | (p[22] << 8) | p[23])
        tags = self._tags
        if key in tags:
            st.repeated_tags += 1
            tags.move_to_end(key)
        else:
            tags[key] = None
            if len(tags) > _TAG_MEMORY:
                tags.popitem(last=False)
        if cmd == CMD_ATA:
            reply = self._ata(f)
        elif cmd == CMD_CONFIG:
            reply = self._config(f)
        elif cmd == CMD_MASK:
            reply = self._mask(f)
        elif cmd == CMD_RESERVE:
            reply = self._srr(f)
        else:
            reply = self._header(f, ERR_BAD_CMD) + f[24:]
        if reply is not None and reply[14] & C_FLAG_E:
            st.aoe_errors += 1
        return reply

    def _header(self, frame, error=0):
        """The reply's 24-byte header: vblade's doaoe() edits of the request's."""
        return _ref.AoETarget._header(self, frame, error)

    def _reserved_against(self, src):
        return bool(self.reserve) and src not in self.reserve

    cdef object _ata(self, bytes frame):
        cdef TargetStats st = self.stats
        cdef int cmd, sectors, status = 0, err = 0, left, length
        cdef bint write
        cdef unsigned long long lba
        req = parse(frame)          # cannot fail: 36 bytes of AoE ATA are present
        cmd, sectors = req.cmdstat, req.scnt
        if cmd != ATA_IDENTIFY and self._reserved_against(req.src):
            return self._ata_error(frame, ERR_RESERVED)
        left, data = sectors, b""
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
        elif cmd == ATA_READ or cmd == ATA_READ_EXT or cmd == ATA_WRITE or cmd == ATA_WRITE_EXT:
            lba = req.lba
            lba &= _LBA28 if cmd == ATA_READ or cmd == ATA_WRITE else _LBA48
            write = cmd == ATA_WRITE or cmd == ATA_WRITE_EXT
            if sectors > self.scnt:
                return self._ata_error(frame, ERR_BAD_ARG)
            if lba + sectors > self.store.nsectors:
                status, err = ata.ST_DRDY | ata.ST_ERR, ata.ERR_IDNF
            elif write and req.data_len < C_SECTOR * sectors:
                return self._ata_error(frame, ERR_BAD_ARG)
            else:
                try:
                    if write:
                        self.store.write(lba, req.data[:C_SECTOR * sectors])
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
            length = C_ATA_HLEN + (sectors - left) * C_SECTOR
            if length <= 0:
                return None
        body = _data_area(frame[C_ATA_HLEN:], data, length - C_ATA_HLEN)
        reply = build_ata(frame[6:12], self.mac, self.shelf, self.slot, req.tag,
                          flags=req.flags | C_FLAG_R, error=req.error, aflags=req.aflags,
                          errfeat=err, scnt=left, cmdstat=status, lba=req.lba, data=body,
                          ver=req.ver)
        return _keep_reserved(reply, frame)

    def _ata_error(self, frame, error):
        """An AoE-level error: the request's first 60 bytes echoed with E set."""
        return _ref.AoETarget._ata_error(self, frame, error)

    # the rare commands: the reference's code, on this object
    def _config(self, frame):
        return _ref.AoETarget._config(self, frame)

    def _mask(self, frame):
        return _ref.AoETarget._mask(self, frame)

    def _mask_reply(self, frame, error, payload):
        return _ref.AoETarget._mask_reply(self, frame, error, payload)

    def _srr(self, frame):
        return _ref.AoETarget._srr(self, frame)

    def stats_dict(self):
        """Counters plus the target's identity (shelf, slot, scnt, bufcnt, sectors)."""
        return _ref.AoETarget.stats_dict(self)
