"""The firmware: SBI calls from the S-mode kernel (the emulator plays M-mode,
as OpenSBI does on hardware).

Implemented (RISC-V SBI spec v2.0): Base (0x10), TIME (0x54494D45), DBCN
(0x4442434E), SRST (0x53525354), RFENCE (0x52464E43: remote_fence_i drops
translated code, the sfence variants flush the TLB - one hart, so "remote"
is this hart), IPI (0x735049: send_ipi sets this hart's SSIP) and HSM
(0x48534D: hart 0 is started; starting it again is ALREADY_AVAILABLE, a
hart that does not exist INVALID_PARAM, stopping or suspending the only
hart is refused) - what Linux probes for - and the legacy console
putchar/getchar, set_timer and shutdown calls. Calling convention: a7 = extension id, a6 =
function id, a0..a5 arguments; returns a0 = error, a1 = value (legacy calls
return only a0).

SRST shutdown: reason 0 (no reason) -> exit status 0, 1 (system failure) ->
1, vendor-specific reasons 0xF0000000..0xFFFFFFFF -> the low 8 bits (the
kernel's test runner reports its failure count this way).

Layer: machine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

SBI_SUCCESS = 0
SBI_ERR_FAILED = -1
SBI_ERR_NOT_SUPPORTED = -2
SBI_ERR_INVALID_PARAM = -3
SBI_ERR_ALREADY_AVAILABLE = -6
HSM_STARTED = 0
ALL_HARTS = (1 << 64) - 1       # hart_mask_base -1: every hart

EXT_BASE = 0x10
EXT_TIME = 0x54494D45
EXT_DBCN = 0x4442434E
EXT_SRST = 0x53525354
EXT_RFENCE = 0x52464E43
EXT_IPI = 0x735049
EXT_HSM = 0x48534D
LEGACY_SET_TIMER = 0x00
LEGACY_PUTCHAR = 0x01
LEGACY_GETCHAR = 0x02
LEGACY_SHUTDOWN = 0x08

SPEC_VERSION = 2 << 24          # v2.0: major in bits 30:24
IMPL_ID = 0x656D75              # "emu"
IMPL_VERSION = 1

EXT_NAMES = {EXT_BASE: "base", EXT_TIME: "time", EXT_DBCN: "dbcn", EXT_SRST: "srst",
             EXT_RFENCE: "rfence", EXT_IPI: "ipi", EXT_HSM: "hsm",
             LEGACY_SET_TIMER: "legacy_set_timer", LEGACY_PUTCHAR: "legacy_putchar",
             LEGACY_GETCHAR: "legacy_getchar", LEGACY_SHUTDOWN: "legacy_shutdown"}


def shutdown_status(reason: int) -> int:
    """Map an SRST reset reason to emu's exit status (see module docstring)."""
    if reason >= 0xF000_0000:
        return reason & 0xFF
    return 0 if reason == 0 else 1


