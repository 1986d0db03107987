"""The scapy model of Ethernet + ATA over Ethernet (AoE r11): traces, pcap, tests.

scapy is the *model* the fast codec (emu/net/frames.py and its Cython twin) is
checked against byte for byte. scapy ships an AoE dissector in
`scapy.contrib.aoe`, but it does not serve as a model of the wire format, so
these layers replace it (field names follow NOTES.md section 2):

- contrib maps the header flags the wrong way round: r11 puts R (response) at
  0x8 and E (error) at 0x4 of the low nibble; contrib names bit 0x1
  "Response" and 0x2 "Error".
- contrib names error 5 "Unsupported exception"; r11 says "unsupported
  version".
- contrib sizes the ATA data as `sector_count * 512` always; a read request
  carries a sector count and no data, a read response the data: the data is
  simply the rest of the frame.
- contrib's MAC-mask directive count and reserve/release MAC count are 16-bit;
  r11 (and vblade's dat.h) make both 8-bit. Its directive packets do not stop
  at 8 bytes, so a list of two directives dissects as one.
- contrib carries the arguments as conditional fields of one packet; here they
  are separate layers bound on `cmd` (`Ether()/AoE()/AoEATA()`).
- contrib accepts a config string longer than the frame (silently shortened).
  Here a truncated or over-long (> 1024 bytes, r11 section 3.2) config string,
  a truncated directive or MAC list, makes the layer fail to dissect, so the
  model rejects exactly the frames the codec rejects (scapy turns a layer that
  fails to dissect into Raw).

Importing this module unbinds contrib's AOE from Ether (if it was loaded) so
that `Ether(frame)` dissects with these layers.

The module also converts between scapy packets and the codec's flat field
dictionaries (`model_parse`, `model_build`), which is what the differential
tests compare.

Layer: net (imports only emu.core).
"""

from __future__ import annotations

import struct
from typing import Any

from scapy.fields import (
    BitEnumField,
    BitField,
    ByteEnumField,
    ByteField,
    Field,
    FieldLenField,
    FlagsField,
    MACField,
    PacketListField,
    ShortField,
    StrField,
    StrLenField,
    XByteField,
    XIntField,
    XShortField,
)
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw, bind_layers, split_layers

from emu.net.frames import (
    CMD_ATA,
    CMD_CONFIG,
    CMD_MASK,
    CMD_RESERVE,
    CONFIG_MAX,
    ETH_P_AOE,
    FrameError,
    MalformedFrame,
    NotAoE,
    TruncatedFrame,
)

AOE_ERRORS = {
    1: "unrecognized command",
    2: "bad argument",
    3: "device unavailable",
    4: "config string present",
    5: "unsupported version",
    6: "target reserved",
}
AOE_COMMANDS = {0: "ATA", 1: "config", 2: "MAC mask", 3: "reserve/release"}
CONFIG_COMMANDS = {0: "read", 1: "test exact", 2: "test prefix", 3: "set if empty",
                   4: "force set"}
MASK_COMMANDS = {0: "read", 1: "edit"}
MASK_ERRORS = {0: "", 1: "unspecified", 2: "bad directive", 3: "mask list full"}
DIRECTIVES = {0: "none", 1: "add", 2: "delete"}
RESERVE_COMMANDS = {0: "read", 1: "set", 2: "force set"}


class LE48Field(Field):
    """A 48-bit little-endian integer (the AoE ATA LBA, lba0 first)."""

    def __init__(self, name: str, default: int) -> None:
        super().__init__(name, default, fmt="<Q")
        self.sz = 6

    def addfield(self, pkt: Packet, s: bytes, val: Any) -> bytes:
        return s + struct.pack("<Q", self.i2m(pkt, val) or 0)[:6]

    def getfield(self, pkt: Packet, s: bytes) -> tuple[bytes, int]:
        lo, hi = struct.unpack("<IH", s[:6])  # struct.error when short: layer fails
        return s[6:], lo | (hi << 32)


class ExactStrLenField(StrLenField):
    """StrLenField that refuses to dissect a string longer than the data left
    or longer than `max_len` (scapy's own field silently shortens it)."""

    __slots__ = ["max_len"]

    def __init__(self, name: str, default: bytes, length_from: Any, max_len: int) -> None:
        super().__init__(name, default, length_from=length_from)
        self.max_len = max_len

    def getfield(self, pkt: Packet, s: bytes) -> tuple[bytes, bytes]:
        n = self.length_from(pkt)
        if n > self.max_len:
            raise ValueError(f"{self.name} length {n} > {self.max_len}")
        if n > len(s):
            raise ValueError(f"{self.name} truncated: {len(s)} of {n} bytes")
        return s[n:], s[:n]


