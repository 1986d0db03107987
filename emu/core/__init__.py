"""The foundations every layer stands on: virtual time and its event queue
(clock), physical memory (memory), user quantities (units), RISC-V facts
(isa) and the chooser of compiled twins (twins).

Layer: core (imports nothing from emu but the compiled twins).
"""
