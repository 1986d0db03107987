"""The sifive,test finisher of QEMU's `virt` board (hw/misc/sifive_test.c):
a guest ends the run, or asks for a reset, with one write.

Register (offset 0; QEMU accepts 2- and 4-byte accesses, a 1- or 8-byte one
faults there; emu logs those as guest_errors and ignores them):

    write  bits 0..15 status, bits 16..31 code
           0x5555 FINISHER_PASS   end the run with status 0
           0x3333 FINISHER_FAIL   end the run with status `code` (QEMU calls
                                  exit(code): the host sees code & 0xFF, and a
                                  failure with code 0 exits 0)
           0x7777 FINISHER_RESET  reset the machine
           anything else, or any other offset: ignored (logged)
    read   0, anywhere in the page

The device tree's syscon-poweroff and syscon-reboot nodes name the same
register with 0x5555 and 0x7777 (Linux's poweroff and reboot).

Layer: devices (imports emu.core and emu.net).
"""

from __future__ import annotations

from collections.abc import Callable

from emu.devices.bus import no_log

FINISHER_FAIL = 0x3333
FINISHER_PASS = 0x5555
FINISHER_RESET = 0x7777
FINISHER_SIZE = 0x1000


class Finisher:
    """The test finisher: `end(status)` ends the run, `reset()` resets."""

    name = "finisher"

    def __init__(self, end: Callable[[int], None], reset: Callable[[], None]) -> None:
        self.end = end
        self.reset = reset
        self.log = no_log

    def read(self, offset: int, size: int) -> int:
        """Every read returns 0."""
        if size not in (2, 4):
            self.log("guest_errors", f"finisher: read of size {size} at +0x{offset:x} "
                     "(QEMU: access fault)")
        return 0

    def write(self, offset: int, size: int, value: int) -> None:
        """A write of PASS, FAIL | code << 16 or RESET at offset 0 acts; the
        rest is ignored (logged)."""
        if size not in (2, 4):
            self.log("guest_errors", f"finisher: write of 0x{value:x} of size {size} at "
                     f"+0x{offset:x} ignored (QEMU: access fault)")
            return
        status, code = value & 0xFFFF, value >> 16 & 0xFFFF
        if offset == 0 and status == FINISHER_FAIL:
            self.end(code)
        elif offset == 0 and status == FINISHER_PASS:
            self.end(0)
        elif offset == 0 and status == FINISHER_RESET:
            self.reset()
        else:
            self.log("guest_errors", f"finisher: write of 0x{value:x} to +0x{offset:x} ignored")
