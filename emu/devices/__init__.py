"""Devices: small objects with read/write/tick, placed by the board table
(emu/machine/board.py).

Layer: devices (imports emu.core and emu.net).
"""