class ExactMACField(MACField):
    """MACField that refuses fewer than 6 bytes (scapy's pads silently)."""

    def getfield(self, pkt: Packet, s: bytes) -> tuple[bytes, str]:
        if len(s) < 6:
            raise ValueError("MAC address truncated")
        return super().getfield(pkt, s)


class ExactPacketListField(PacketListField):
    """PacketListField that refuses a list shorter than its count (scapy's own
    stops quietly at the end of the data, and turns a cut-short element into
    Raw)."""

    def getfield(self, pkt: Packet, s: bytes) -> tuple[bytes, list[Packet]]:
        rest, lst = super().getfield(pkt, s)
        want = self.count_from(pkt)
        if len(lst) != want or any(isinstance(p, Raw) for p in lst):
            raise ValueError(f"{self.name}: list of {want} entries truncated")
        return rest, lst


class AoE(Packet):
    """AoE r11 common header (section 2): ver|flags, error, major, minor, cmd, tag."""

    name = "AoE"
    fields_desc = [
        BitField("ver", 1, 4),
        FlagsField("flags", 0, 4, ["r0", "r1", "E", "R"]),  # R=0x8, E=0x4
        ByteEnumField("error", 0, AOE_ERRORS),
        XShortField("major", 0xFFFF),
        XByteField("minor", 0xFF),
        ByteEnumField("cmd", CMD_CONFIG, AOE_COMMANDS),
        XIntField("tag", 0),
    ]


class AoEATA(Packet):
    """AoE r11 section 3.1 ATA argument; the data is the rest of the frame."""

    name = "AoE ATA"
    fields_desc = [
        FlagsField("aflags", 0, 8, ["W", "A", "r2", "r3", "D", "r5", "E", "r7"]),
        XByteField("errfeat", 0),
        ByteField("scnt", 0),
        XByteField("cmdstat", 0),
        LE48Field("lba", 0),
        XShortField("reserved", 0),
        StrField("data", b""),
    ]


class AoEConfig(Packet):
    """AoE r11 section 3.2 config/query argument and config string."""

    name = "AoE config"
    fields_desc = [
        ShortField("bufcnt", 0),
        XShortField("fwver", 0),
        ByteField("scnt", 0),
        BitField("aoever", 1, 4),
        BitEnumField("ccmd", 0, 4, CONFIG_COMMANDS),
        FieldLenField("cslen", None, length_of="config", fmt="!H"),
        ExactStrLenField("config", b"", length_from=lambda p: p.cslen, max_len=CONFIG_MAX),
    ]

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return b"", s  # what follows the config string is Ethernet padding


class AoEDirective(Packet):
    """One MAC-mask directive (r11 section 3.3): reserved, dcmd, MAC."""

    name = "AoE mask directive"
    fields_desc = [ByteField("reserved", 0), ByteEnumField("dcmd", 0, DIRECTIVES),
                   ExactMACField("mac", "00:00:00:00:00:00")]

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return b"", s


class AoEMask(Packet):
    """AoE r11 section 3.3 MAC mask list: reserved, mcmd, merror, dcnt, directives."""

    name = "AoE MAC mask"
    fields_desc = [
        ByteField("reserved", 0),
        ByteEnumField("mcmd", 0, MASK_COMMANDS),
        ByteEnumField("merror", 0, MASK_ERRORS),
        FieldLenField("dcnt", None, count_of="directives", fmt="B"),
        ExactPacketListField("directives", [], AoEDirective, count_from=lambda p: p.dcnt),
    ]

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return b"", s


class _MacEntry(Packet):
    """One 6-byte MAC of a reserve list."""

    name = "MAC"
    fields_desc = [ExactMACField("mac", "00:00:00:00:00:00")]

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return b"", s


class AoEReserve(Packet):
    """AoE r11 section 3.4 reserve/release: rcmd, nmacs, MAC list."""

    name = "AoE reserve/release"
    fields_desc = [
        ByteEnumField("rcmd", 0, RESERVE_COMMANDS),
        FieldLenField("nmacs", None, count_of="macs", fmt="B"),
        ExactPacketListField("macs", [], _MacEntry, count_from=lambda p: p.nmacs),
    ]

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return b"", s


def _unbind_contrib() -> None:
    """Detach scapy.contrib.aoe from Ether if it is loaded, so ours dissects."""
    import sys

    contrib = sys.modules.get("scapy.contrib.aoe")
    if contrib is not None:
        split_layers(Ether, contrib.AOE, type=ETH_P_AOE)


_unbind_contrib()
bind_layers(Ether, AoE, type=ETH_P_AOE)
bind_layers(AoE, AoEATA, cmd=CMD_ATA)
bind_layers(AoE, AoEConfig, cmd=CMD_CONFIG)
bind_layers(AoE, AoEMask, cmd=CMD_MASK)
bind_layers(AoE, AoEReserve, cmd=CMD_RESERVE)

