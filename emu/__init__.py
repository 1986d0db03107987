"""emu: an emulated RISC-V (RV64, Sv39) machine for studying virtual memory.

The CPU is unicorn; the MMU, firmware, devices and network are ours. See
ARCHITECTURE.md for the layers.
"""

__version__ = "0.1.0"
