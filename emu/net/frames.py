"""The AoE frame codec on the data path: the plain-Python reference.

This module reads like the wire format (AoE r11, NOTES.md section 2) and is
the reference for its compiled twin fast/frames.pyx (`emu._fast.frames`),
which exports the same functions, the same `AoEFrame` attributes and raises
the same exceptions with the same messages. emu/net/codec.py picks the twin.
Frames here carry no FCS (emu/net/fcs.py adds and strips it at the ports).

Layout (offsets from the start of the Ethernet frame, big-endian unless said):

    0  dst[6] src[6] ethertype(16)=0x88A2                     Ethernet
   14  ver(4)|flags(4)  error(8)  major(16)  minor(8)  cmd(8)  tag(32)   AoE
   24  cmd 0 ATA:    aflags errfeat scnt cmdstat lba0..lba5 (little-endian) res[2]
   36                data ... (the rest of the frame)
   24  cmd 1 config: bufcnt(16) fwver(16) scnt(8) aoever(4)|ccmd(4) cslen(16)
   32                config string[cslen] (cslen <= 1024), then padding
   24  cmd 2 mask:   reserved mcmd merror dcnt, then dcnt 8-byte directives
   24  cmd 3 reserve/release: rcmd nmacs, then nmacs 6-byte MACs

Rejection rules (`parse`), in this order: shorter than an Ethernet header
(TruncatedFrame), ethertype not 0x88A2 (NotAoE), shorter than the AoE header
(TruncatedFrame), the command's fixed argument cut short (TruncatedFrame),
a config string longer than 1024 bytes (MalformedFrame: r11 section 3.2
limits it) or than the frame (TruncatedFrame), a mask directive list or a
reserve MAC list cut short (TruncatedFrame). The version is not checked: the
header layout is the same for every version and a target answers a bad
version itself. ATA data length is not checked either: a read request
carries a sector count and no data, and a short frame is padded to 60 bytes
on the wire, so only the receiver knows what it expected (see aoe_target).

Zero copy: `parse` keeps a reference to the frame and hands out `data` as a
memoryview slice of it.

Layer: net (imports only emu.core).
"""

from __future__ import annotations

import struct
from typing import Any

# --- constants (AoE r11) ---------------------------------------------------
ETH_P_AOE = 0x88A2
ETH_ALEN = 6
ETH_HLEN = 14
ETH_ZLEN = 60            # minimum Ethernet frame without FCS (802.3)
BROADCAST = b"\xff" * 6
AOE_HLEN = 24            # Ethernet + AoE header
ATA_HLEN = 36            # ... + 12-byte ATA argument
CFG_HLEN = 32            # ... + 8-byte config argument
MASK_HLEN = 28           # ... + 4-byte mask list header
SRR_HLEN = 26            # ... + 2-byte reserve/release header
CONFIG_MAX = 1024        # r11 3.2: config string at most 1024 bytes
SECTOR = 512
AOE_VERSION = 1

FLAG_R = 0x8             # response
FLAG_E = 0x4             # error

CMD_ATA = 0
CMD_CONFIG = 1
CMD_MASK = 2
CMD_RESERVE = 3

ERR_BAD_CMD = 1
ERR_BAD_ARG = 2
ERR_UNAVAILABLE = 3
ERR_CONFIG = 4
ERR_BAD_VERSION = 5
ERR_RESERVED = 6

AFLAG_E = 0x40           # LBA48 extended
AFLAG_D = 0x10           # device/head register bit
AFLAG_A = 0x02           # asynchronous write
AFLAG_W = 0x01           # write

ATA_READ = 0x20
ATA_READ_EXT = 0x24
ATA_WRITE = 0x30
ATA_WRITE_EXT = 0x34
ATA_FLUSH = 0xE7
ATA_CHECK_POWER = 0xE5
ATA_IDENTIFY = 0xEC
ATA_STATUS_ERRBITS = 0xA9  # BSY|DF|DRQ|ERR: any set means the command failed

CCMD_READ = 0
CCMD_TEST = 1
CCMD_PREFIX = 2
CCMD_SET = 3
CCMD_FORCE_SET = 4

MAX_LBA48 = (1 << 48) - 1


# --- errors ----------------------------------------------------------------
class FrameError(ValueError):
    """A frame (received) or a field (to build) the codec refuses; one line."""


class TruncatedFrame(FrameError):
    """The frame ends inside a header, an argument or a counted list."""


class NotAoE(FrameError):
    """A well-formed Ethernet frame that is not AoE (ethertype != 0x88A2)."""


class MalformedFrame(FrameError):
    """Complete but impossible: a field value the spec forbids."""


class FieldError(FrameError):
    """A value given to a build function does not fit its field."""