_ARG_LAYERS: dict[int, type[Packet]] = {
    CMD_ATA: AoEATA, CMD_CONFIG: AoEConfig, CMD_MASK: AoEMask, CMD_RESERVE: AoEReserve,
}


def _mac(s: str) -> bytes:
    return bytes.fromhex(s.replace(":", ""))


def model_parse(frame: bytes) -> dict[str, Any]:
    """Dissect `frame` (no FCS) with the scapy model into the codec's field names.

    Returns a dict with the keys of frames.AoEFrame.as_dict(). Raises
    TruncatedFrame / NotAoE / MalformedFrame (the codec's exception types) when
    scapy cannot dissect a layer completely; the message names the layer only
    (the twins' exact messages are compared between themselves).
    """
    if len(frame) < 14:
        raise TruncatedFrame("model: Ethernet header truncated")
    pkt = Ether(frame)
    if not isinstance(pkt, Ether) or pkt.type != ETH_P_AOE:
        raise NotAoE("model: not AoE")
    aoe = pkt.getlayer(AoE)
    if aoe is None:
        raise TruncatedFrame("model: AoE header truncated")
    out: dict[str, Any] = {
        "dst": _mac(pkt.dst), "src": _mac(pkt.src), "ethertype": pkt.type,
        "ver": aoe.ver, "flags": int(aoe.flags), "error": aoe.error, "major": aoe.major,
        "minor": aoe.minor, "cmd": aoe.cmd, "tag": aoe.tag,
        "aflags": 0, "errfeat": 0, "scnt": 0, "cmdstat": 0, "lba": 0,
        "bufcnt": 0, "fwver": 0, "aoever": 0, "ccmd": 0, "cslen": 0,
    }
    layer = _ARG_LAYERS.get(aoe.cmd)
    if layer is None:
        out["data"] = bytes(aoe.payload)
        return out
    arg = aoe.getlayer(layer)
    if arg is None:
        # scapy turned the argument into Raw: the model could not dissect it.
        raw = aoe.getlayer(Raw)
        left = len(raw.load) if raw is not None else 0
        if aoe.cmd == CMD_CONFIG and left >= 8:
            cslen = struct.unpack_from("!H", raw.load, 6)[0]
            if cslen > CONFIG_MAX:
                raise MalformedFrame("model: config string too long")
        raise TruncatedFrame(f"model: {layer.__name__} truncated")
    if aoe.cmd == CMD_ATA:
        out.update(aflags=int(arg.aflags), errfeat=arg.errfeat, scnt=arg.scnt,
                   cmdstat=arg.cmdstat, lba=arg.lba, data=bytes(arg.data))
    elif aoe.cmd == CMD_CONFIG:
        out.update(bufcnt=arg.bufcnt, fwver=arg.fwver, scnt=arg.scnt, aoever=arg.aoever,
                   ccmd=arg.ccmd, cslen=arg.cslen, data=bytes(arg.config))
    else:
        # MAC mask / reserve: the codec hands the argument body over raw.
        out["data"] = bytes(frame[24:])
    return out


def model_build(fields: dict[str, Any]) -> bytes:
    """Build a frame with the scapy model from codec-style `fields`.

    `fields` holds dst, src (6 bytes each), the header fields (ver, flags,
    error, major, minor, cmd, tag) and, by cmd: ATA (aflags, errfeat, scnt,
    cmdstat, lba, data), config (bufcnt, fwver, scnt, aoever, ccmd, config)
    or raw `data` for other commands. Returns the frame bytes (no FCS).
    """
    f = fields
    eth = Ether(dst=f["dst"].hex(":"), src=f["src"].hex(":"), type=ETH_P_AOE)
    hdr = AoE(ver=f.get("ver", 1), flags=f.get("flags", 0), error=f.get("error", 0),
              major=f["major"], minor=f["minor"], cmd=f["cmd"], tag=f["tag"])
    if f["cmd"] == CMD_ATA:
        arg: Packet = AoEATA(aflags=f.get("aflags", 0), errfeat=f.get("errfeat", 0),
                             scnt=f.get("scnt", 0), cmdstat=f.get("cmdstat", 0),
                             lba=f.get("lba", 0), data=bytes(f.get("data", b"")))
    elif f["cmd"] == CMD_CONFIG:
        arg = AoEConfig(bufcnt=f.get("bufcnt", 0), fwver=f.get("fwver", 0),
                        scnt=f.get("scnt", 0), aoever=f.get("aoever", 1),
                        ccmd=f.get("ccmd", 0), config=bytes(f.get("config", b"")))
    else:
        arg = Raw(bytes(f.get("data", b"")))
    return bytes(eth / hdr / arg)


__all__ = [
    "AoE", "AoEATA", "AoEConfig", "AoEDirective", "AoEMask", "AoEReserve", "Ether",
    "FrameError", "model_build", "model_parse",
]
