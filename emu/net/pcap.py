"""`--pcap FILE`: a classic libpcap capture of everything the segment's tap sees.

Format: classic pcap (not pcapng), link type 1 (Ethernet), little-endian,
nanosecond timestamps (magic 0xa1b23c4d, which libpcap >= 1.5, tcpdump and
tshark read) so that virtual time is recorded exactly: a frame forwarded at
virtual time t ns gets timestamp t / 1e9 s after the epoch. Written with
scapy's RawPcapWriter.

Snap length (`--pcap-snaplen`): each frame is cut to its first `snaplen`
bytes, as tcpdump's -s does; the record keeps the frame's length on the
wire, so tshark says "[Packet size limited during capture]" only if a
dissector needed more. The default, 64 bytes, keeps every minimum-size
frame whole and, of AoE frames, the 14-byte Ethernet header, the 10-byte
AoE header and the 12-byte ATA argument (or the 8-byte config header and
the start of its string): every field tshark dissects, and none of the
sector data, which is what made a swap demo's capture 279 MB. 0 keeps whole
frames (tcpdump's -s 0).

The FCS is NOT kept: a tap is a mirror port of a store-and-forward switch,
which only forwards frames whose FCS was good, and Ethernet captures on
Linux do not carry the FCS either; with link type 1 a dissector would have to
guess whether the last 4 bytes are FCS or data (Wireshark's default is "no
FCS"), and an AoE data payload would then end in 4 bytes of CRC. Frames
damaged on a down link are not on the capture (they happen after the tap);
the receiving endpoint counts them.

The number of frames written equals the segment's accepted frames (the sum
of the ports' rx_frames) while the tap is attached; `stats()` reports them,
with the file's size on disk.

Layer: net (imports only emu.core).
"""

from __future__ import annotations

from collections.abc import Iterator
from types import TracebackType

from emu.core.units import ConfigError

LINKTYPE_ETHERNET = 1
ETH_P_AOE = 0x88A2
DEFAULT_SNAPLEN = 64
MAX_SNAPLEN = 262144            # tcpdump's: what -s 0 writes in the file header
FILE_HEADER_BYTES = 24
RECORD_HEADER_BYTES = 16


def read_frames(path: str) -> Iterator[tuple[int, bytes]]:
    """(time ns, frame bytes) of each record of the capture at `path`
    (micro- or nanosecond pcap). Raises OSError for a file that cannot be
    read, scapy's Scapy_Exception for one that is not a pcap."""
    from scapy.utils import RawPcapReader
    with RawPcapReader(path) as reader:
        nano = getattr(reader, "nano", False)
        for data, meta in reader:
            sec, frac = meta.sec, meta.usec
            yield sec * 1_000_000_000 + (frac if nano else frac * 1000), data


def check_snaplen(snaplen: int) -> int:
    """Return `snaplen` if it is a valid snap length (0 = whole frames, else
    1..262144 bytes). Raises ConfigError (one line)."""
    if not 0 <= snaplen <= MAX_SNAPLEN:
        raise ConfigError(f"--pcap-snaplen {snaplen}: bytes kept of each frame, "
                          f"0 (whole frames) to {MAX_SNAPLEN:,}")
    return snaplen


class PcapTap:
    """A segment tap writing a pcap file; call it as tap(time_ns, frame)."""

    def __init__(self, path: str, snaplen: int = DEFAULT_SNAPLEN) -> None:
        """Open `path` for writing (truncates), keeping the first `snaplen`
        bytes of each frame (0: whole frames). Raises OSError if it cannot
        open the file, ConfigError for a bad snap length."""
        self.path = path
        self.snaplen = check_snaplen(snaplen)
        self._cut = snaplen or MAX_SNAPLEN
        self.frames = 0
        self.bytes = 0
        self.aoe_frames = 0
        self.file_bytes = FILE_HEADER_BYTES
        from scapy.utils import RawPcapWriter  # here: scapy takes ~60 ms to import
        self._w = RawPcapWriter(path, linktype=LINKTYPE_ETHERNET, nano=True, endianness="<",
                                snaplen=self._cut)
        self._w.write_header(None)  # an empty capture is still a valid file
        self._w.f.flush()

    def __call__(self, time_ns: int, frame: bytes) -> None:
        """Record one frame (without FCS) seen at virtual time `time_ns`."""
        sec, nsec = divmod(int(time_ns), 1_000_000_000)
        kept = frame[:self._cut]
        self._w.write_packet(kept, sec=sec, usec=nsec, caplen=len(kept), wirelen=len(frame))
        self.frames += 1
        self.bytes += len(frame)
        self.file_bytes += RECORD_HEADER_BYTES + len(kept)
        if len(frame) >= 14 and frame[12] == 0x88 and frame[13] == 0xA2:
            self.aoe_frames += 1

    def stats(self) -> dict[str, int]:
        """{"frames", "bytes" (on the wire), "aoe_frames", "snaplen" (0: whole
        frames), "file_bytes" (the file's size on disk)} so far."""
        return {"frames": self.frames, "bytes": self.bytes, "aoe_frames": self.aoe_frames,
                "snaplen": self.snaplen, "file_bytes": self.file_bytes}

    def close(self) -> None:
        """Flush and close the file (idempotent)."""
        if self._w.f and not self._w.f.closed:
            self._w.close()

    def __enter__(self) -> PcapTap:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
