"""The frame codec the data path uses: the compiled twin when built, else the reference.

emu.core.twins decides (EMU_PURE=1 forces the pure path). Both twins export the
same names; the exceptions and constants always come from emu.net.frames, so
`except FrameError` works whichever twin is active.

Layer: net (imports only emu.core).
"""

from __future__ import annotations

from types import ModuleType

from emu.core import twins
from emu.net import frames as reference
from emu.net.frames import FieldError, FrameError, MalformedFrame, NotAoE, TruncatedFrame

_fast = twins.pick("frames")
impl: ModuleType = _fast if _fast is not None else reference
IS_FAST: bool = _fast is not None

parse = impl.parse
build_ata = impl.build_ata
build_config = impl.build_config
build_aoe = impl.build_aoe
eth_addrs = impl.eth_addrs
pad = impl.pad
AoEFrame = impl.AoEFrame

__all__ = ["AoEFrame", "FieldError", "FrameError", "IS_FAST", "MalformedFrame", "NotAoE",
           "TruncatedFrame", "build_aoe", "build_ata", "build_config", "eth_addrs", "impl",
           "pad", "parse", "reference"]
