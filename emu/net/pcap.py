"""`--pcap FILE`: a classic libpcap capture of everything the segment's tap sees.

Format: classic pcap (not pcapng), link type 1 (Ethernet), little-endian,
nanosecond timestamps (magic 0xa1b23c4d, which libpcap >= 1.5, tcpdump and
tshark read) so that virtual time is recorded exactly: a frame forwarded at
virtual time t ns gets timestamp t / 1e9 s after the epoch. Written with
scapy's RawPcapWriter.

The FCS is NOT kept: a tap is a mirror port of a store-and-forward switch,
which only forwards frames whose FCS was good, and Ethernet captures on
Linux do not carry the FCS either; with link type 1 a dissector would have to
guess whether the last 4 bytes are FCS or data (Wireshark's default is "no
FCS"), and an AoE data payload would then end in 4 bytes of CRC. Frames
damaged on a down link are not on the capture (they happen after the tap);
the receiving endpoint counts them.

The number of frames written equals the segment's accepted frames (the sum
of the ports' rx_frames) while the tap is attached; `stats()` reports them.

Layer: net (imports only emu.core).
"""

from __future__ import annotations

from types import TracebackType

from scapy.utils import RawPcapWriter

LINKTYPE_ETHERNET = 1
ETH_P_AOE = 0x88A2


class PcapTap:
    """A segment tap writing a pcap file; call it as tap(time_ns, frame)."""

    def __init__(self, path: str) -> None:
        """Open `path` for writing (truncates). Raises OSError if it cannot."""
        self.path = path
        self.frames = 0
        self.bytes = 0
        self.aoe_frames = 0
        self._w = RawPcapWriter(path, linktype=LINKTYPE_ETHERNET, nano=True, endianness="<",
                                snaplen=65535)
        self._w.write_header(None)  # an empty capture is still a valid file
        self._w.f.flush()

    def __call__(self, time_ns: int, frame: bytes) -> None:
        """Record one frame (without FCS) seen at virtual time `time_ns`."""
        sec, nsec = divmod(int(time_ns), 1_000_000_000)
        self._w.write_packet(frame, sec=sec, usec=nsec)
        self.frames += 1
        self.bytes += len(frame)
        if len(frame) >= 14 and frame[12] == 0x88 and frame[13] == 0xA2:
            self.aoe_frames += 1

    def stats(self) -> dict[str, int]:
        """{"frames", "bytes", "aoe_frames"} written so far."""
        return {"frames": self.frames, "bytes": self.bytes, "aoe_frames": self.aoe_frames}

    def close(self) -> None:
        """Flush and close the file (idempotent)."""
        if self._w.f and not self._w.f.closed:
            self._w.close()

    def __enter__(self) -> PcapTap:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
