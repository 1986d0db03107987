"""`--noise RATE[,SIZE]`: a traffic generator port sending non-AoE frames to the guest.

Spelling (parse_noise):

    RATE        frames per second: `2000`, `2000pps`, `2.5kpps`, `1mpps`;
                or a bit rate with a tc unit: `5mbit`, `100kbit`, `1gbit`,
                `10mbps` (bytes/s), converted to frames/s with SIZE
                (frame + 4-byte FCS, 8 bits a byte)
    SIZE        frame length in bytes without FCS, 60..9014 (default 60, the
                Ethernet minimum: the most frames per bit, the hardest case
                for a receive ring)

Examples: `--noise 2000`, `--noise 5mbit,1500`, `--noise 20kpps,60`.

Frames go to the guest's MAC (unicast, so the switch forwards them to the
guest's port only, once it has learned it; until then they flood, as on a real
switch) from a locally administered source MAC, with the IEEE local
experimental ethertype 0x88B5 (never AoE, and dissected by Wireshark as plain
data): a 4-byte sequence number, then seeded random bytes. Arrivals are a
Poisson process (exponential gaps) in virtual time from the generator's own
random.Random(seed): the same seed gives the same frames at the same times.
Frames sent to the generator are counted and discarded.

Layer: net (imports only emu.core).
"""

from __future__ import annotations

import random
import re

from emu.core.clock import Clock, Event
from emu.net.fcs import append_fcs
from emu.net.netem import RATE_UNITS

ETH_P_EXPERIMENTAL = 0x88B5
NOISE_MAC = bytes.fromhex("02e0e0000001")  # locally administered (bit 1 of byte 0)
MIN_SIZE, MAX_SIZE = 60, 9014

_PPS = {"": 1.0, "pps": 1.0, "kpps": 1e3, "mpps": 1e6}
_SPEC = re.compile(r"^([0-9]*\.?[0-9]+)([a-z]*)$")


def parse_noise(text: str) -> tuple[float, int]:
    """Parse `RATE[,SIZE]` (module docstring). Returns (frames_per_second, size).

    Raises ValueError with one line for a bad spelling or an out-of-range value.
    """
    def bad(msg: str) -> ValueError:
        return ValueError(f"bad --noise {text!r}: {msg} (expected RATE[,SIZE], "
                          "e.g. 2000, 20kpps,60 or 5mbit,1500)")

    parts = text.strip().lower().split(",")
    if len(parts) > 2 or not parts[0]:
        raise bad("wrong number of fields")
    size = MIN_SIZE
    if len(parts) == 2:
        if not parts[1].strip().isdigit():
            raise bad(f"size {parts[1]!r} is not a whole number of bytes")
        size = int(parts[1])
        if not MIN_SIZE <= size <= MAX_SIZE:
            raise bad(f"size {size} is outside {MIN_SIZE}..{MAX_SIZE}")
    m = _SPEC.match(parts[0].strip())
    if m is None:
        raise bad(f"rate {parts[0]!r} is not a number with a unit")
    value, unit = float(m.group(1)), m.group(2)
    if unit in _PPS:
        fps = value * _PPS[unit]
    elif unit in RATE_UNITS:
        fps = value * RATE_UNITS[unit] / ((size + 4) * 8)
    else:
        raise bad(f"unknown rate unit {unit!r}")
    if fps <= 0:
        raise bad("rate must be positive")
    return fps, size


class NoiseGenerator:
    """A segment endpoint that sends junk frames to `dst` at a Poisson rate."""

    def __init__(self, clock: Clock, dst: bytes, fps: float, size: int = MIN_SIZE, *,
                 seed: int = 0, src: bytes = NOISE_MAC) -> None:
        """Create a stopped generator; attach it, set `port`, then start().
        Raises ValueError for a bad MAC, rate or size."""
        if len(dst) != 6 or len(src) != 6:
            raise ValueError("noise: MAC addresses must be 6 bytes")
        if fps <= 0 or not MIN_SIZE <= size <= MAX_SIZE:
            raise ValueError(f"noise: rate {fps} or size {size} out of range")
        self.clock = clock
        self.dst, self.src = bytes(dst), bytes(src)
        self.fps, self.size = float(fps), int(size)
        self.rng = random.Random(seed)
        self.port = None  # set by the caller to the handle attach() returned
        self.sent = 0
        self.bytes_sent = 0
        self.received = 0
        self._event: Event | None = None
        self._header = self.dst + self.src + ETH_P_EXPERIMENTAL.to_bytes(2, "big")

    @classmethod
    def from_spec(cls, clock: Clock, dst: bytes, spec: str, *, seed: int = 0) -> NoiseGenerator:
        """Build a generator from the `--noise` spelling. Raises ValueError if bad."""
        fps, size = parse_noise(spec)
        return cls(clock, dst, fps, size, seed=seed)

    def start(self) -> None:
        """Begin sending (first frame after one random gap). Idempotent."""
        if self._event is None:
            self._schedule()

    def stop(self) -> None:
        """Stop sending."""
        if self._event is not None:
            self.clock.cancel(self._event)
            self._event = None

    def _schedule(self) -> None:
        gap_ns = max(1, int(self.rng.expovariate(self.fps) * 1e9))
        self._event = self.clock.after(gap_ns, self._fire)

    def _fire(self) -> None:
        body = self.sent.to_bytes(4, "big") + self.rng.randbytes(self.size - 18)
        frame = self._header + body
        if self.port is not None:
            self.port.send(append_fcs(frame))
        self.sent += 1
        self.bytes_sent += len(frame) + 4
        self._schedule()

    def receive(self, wire: bytes) -> None:
        """Frames addressed to the generator are counted and dropped."""
        self.received += 1

    def stats(self) -> dict[str, float | int]:
        """{"sent", "bytes_sent", "received", "fps", "size"}."""
        return {"sent": self.sent, "bytes_sent": self.bytes_sent, "received": self.received,
                "fps": self.fps, "size": self.size}
