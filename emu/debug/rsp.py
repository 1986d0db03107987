"""GDB remote serial protocol codec: framing, checksums, escapes, run-length
encoding and hex - no sockets, no machine (gdbstub.py does the serving).

Wire format (gdb manual, "Remote Protocol" > "Overview"):
- a packet is `$payload#cc`, cc = two hex digits of the modulo-256 sum of
  the payload bytes; the receiver answers `+` (good) or `-` (resend), until
  QStartNoAckMode switches acknowledgements off;
- binary data escapes `#`, `$`, `}` and `*` as `}` followed by the byte
  XOR 0x20;
- run-length encoding: `X*n` stands for X repeated 1 + (ord(n) - 29) times;
  the count character must be printable and neither `#` nor `$`;
- a lone 0x03 byte outside a packet is an interrupt request (Ctrl-C).

Decoder.feed() is a byte-at-a-time state machine that never raises on bad
input: it reports bad checksums, oversized packets and junk as events so
the stub can answer `-` or an error reply and carry on.

Layer: debug (above the tools it uses: flags, session, report).
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_PAYLOAD = 0x4000        # what we advertise as PacketSize (hex 4000 = 16384 bytes)
INTERRUPT = 0x03
_HEX = frozenset(b"0123456789abcdefABCDEF")
_ESCAPED = frozenset(b"#$}*")


class RspError(ValueError):
    """A malformed payload (bad hex, bad escape, bad field); one line."""


def checksum(payload: bytes) -> int:
    """Return the modulo-256 sum of `payload`."""
    return sum(payload) & 0xFF


def escape(data: bytes) -> bytes:
    """Escape `#`, `$`, `}` and `*` for binary payloads (`}` + byte^0x20)."""
    out = bytearray()
    for b in data:
        if b in _ESCAPED:
            out += bytes((0x7D, b ^ 0x20))
        else:
            out.append(b)
    return bytes(out)


def unescape(data: bytes) -> bytes:
    """Undo escape(). Raises RspError on a trailing `}`."""
    out = bytearray()
    it = iter(data)
    for b in it:
        if b == 0x7D:
            nxt = next(it, None)
            if nxt is None:
                raise RspError("binary data ends inside an escape")
            out.append(nxt ^ 0x20)
        else:
            out.append(b)
    return bytes(out)


def rle_expand(data: bytes) -> bytes:
    """Expand `X*n` runs. Raises RspError for a `*` with nothing to repeat
    or a count character below 29+3 (counts 0-2 are not encodings)."""
    if b"*" not in data:
        return data
    out = bytearray()
    i = 0
    while i < len(data):
        b = data[i]
        if b == 0x2A:   # '*'
            if not out or i + 1 >= len(data):
                raise RspError("run-length '*' with nothing to repeat")
            n = data[i + 1] - 29
            if n < 3:
                raise RspError("bad run-length count")
            out += bytes((out[-1],)) * n
            i += 2
            continue
        out.append(b)
        i += 1
    return bytes(out)


def rle_compress(data: bytes) -> bytes:
    """Run-length encode runs of 4+ equal bytes (count chars avoid `#`/`$`,
    stay printable). Escaped binary data must not be compressed."""
    out = bytearray()
    i = 0
    while i < len(data):
        b = data[i]
        j = i + 1
        while j < len(data) and data[j] == b and j - i < 98:
            j += 1
        run = j - i
        if run >= 4:
            n = run - 1
            if n in (6, 7):      # 29+6 = '#', 29+7 = '$'
                n = 5
            out.append(b)
            out += bytes((0x2A, n + 29))
            i += n + 1
        else:
            out.append(b)
            i += 1
    return bytes(out)


def frame(payload: bytes) -> bytes:
    """Return `$payload#cc`."""
    return b"$" + payload + b"#" + f"{checksum(payload):02x}".encode()


def hexenc(data: bytes) -> bytes:
    """Lower-case hex of `data`."""
    return data.hex().encode()


def hexdec(text: bytes | str) -> bytes:
    """Decode hex. Raises RspError for odd length or non-hex digits."""
    t = text.decode("latin-1") if isinstance(text, bytes) else text
    if len(t) % 2:
        raise RspError("odd number of hex digits")
    try:
        return bytes.fromhex(t)
    except ValueError:
        raise RspError("non-hex digits") from None


def hexint(text: bytes | str, what: str = "number") -> int:
    """Parse a big-endian hex number (addresses, lengths). Raises RspError."""
    t = text.decode("latin-1") if isinstance(text, bytes) else text
    if not t or len(t) > 16 or any(c not in "0123456789abcdefABCDEF" for c in t):
        raise RspError(f"bad hex {what}: {t[:20]!r}")
    return int(t, 16)


def le_hex(value: int, size: int = 8) -> bytes:
    """`value` as little-endian hex of `size` bytes (register encoding)."""
    return hexenc((value & ((1 << (8 * size)) - 1)).to_bytes(size, "little"))


@dataclass(frozen=True)
class Event:
    """What the decoder saw. kind: "packet" (payload set), "ack", "nack",
    "interrupt", "bad_checksum", "oversized"."""

    kind: str
    payload: bytes = b""


class Decoder:
    """Incremental RSP decoder: feed() bytes, get Events back."""

    def __init__(self, max_payload: int = MAX_PAYLOAD) -> None:
        self.max_payload = max_payload
        self._state = "idle"      # idle | body | cs1 | cs2
        self._buf = bytearray()
        self._sum = 0
        self._over = False
        self._cs = bytearray()

    @property
    def mid_packet(self) -> bool:
        """True while a packet has started but not ended."""
        return self._state != "idle"

    def reset(self) -> None:
        """Forget any partial packet (a new client connected)."""
        self._state = "idle"
        self._buf.clear()
        self._cs.clear()
        self._sum = 0
        self._over = False

    def feed(self, data: bytes) -> list[Event]:
        """Consume `data`; return the events it completed, in order."""
        events: list[Event] = []
        for b in data:
            st = self._state
            if st == "idle":
                if b == 0x24:        # '$'
                    self._start()
                elif b == 0x2B:      # '+'
                    events.append(Event("ack"))
                elif b == 0x2D:      # '-'
                    events.append(Event("nack"))
                elif b == INTERRUPT:
                    events.append(Event("interrupt"))
                # anything else between packets is line noise: ignored
            elif st == "body":
                if b == 0x23:        # '#'
                    self._state = "cs1"
                elif b == 0x24:      # a raw '$' restarts (resync after a lost '#')
                    self._start()
                else:
                    self._sum = (self._sum + b) & 0xFF
                    if len(self._buf) < self.max_payload:
                        self._buf.append(b)
                    else:
                        self._over = True
            else:
                self._cs.append(b)
                if st == "cs1":
                    self._state = "cs2"
                    continue
                events.append(self._finish())
        return events

    def _start(self) -> None:
        self._state = "body"
        self._buf.clear()
        self._cs.clear()
        self._sum = 0
        self._over = False

    def _finish(self) -> Event:
        self._state = "idle"
        cs = bytes(self._cs)
        ok = len(cs) == 2 and all(c in _HEX for c in cs) and int(cs, 16) == self._sum
        if not ok:
            return Event("bad_checksum")
        if self._over:
            return Event("oversized")
        return Event("packet", bytes(self._buf))
