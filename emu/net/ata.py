"""The ATA side of an AoE target: register bits and the IDENTIFY DEVICE block.

The identify block is laid out as vblade's ata.c builds it (ATA/ATAPI-6
word numbers): words 47, 49, 50, 83, 84, 86, 87, 93 carry vblade's fixed
capability values (LBA supported, 48-bit address feature set supported and
enabled, flush cache supported); strings are ATA strings (two characters a
word, first character in the high byte, space padded): serial number words
10-19, firmware revision 23-26, model 27-46; the capacity is the LBA28
sector count in words 60-61 (capped at 0x0FFFFFFF, the 28-bit maximum) and
the LBA48 count in words 100-103. A Linux initiator (drivers/block/aoe)
reads the capacity from exactly these words.

Layer: net (imports only emu.core).
"""

from __future__ import annotations

# Error register bits (ATA).
ERR_ABRT = 1 << 2
ERR_IDNF = 1 << 4
# Status register bits (ATA).
ST_ERR = 1 << 0
ST_DRQ = 1 << 3
ST_DF = 1 << 5
ST_DRDY = 1 << 6
ST_BSY = 1 << 7

MAX_LBA28 = 0x0FFF_FFFF

_FIXED_WORDS = {47: 0x8000, 49: 0x0200, 50: 0x4000, 83: 0x5400, 84: 0x4000, 86: 0x1400,
                87: 0x4000, 93: 0x400B}


def _ata_string(text: str, nbytes: int) -> bytes:
    """An ATA identify string: byte-swapped pairs, space padded, cut to nbytes."""
    raw = text.encode("ascii", "replace")[:nbytes].ljust(nbytes, b" ")
    out = bytearray(nbytes)
    out[0::2], out[1::2] = raw[1::2], raw[0::2]
    return bytes(out)


def identify_data(nsectors: int, *, model: str, firmware: str, serial: str) -> bytes:
    """Return the 512-byte IDENTIFY DEVICE block for a disk of `nsectors` sectors."""
    ident = bytearray(512)
    for word, value in _FIXED_WORDS.items():
        ident[2 * word:2 * word + 2] = value.to_bytes(2, "little")
    ident[20:40] = _ata_string(serial, 20)
    ident[46:54] = _ata_string(firmware, 8)
    ident[54:94] = _ata_string(model, 40)
    lba28 = min(nsectors, MAX_LBA28)
    ident[120:124] = lba28.to_bytes(4, "little")
    ident[200:206] = (nsectors & ((1 << 48) - 1)).to_bytes(6, "little")
    return bytes(ident)


def identify_capacity(ident: bytes) -> tuple[int, int]:
    """Return (lba28 sectors, lba48 sectors) read back from an identify block."""
    return (int.from_bytes(ident[120:124], "little") & MAX_LBA28,
            int.from_bytes(ident[200:206], "little"))
