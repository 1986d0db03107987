"""Quantities a user types - memory sizes, spans of virtual time - parsed
once at the edge, and ConfigError, the one-line error every bad value raises.

Layer: core (imports nothing from emu).
"""

from __future__ import annotations

import re


class ConfigError(ValueError):
    """A bad knob value; the message is one line meant for the user."""


_SIZE_RE = re.compile(r"^(\d+)([KMG]?)(i?B?)$", re.IGNORECASE)
_TIME_RE = re.compile(r"^(\d+(?:\.\d+)?)(ns|us|ms|s)$")


def parse_size(text: str) -> int:
    """Return the byte count of a QEMU-style size ("16M", "64m", "1G", "4096").

    A bare number means MiB, as QEMU's -m does. Raises ConfigError.
    """
    m = _SIZE_RE.match(text.strip())
    if not m:
        raise ConfigError(f"bad memory size {text!r} (expected e.g. 16M, 64M, 1G)")
    n, unit = int(m.group(1)), m.group(2).upper()
    mult = {"": 1 << 20, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[unit]
    return n * mult


def parse_time_ns(text: str) -> int:
    """'20us' -> 20000 (units ns, us, ms, s). Raises ConfigError."""
    m = _TIME_RE.match(text.strip())
    if m is None:
        raise ConfigError(f"bad time {text!r} (expected e.g. 0us, 20us, 1ms)")
    return int(float(m.group(1)) * {"ns": 1, "us": 10**3, "ms": 10**6, "s": 10**9}[m.group(2)])