# --- structs ---------------------------------------------------------------
# Ethernet + AoE header: dst, src, ethertype, ver|flags, error, major, minor, cmd, tag.
_HDR = struct.Struct("!6s6sHBBHBBI")
# ATA argument: aflags, errfeat, scnt, cmdstat, lba (low 32 + high 16, little-endian),
# 2 reserved bytes (sent as zero, ignored on receipt).
_ATA = struct.Struct("<BBBBIH2x")
# Config argument: bufcnt, fwver, scnt, aoever|ccmd, cslen.
_CFG = struct.Struct("!HHBBH")


class AoEFrame:
    """A parsed AoE frame. Attributes not used by the command are 0.

    Header: dst, src (bytes), ethertype, ver, flags, error, major, minor, cmd,
    tag. ATA: aflags, errfeat, scnt, cmdstat, lba (48-bit). Config: bufcnt,
    fwver, scnt, aoever, ccmd, cslen. `data` is a memoryview of the payload:
    ATA data (everything after the argument, including any Ethernet padding),
    the config string (exactly cslen bytes), or the raw argument of other
    commands (from offset 24). `data_off`/`data_len` locate it in `frame`.
    """

    __slots__ = ("frame", "dst", "src", "ethertype", "ver", "flags", "error", "major",
                 "minor", "cmd", "tag", "aflags", "errfeat", "scnt", "cmdstat", "lba",
                 "bufcnt", "fwver", "aoever", "ccmd", "cslen", "data_off", "data_len")

    FIELDS = ("dst", "src", "ethertype", "ver", "flags", "error", "major", "minor", "cmd",
              "tag", "aflags", "errfeat", "scnt", "cmdstat", "lba", "bufcnt", "fwver",
              "aoever", "ccmd", "cslen")

    @property
    def data(self) -> memoryview:
        """The payload as a zero-copy view of the frame."""
        return memoryview(self.frame)[self.data_off:self.data_off + self.data_len]

    @property
    def is_response(self) -> bool:
        """True if the R flag is set."""
        return bool(self.flags & FLAG_R)

    def as_dict(self) -> dict[str, Any]:
        """Every field plus `data` (as bytes): what the differential tests compare."""
        d = {k: getattr(self, k) for k in self.FIELDS}
        d["data"] = bytes(self.data)
        return d

    def __repr__(self) -> str:
        return (f"AoEFrame(cmd={self.cmd} flags={self.flags:#x} error={self.error} "
                f"e{self.major}.{self.minor} tag={self.tag:#010x} data={self.data_len}B)")


def parse(frame: bytes | bytearray | memoryview) -> AoEFrame:
    """Parse one Ethernet frame (no FCS) as AoE.

    Returns an AoEFrame referencing `frame` (do not mutate the buffer while the
    result is in use). Raises TruncatedFrame, NotAoE or MalformedFrame (all
    FrameError, a ValueError) with a one-line message; see the module docstring
    for the rules.
    """
    n = len(frame)
    if n < ETH_HLEN:
        raise TruncatedFrame(f"frame of {n} bytes is shorter than an Ethernet header (14)")
    ethertype = (frame[12] << 8) | frame[13]
    if ethertype != ETH_P_AOE:
        raise NotAoE(f"ethertype 0x{ethertype:04x} is not AoE (0x88a2)")
    if n < AOE_HLEN:
        raise TruncatedFrame(f"frame of {n} bytes is shorter than the AoE header (24)")
    f = AoEFrame()
    f.frame = frame
    (f.dst, f.src, f.ethertype, verflags, f.error, f.major, f.minor, f.cmd,
     f.tag) = _HDR.unpack_from(frame, 0)
    f.ver = verflags >> 4
    f.flags = verflags & 0x0F
    f.aflags = f.errfeat = f.scnt = f.cmdstat = f.lba = 0
    f.bufcnt = f.fwver = f.aoever = f.ccmd = f.cslen = 0
    cmd = f.cmd
    if cmd == CMD_ATA:
        if n < ATA_HLEN:
            raise TruncatedFrame(f"ATA frame of {n} bytes is shorter than its argument (36)")
        f.aflags, f.errfeat, f.scnt, f.cmdstat, lo, hi = _ATA.unpack_from(frame, AOE_HLEN)
        f.lba = lo | (hi << 32)
        f.data_off = ATA_HLEN
        f.data_len = n - ATA_HLEN
    elif cmd == CMD_CONFIG:
        if n < CFG_HLEN:
            raise TruncatedFrame(f"config frame of {n} bytes is shorter than its argument (32)")
        f.bufcnt, f.fwver, f.scnt, vc, f.cslen = _CFG.unpack_from(frame, AOE_HLEN)
        f.aoever = vc >> 4
        f.ccmd = vc & 0x0F
        if f.cslen > CONFIG_MAX:
            raise MalformedFrame(f"config string length {f.cslen} exceeds 1024")
        if f.cslen > n - CFG_HLEN:
            raise TruncatedFrame(
                f"config string of {f.cslen} bytes truncated to {n - CFG_HLEN}")
        f.data_off = CFG_HLEN
        f.data_len = f.cslen
    else:
        if cmd == CMD_MASK:
            if n < MASK_HLEN:
                raise TruncatedFrame(f"mask frame of {n} bytes is shorter than its argument (28)")
            if MASK_HLEN + 8 * frame[27] > n:
                raise TruncatedFrame(f"mask list of {frame[27]} directives truncated")
        elif cmd == CMD_RESERVE:
            if n < SRR_HLEN:
                raise TruncatedFrame(
                    f"reserve frame of {n} bytes is shorter than its argument (26)")
            if SRR_HLEN + 6 * frame[25] > n:
                raise TruncatedFrame(f"reserve list of {frame[25]} MACs truncated")
        f.data_off = AOE_HLEN
        f.data_len = n - AOE_HLEN
    return f