@dataclass
class Firmware:
    """SBI dispatcher. The machine provides the side effects as callables.

    `console_write(bytes)`, `console_read() -> int | None`, `set_timer(t)`,
    `read_phys(pa, n) -> bytes | None` (None when outside RAM),
    `write_phys(pa, data) -> bool`, `shutdown(status)`, `fence_i()`,
    `sfence_vma()`, `send_ipi()` (set SSIP on the one hart).
    """

    console_write: Callable[[bytes], None]
    console_read: Callable[[], int | None]
    set_timer: Callable[[int], None]
    read_phys: Callable[[int, int], bytes | None]
    write_phys: Callable[[int, bytes], bool]
    shutdown: Callable[[int], None]
    fence_i: Callable[[], None] = lambda: None
    sfence_vma: Callable[[], None] = lambda: None
    send_ipi: Callable[[], None] = lambda: None
    calls: dict[str, int] = field(default_factory=dict)

    def call(self, eid: int, fid: int, a: list[int]) -> tuple[int, int | None]:
        """Perform SBI call (eid, fid) with arguments a[0..5].

        Returns (a0, a1); a1 is None for legacy calls, which leave a1 alone.
        """
        name = EXT_NAMES.get(eid, f"0x{eid:x}")
        self.calls[name] = self.calls.get(name, 0) + 1
        if eid == LEGACY_PUTCHAR:
            self.console_write(bytes((a[0] & 0xFF,)))
            return 0, None
        if eid == LEGACY_GETCHAR:
            c = self.console_read()
            return (c if c is not None else -1) & 0xFFFF_FFFF_FFFF_FFFF, None
        if eid == LEGACY_SET_TIMER:
            self.set_timer(a[0])
            return 0, None
        if eid == LEGACY_SHUTDOWN:
            self.shutdown(0)
            return 0, None
        if eid == EXT_BASE:
            return self._base(fid, a)
        if eid == EXT_TIME and fid == 0:
            self.set_timer(a[0])
            return SBI_SUCCESS, 0
        if eid == EXT_DBCN:
            return self._dbcn(fid, a)
        if eid == EXT_RFENCE:
            if fid == 0:
                self.fence_i()
                return SBI_SUCCESS, 0
            if fid in (1, 2):
                self.sfence_vma()
                return SBI_SUCCESS, 0
            return _err(SBI_ERR_NOT_SUPPORTED)
        if eid == EXT_IPI and fid == 0:
            return self._send_ipi(a[0], a[1])
        if eid == EXT_HSM:
            return self._hsm(fid, a[0])
        if eid == EXT_SRST and fid == 0:
            rtype, reason = a[0] & 0xFFFF_FFFF, a[1] & 0xFFFF_FFFF
            if rtype != 0:
                return _err(SBI_ERR_NOT_SUPPORTED)
            self.shutdown(shutdown_status(reason))
            return SBI_SUCCESS, 0
        return _err(SBI_ERR_NOT_SUPPORTED)

    def _base(self, fid: int, a: list[int]) -> tuple[int, int]:
        if fid == 0:
            return SBI_SUCCESS, SPEC_VERSION
        if fid == 1:
            return SBI_SUCCESS, IMPL_ID
        if fid == 2:
            return SBI_SUCCESS, IMPL_VERSION
        if fid == 3:
            known = a[0] in (EXT_BASE, EXT_TIME, EXT_DBCN, EXT_SRST, EXT_RFENCE, EXT_IPI,
                             EXT_HSM, LEGACY_SET_TIMER, LEGACY_PUTCHAR, LEGACY_GETCHAR,
                             LEGACY_SHUTDOWN)
            return SBI_SUCCESS, 1 if known else 0
        if fid in (4, 5, 6):       # mvendorid, marchid, mimpid
            return SBI_SUCCESS, 0
        return _err(SBI_ERR_NOT_SUPPORTED)

    def _send_ipi(self, mask: int, base: int) -> tuple[int, int]:
        """send_ipi(hart_mask, hart_mask_base): hart 0 is the only hart."""
        if base != ALL_HARTS:
            harts = {base + i for i in range(64) if mask >> i & 1}
            if harts - {0}:
                return _err(SBI_ERR_INVALID_PARAM)
            if 0 not in harts:
                return SBI_SUCCESS, 0
        self.send_ipi()
        return SBI_SUCCESS, 0

    def _hsm(self, fid: int, hart: int) -> tuple[int, int]:
        """hart_start, hart_stop, hart_get_status, hart_suspend for one hart."""
        if fid == 1:                 # hart_stop: the only hart keeps running
            return _err(SBI_ERR_FAILED)
        if fid not in (0, 2):        # hart_suspend and beyond
            return _err(SBI_ERR_NOT_SUPPORTED)
        if hart != 0:
            return _err(SBI_ERR_INVALID_PARAM)
        if fid == 0:                 # hart_start of a started hart
            return _err(SBI_ERR_ALREADY_AVAILABLE)
        return SBI_SUCCESS, HSM_STARTED

    def _dbcn(self, fid: int, a: list[int]) -> tuple[int, int]:
        if fid == 0:               # console_write(num_bytes, base_lo, base_hi)
            n, pa = a[0], a[1] | (a[2] << 32)
            data = self.read_phys(pa, n) if n <= 1 << 20 else None
            if data is None:
                return _err(SBI_ERR_INVALID_PARAM)
            self.console_write(data)
            return SBI_SUCCESS, n
        if fid == 1:               # console_read(num_bytes, base_lo, base_hi)
            n, pa = a[0], a[1] | (a[2] << 32)
            out = bytearray()
            while len(out) < n:
                c = self.console_read()
                if c is None:
                    break
                out.append(c)
            if not self.write_phys(pa, bytes(out)):
                return _err(SBI_ERR_INVALID_PARAM)
            return SBI_SUCCESS, len(out)
        if fid == 2:               # console_write_byte(byte)
            self.console_write(bytes((a[0] & 0xFF,)))
            return SBI_SUCCESS, 0
        return _err(SBI_ERR_NOT_SUPPORTED)


def _err(code: int) -> tuple[int, int]:
    return code & 0xFFFF_FFFF_FFFF_FFFF, 0
