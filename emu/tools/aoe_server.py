"""`emu aoe-target IFACE FILE --shelf S --slot N`: the AoE target on a real interface.

vblade-compatible: the same protocol (emu/net/aoe_target.py), the same
command-line meaning (`vblade SHELF SLOT IFACE FILE`), the same start-up
line, the same config advertisement broadcast at start, and by default the
same IDENTIFY serial ("shelf.slot:hostname", 19 characters at most). Replies
are sent unpadded, as vblade's are: the kernel or the NIC pads. This path is
wall-clock driven and not deterministic (it serves real hardware).

Layer: tools.
"""

from __future__ import annotations

import os
import select
import socket
import sys
import threading

from emu.net.aoe_target import DEFAULT_BUFCNT, DEFAULT_FIRMWARE, DEFAULT_MODEL, AoETarget
from emu.net.rawsock import (
    ETH_P_AOE,
    PACKET_OUTGOING,
    iface_mac,
    iface_mtu,
    open_packet_socket,
    recv_frame,
    send_frame,
)
from emu.net.store import BlockStore, FileStore


class AoEServer:
    """An AoETarget answering on a real interface through an AF_PACKET socket."""

    def __init__(self, iface: str, store: BlockStore, shelf: int, slot: int, *,
                 mtu: int | None = None, bufcnt: int = DEFAULT_BUFCNT, config: bytes = b"",
                 model: str = DEFAULT_MODEL, firmware: str = DEFAULT_FIRMWARE,
                 serial: str | None = None, fwver: int | None = None,
                 promiscuous: bool = True) -> None:
        """Open the interface. Raises ValueError (no such interface, bad address),
        PermissionError (not root)."""
        if not 0 <= shelf < 0xFFFF or not 0 <= slot < 0xFF:   # before touching the interface
            raise ValueError(f"AoE address e{shelf}.{slot} out of range "
                             "(shelf 0..65534, slot 0..254; 65535/255 mean broadcast)")
        if serial is None:
            serial = f"{shelf}.{slot}:{socket.gethostname()}"[:19]
        kw = {} if fwver is None else {"fwver": fwver}
        self.iface = iface
        self.target = AoETarget(store, shelf=shelf, slot=slot, mac=iface_mac(iface),
                                mtu=mtu or iface_mtu(iface), bufcnt=bufcnt, config=config,
                                model=model, firmware=firmware, serial=serial,
                                promiscuous=promiscuous, **kw)
        self.sock = open_packet_socket(iface, ETH_P_AOE)

    def _send(self, frame: bytes) -> None:
        st = self.target.stats
        if send_frame(self.sock, frame):
            st.replies += 1
            st.bytes_out += len(frame)

    def poll(self) -> int:
        """Answer every request waiting on the socket. Returns how many frames were read."""
        count = 0
        while (got := recv_frame(self.sock)) is not None:
            frame, pkttype = got
            if pkttype == PACKET_OUTGOING:      # our own replies, looped back
                continue
            count += 1
            st = self.target.stats
            st.received += 1
            st.bytes_in += len(frame)
            reply = self.target.handle(frame)
            if reply is not None:
                self._send(reply)
        return count

    def serve_forever(self, stop: threading.Event | None = None, poll_s: float = 0.2) -> None:
        """Announce, then answer requests until `stop` is set (or forever)."""
        for frame in self.target.announce_frames():
            self._send(frame)
        while stop is None or not stop.is_set():
            ready, _, _ = select.select([self.sock], [], [], poll_s)
            if ready:
                self.poll()

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()


def serve(iface: str, path: str, shelf: int, slot: int, mtu: int | None = None, *,
          readonly: bool = False, bufcnt: int = DEFAULT_BUFCNT,
          stop: threading.Event | None = None) -> int:
    """Serve `path` as AoE target e`shelf`.`slot` on `iface` until interrupted.

    Prints vblade's start-up line. Returns a process exit status: 0 after
    Ctrl-C or `stop`, 1 with a one-line message on stderr for a bad
    interface, file, address or missing privilege.
    """
    try:
        store = FileStore(path, readonly=readonly)
    except (OSError, ValueError) as exc:
        print(f"emu aoe-target: {path}: {getattr(exc, 'strerror', None) or exc}",
              file=sys.stderr)
        return 1
    try:
        server = AoEServer(iface, store, shelf, slot, mtu=mtu, bufcnt=bufcnt)
    except (OSError, ValueError) as exc:
        store.close()
        print(f"emu aoe-target: {exc}", file=sys.stderr)
        return 1
    print(f"pid {os.getpid()}: e{shelf}.{slot}, {store.nsectors} sectors "
          f"{'O_RDONLY' if readonly else 'O_RDWR'}", flush=True)
    try:
        server.serve_forever(stop)
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        store.close()
    return 0
