"""Devices: small objects with read/write/tick, wired by emu/machine.py."""
