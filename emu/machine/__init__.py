"""The machine core: the board table, the hart on unicorn, trap delivery,
the run loop, firmware, loader and configuration. Imports only downwards
(emu.core, emu.mmu, emu.net, emu.devices); never a tool or the face.

Layer: machine.
"""