def eth_addrs(frame: bytes) -> tuple[bytes, bytes]:
    """Return (dst, src) of an Ethernet frame. Raises TruncatedFrame if < 14 bytes."""
    if len(frame) < ETH_HLEN:
        raise TruncatedFrame(f"frame of {len(frame)} bytes is shorter than an Ethernet header (14)")
    return bytes(frame[0:6]), bytes(frame[6:12])


# --- building --------------------------------------------------------------
def _check(name: str, value: int, bits: int) -> None:
    if not 0 <= value < (1 << bits):
        raise FieldError(f"{name}={value} does not fit in {bits} bits")


def _header(dst: bytes, src: bytes, ver: int, flags: int, error: int, major: int,
            minor: int, cmd: int, tag: int) -> bytes:
    if len(dst) != ETH_ALEN or len(src) != ETH_ALEN:
        raise FieldError("MAC addresses must be 6 bytes")
    _check("ver", ver, 4)
    _check("flags", flags, 4)
    _check("error", error, 8)
    _check("major", major, 16)
    _check("minor", minor, 8)
    _check("cmd", cmd, 8)
    _check("tag", tag, 32)
    return _HDR.pack(bytes(dst), bytes(src), ETH_P_AOE, (ver << 4) | flags, error, major,
                     minor, cmd, tag)


def build_ata(dst: bytes, src: bytes, major: int, minor: int, tag: int, *, flags: int = 0,
              error: int = 0, aflags: int = 0, errfeat: int = 0, scnt: int = 0,
              cmdstat: int = 0, lba: int = 0, data: bytes | bytearray | memoryview = b"",
              ver: int = AOE_VERSION) -> bytes:
    """Build an AoE ATA frame (cmd 0): header, 12-byte argument, then `data`.

    Returns the frame (no FCS, not padded). Raises FieldError if a value does
    not fit its field (lba is 48 bits).
    """
    hdr = _header(dst, src, ver, flags, error, major, minor, CMD_ATA, tag)
    _check("aflags", aflags, 8)
    _check("errfeat", errfeat, 8)
    _check("scnt", scnt, 8)
    _check("cmdstat", cmdstat, 8)
    _check("lba", lba, 48)
    return b"".join((hdr, _ATA.pack(aflags, errfeat, scnt, cmdstat, lba & 0xFFFFFFFF,
                                    lba >> 32), data))


def build_config(dst: bytes, src: bytes, major: int, minor: int, tag: int, *,
                 flags: int = 0, error: int = 0, bufcnt: int = 0, fwver: int = 0,
                 scnt: int = 0, aoever: int = AOE_VERSION, ccmd: int = 0,
                 config: bytes | bytearray | memoryview = b"", ver: int = AOE_VERSION) -> bytes:
    """Build an AoE config/query frame (cmd 1); cslen is len(config).

    Returns the frame (no FCS, not padded). Raises FieldError if a value does
    not fit or the config string exceeds 1024 bytes.
    """
    hdr = _header(dst, src, ver, flags, error, major, minor, CMD_CONFIG, tag)
    _check("bufcnt", bufcnt, 16)
    _check("fwver", fwver, 16)
    _check("scnt", scnt, 8)
    _check("aoever", aoever, 4)
    _check("ccmd", ccmd, 4)
    if len(config) > CONFIG_MAX:
        raise FieldError(f"config string of {len(config)} bytes exceeds 1024")
    return b"".join((hdr, _CFG.pack(bufcnt, fwver, scnt, (aoever << 4) | ccmd, len(config)),
                     config))


def build_aoe(dst: bytes, src: bytes, major: int, minor: int, cmd: int, tag: int, *,
              flags: int = 0, error: int = 0, payload: bytes | bytearray | memoryview = b"",
              ver: int = AOE_VERSION) -> bytes:
    """Build an AoE frame with any command and a raw argument `payload`.

    Returns the frame (no FCS). Raises FieldError if a value does not fit.
    """
    return b"".join((_header(dst, src, ver, flags, error, major, minor, cmd, tag), payload))


def pad(frame: bytes) -> bytes:
    """Return `frame` zero-padded to the 60-byte Ethernet minimum (802.3)."""
    n = len(frame)
    return frame if n >= ETH_ZLEN else bytes(frame) + bytes(ETH_ZLEN - n)
